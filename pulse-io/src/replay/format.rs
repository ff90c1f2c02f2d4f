//! Which reader a file calls for, from its name.

use std::path::Path;

use pulse_core::Symbol;

/// The kind of replay file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayFormat {
    /// One WebSocket frame per line.
    Jsonl {
        /// The name ends in `.gz` (the first bytes decide, see `lines`).
        gzip: bool,
    },
    /// A Binance aggTrades or trades dump CSV.
    Csv {
        /// The name ends in `.gz` (the first bytes decide, see `lines`).
        gzip: bool,
    },
    /// A zip archive of Binance aggTrades or trades dump CSVs.
    Zip,
}

impl ReplayFormat {
    /// Picks the format from the file name's extension, case-insensitively:
    /// `.jsonl`, `.ndjson`, `.json`, `.csv`, each optionally followed by
    /// `.gz`, or `.zip`.
    pub fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let (stem, gzip) = match name.strip_suffix(".gz") {
            Some(stem) => (stem.to_string(), true),
            None => (name, false),
        };
        let ext = stem.rsplit_once('.')?.1;
        match ext {
            "jsonl" | "ndjson" | "json" => Some(ReplayFormat::Jsonl { gzip }),
            "csv" => Some(ReplayFormat::Csv { gzip }),
            "zip" if !gzip => Some(ReplayFormat::Zip),
            _ => None,
        }
    }
}

/// The symbol a Binance dump file is named after:
/// `BTCUSDT-aggTrades-2024-08-08.zip` or `BTCUSDT-trades-2024-08.zip` →
/// `BTCUSDT`.
pub fn symbol_from_file_name(path: &Path) -> Option<Symbol> {
    let name = path.file_name()?.to_str()?;
    let (symbol, rest) = name.split_once('-')?;
    (rest.starts_with("aggTrades-") || rest.starts_with("trades-"))
        .then(|| Symbol::new(symbol).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_names() {
        let cases = [
            (
                "binance-usdm_btcusdt@trade_2023-04-04T235820Z_2023-04-05T000654Z.jsonl.gz",
                Some(ReplayFormat::Jsonl { gzip: true }),
            ),
            ("capture.jsonl", Some(ReplayFormat::Jsonl { gzip: false })),
            ("capture.NDJSON", Some(ReplayFormat::Jsonl { gzip: false })),
            (
                "BTCUSDT-aggTrades-2024-08-08.csv",
                Some(ReplayFormat::Csv { gzip: false }),
            ),
            (
                "BTCUSDT-aggTrades-2024-08-08.csv.gz",
                Some(ReplayFormat::Csv { gzip: true }),
            ),
            ("BTCUSDT-aggTrades-2024-08-08.zip", Some(ReplayFormat::Zip)),
            ("x.zip.gz", None),
            ("notes.txt", None),
            ("noext", None),
        ];
        for (name, want) in cases {
            assert_eq!(ReplayFormat::from_path(Path::new(name)), want, "{name}");
        }
    }

    #[test]
    fn symbols_from_dump_names() {
        let cases = [
            ("BTCUSDT-aggTrades-2024-08-08.csv", Some("BTCUSDT")),
            ("/tmp/x/ETHUSDT-aggTrades-2024-08.zip", Some("ETHUSDT")),
            (
                "1000SHIBUSDT-aggTrades-2024-08-08.csv.gz",
                Some("1000SHIBUSDT"),
            ),
            ("BTCUSDT-trades-2024-08-08.csv", Some("BTCUSDT")),
            ("BTCUSDT-bookTicker-2024-08-08.csv", None),
            ("capture.csv", None),
            ("bad$sym-aggTrades-2024.csv", None),
        ];
        for (name, want) in cases {
            let got = symbol_from_file_name(Path::new(name));
            assert_eq!(got.as_ref().map(Symbol::as_str), want, "{name}");
        }
    }
}
