//! The window sink that feeds the dashboard.

use std::sync::Arc;

use async_trait::async_trait;
use pulse_core::Window;
use pulse_io::{SinkError, WindowSink};

use super::feed::Feed;

/// Publishes closed windows to connected browsers. Never fails: a browser
/// that is not there simply misses nothing it asked for.
#[derive(Debug)]
pub struct DashboardSink {
    pub(super) feed: Arc<Feed>,
}

#[async_trait]
impl WindowSink for DashboardSink {
    fn name(&self) -> &'static str {
        "dashboard"
    }

    async fn write_windows(&mut self, windows: &[Window]) -> Result<(), SinkError> {
        self.feed.publish(windows);
        Ok(())
    }
}
