//! The sinks that failed for good while the pipeline stops.

use super::PipelineError;

/// Which sinks gave up, and the first error, which is the one reported;
/// the later ones are logged. The last writes skip a sink that gave up and
/// go on with the others.
#[derive(Debug, Default)]
pub(super) struct Failures {
    sinks: Vec<&'static str>,
    first: Option<PipelineError>,
}

impl Failures {
    /// Keeps `result`'s error, if any.
    pub(super) fn note(&mut self, result: Result<(), PipelineError>) {
        let Err(error) = result else {
            return;
        };
        if let PipelineError::Sink { sink, .. } = &error {
            self.sinks.push(sink);
        }
        match &self.first {
            None => self.first = Some(error),
            Some(_) => tracing::error!(%error, "another write failed while stopping"),
        }
    }

    /// True when `sink` gave up.
    pub(super) fn failed(&self, sink: &str) -> bool {
        self.sinks.contains(&sink)
    }

    /// True when nothing failed.
    pub(super) fn none(&self) -> bool {
        self.first.is_none()
    }

    /// `sink` holds `pending` items in all: the windows closed since it
    /// gave up are not stored either.
    pub(super) fn set_pending(&mut self, sink: &str, pending: usize) {
        if let Some(PipelineError::Sink {
            sink: failed,
            pending: count,
            ..
        }) = &mut self.first
            && *failed == sink
        {
            *count = pending;
        }
    }

    /// The first error, if any.
    pub(super) fn into_result(self) -> Result<(), PipelineError> {
        self.first.map_or(Ok(()), Err)
    }
}
