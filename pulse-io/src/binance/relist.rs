//! `--symbols ALL` kept current: the trading perpetuals are listed again
//! every `max_connection_age`, the age at which connections are replaced
//! anyway, so a symbol Binance lists or delists is picked up by the next
//! daily reconnect at the latest.
//!
//! When the list changed, the source switches to a new shard plan. A kept
//! symbol's old stream stops only once its new one runs: new connections
//! open first, old and new are read together for `rotation_overlap` (the
//! lanes drop the duplicates), then the old ones close, and the symbols
//! that changed connection are caught up as after a reconnect. Shards whose
//! streams are unchanged keep their connection.
//!
//! A failed listing keeps the symbols as they are and is retried with
//! backoff; the listing runs in a task, so trades never wait for it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use pulse_core::Symbol;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::config::BinanceConfig;
use super::rest::RestClient;
use super::universe::{AllPerpetuals, ListingError, list_trading};
use crate::retry::Backoff;

/// When to list again, the listing in flight, and a switch under way.
#[derive(Debug)]
pub(crate) struct Relisting {
    all: AllPerpetuals,
    every: Duration,
    overlap: Duration,
    /// When to list again; `None` while a listing or a switch is under way.
    due: Option<Instant>,
    listing: JoinSet<Result<Vec<Symbol>, ListingError>>,
    backoff: Backoff,
    switch: Option<Switch>,
}

/// A move to a new shard plan, under way.
#[derive(Debug)]
pub(crate) struct Switch {
    /// The symbols to follow once it is done.
    pub(crate) symbols: Vec<Symbol>,
    /// Readers to stop once the new ones run.
    pub(crate) retiring: Vec<usize>,
    /// New readers not connected yet.
    waiting: BTreeSet<usize>,
    /// When to stop the old readers: `overlap` after the last new one
    /// connected.
    finish_at: Option<Instant>,
}

/// How a new list differs from the symbols followed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) added: Vec<Symbol>,
    pub(crate) removed: Vec<Symbol>,
}

impl Change {
    pub(crate) fn between(followed: &[Symbol], listed: &[Symbol]) -> Self {
        let followed: BTreeSet<Symbol> = followed.iter().copied().collect();
        let listed: BTreeSet<Symbol> = listed.iter().copied().collect();
        Change {
            added: listed.difference(&followed).copied().collect(),
            removed: followed.difference(&listed).copied().collect(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

impl Relisting {
    /// For a source that follows `all`, first listing one
    /// `max_connection_age` from `now`.
    pub(crate) fn new(all: AllPerpetuals, config: &BinanceConfig, now: Instant) -> Self {
        Relisting {
            all,
            every: config.max_connection_age,
            overlap: config.rotation_overlap,
            due: Some(now + config.max_connection_age),
            listing: JoinSet::new(),
            backoff: config.retry.delays(),
            switch: None,
        }
    }

    /// The next time [`Relisting::poll`] has something to do.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.due.or(self.switch.as_ref().and_then(|s| s.finish_at))
    }

    /// True while a listing runs; then wait for [`Relisting::listed`].
    pub(crate) fn is_listing(&self) -> bool {
        !self.listing.is_empty()
    }

    /// Starts the listing when due, and hands back a switch whose old
    /// readers may stop now. Call when [`Relisting::deadline`] has passed.
    #[must_use]
    pub(crate) fn poll(&mut self, now: Instant, rest: &Arc<RestClient>) -> Option<Switch> {
        if self.due.is_some_and(|due| due <= now) {
            self.due = None;
            let (rest, all) = (rest.clone(), self.all.clone());
            self.listing
                .spawn(async move { list_trading(&rest, &all).await });
        }
        if self
            .switch
            .as_ref()
            .and_then(|s| s.finish_at)
            .is_some_and(|at| at <= now)
        {
            self.due = Some(now + self.every);
            return self.switch.take();
        }
        None
    }

    /// The listing's result. Cancel-safe; pending while none runs.
    pub(crate) async fn listed(&mut self) -> Result<Vec<Symbol>, ListingError> {
        match self.listing.join_next().await {
            Some(Ok(result)) => result,
            Some(Err(e)) => Err(ListingError::Task(e.to_string())),
            None => std::future::pending().await,
        }
    }

    /// A listing failed: keep the symbols, try again after a backoff delay.
    pub(crate) fn failed(&mut self, now: Instant) -> Duration {
        let delay = self.backoff.next_delay();
        self.due = Some(now + delay);
        delay
    }

    /// A listing found the symbols unchanged: list again in `every`.
    pub(crate) fn unchanged(&mut self, now: Instant) {
        self.backoff.reset();
        self.due = Some(now + self.every);
    }

    /// The symbols changed: the source started `waiting` and will stop
    /// `retiring` once they run. No listing happens until it is done.
    pub(crate) fn begin(
        &mut self,
        symbols: Vec<Symbol>,
        waiting: BTreeSet<usize>,
        retiring: Vec<usize>,
        now: Instant,
    ) {
        self.backoff.reset();
        // Nothing new to wait for (symbols only removed): stop at once.
        let finish_at = waiting.is_empty().then_some(now);
        self.switch = Some(Switch {
            symbols,
            retiring,
            waiting,
            finish_at,
        });
    }

    /// A new reader connected; once all have, the old ones get `overlap`.
    pub(crate) fn connected(&mut self, index: usize, now: Instant) {
        if let Some(switch) = &mut self.switch
            && switch.waiting.remove(&index)
            && switch.waiting.is_empty()
        {
            switch.finish_at = Some(now + self.overlap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syms(names: &[&str]) -> Vec<Symbol> {
        names.iter().map(|n| Symbol::new(n).unwrap()).collect()
    }

    #[test]
    fn changes_name_what_came_and_went() {
        let change = Change::between(&syms(&["AUSDT", "BUSDT"]), &syms(&["CUSDT", "AUSDT"]));
        assert_eq!(change.added, syms(&["CUSDT"]));
        assert_eq!(change.removed, syms(&["BUSDT"]));
        assert!(Change::between(&syms(&["AUSDT"]), &syms(&["AUSDT"])).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_switch_waits_for_every_new_reader_then_the_overlap() {
        let config = BinanceConfig {
            max_connection_age: Duration::from_secs(100),
            rotation_overlap: Duration::from_secs(5),
            ..BinanceConfig::default()
        };
        let rest = Arc::new(RestClient::new("http://127.0.0.1:9", &config.backfill).unwrap());
        let t0 = Instant::now();
        let mut relist = Relisting::new(AllPerpetuals::default(), &config, t0);
        assert_eq!(relist.deadline(), Some(t0 + Duration::from_secs(100)));
        assert!(relist.poll(t0, &rest).is_none());
        assert!(!relist.is_listing(), "not due yet");

        let t1 = t0 + Duration::from_secs(100);
        assert!(relist.poll(t1, &rest).is_none());
        assert!(relist.is_listing());
        assert_eq!(relist.deadline(), None, "nothing due while listing");

        relist.begin(syms(&["AUSDT"]), BTreeSet::from([7, 8]), vec![1], t1);
        relist.connected(7, t1 + Duration::from_secs(1));
        assert_eq!(relist.deadline(), None, "8 is not up yet");
        let t2 = t1 + Duration::from_secs(2);
        relist.connected(8, t2);
        assert_eq!(relist.deadline(), Some(t2 + Duration::from_secs(5)));
        assert!(relist.poll(t2, &rest).is_none(), "the overlap runs");
        let done = relist.poll(t2 + Duration::from_secs(5), &rest).unwrap();
        assert_eq!((done.symbols, done.retiring), (syms(&["AUSDT"]), vec![1]));
        assert_eq!(
            relist.deadline(),
            Some(t2 + Duration::from_secs(105)),
            "the next listing, a day after the switch"
        );
    }
}
