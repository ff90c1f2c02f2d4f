//! Where trades come from: live Binance, or a recording with `--replay`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use pulse_io::replay::symbol_from_file_name;
use pulse_io::{
    BinanceConfig, BinanceSource, Metrics, PipelineSummary, ReplayOptions, TradeSource, open_replay,
};

use crate::binance_args::BinanceArgs;

/// Replay a recording instead of connecting to Binance.
#[derive(Debug, Clone, Default, Args)]
pub struct ReplayArgs {
    /// Replay this file instead of connecting to Binance: WebSocket frames
    /// (.jsonl, .jsonl.gz) or a Binance aggTrades or trades dump (.csv,
    /// .csv.gz, .zip).
    /// A dump whose name (or, in a zip, whose CSVs' names) does not say its
    /// symbol, like BTCUSDT-aggTrades-2024-08-08.csv does, takes the first
    /// of --symbols, which must then be given. `-` reads standard input
    /// (e.g. `zcat capture.jsonl.gz | pulse run --replay -`); a file whose
    /// name says nothing is read by its first bytes.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,

    /// Pace the replay at FACTOR × real time, by trade time (10 = ten times
    /// faster); a pause in the recording longer than 10 s at that pace is
    /// cut to 10 s. Default: as fast as possible.
    #[arg(long, value_name = "FACTOR", requires = "replay", value_parser = positive_factor, allow_negative_numbers = true)]
    pub speed: Option<f64>,
}

fn positive_factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("expected a positive number, got {s:?}")),
    }
}

/// Opens the source the flags ask for: the replay file when `--replay` is
/// given, else live Binance at `--binance-ws-url` / `--binance-rest-url`.
///
/// A live source that cannot connect fails with
/// [`pulse_io::SourceError::Unreachable`] in the error chain.
pub async fn open_source(
    binance: &BinanceArgs,
    replay: &ReplayArgs,
    metrics: Metrics,
) -> anyhow::Result<Box<dyn TradeSource>> {
    if let Some(path) = &replay.replay {
        let options = ReplayOptions {
            speed: replay.speed,
            // Only a symbol the user named: the default (BTCUSDT) would
            // label another symbol's dump wrong without a word.
            symbol: (symbol_from_file_name(path).is_none() && !binance.symbols.is_empty())
                .then(|| binance.listed().first().copied())
                .flatten(),
            symbols: binance.replay_filter()?,
            ..ReplayOptions::default()
        };
        // Opening reads the first bytes, which from a pipe may wait for its
        // writer: on a thread of its own, so Ctrl-C is not held up (and a
        // thread still waiting does not hold up the exit).
        let (opened, open) = tokio::sync::oneshot::channel();
        let file = path.clone();
        std::thread::spawn(move || opened.send(open_replay(file, options, metrics)));
        return open
            .await
            .context("the replay opener stopped")?
            .with_context(|| format!("opening the replay file {}", path.display()));
    }
    connect_live(binance.config()?, metrics).await
}

/// Fails a replay that ended without a single trade but with malformed
/// lines: the wrong file, not an empty capture, and scripts should see it.
pub fn check_replay_found_trades(
    replay: &ReplayArgs,
    summary: &PipelineSummary,
    metrics: &Metrics,
) -> anyhow::Result<()> {
    let rejected = metrics.rejected_total();
    match &replay.replay {
        Some(path) if summary.source_ended && summary.trades == 0 && rejected > 0 => {
            anyhow::bail!(
                "no line of {} is a trade: {rejected} malformed (the first are logged above)",
                path.display()
            )
        }
        _ => Ok(()),
    }
}

/// Connects to live Binance with `config`.
pub async fn connect_live(
    config: BinanceConfig,
    metrics: Metrics,
) -> anyhow::Result<Box<dyn TradeSource>> {
    let url = config.ws_base.clone();
    let source = BinanceSource::connect(config, metrics)
        .await
        .with_context(|| format!("connecting to Binance at {url}"))?;
    Ok(Box::new(source))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;
    use pulse_testkit::fake_binance::{
        FakeBinance, assert_same_trades, collect_trades, load_trades,
    };

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        binance: BinanceArgs,
        #[command(flatten)]
        replay: ReplayArgs,
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("pulse").chain(args.iter().copied()))
    }

    #[test]
    fn replay_flags() {
        let cli = parse(&["--replay", "x.jsonl.gz", "--speed", "10"]).unwrap();
        assert_eq!(cli.replay.replay, Some(PathBuf::from("x.jsonl.gz")));
        assert_eq!(cli.replay.speed, Some(10.0));
        assert_eq!(parse(&[]).unwrap().replay.replay, None);
        for bad in [
            &["--replay", "x.jsonl", "--speed", "0"][..],
            &["--replay", "x.jsonl", "--speed", "fast"],
            &["--speed", "2"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        // A negative factor is a bad value, not an unknown flag.
        let err = parse(&["--replay", "x.jsonl", "--speed", "-1"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{err}");
        assert!(
            err.to_string().contains("expected a positive number"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn replays_a_dump_named_only_by_the_symbols_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.csv");
        std::fs::write(&path, "7,61180.10,0.5,10,11,1723161256000,false\n").unwrap();
        let cli = parse(&["--symbols", "ETHUSDT", "--replay", path.to_str().unwrap()]).unwrap();
        let mut source = open_source(&cli.binance, &cli.replay, Metrics::new())
            .await
            .unwrap();
        assert!(!source.is_live());
        let mut trades = Vec::new();
        while source.next_trades(&mut trades).await.unwrap() {}
        assert_eq!(trades.len(), 1);
        assert_eq!((trades[0].symbol.as_str(), trades[0].id), ("ETHUSDT", 7));
    }

    #[tokio::test]
    async fn a_dump_named_by_nothing_is_refused_rather_than_taken_for_btcusdt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.csv");
        std::fs::write(&path, "7,61180.10,0.5,10,11,1723161256000,false\n").unwrap();
        let cli = parse(&["--replay", path.to_str().unwrap()]).unwrap();
        let err = open_source(&cli.binance, &cli.replay, Metrics::new())
            .await
            .err()
            .unwrap();
        assert!(
            format!("{err:#}").contains("does not name its symbol"),
            "{err:#}"
        );
    }

    #[tokio::test]
    async fn missing_replay_file_is_a_clear_error() {
        let cli = parse(&["--replay", "/nonexistent/capture.jsonl"]).unwrap();
        let err = open_source(&cli.binance, &cli.replay, Metrics::new())
            .await
            .err()
            .unwrap();
        assert!(
            format!("{err:#}").contains("opening the replay file /nonexistent/capture.jsonl"),
            "{err:#}"
        );
    }

    /// `open_source` with `--symbols symbols` (default: the tape's) against
    /// a fake Binance playing a quiet altcoins capture: every trade arrives.
    async fn live_source_gets_every_trade(symbols: Option<&str>) {
        let Some(dir) = pulse_testkit::data_dir() else {
            return;
        };
        let trades =
            load_trades(dir.join("binance-usdm_altcoins@aggTrade_2021-07-22_cryptofeed.jsonl.gz"))
                .unwrap();
        let fake = FakeBinance::start(trades.clone()).await;
        let listed: Vec<String> = fake.symbols().iter().map(|s| s.to_string()).collect();
        let listed = listed.join(",");
        let cli = parse(&[
            "--symbols",
            symbols.unwrap_or(&listed),
            "--binance-ws-url",
            &fake.ws_base(),
            "--binance-rest-url",
            &fake.rest_base(),
        ])
        .unwrap();
        let mut source = open_source(&cli.binance, &cli.replay, Metrics::new())
            .await
            .unwrap();
        assert!(source.is_live());
        let got = collect_trades(source.as_mut(), trades.len(), Duration::from_secs(30)).await;
        assert_same_trades(fake.trades(), &got);
    }

    #[tokio::test]
    async fn live_source_follows_the_url_flags() {
        live_source_gets_every_trade(None).await;
    }

    #[tokio::test]
    async fn symbols_all_follows_what_exchange_info_lists() {
        live_source_gets_every_trade(Some("ALL")).await;
    }
}
