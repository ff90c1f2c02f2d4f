//! `GET /events`: the live feed as server-sent events.
//!
//! A browser first gets one `snapshot` event (status and recent windows of
//! every symbol), then a `window` event per closed window and a `status`
//! event per state change. A browser that falls too far behind gets a fresh
//! `snapshot` instead of the updates it missed; rows are keyed by symbol and
//! start, so the page applies them idempotently.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt, stream};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use super::Dashboard;
use super::feed::{Feed, Update};

pub async fn events(
    State(dashboard): State<Dashboard>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = feed_events(dashboard.feed.clone())
        .take_until(dashboard.shutdown.clone().cancelled_owned())
        .map(Ok);
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The snapshot, then every update; ends when the feed is dropped.
fn feed_events(feed: Arc<Feed>) -> impl Stream<Item = Event> {
    let (snapshot, receiver) = feed.subscribe();
    let first = Event::default().event("snapshot").data(snapshot);
    stream::once(async move { first }).chain(stream::unfold(
        (feed, receiver),
        |(feed, mut receiver): (Arc<Feed>, Receiver<Update>)| async move {
            let event = match receiver.recv().await {
                Ok(Update::Window(json)) => Event::default().event("window").data(&*json),
                Ok(Update::Status(json)) => Event::default().event("status").data(&*json),
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "dashboard client fell behind; resending a snapshot");
                    let (snapshot, fresh) = feed.subscribe();
                    receiver = fresh;
                    Event::default().event("snapshot").data(snapshot)
                }
                Err(RecvError::Closed) => return None,
            };
            Some((event, (feed, receiver)))
        },
    ))
}
