//! `pulse run`.

use clap::Args;
use pulse_io::CancellationToken;

use crate::binance_args::BinanceArgs;

/// Flags of `pulse run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    binance: BinanceArgs,
}

pub async fn run(args: RunArgs, _shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::bail!(
        "pulse run is not implemented yet ({:?})",
        args.binance.symbols
    )
}
