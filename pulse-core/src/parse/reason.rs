//! Short labels for [`ParseError`]s, used as the `reason` of the
//! `frames_rejected` metric so dashboards can group malformed input.

use super::ParseError;

impl ParseError {
    /// Every label [`reason`](Self::reason) gives, so a metric can show
    /// each at zero before the first malformed frame.
    pub const REASONS: &'static [&'static str] = &[
        "json",
        "missing_field",
        "unsupported_event",
        "unknown_frame",
        "binance_error",
        "decimal",
        "not_positive",
        "trade_id_range",
        "symbol",
        "csv_columns",
        "csv_value",
        "time_range",
    ];

    /// A short, stable, machine-friendly label, e.g. `json` or `missing_field`.
    ///
    /// ```
    /// use pulse_core::parse_frame;
    /// assert_eq!(parse_frame(b"not json").unwrap_err().reason(), "json");
    /// ```
    pub fn reason(&self) -> &'static str {
        #[allow(unreachable_patterns)]
        match self {
            ParseError::Json(_) => "json",
            ParseError::MissingField(_) => "missing_field",
            ParseError::UnsupportedEvent(_) => "unsupported_event",
            ParseError::UnknownFrame => "unknown_frame",
            ParseError::Binance { .. } => "binance_error",
            ParseError::Decimal { .. } => "decimal",
            ParseError::NotPositive(_) => "not_positive",
            ParseError::TradeIdRange { .. } => "trade_id_range",
            ParseError::Symbol(_) => "symbol",
            ParseError::ColumnCount(_) => "csv_columns",
            ParseError::CsvValue { .. } => "csv_value",
            ParseError::TimeRange { .. } => "time_range",
            // Variants added later still get counted.
            _ => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DecimalError, SymbolError};

    /// One of each variant: its label is listed, and every listed label is
    /// some variant's.
    #[test]
    fn reasons_lists_every_label() {
        let json = serde_json::from_str::<()>("x").unwrap_err();
        let errors = [
            ParseError::Json(json),
            ParseError::MissingField("p"),
            ParseError::UnsupportedEvent("depthUpdate".into()),
            ParseError::UnknownFrame,
            ParseError::Binance {
                code: -1121,
                msg: "Invalid symbol.".into(),
            },
            ParseError::Decimal {
                field: "p",
                source: DecimalError::Empty,
            },
            ParseError::NotPositive("q"),
            ParseError::TradeIdRange { first: 2, last: 1 },
            ParseError::Symbol(SymbolError::Length(0)),
            ParseError::ColumnCount(3),
            ParseError::CsvValue {
                column: "price",
                expected: "decimal",
                value: "x".into(),
            },
            ParseError::TimeRange {
                field: "T",
                value: -1,
            },
        ];
        let labels: Vec<&str> = errors.iter().map(ParseError::reason).collect();
        assert_eq!(labels, ParseError::REASONS);
    }
}
