//! Prometheus metrics shared by every part of the pipeline.
//!
//! One [`Metrics`] is made at start-up and cloned into each component (clones
//! share the same counters). [`Metrics::encode`] renders the text format for
//! a `/metrics` endpoint.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label set with a symbol.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SymbolLabel {
    /// Trading pair, e.g. `BTCUSDT`.
    pub symbol: String,
}

/// Label set with a reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Short machine-friendly reason, e.g. `json`.
    pub reason: String,
}

/// Label set with a sink name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabel {
    /// Sink name, e.g. `clickhouse`.
    pub sink: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms .. ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Every metric pulse exports. Cheap to clone; clones share state.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Trades received from a source, by symbol.
    pub trades_received: Family<SymbolLabel, Counter>,
    /// Frames or messages rejected as malformed, by reason.
    pub frames_rejected: Family<ReasonLabel, Counter>,
    /// Trades evicted from a full drop-oldest queue.
    pub queue_dropped: Counter,
    /// Sequence gaps found, by symbol.
    pub gaps: Family<SymbolLabel, Counter>,
    /// Trades recovered by REST backfill, by symbol.
    pub trades_backfilled: Family<SymbolLabel, Counter>,
    /// Missing trades that backfill could not recover, by symbol.
    pub trades_unfilled: Family<SymbolLabel, Counter>,
    /// Duplicate trades dropped, by symbol.
    pub duplicates: Family<SymbolLabel, Counter>,
    /// Trades that arrived after their window closed, by symbol.
    pub late_trades: Family<SymbolLabel, Counter>,
    /// Windows emitted, by symbol.
    pub windows_emitted: Family<SymbolLabel, Counter>,
    /// WebSocket reconnects.
    pub reconnects: Counter,
    /// Open WebSocket connections.
    pub connections: Gauge,
    /// Failed sink writes, by sink.
    pub sink_errors: Family<SinkLabel, Counter>,
    /// Sink write retries, by sink.
    pub sink_retries: Family<SinkLabel, Counter>,
    /// Seconds from a window's end to its emission.
    pub window_emit_latency: Histogram,
    /// Seconds from a window's end to its successful store, by sink.
    pub window_store_latency: HistogramFamily<SinkLabel>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every metric under the `pulse_` prefix.
    pub fn new() -> Self {
        let mut m = Metrics {
            registry: Arc::default(),
            trades_received: Family::default(),
            frames_rejected: Family::default(),
            queue_dropped: Counter::default(),
            gaps: Family::default(),
            trades_backfilled: Family::default(),
            trades_unfilled: Family::default(),
            duplicates: Family::default(),
            late_trades: Family::default(),
            windows_emitted: Family::default(),
            reconnects: Counter::default(),
            connections: Gauge::default(),
            sink_errors: Family::default(),
            sink_retries: Family::default(),
            window_emit_latency: latency_histogram(),
            window_store_latency: Family::new_with_constructor(latency_histogram),
        };
        let mut r = Registry::with_prefix("pulse");
        r.register(
            "trades_received",
            "Trades received from a source",
            m.trades_received.clone(),
        );
        r.register(
            "frames_rejected",
            "Frames or messages rejected as malformed",
            m.frames_rejected.clone(),
        );
        r.register(
            "queue_dropped",
            "Trades dropped by a full drop-oldest queue",
            m.queue_dropped.clone(),
        );
        r.register("gaps", "Trade id gaps found", m.gaps.clone());
        r.register(
            "trades_backfilled",
            "Trades recovered over REST backfill",
            m.trades_backfilled.clone(),
        );
        r.register(
            "trades_unfilled",
            "Missing trades backfill could not recover",
            m.trades_unfilled.clone(),
        );
        r.register(
            "duplicate_trades",
            "Duplicate trades dropped",
            m.duplicates.clone(),
        );
        r.register(
            "late_trades",
            "Trades that arrived after their window closed",
            m.late_trades.clone(),
        );
        r.register(
            "windows_emitted",
            "Windows emitted",
            m.windows_emitted.clone(),
        );
        r.register("reconnects", "WebSocket reconnects", m.reconnects.clone());
        r.register(
            "connections",
            "Open WebSocket connections",
            m.connections.clone(),
        );
        r.register("sink_errors", "Failed sink writes", m.sink_errors.clone());
        r.register("sink_retries", "Sink write retries", m.sink_retries.clone());
        r.register(
            "window_emit_latency_seconds",
            "Seconds from a window's end to its emission",
            m.window_emit_latency.clone(),
        );
        r.register(
            "window_store_latency_seconds",
            "Seconds from a window's end to its successful store",
            m.window_store_latency.clone(),
        );
        m.registry = Arc::new(r);
        m
    }

    /// Renders every metric in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Shorthand for a symbol label.
    pub fn symbol(symbol: &str) -> SymbolLabel {
        SymbolLabel {
            symbol: symbol.to_string(),
        }
    }

    /// Shorthand for a sink label.
    pub fn sink(sink: &str) -> SinkLabel {
        SinkLabel {
            sink: sink.to_string(),
        }
    }

    /// Counts one rejected frame.
    pub fn reject(&self, reason: &str) {
        self.frames_rejected
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_with_prometheus_names() {
        let m = Metrics::new();
        m.trades_received
            .get_or_create(&Metrics::symbol("BTCUSDT"))
            .inc_by(3);
        m.reject("json");
        m.window_emit_latency.observe(0.004);
        let text = m.encode();
        assert!(
            text.contains("pulse_trades_received_total{symbol=\"BTCUSDT\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("pulse_frames_rejected_total{reason=\"json\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("pulse_window_emit_latency_seconds_count 1"),
            "{text}"
        );
        assert!(text.contains("# TYPE pulse_reconnects counter"), "{text}");
    }
}
