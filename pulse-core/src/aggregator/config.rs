//! How an [`Aggregator`](super::Aggregator) is set up: its policies and
//! settings, checked once up front.

#[cfg(doc)]
use super::{Aggregator, AggregatorStats, Event};
use crate::sequence::DEFAULT_MAX_OPEN_GAPS;

/// What to do with a trade whose window was already emitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LatePolicy {
    /// Count it and report [`Event::Late`]; the emitted window stays as it was.
    #[default]
    Count,
    /// Also re-emit the corrected window with a higher version, as long as it
    /// is within [`AggregatorConfig::late_retention_ms`] of the watermark.
    Reemit,
}

/// How a symbol's watermark follows its trades.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WatermarkPolicy {
    /// Trades come in id order (a live source's lanes release them so, and
    /// recordings keep it). Binance ids are contiguous and trade times
    /// never fall as ids rise, so a trade at `T` proves every window ending
    /// at or before `T` complete: it closes them at once. Only while the
    /// symbol has an open id gap (seen with
    /// [`track_sequence`](AggregatorConfig::track_sequence)) does the
    /// watermark trail the newest trade by `allowed_lateness_ms`; live, for
    /// at most `allowed_lateness_ms` on the caller's clock after the gap
    /// showed, since a gap no one fills must not slow the symbol for good.
    /// (Ids just below the very first trade show no gap, so live they are
    /// not waited for: input whose order is not known wants `Lateness`.)
    #[default]
    IdOrder,
    /// The newest trade time minus `allowed_lateness_ms`, whatever the ids:
    /// for inputs whose order is not known (`pulse consume` keeps this).
    /// Live, a quiet symbol's windows close `allowed_lateness_ms`, not
    /// `idle_margin_ms`, past their end.
    Lateness,
}

/// Settings for an [`Aggregator`]. Plain data; checked by [`AggregatorConfig::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregatorConfig {
    /// Window length in ms. Default 1000.
    pub window_ms: i64,
    /// How the watermark follows trades. Default [`WatermarkPolicy::IdOrder`].
    pub watermark: WatermarkPolicy,
    /// How far behind the newest trade time the watermark trails when it
    /// cannot follow ids (see [`WatermarkPolicy`]). Default 2000.
    pub allowed_lateness_ms: i64,
    /// A quiet symbol's last window closes once the caller's clock says
    /// this long has passed beyond the window's end, counted from the
    /// symbol's last input ([`Aggregator::handle_trade_at`]). Elapsed time
    /// only: the caller's clock is never compared with trade times, so any
    /// offset between the two is harmless. Small (default 150 ms) because
    /// it only has to cover the exchange's delivery jitter; a trade that
    /// still comes later re-emits its window under [`LatePolicy::Reemit`].
    /// While the watermark cannot follow ids (see [`WatermarkPolicy`]),
    /// `allowed_lateness_ms` is waited for instead, if larger.
    pub idle_margin_ms: i64,
    /// Late-trade handling. Default [`LatePolicy::Count`].
    pub late_policy: LatePolicy,
    /// With [`LatePolicy::Reemit`], how long (behind the watermark) emitted
    /// windows are kept for correction. Default 60000.
    pub late_retention_ms: i64,
    /// Drop duplicate ids and report gaps. Default true.
    pub track_sequence: bool,
    /// Missing id ranges kept per symbol. Default
    /// [`DEFAULT_MAX_OPEN_GAPS`]; past it the oldest are forgotten
    /// ([`AggregatorStats::forgotten_ids`]).
    pub max_open_gaps: usize,
    /// A trade more than this far ahead of its symbol's newest trade time
    /// and of the other symbols' newest, beyond what the caller's clock says
    /// has passed since (live, [`Aggregator::handle_trade_at`]), moves the
    /// symbol's clock only once confirmed: by the next trade with a larger
    /// id coming no more than this before it, by another symbol's trade
    /// reaching its time, by the caller's clock
    /// catching up with it ([`advance`](Aggregator::advance)), by a
    /// watermark near it ([`close_through`](Aggregator::close_through)), or
    /// at [`flush`](Aggregator::flush). One wrong timestamp would otherwise
    /// make every later trade of the symbol late; refuted, it is
    /// [`Event::TimeOutlier`]. The very first trade, with nothing to be
    /// ahead of, is held the same way until the next trade of its symbol.
    /// Live, when a held trade's window would close anyway, it is taken if
    /// near what the other symbols say the time is (a first trade also when
    /// there are none). Default 60000 (the correction horizon).
    pub outlier_jump_ms: i64,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig {
            window_ms: 1000,
            watermark: WatermarkPolicy::IdOrder,
            allowed_lateness_ms: 2000,
            idle_margin_ms: 150,
            late_policy: LatePolicy::Count,
            late_retention_ms: 60_000,
            track_sequence: true,
            max_open_gaps: DEFAULT_MAX_OPEN_GAPS,
            outlier_jump_ms: 60_000,
        }
    }
}

/// A setting outside its allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `window_ms` must be positive.
    #[error("window_ms must be > 0, got {0}")]
    WindowSize(i64),
    /// A duration was negative.
    #[error("{name} must be >= 0, got {value}")]
    Negative {
        /// Setting name.
        name: &'static str,
        /// The value given.
        value: i64,
    },
}

impl AggregatorConfig {
    /// Checks every setting once, up front.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.window_ms <= 0 {
            return Err(ConfigError::WindowSize(self.window_ms));
        }
        for (name, value) in [
            ("allowed_lateness_ms", self.allowed_lateness_ms),
            ("idle_margin_ms", self.idle_margin_ms),
            ("late_retention_ms", self.late_retention_ms),
            ("outlier_jump_ms", self.outlier_jump_ms),
        ] {
            if value < 0 {
                return Err(ConfigError::Negative { name, value });
            }
        }
        Ok(())
    }
}
