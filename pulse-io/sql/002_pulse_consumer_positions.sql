-- pulse_consumer_positions: where each `pulse consume` partition resumes.
--
-- rskafka has no consumer groups, so positions live next to the windows they
-- describe and are written after them. Per (metrics table, topic, partition):
--   resume_offset  re-read from here after a restart: the oldest record still
--                  in an open window, or next_offset when none is open;
--   next_offset    every record before it has been processed;
--   checkpoints    JSON {"SYMBOL": {"watermark_ms": .., "max_time_ms": ..}}:
--                  each symbol's clock, so windows already stored are skipped;
--   last_record_hash  xxh3-64 of the key and value of record next_offset - 1,
--                  so a restart notices a recreated topic (0: not known).
-- The row with the largest `version` is the current one.
CREATE TABLE IF NOT EXISTS pulse_consumer_positions
(
    metrics_table   String,
    topic           String,
    kafka_partition Int32,
    resume_offset   Int64,
    next_offset     Int64,
    checkpoints     String,
    version         UInt64,
    last_record_hash UInt64 DEFAULT 0,
    updated_at      DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (metrics_table, topic, kafka_partition)
