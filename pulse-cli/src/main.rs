//! `pulse`: live Binance trades → Kafka → 1-second windows → ClickHouse, or
//! all of it in one process with a live dashboard.
//!
//! The binary only parses arguments, sets up logging and shutdown, and
//! assembles pulse-io parts; the work happens in the libraries.

mod binance_args;
mod clickhouse_args;
mod consume;
mod dashboard;
mod duration;
mod http;
mod produce;
mod report;
mod run;
mod run_summary;
mod source_args;

use std::io::IsTerminal;

use clap::{Parser, Subcommand};
use pulse_io::CancellationToken;
use tracing_subscriber::EnvFilter;

/// The log filter without `PULSE_LOG`. rskafka logs every connection
/// attempt; pulse logs its own retries and the final error once instead.
const DEFAULT_LOG: &str = "info,rskafka=error";

/// Live crypto market data: Binance USD-M trades into exact 1-second windows.
#[derive(Debug, Parser)]
#[command(
    name = "pulse",
    version,
    about,
    long_about = None,
    after_help = "Without a command, pulse runs `pulse run`: live BTCUSDT with a dashboard at http://127.0.0.1:8088."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish trades from Binance (or a replay file) to a Kafka topic.
    Produce(produce::ProduceArgs),
    /// Read trades from a Kafka topic, aggregate them and store windows in ClickHouse.
    Consume(consume::ConsumeArgs),
    /// Run the whole pipeline in one process, with a live dashboard.
    Run(run::RunArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // A bare `pulse` is `pulse run`: live BTCUSDT with the dashboard.
    let cli = if std::env::args_os().len() <= 1 {
        Cli::parse_from(["pulse", "run"])
    } else {
        Cli::parse()
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("PULSE_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        )
        // Colour for a person at a terminal, plain text for a file or pipe.
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(std::io::stderr)
        .init();

    let shutdown = CancellationToken::new();
    let in_flight = match cli.command {
        Command::Produce(_) => "the trades not yet published",
        Command::Consume(_) => "open windows and the rows not yet inserted",
        Command::Run(_) => "open windows and the rows not yet written",
    };
    tokio::spawn(cancel_on_signal(shutdown.clone(), in_flight));

    let result = match cli.command {
        Command::Produce(args) => produce::run(args, shutdown).await,
        Command::Consume(args) => consume::run(args, shutdown).await,
        Command::Run(args) => run::run(args, shutdown).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{}", report::describe(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM; a second signal exits at once.
/// `in_flight` says what the command still writes before it exits.
async fn cancel_on_signal(shutdown: CancellationToken, in_flight: &'static str) {
    wait_for_signal().await;
    tracing::info!("shutting down: writing {in_flight} (press Ctrl-C again to abort)");
    shutdown.cancel();
    wait_for_signal().await;
    tracing::warn!("second signal: exiting without flushing");
    std::process::exit(130);
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Words that mark an option's value as a secret.
    const SECRET_WORDS: [&str; 4] = ["password", "secret", "token", "key"];

    #[test]
    fn no_option_takes_a_secret_on_the_command_line() {
        let mut cli = Cli::command();
        cli.build();
        for command in cli.get_subcommands_mut() {
            let name = command.get_name().to_owned();
            for arg in command.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                let takes_value = arg.get_action().takes_values();
                let secret = SECRET_WORDS.iter().any(|w| long.contains(w));
                assert!(
                    !(secret && takes_value) || long.ends_with("-file"),
                    "pulse {name} --{long} takes a secret in argv, where ps shows it"
                );
            }
            let help = command.render_long_help().to_string();
            assert!(
                !help.contains("--clickhouse-password "),
                "pulse {name} --help: {help}"
            );
            if ["run", "consume"].contains(&name.as_str()) {
                assert!(help.contains("--clickhouse-password-file <FILE>"), "{help}");
                assert!(help.contains("PULSE_CLICKHOUSE_PASSWORD"), "{help}");
            }
        }
    }

    #[test]
    fn a_negative_utc_offset_is_a_value_not_a_flag() {
        for args in [
            ["pulse", "produce", "--timezone", "-04:00"],
            ["pulse", "produce", "--timezone", "+05:30"],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            let Command::Produce(produce) = cli.command else {
                panic!("{args:?}")
            };
            assert_eq!(produce.timezone.to_string(), args[3]);
        }
    }
}
