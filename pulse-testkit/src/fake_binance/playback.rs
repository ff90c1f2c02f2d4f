//! Publishing the tape: in order, at the configured pace, with scheduled
//! faults applied between trades.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::{FakeConfig, Pace, Start};
use super::state::Shared;

pub(crate) async fn run(shared: Arc<Shared>, config: FakeConfig, cancel: CancellationToken) {
    tokio::select! {
        _ = cancel.cancelled() => return,
        _ = wait_for_start(&shared, config.start) => {}
    }
    let start = Instant::now();
    let trades = shared.tape.trades();
    let t0 = trades.first().map_or(0, |t| t.trade_time_ms);
    for (pos, trade) in trades.iter().enumerate() {
        for fault in shared.take_scheduled(pos) {
            shared.inject(fault);
        }
        let due = match config.pace {
            Pace::Unpaced | Pace::TradesPerSecond(0) => None,
            Pace::TradesPerSecond(rate) => {
                Some(start + Duration::from_secs_f64(pos as f64 / f64::from(rate)))
            }
            Pace::RealTime { speed } => {
                let ms = (trade.trade_time_ms - t0).max(0) as f64 / speed.max(f64::MIN_POSITIVE);
                Some(start + Duration::from_secs_f64(ms / 1000.0))
            }
        };
        match due {
            Some(due) if due > Instant::now() => {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep_until(due) => {}
                }
            }
            // Let connection tasks drain their queues now and then.
            None if pos % 64 == 0 => tokio::task::yield_now().await,
            _ => {}
        }
        shared.publish(pos);
    }
    for fault in shared.take_scheduled(trades.len()) {
        shared.inject(fault);
    }
    shared.finish_playback();
}

async fn wait_for_start(shared: &Shared, start: Start) {
    let mut flag = match start {
        Start::OnFirstSubscriber => shared.subscribed.subscribe(),
        Start::Manual => shared.playing.subscribe(),
    };
    let _ = flag.wait_for(|on| *on).await;
}
