-- pulse_metrics: one row per symbol and 1-second window, written by `pulse consume`.
--
-- The first nine value columns keep the original design's names and types.
-- Rows are exact functions of the trades, so a window written twice (after a
-- crash and restart) is identical; ReplacingMergeTree keeps the row with the
-- largest `version`, and `SELECT ... FINAL` shows one row per window.
-- `version` = trade_count: every later row of a window holds more of its
-- trades, so a fuller row always replaces a partial one flushed at shutdown.
--
-- Runs unchanged on ClickHouse 18.16 and current releases (no DateTime64,
-- LowCardinality or other newer types). pulse creates it at start-up; this
-- file is the same DDL for docker compose (/docker-entrypoint-initdb.d).
CREATE TABLE IF NOT EXISTS pulse_metrics
(
    window_start     DateTime,
    window_end       DateTime,
    vwap             Float64,
    net_delta        Float64,
    buy_pressure_pct Float64,
    total_volume     Float64,
    trade_count      Int64,
    avg_price_1_sec  Float64,
    signal           String,
    symbol           String,
    open             Float64,
    high             Float64,
    low              Float64,
    close            Float64,
    buy_volume       Float64,
    sell_volume      Float64,
    first_trade_id   UInt64,
    last_trade_id    UInt64,
    version          UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (symbol, window_start)
