//! Crash/restart simulation of the consume state machine, without I/O:
//! commits, crashes (including between the window insert and the position
//! save) and graceful shutdowns at random points must leave exactly the
//! rows a run without them leaves.

use std::collections::BTreeMap;

use pulse_core::{AggregatorConfig, Decimal, Event, Side, Symbol, Trade, TradeKind, Window};

use super::partition::{PartitionState, RecordOutcome};
use crate::clickhouse::{PartitionPosition, WindowRow};
use crate::kafka::{PROGRESS_KEY, ProgressMarker, UtcOffset, encode_progress, encode_trade};

/// One record of the simulated partition.
struct Rec {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
}

impl Rec {
    /// Hands the record at `offset` to `state`.
    fn feed(
        &self,
        state: &mut PartitionState,
        offset: i64,
        windows: &mut Vec<Window>,
    ) -> RecordOutcome {
        state.handle(offset, self.key.as_deref(), Some(&self.value), windows)
    }
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn config() -> AggregatorConfig {
    crate::consumer::ConsumerConfig::default().aggregator
}

/// A topic partition's records: trades of three symbols with jittered
/// times, duplicates, backfilled id ranges arriving late, trades beyond the
/// lateness, trades dated a day or a minute and more ahead (wrong
/// timestamps), garbage, and
/// progress markers that vouch a little too early now and then (so later
/// trades correct closed windows).
fn records(seed: u64, n: usize) -> Vec<Rec> {
    let mut rng = Rng(seed | 1);
    let symbols = ["BTCUSDT", "ETHUSDT", "NEOUSDT"].map(|s| Symbol::new(s).unwrap());
    let mut next_id = [1_000u64, 5_000, 9_000];
    let mut sent: Vec<Trade> = Vec::new();
    let mut held_back: Vec<(usize, Trade)> = Vec::new();
    let mut out: Vec<Rec> = Vec::new();
    let mut newest: BTreeMap<Symbol, i64> = BTreeMap::new();
    let base = 1_700_000_000_000i64;
    for i in 0..n {
        if let Some(pos) = held_back.iter().position(|(due, _)| *due <= i) {
            let (_, trade) = held_back.remove(pos);
            out.push(message(&trade));
            sent.push(trade);
            continue;
        }
        if rng.chance(1) {
            out.push(Rec {
                key: None,
                value: b"{\"symbol\":\"BTCUSDT\",\"price\":".to_vec(),
            });
            continue;
        }
        if rng.chance(2) && !newest.is_empty() {
            let marker = ProgressMarker {
                watermarks: newest
                    .iter()
                    .map(|(s, t)| (*s, t - rng.below(800) as i64))
                    .collect(),
                after: None,
            };
            let mut value = Vec::new();
            encode_progress(&marker, &mut value);
            out.push(Rec {
                key: Some(PROGRESS_KEY.as_bytes().to_vec()),
                value,
            });
            continue;
        }
        if rng.chance(3) && !sent.is_empty() {
            let back = rng.below(sent.len().min(200) as u64) as usize;
            out.push(message(&sent[sent.len() - 1 - back]));
            continue;
        }
        let s = rng.below(3) as usize;
        let mut time = base + i as i64 * 37 - rng.below(1_500) as i64;
        if rng.chance(1) {
            time -= 6_000; // beyond the lateness: late
        }
        if rng.chance(1) {
            // A gap: these ids show up later, as a backfill would send them.
            for k in 0..5 {
                let trade = trade(symbols[s], next_id[s] + k, time, &mut rng);
                held_back.push((i + 5 + rng.below(40) as usize, trade));
            }
            next_id[s] += 5;
        }
        if rng.chance(1) {
            // A wrong timestamp, which the producer does not vouch for: a
            // day ahead, or just past the jump that makes a trade held, so
            // that a restored clock may be nearer it than the trades were
            // when it came.
            let ahead = match rng.chance(50) {
                true => 86_400_000,
                false => 60_000 + rng.below(40_000) as i64,
            };
            let wrong = trade(symbols[s], next_id[s], time + ahead, &mut rng);
            next_id[s] += 1;
            out.push(message(&wrong));
            sent.push(wrong);
        }
        let trade = trade(symbols[s], next_id[s], time, &mut rng);
        next_id[s] += 1;
        let t = newest.entry(trade.symbol).or_insert(time);
        *t = (*t).max(time);
        out.push(message(&trade));
        sent.push(trade);
    }
    out
}

fn trade(symbol: Symbol, id: u64, time: i64, rng: &mut Rng) -> Trade {
    Trade {
        symbol,
        id,
        kind: TradeKind::AggTrade,
        price: Decimal::from_raw(6_000_000_000_000 + rng.below(10_000_000_000) as i64),
        quantity: Decimal::from_raw(1 + rng.below(100_000_000) as i64),
        side: if rng.chance(50) {
            Side::Buy
        } else {
            Side::Sell
        },
        trade_time_ms: time,
        event_time_ms: time + 5,
        first_trade_id: id * 3,
        last_trade_id: id * 3 + 2,
    }
}

fn message(trade: &Trade) -> Rec {
    let mut value = Vec::new();
    encode_trade(trade, UtcOffset::IST, &mut value);
    Rec {
        key: Some(trade.symbol.as_str().as_bytes().to_vec()),
        value,
    }
}

/// What ClickHouse shows with `FINAL`: per key the largest version, the
/// later insert winning ties.
fn final_rows(inserted: &[Window]) -> BTreeMap<(String, u32), WindowRow> {
    let mut table: BTreeMap<(String, u32), WindowRow> = BTreeMap::new();
    for w in inserted {
        let row = WindowRow::try_from(w).unwrap();
        let key = (row.symbol.clone(), row.window_start);
        match table.get(&key) {
            Some(old) if old.version > row.version => {}
            _ => {
                table.insert(key, row);
            }
        }
    }
    table
}

fn clean_run(records: &[Rec]) -> BTreeMap<(String, u32), WindowRow> {
    let mut state = PartitionState::restore(0, config(), None).unwrap();
    let mut windows = Vec::new();
    for (offset, rec) in records.iter().enumerate() {
        let _ = rec.feed(&mut state, offset as i64, &mut windows);
    }
    state.flush(&mut windows);
    final_rows(&windows)
}

/// Runs with commits every few records and, at random, crashes (state and
/// unstored windows lost), crashes between the two inserts, and graceful
/// stops (flush, then store the pre-flush position).
fn crashing_run(records: &[Rec], seed: u64) -> (BTreeMap<(String, u32), WindowRow>, u32) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut inserted: Vec<Window> = Vec::new();
    let mut stored: Option<PartitionPosition> = None;
    let mut restarts = 0;
    // Crashes only beyond what any run reached: a restart replays up to the
    // retention (60 s of trades) again, and crashing inside that replay
    // over and over would never finish.
    let mut frontier = 0;
    'run: loop {
        let mut state = PartitionState::restore(0, config(), stored.as_ref()).unwrap();
        let mut pending = Vec::new();
        let start = PartitionState::start_offset(stored.as_ref()).unwrap_or(0) as usize;
        for (offset, rec) in records.iter().enumerate().skip(start) {
            let _ = rec.feed(&mut state, offset as i64, &mut pending);
            let fresh = offset >= frontier;
            frontier = frontier.max(offset + 1);
            if rng.chance(10) {
                let position = state.position();
                inserted.append(&mut pending);
                if fresh && rng.chance(5) {
                    restarts += 1;
                    continue 'run; // crashed after the windows, before the position
                }
                if let Some(p) = position {
                    state.saved(&p);
                    stored = Some(p);
                }
            }
            if fresh && rng.chance(1) {
                restarts += 1;
                if rng.chance(30) {
                    let position = state.position();
                    state.flush(&mut pending);
                    inserted.append(&mut pending);
                    if let Some(p) = position {
                        stored = Some(p);
                    }
                }
                continue 'run;
            }
        }
        state.flush(&mut pending);
        inserted.append(&mut pending);
        break;
    }
    (final_rows(&inserted), restarts)
}

#[test]
fn restarts_anywhere_give_the_clean_run_rows() {
    for seed in 1..=12u64 {
        let records = records(seed, 3_000);
        let clean = clean_run(&records);
        assert!(
            clean.len() > 100,
            "seed {seed}: only {} windows",
            clean.len()
        );
        let (crashed, restarts) = crashing_run(&records, seed);
        assert!(restarts >= 10, "seed {seed}: only {restarts} restarts");
        let extra: Vec<_> = crashed.keys().filter(|k| !clean.contains_key(*k)).collect();
        assert_eq!(
            crashed.len(),
            clean.len(),
            "seed {seed}: window count {extra:?}"
        );
        for (key, row) in &clean {
            assert_eq!(crashed.get(key), Some(row), "seed {seed}: window {key:?}");
        }
    }
}

#[test]
fn duplicates_are_dropped_and_late_trades_correct_their_windows() {
    let records = records(7, 3_000);
    let mut state = PartitionState::restore(0, config(), None).unwrap();
    let mut windows = Vec::new();
    let (mut dup, mut late, mut bad, mut markers, mut outliers) = (0, 0, 0, 0, 0);
    for (offset, rec) in records.iter().enumerate() {
        match rec.feed(&mut state, offset as i64, &mut windows) {
            RecordOutcome::Duplicate(_) => dup += 1,
            RecordOutcome::Late(_) => late += 1,
            RecordOutcome::Rejected(_) => bad += 1,
            RecordOutcome::Marker => markers += 1,
            _ => {}
        }
        let notices = state.take_notices();
        outliers += notices
            .filter(|e| matches!(e, Event::TimeOutlier(_)))
            .count() as u64;
    }
    assert!(
        dup > 20 && late > 10 && bad > 10 && markers > 20 && outliers > 10,
        "dup {dup} late {late} bad {bad} markers {markers} outliers {outliers}"
    );
    // Every trade counted once, late ones too (in their corrected rows):
    // ids within a window are unique, and no late trade is older than the
    // retention here. Trades dated a day ahead are in none.
    state.flush(&mut windows);
    let counted: i64 = final_rows(&windows).values().map(|r| r.trade_count).sum();
    assert_eq!(
        counted as u64,
        records.len() as u64 - dup - bad - markers - outliers
    );
    assert!(
        windows.iter().any(|w| w.version > 1),
        "no window was corrected"
    );
}

#[test]
fn position_waits_until_the_replay_is_complete() {
    let records = records(3, 400);
    let mut state = PartitionState::restore(0, config(), None).unwrap();
    let mut windows = Vec::new();
    for (offset, rec) in records.iter().enumerate().take(300) {
        let _ = rec.feed(&mut state, offset as i64, &mut windows);
    }
    let stored = state.position().unwrap();
    assert_eq!(stored.next_offset, 300);
    assert!(stored.resume_offset < 300, "windows are open at 300");
    let mut restored = PartitionState::restore(0, config(), Some(&stored)).unwrap();
    assert_eq!(
        PartitionState::start_offset(Some(&stored)),
        Some(stored.resume_offset)
    );
    let mut replayed = Vec::new();
    for offset in stored.resume_offset..299 {
        let _ = records[offset as usize].feed(&mut restored, offset, &mut replayed);
        assert_eq!(restored.position(), None, "mid-replay at {offset}");
    }
    let _ = records[299].feed(&mut restored, 299, &mut replayed);
    assert!(replayed.is_empty(), "no window closes during the replay");
    let again = restored.position().unwrap();
    assert_eq!(
        (again.resume_offset, again.next_offset, &again.checkpoints),
        (
            stored.resume_offset,
            stored.next_offset,
            &stored.checkpoints
        )
    );
    assert_eq!(again.version, stored.version + 1);
}

#[test]
fn a_quiet_symbol_stops_pinning_the_resume_offset_once_markers_pass_it() {
    let mut rng = Rng(5);
    let (quiet, busy) = (
        Symbol::new("NEOUSDT").unwrap(),
        Symbol::new("BTCUSDT").unwrap(),
    );
    let base = 1_700_000_000_000i64;
    let mut records = vec![message(&trade(quiet, 1, base + 100, &mut rng))];
    for i in 0..200u64 {
        let time = base + 1_000 * i as i64;
        records.push(message(&trade(busy, 10 + i, time, &mut rng)));
        // As `pulse produce --replay` vouches: the quiet symbol follows the
        // recording's front less the lateness.
        let marker = ProgressMarker {
            watermarks: [(busy, time), (quiet, time - 2_000)].into_iter().collect(),
            after: None,
        };
        let mut value = Vec::new();
        encode_progress(&marker, &mut value);
        records.push(Rec {
            key: Some(PROGRESS_KEY.as_bytes().to_vec()),
            value,
        });
    }
    let mut state = PartitionState::restore(0, config(), None).unwrap();
    let mut windows = Vec::new();
    for (offset, rec) in records.iter().enumerate() {
        let _ = rec.feed(&mut state, offset as i64, &mut windows);
        if offset == 20 {
            // Its window closed at once, but stays correctable for a while.
            assert!(windows.iter().any(|w| w.symbol == quiet));
            assert_eq!(state.position().unwrap().resume_offset, 0);
        }
    }
    // 200 s later only the last minute of trades is held.
    let position = state.position().unwrap();
    let retained_s = config().late_retention_ms / 1_000;
    assert!(
        position.resume_offset >= 2 * (200 - retained_s - 3),
        "resume offset {} of {}",
        position.resume_offset,
        records.len()
    );
}

#[test]
fn a_capture_produced_twice_gives_duplicates_not_trades_too_late() {
    let mut rng = Rng(3);
    let btc = Symbol::new("BTCUSDT").unwrap();
    let base = 1_700_000_000_000i64;
    // 200 s of trades, then the same trades again: the copies of the first
    // windows are far beyond the 60 s retention.
    let trades: Vec<Trade> = (0..2_000)
        .map(|i| trade(btc, 100 + i, base + i as i64 * 100, &mut rng))
        .collect();
    let mut records: Vec<Rec> = trades.iter().chain(&trades).map(message).collect();
    // A trade no one saw, as old as the first copies: really too late.
    let unseen = trade(btc, 99, base, &mut rng);
    // Another id space: the trade id 150 is not the aggTrade id 150.
    let other_kind = Trade {
        kind: TradeKind::Trade,
        ..trades[50]
    };
    records.extend([message(&unseen), message(&other_kind)]);
    let mut state = PartitionState::restore(0, config(), None).unwrap();
    let mut windows = Vec::new();
    let (mut dup, mut late, mut too_late) = (0, 0, 0);
    for (offset, rec) in records.iter().enumerate() {
        match rec.feed(&mut state, offset as i64, &mut windows) {
            RecordOutcome::Duplicate(_) => dup += 1,
            RecordOutcome::Late(_) => late += 1,
            _ => {}
        }
        too_late += state
            .take_notices()
            .filter(|e| matches!(e, Event::Late(l) if !l.corrected))
            .count();
    }
    assert_eq!((dup, late, too_late), (2_000, 2, 2));
    state.flush(&mut windows);
    let counted: i64 = final_rows(&windows).values().map(|r| r.trade_count).sum();
    assert_eq!(counted, 2_000);
}
