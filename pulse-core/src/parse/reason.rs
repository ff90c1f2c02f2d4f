//! Short labels for [`ParseError`]s, used as the `reason` of the
//! `frames_rejected` metric so dashboards can group malformed input.

use super::ParseError;

impl ParseError {
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
