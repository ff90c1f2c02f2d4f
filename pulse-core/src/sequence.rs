//! Id continuity per symbol: Binance aggTrade ids (`a`) and trade ids (`t`)
//! are contiguous, so a jump is a gap to backfill and a repeat is a duplicate.

use std::collections::BTreeMap;

/// An inclusive range of ids, `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdRange {
    /// First id in the range.
    pub first: u64,
    /// Last id in the range (inclusive).
    pub last: u64,
}

impl IdRange {
    /// Number of ids in the range.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never true: a range holds at least one id.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// True when `id` is inside.
    pub fn contains(&self, id: u64) -> bool {
        self.first <= id && id <= self.last
    }
}

/// What one id meant for its symbol's sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceOutcome {
    /// The first id seen for this symbol.
    First,
    /// Exactly the id after the last one.
    Next,
    /// Ids were skipped; the range is now missing.
    Gap(IdRange),
    /// An id that fills (part of) an earlier gap, e.g. from a backfill.
    Filled,
    /// Already seen: drop it.
    Duplicate,
}

impl SequenceOutcome {
    /// True unless the id was a duplicate.
    pub fn is_new(&self) -> bool {
        !matches!(self, SequenceOutcome::Duplicate)
    }
}

/// Default limit on open gaps kept per symbol: about 30 MiB at worst.
/// Reordered input opens a gap per trade overtaken, so a busy symbol
/// shuffled by up to a minute holds tens of thousands at once; a limit that
/// low would drop real trades as duplicates (see [`Sequence::forgotten`]).
pub const DEFAULT_MAX_OPEN_GAPS: usize = 1 << 20;

/// One symbol's sequence: the highest id seen and the ranges still missing.
#[derive(Clone, Debug, Default)]
pub struct Sequence {
    /// Lowest id accounted for: ids below it arrived out of order, early.
    first: u64,
    last: Option<u64>,
    /// Missing ranges keyed by first id.
    missing: BTreeMap<u64, u64>,
    max_open_gaps: usize,
    abandoned: u64,
    /// Ids given up on by the open-gap limit.
    forgotten: u64,
}

impl Sequence {
    /// An empty sequence that keeps at most `max_open_gaps` missing ranges.
    pub fn new(max_open_gaps: usize) -> Self {
        Sequence {
            max_open_gaps: max_open_gaps.max(1),
            ..Sequence::default()
        }
    }

    /// Starts the sequence after `last`, e.g. from the last id already stored.
    pub fn resume_after(&mut self, last: u64) {
        self.last = Some(self.last.map_or(last, |l| l.max(last)));
        self.first = 0;
    }

    /// Records `id` and says what it was.
    pub fn observe(&mut self, id: u64) -> SequenceOutcome {
        let Some(last) = self.last else {
            self.first = id;
            self.last = Some(id);
            return SequenceOutcome::First;
        };
        if id < self.first {
            // Reordered delivery: an id older than the first one seen is new.
            let gap = (id + 1 < self.first).then(|| IdRange {
                first: id + 1,
                last: self.first - 1,
            });
            self.first = id;
            return match gap {
                Some(gap) => {
                    self.insert_gap(gap);
                    SequenceOutcome::Gap(gap)
                }
                None => SequenceOutcome::Filled,
            };
        }
        if id == last.wrapping_add(1) {
            self.last = Some(id);
            return SequenceOutcome::Next;
        }
        if id > last {
            let gap = IdRange {
                first: last + 1,
                last: id - 1,
            };
            self.insert_gap(gap);
            self.last = Some(id);
            return SequenceOutcome::Gap(gap);
        }
        self.fill(id)
    }

    fn insert_gap(&mut self, gap: IdRange) {
        self.missing.insert(gap.first, gap.last);
        while self.missing.len() > self.max_open_gaps {
            // Oldest gaps are the least likely to ever be filled.
            if let Some((first, last)) = self.missing.pop_first() {
                self.abandoned += last - first + 1;
                self.forgotten += last - first + 1;
            }
        }
    }

    fn fill(&mut self, id: u64) -> SequenceOutcome {
        let Some((&first, &last)) = self.missing.range(..=id).next_back() else {
            return SequenceOutcome::Duplicate;
        };
        if id > last {
            return SequenceOutcome::Duplicate;
        }
        self.missing.remove(&first);
        if first < id {
            self.missing.insert(first, id - 1);
        }
        if id < last {
            self.missing.insert(id + 1, last);
        }
        SequenceOutcome::Filled
    }

    /// The highest id seen.
    pub fn last_id(&self) -> Option<u64> {
        self.last
    }

    /// True while some id below the newest is still missing.
    pub fn has_gaps(&self) -> bool {
        !self.missing.is_empty()
    }

    /// True when `id` lies in an open gap.
    pub fn is_missing(&self, id: u64) -> bool {
        self.missing
            .range(..=id)
            .next_back()
            .is_some_and(|(_, &last)| id <= last)
    }

    /// How many ids are still missing, over every open gap.
    pub fn missing_count(&self) -> u64 {
        self.missing().map(|range| range.len()).sum()
    }

    /// Ranges still missing, oldest first.
    pub fn missing(&self) -> impl Iterator<Item = IdRange> + '_ {
        self.missing
            .iter()
            .map(|(&first, &last)| IdRange { first, last })
    }

    /// Gives up on a range (e.g. backfill could not reach it) and returns how
    /// many ids were still missing in it.
    pub fn abandon(&mut self, range: IdRange) -> u64 {
        let overlapping: Vec<(u64, u64)> = self
            .missing
            .range(..=range.last)
            .filter(|(_, l)| **l >= range.first)
            .map(|(f, l)| (*f, *l))
            .collect();
        let mut lost = 0;
        for (first, last) in overlapping {
            self.missing.remove(&first);
            let cut_first = first.max(range.first);
            let cut_last = last.min(range.last);
            lost += cut_last - cut_first + 1;
            if first < cut_first {
                self.missing.insert(first, cut_first - 1);
            }
            if cut_last < last {
                self.missing.insert(cut_last + 1, last);
            }
        }
        self.abandoned += lost;
        lost
    }

    /// Ids given up on, by [`Sequence::abandon`] or by the open-gap limit.
    pub fn abandoned(&self) -> u64 {
        self.abandoned
    }

    /// Ids given up on by the open-gap limit alone. Such an id, if it still
    /// comes, cannot be told from a repeat and is reported a
    /// [`SequenceOutcome::Duplicate`].
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(first: u64, last: u64) -> IdRange {
        IdRange { first, last }
    }

    #[test]
    fn table_of_id_sequences() {
        use SequenceOutcome::*;
        type Case<'a> = (&'a str, &'a [u64], &'a [SequenceOutcome], &'a [IdRange]);
        let cases: &[Case<'_>] = &[
            ("contiguous", &[5, 6, 7], &[First, Next, Next], &[]),
            (
                "duplicate",
                &[5, 6, 6, 5],
                &[First, Next, Duplicate, Duplicate],
                &[],
            ),
            ("gap", &[5, 9], &[First, Gap(r(6, 8))], &[r(6, 8)]),
            (
                "fill middle",
                &[5, 9, 7],
                &[First, Gap(r(6, 8)), Filled],
                &[r(6, 6), r(8, 8)],
            ),
            (
                "fill all",
                &[1, 4, 2, 3, 3],
                &[First, Gap(r(2, 3)), Filled, Filled, Duplicate],
                &[],
            ),
            (
                "older than first",
                &[10, 7, 9, 8, 7],
                &[First, Gap(r(8, 9)), Filled, Filled, Duplicate],
                &[],
            ),
            (
                "just before first",
                &[10, 9, 10],
                &[First, Filled, Duplicate],
                &[],
            ),
        ];
        for (name, ids, outcomes, missing) in cases {
            let mut seq = Sequence::new(16);
            let got: Vec<_> = ids.iter().map(|&id| seq.observe(id)).collect();
            assert_eq!(&got, outcomes, "{name}");
            assert_eq!(&seq.missing().collect::<Vec<_>>(), missing, "{name}");
        }
    }

    #[test]
    fn open_gap_limit_abandons_oldest() {
        let mut seq = Sequence::new(2);
        for id in [1, 3, 5, 7] {
            seq.observe(id);
        }
        assert_eq!(seq.missing().collect::<Vec<_>>(), vec![r(4, 4), r(6, 6)]);
        assert_eq!(seq.abandoned(), 1);
        assert_eq!(seq.forgotten(), 1);
        // Forgotten: it cannot be told from a repeat any more.
        assert_eq!(seq.observe(2), SequenceOutcome::Duplicate);
        seq.abandon(r(4, 4));
        assert_eq!((seq.abandoned(), seq.forgotten()), (2, 1));
    }

    #[test]
    fn abandon_cuts_ranges() {
        let mut seq = Sequence::new(16);
        seq.observe(1);
        seq.observe(10);
        assert_eq!(seq.abandon(r(4, 5)), 2);
        assert_eq!(seq.missing().collect::<Vec<_>>(), vec![r(2, 3), r(6, 9)]);
        assert_eq!(seq.observe(4), SequenceOutcome::Duplicate);
    }

    #[test]
    fn resume_after_treats_older_ids_as_duplicates() {
        let mut seq = Sequence::new(16);
        seq.resume_after(100);
        assert_eq!(seq.observe(100), SequenceOutcome::Duplicate);
        assert_eq!(seq.observe(101), SequenceOutcome::Next);
    }
}
