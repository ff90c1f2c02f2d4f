//! The live dashboard of `pulse run`: one page, charts drawn with uPlot,
//! windows pushed over server-sent events.
//!
//! ## Layout
//! - `feed`: the history and the broadcast to browsers.
//! - `history`: recent windows per symbol, as columns.
//! - `packed`: a column of integers kept narrow while they fit.
//! - `row`: the values of one window the page draws, and their JSON.
//! - `sink`: [`DashboardSink`], the window sink that publishes to the feed.
//! - `sse`: `GET /events`.
//! - `assets`: the embedded page, script, styles and vendored uPlot.
//! - `listen`: the `--dashboard ADDR|off` value.

mod assets;
mod feed;
mod history;
mod listen;
mod packed;
mod row;
mod sink;
mod sse;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

pub use feed::Status;
pub use listen::ListenAddr;
pub use sink::DashboardSink;

/// Handle on the dashboard's shared state; cheap to clone.
#[derive(Clone, Debug)]
pub struct Dashboard {
    feed: Arc<feed::Feed>,
}

impl Dashboard {
    /// A dashboard keeping `history_limit` windows per symbol for browsers
    /// that connect late.
    pub fn new(history_limit: usize, status: &Status) -> Self {
        Dashboard {
            feed: Arc::new(feed::Feed::new(history_limit, status)),
        }
    }

    /// `/`, its assets and `/events`.
    pub fn routes(&self) -> Router {
        assets::routes()
            .route("/events", get(sse::events))
            .with_state(self.clone())
    }

    /// A window sink publishing to this dashboard.
    pub fn sink(&self) -> DashboardSink {
        DashboardSink {
            feed: self.feed.clone(),
        }
    }

    /// Shows a new run state in every browser.
    pub fn set_status(&self, status: &Status) {
        self.feed.set_status(status);
    }

    /// Ends every open event stream once it has sent what came before, the
    /// last status included, so stopping the server cuts nothing off.
    pub fn close(&self) {
        self.feed.close();
    }
}
