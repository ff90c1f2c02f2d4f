//! `pulse produce`.

use clap::Args;
use pulse_io::CancellationToken;

use crate::binance_args::BinanceArgs;

/// Flags of `pulse produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    binance: BinanceArgs,
}

pub async fn run(args: ProduceArgs, _shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::bail!(
        "pulse produce is not implemented yet ({:?})",
        args.binance.symbols
    )
}
