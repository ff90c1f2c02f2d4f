//! A column of integers kept narrow until a value needs the full width.
//!
//! Most values of a history column fit in far fewer bytes than their type:
//! a window's trade count in 2, its start as an offset from the symbol's
//! first window in 4. Storing them so saves about an eighth of the
//! history's memory, and a value that does not fit widens the column, so
//! every value stays exact.

use std::cmp::Ordering;
use std::collections::VecDeque;

/// Values of type `W`, stored as `N` while every one of them fits.
#[derive(Debug)]
pub(super) enum Packed<N, W> {
    Narrow(VecDeque<N>),
    Wide(VecDeque<W>),
}

impl<N, W> Packed<N, W>
where
    N: Copy + TryFrom<W>,
    W: Copy + From<N>,
{
    pub(super) fn with_capacity(n: usize) -> Self {
        Packed::Narrow(VecDeque::with_capacity(n))
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Packed::Narrow(c) => c.len(),
            Packed::Wide(c) => c.len(),
        }
    }

    pub(super) fn get(&self, i: usize) -> W {
        match self {
            Packed::Narrow(c) => c[i].into(),
            Packed::Wide(c) => c[i],
        }
    }

    /// `VecDeque::binary_search_by` over the values.
    pub(super) fn binary_search_by(
        &self,
        mut f: impl FnMut(W) -> Ordering,
    ) -> Result<usize, usize> {
        match self {
            Packed::Narrow(c) => c.binary_search_by(|&v| f(v.into())),
            Packed::Wide(c) => c.binary_search_by(|&v| f(v)),
        }
    }

    pub(super) fn set(&mut self, i: usize, value: W) {
        match self.narrowed(value) {
            Ok(v) => self.narrow_mut()[i] = v,
            Err(v) => self.wide_mut()[i] = v,
        }
    }

    pub(super) fn insert(&mut self, i: usize, value: W) {
        match self.narrowed(value) {
            Ok(v) => self.narrow_mut().insert(i, v),
            Err(v) => self.wide_mut().insert(i, v),
        }
    }

    pub(super) fn push_back(&mut self, value: W) {
        match self.narrowed(value) {
            Ok(v) => self.narrow_mut().push_back(v),
            Err(v) => self.wide_mut().push_back(v),
        }
    }

    pub(super) fn pop_front(&mut self) {
        match self {
            Packed::Narrow(c) => drop(c.pop_front()),
            Packed::Wide(c) => drop(c.pop_front()),
        }
    }

    /// Replaces every value `v` with `f(v)`, narrow if they all fit.
    pub(super) fn rewrite(&mut self, f: impl Fn(W) -> W) {
        let capacity = match self {
            Packed::Narrow(c) => c.capacity(),
            Packed::Wide(c) => c.capacity(),
        };
        let values: Vec<W> = (0..self.len()).map(|i| f(self.get(i))).collect();
        let narrow: Option<VecDeque<N>> = values.iter().map(|&v| N::try_from(v).ok()).collect();
        *self = match narrow {
            Some(mut c) => {
                c.reserve_exact(capacity.saturating_sub(c.len()));
                Packed::Narrow(c)
            }
            None => {
                let mut c = VecDeque::with_capacity(capacity);
                c.extend(values);
                Packed::Wide(c)
            }
        };
    }

    /// `value` as stored in the column: narrow if the column still is and
    /// the value fits; otherwise the column is widened first.
    fn narrowed(&mut self, value: W) -> Result<N, W> {
        if let Packed::Narrow(c) = self {
            match N::try_from(value) {
                Ok(v) => return Ok(v),
                Err(_) => {
                    // As much room as before: a full column stays in place.
                    let mut wide = VecDeque::with_capacity(c.capacity());
                    wide.extend(c.iter().map(|&v| W::from(v)));
                    *self = Packed::Wide(wide);
                }
            }
        }
        Err(value)
    }

    /// The narrow values; only called once [`narrowed`](Self::narrowed)
    /// said the column is narrow.
    fn narrow_mut(&mut self) -> &mut VecDeque<N> {
        match self {
            Packed::Narrow(c) => c,
            Packed::Wide(_) => unreachable!("narrowed() returned a narrow value"),
        }
    }

    fn wide_mut(&mut self) -> &mut VecDeque<W> {
        match self {
            Packed::Wide(c) => c,
            Packed::Narrow(_) => unreachable!("narrowed() widens the column first"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(column: &Packed<u16, u64>) -> Vec<u64> {
        (0..column.len()).map(|i| column.get(i)).collect()
    }

    #[test]
    fn values_that_fit_stay_narrow() {
        let mut column = Packed::<u16, u64>::with_capacity(4);
        column.push_back(3);
        column.push_back(u64::from(u16::MAX));
        column.insert(1, 0);
        column.set(0, 9);
        assert!(matches!(column, Packed::Narrow(_)));
        assert_eq!(values(&column), [9, 0, 65_535]);
        column.pop_front();
        assert_eq!(values(&column), [0, 65_535]);
    }

    #[test]
    fn a_rewrite_narrows_again_when_every_value_fits() {
        let mut column = Packed::<u16, u64>::with_capacity(8);
        column.push_back(70_000);
        column.push_back(70_005);
        assert!(matches!(column, Packed::Wide(_)));
        column.rewrite(|v| v - 70_000);
        assert!(matches!(&column, Packed::Narrow(c) if c.capacity() >= 8));
        assert_eq!(values(&column), [0, 5]);
        column.rewrite(|v| (v + 1) << 20);
        assert!(matches!(column, Packed::Wide(_)));
        assert_eq!(values(&column), [1 << 20, 6 << 20]);
    }

    #[test]
    fn a_value_that_does_not_fit_widens_every_value_exactly() {
        type Widen = fn(&mut Packed<u16, u64>);
        let cases: [(Widen, &[u64]); 3] = [
            (|c| c.push_back(u64::MAX), &[7, 65_535, u64::MAX, 1]),
            (|c| c.insert(1, 1 << 16), &[7, 1 << 16, 65_535, 1]),
            (|c| c.set(1, 1 << 40), &[7, 1 << 40, 1]),
        ];
        for (widen, expected) in cases {
            let mut column = Packed::<u16, u64>::with_capacity(4);
            column.push_back(7);
            column.push_back(65_535);
            widen(&mut column);
            assert!(matches!(column, Packed::Wide(_)));
            // Values that would fit go on in the wide column.
            column.push_back(1);
            assert_eq!(values(&column), expected);
        }
    }
}
