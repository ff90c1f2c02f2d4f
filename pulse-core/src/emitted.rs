//! One symbol's emitted windows, kept so late trades can correct them
//! ([`LatePolicy::Reemit`](crate::LatePolicy::Reemit)).
//!
//! Windows close in start order, so new ones go at the back and expired
//! ones leave from the front: a ring buffer sorted by start, which costs
//! no allocation per window once warm (a map did, on every window of every
//! symbol).

use std::collections::VecDeque;

use crate::WindowStats;

/// Emitted windows by start, ascending, each with the version last emitted.
#[derive(Debug, Default)]
pub(crate) struct EmittedWindows {
    windows: VecDeque<(i64, WindowStats, u64)>,
}

impl EmittedWindows {
    /// The kept window starting at `start`, and its version.
    pub(crate) fn get_mut(&mut self, start: i64) -> Option<(&mut WindowStats, &mut u64)> {
        let at = self.position(start).ok()?;
        let (_, stats, version) = &mut self.windows[at];
        Some((stats, version))
    }

    /// Keeps `stats` as the window starting at `start`, emitted as `version`,
    /// in place of any kept before.
    pub(crate) fn insert(&mut self, start: i64, stats: WindowStats, version: u64) {
        match self.position(start) {
            Ok(at) => self.windows[at] = (start, stats, version),
            // The usual case: the newest window so far.
            Err(at) if at == self.windows.len() => self.windows.push_back((start, stats, version)),
            Err(at) => self.windows.insert(at, (start, stats, version)),
        }
    }

    /// Drops the windows, oldest first, for which `expired(start)` holds;
    /// it must hold for a prefix of starts.
    pub(crate) fn expire(&mut self, expired: impl Fn(i64) -> bool) {
        while self
            .windows
            .front()
            .is_some_and(|(start, ..)| expired(*start))
        {
            self.windows.pop_front();
        }
    }

    fn position(&self, start: i64) -> Result<usize, usize> {
        // Corrections are for recent windows: look at the back first.
        match self.windows.back() {
            Some((last, ..)) if *last < start => Err(self.windows.len()),
            _ => self.windows.binary_search_by_key(&start, |(s, ..)| *s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Frame, parse_frame};

    fn stats(id: u64) -> WindowStats {
        let frame = format!(
            r#"{{"e":"trade","E":1,"T":1,"s":"BTCUSDT","t":{id},"p":"1","q":"1","X":"MARKET","m":false}}"#
        );
        match parse_frame(frame.as_bytes()) {
            Ok(Frame::Trade(trade)) => WindowStats::new(&trade),
            other => panic!("{other:?}"),
        }
    }

    fn starts(e: &EmittedWindows) -> Vec<(i64, u64)> {
        e.windows.iter().map(|(s, _, v)| (*s, *v)).collect()
    }

    #[test]
    fn keeps_windows_in_start_order_whatever_the_insert_order() {
        let mut e = EmittedWindows::default();
        for start in [1000, 2000, 5000] {
            e.insert(start, stats(1), 1);
        }
        e.insert(3000, stats(2), 1); // an empty window corrected into being
        e.insert(0, stats(3), 1);
        e.insert(2000, stats(4), 2); // replaces
        assert_eq!(
            starts(&e),
            [(0, 1), (1000, 1), (2000, 2), (3000, 1), (5000, 1)]
        );
        let (_, version) = e.get_mut(3000).unwrap();
        *version += 1;
        assert!(e.get_mut(4000).is_none() && e.get_mut(9000).is_none());
        e.expire(|start| start < 2000);
        assert_eq!(starts(&e), [(2000, 2), (3000, 2), (5000, 1)]);
        e.expire(|_| true);
        assert!(starts(&e).is_empty());
    }
}
