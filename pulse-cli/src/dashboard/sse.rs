//! `GET /events[?symbol=S]`: the live feed as server-sent events.
//!
//! A browser first gets one `snapshot` event (status, the symbols with
//! windows, and recent windows: of symbol `S`, of the default symbol for an
//! empty `S`, of every symbol without the parameter), then a `window` event
//! per closed window of any symbol and a `status` event per state change. A
//! browser that falls too far behind gets a fresh `snapshot` instead of the
//! updates it missed; rows are keyed by symbol and start, so the page
//! applies them idempotently.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt, stream};
use pulse_core::Symbol;
use serde::Deserialize;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use super::Dashboard;
use super::feed::{Feed, Selection, Update};

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    symbol: Option<String>,
}

impl EventsQuery {
    fn selection(&self) -> Selection {
        match self.symbol.as_deref() {
            None => Selection::All,
            // An unknown or malformed name shows the default, as the page
            // then does.
            Some(name) => Symbol::new(name).map_or(Selection::Default, Selection::Of),
        }
    }
}

pub async fn events(
    State(dashboard): State<Dashboard>,
    Query(query): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = feed_events(dashboard.feed.clone(), query.selection()).map(Ok);
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The snapshot, then every update; ends at [`Update::End`] or when the
/// feed is dropped.
fn feed_events(feed: Arc<Feed>, selection: Selection) -> impl Stream<Item = Event> {
    stream::unfold(
        (feed, None),
        move |(feed, receiver): (Arc<Feed>, Option<Receiver<Update>>)| async move {
            let Some(mut receiver) = receiver else {
                let (event, receiver) = snapshot(feed.clone(), selection).await?;
                return Some((event, (feed, Some(receiver))));
            };
            let event = match receiver.recv().await {
                Ok(Update::Window(json)) => Event::default().event("window").data(&*json),
                Ok(Update::Status(json)) => Event::default().event("status").data(&*json),
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "dashboard client fell behind; resending a snapshot");
                    let (event, fresh) = snapshot(feed.clone(), selection).await?;
                    receiver = fresh;
                    event
                }
                Ok(Update::End) | Err(RecvError::Closed) => return None,
            };
            Some((event, (feed, Some(receiver))))
        },
    )
}

/// A `snapshot` event, rendered on a blocking thread: a long history takes
/// a while, and the async workers also run the pipeline.
async fn snapshot(feed: Arc<Feed>, selection: Selection) -> Option<(Event, Receiver<Update>)> {
    let (json, receiver) = tokio::task::spawn_blocking(move || feed.subscribe(selection))
        .await
        .ok()?;
    Some((Event::default().event("snapshot").data(json), receiver))
}
