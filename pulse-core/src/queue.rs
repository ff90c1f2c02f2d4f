//! A bounded queue that drops its oldest item when full.
//!
//! Between a socket reader and a slower consumer, dropping the oldest item
//! keeps the socket flowing; the drop is counted so the caller can turn it into
//! a sequence gap and backfill it.

use std::collections::VecDeque;

/// Default capacity of [`DropOldest`].
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;

/// A bounded FIFO that evicts the oldest item to make room.
///
/// ```
/// use pulse_core::DropOldest;
/// let mut q = DropOldest::new(2);
/// assert_eq!(q.push(1), None);
/// assert_eq!(q.push(2), None);
/// assert_eq!(q.push(3), Some(1));
/// assert_eq!((q.pop(), q.dropped()), (Some(2), 1));
/// ```
#[derive(Clone, Debug)]
pub struct DropOldest<T> {
    items: VecDeque<T>,
    capacity: usize,
    dropped: u64,
}

impl<T> Default for DropOldest<T> {
    fn default() -> Self {
        DropOldest::new(DEFAULT_QUEUE_CAPACITY)
    }
}

impl<T> DropOldest<T> {
    /// An empty queue holding at most `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        DropOldest {
            items: VecDeque::with_capacity(capacity.min(4096)),
            capacity,
            dropped: 0,
        }
    }

    /// Appends `item`; returns the evicted oldest item when the queue was full.
    pub fn push(&mut self, item: T) -> Option<T> {
        let evicted = if self.items.len() == self.capacity {
            self.dropped += 1;
            self.items.pop_front()
        } else {
            None
        };
        self.items.push_back(item);
        evicted
    }

    /// Removes the oldest item.
    pub fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The most items it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Items evicted since creation.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_newest_and_counts_drops() {
        let mut q = DropOldest::new(3);
        let evicted: Vec<_> = (0..10).filter_map(|i| q.push(i)).collect();
        assert_eq!(evicted, (0..7).collect::<Vec<_>>());
        assert_eq!(q.dropped(), 7);
        assert_eq!(
            std::iter::from_fn(|| q.pop()).collect::<Vec<_>>(),
            vec![7, 8, 9]
        );
        assert!(q.is_empty());
        assert_eq!(DropOldest::<u8>::default().capacity(), 10_000);
    }
}
