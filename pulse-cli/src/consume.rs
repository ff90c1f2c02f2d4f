//! `pulse consume`.

use clap::Args;
use pulse_io::CancellationToken;

use crate::binance_args::BinanceArgs;

/// Flags of `pulse consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    binance: BinanceArgs,
}

pub async fn run(args: ConsumeArgs, _shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::bail!(
        "pulse consume is not implemented yet ({:?})",
        args.binance.symbols
    )
}
