//! An error as one line for the log, each cause said once.
//!
//! pulse's error types name their cause in their own message and also
//! expose it as `source()`, so anyhow's `{:#}` would repeat it.

/// `err` and the causes its message does not already say.
pub fn describe(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let said = cause.to_string();
        if !line.contains(&said) {
            line.push_str(": ");
            line.push_str(&said);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_io::{PipelineError, SourceError};

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::other("incomplete deflate stream");
        let source = SourceError::Io {
            path: "a.jsonl.gz".into(),
            source: io,
        };
        let err = anyhow::Error::from(PipelineError::Source(source));
        assert_eq!(
            describe(&err),
            "source failed: reading a.jsonl.gz: incomplete deflate stream"
        );
        // Context that does not repeat its cause keeps it.
        let err = anyhow::anyhow!("connection refused").context("starting the sink");
        assert_eq!(describe(&err), "starting the sink: connection refused");
    }
}
