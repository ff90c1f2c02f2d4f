//! Replay sources: recorded trades fed through the same pipeline as live ones.
//!
//! - JSONL captures: one Binance WebSocket frame per line, raw or wrapped in
//!   the combined-stream envelope, plain or gzip (`.jsonl`, `.ndjson`,
//!   `.json`, each optionally `.gz`), like the files in `../shared/data`.
//! - Binance dump files from data.binance.vision: aggTrades or trades CSV
//!   (`.csv`, `.csv.gz`) or a `.zip` of them (read in name order). Dump rows
//!   do not name the symbol, so it comes from the file name
//!   (`BTCUSDT-aggTrades-2024-08-08.csv`), the zip's CSV names, or
//!   [`ReplayOptions::symbol`].
//!
//! A replay runs as fast as possible by default, or paced by trade time at
//! real time × [`ReplayOptions::speed`], and only some symbols' trades with
//! [`ReplayOptions::symbols`] (the others are counted and logged once).
//! Malformed lines are counted
//! (`frames_rejected`) and logged with their line number, never fatal;
//! subscription acks are skipped silently. Replays are not live
//! ([`TradeSource::is_live`](crate::TradeSource::is_live) is false): their
//! clock is the data.
//!
//! ## Layout
//! - `format`: which reader a file name calls for.
//! - `lines`: opening a file as text lines (plain, gzip or every CSV in a
//!   zip); what a text file holds is told from its first bytes.
//! - `gzip`: reading every member of a gzip file, as `gzip -d` does.
//! - `blocks`: cutting the text into blocks of whole lines.
//! - `reader`: the blocking thread that parses lines into trade batches.
//! - `pace`: when a trade is due at a given speed.
//! - `symbols`: [`SymbolFilter`], which symbols' trades are replayed.
//! - `source`: [`ReplaySource`], the [`TradeSource`](crate::TradeSource).

mod blocks;
mod format;
mod gzip;
mod lines;
mod pace;
mod reader;
mod source;
mod symbols;

pub use format::{ReplayFormat, symbol_from_file_name};
pub use source::{ReplayOptions, ReplaySource, open_replay};
pub use symbols::SymbolFilter;
