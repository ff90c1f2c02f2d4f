#!/usr/bin/env python3
"""The replay benchmark against Spark: the same 1-second windows from the same file.

    scripts/spark-compare.py FILE [--pulse target/release/pulse] [--runs 3] [--infer-schema] [--as-written]

Runs `pulse run --replay FILE -q --dashboard off` and a PySpark 3.5 job on
`local[2]` that reads the same JSON lines and computes, per symbol and
1-second window, every column of pulse's windows (trade count, volume, buy and
sell volume, VWAP, net delta, buy pressure, average price, signal), in
window order. Spark's time is its in-job time only (from reading the
file to the collected result, after the session is up); pulse's is its whole
process, start-up included; the first Spark job, which also warms the JVM
up, is reported apart. Needs `pip install pyspark==3.5.*` and a Java
runtime. Spark keeps duplicates (it has no sequence ids), so it does more
window work than pulse on repeated captures; both read every line.

First the file is dropped from the page cache and read once, so both sides
read it cached as a file read from disk is: in large folios. A file just
written by small writes (a `zcat` loop) is cached in 4 KiB pages, which the
kernel copies at about half the speed; `--as-written` keeps that state.
"""
import argparse
import os
import statistics
import subprocess
import time


def cache_as_read_from_disk(path):
    """Drops the file from the page cache and reads it once, as a read from disk does."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # only clean pages can be dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        while os.read(fd, 1 << 20):
            pass
    finally:
        os.close(fd)


def pulse_seconds(pulse, path):
    started = time.monotonic()
    subprocess.run([pulse, "run", "--replay", path, "-q", "--dashboard", "off"],
                   check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


SCHEMA = ("stream STRING, data STRUCT<e: STRING, E: LONG, T: LONG, s: STRING, t: LONG, a: LONG, "
          "p: STRING, q: STRING, m: BOOLEAN>")


def spark_seconds(spark, path, infer):
    """One job: read the file, compute every column of pulse's windows, collect them in order."""
    from pyspark.sql import functions as F

    started = time.monotonic()
    # Without a schema Spark first reads the whole file to infer one, as a
    # notebook's plain `spark.read.json(path)` does.
    reader = spark.read if infer else spark.read.schema(SCHEMA)
    t = reader.json(path).select("data.*")
    price = F.col("p").cast("decimal(18,8)")
    qty = F.col("q").cast("decimal(18,8)")
    sums = (
        t.withColumn("window_start", (F.col("T") / 1000).cast("long"))
        .groupBy("s", "window_start")
        .agg(
            F.count("*").alias("trade_count"),
            F.sum(qty).alias("volume"),
            F.sum(F.when(~F.col("m"), qty).otherwise(0)).alias("buy_volume"),
            F.sum(F.when(F.col("m"), qty).otherwise(0)).alias("sell_volume"),
            F.sum(price * qty).alias("notional"),
            F.avg(price).alias("avg_price"),
        )
    )
    delta = F.col("buy_volume") - F.col("sell_volume")
    vwap = F.col("notional") / F.col("volume")
    windows = (
        sums.withColumn("vwap", vwap)
        .withColumn("net_delta", delta)
        .withColumn("buy_pressure_pct", F.col("buy_volume") / F.col("volume") * 100)
        .withColumn(
            "signal",
            F.when((F.col("avg_price") > F.col("vwap")) & (delta > 0), "STRONG BUY")
            .when((F.col("avg_price") < F.col("vwap")) & (delta < 0), "STRONG SELL")
            .when((F.col("avg_price") < F.col("vwap")) & (delta > 0), "ACCUMULATING")
            .when((F.col("avg_price") > F.col("vwap")) & (delta < 0), "DISTRIBUTING")
            .otherwise("NEUTRAL"),
        )
        .orderBy("window_start", "s")
    )
    rows = windows.collect()
    return time.monotonic() - started, len(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file")
    parser.add_argument("--pulse", default="target/release/pulse")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--infer-schema", action="store_true",
                        help="let Spark infer the schema, as a notebook's spark.read.json(path) does")
    parser.add_argument("--as-written", action="store_true",
                        help="leave the file cached as it is, not as a file read from disk")
    args = parser.parse_args()
    if not args.as_written:
        cache_as_read_from_disk(args.file)

    # pulse first, so each side runs alone: a live JVM keeps compiling and
    # collecting garbage after its jobs and would slow pulse down.
    pulses = [pulse_seconds(args.pulse, args.file) for _ in range(args.runs)]

    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("pulse-compare")
             .config("spark.ui.enabled", "false").config("spark.sql.caseSensitive", "true").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    cold, _ = spark_seconds(spark, args.file, args.infer_schema)  # the first job also warms the JVM up
    sparks = []
    for _ in range(args.runs):
        seconds, windows = spark_seconds(spark, args.file, args.infer_schema)
        sparks.append(seconds)
    spark.stop()
    s, p = statistics.median(sparks), statistics.median(pulses)
    schema = "inferred" if args.infer_schema else "given"
    print(f"spark local[2] in-job, schema {schema}: first job {cold:.2f} s, then median {s:.2f} s over {args.runs} runs ({windows} windows)")
    print(f"pulse run --replay:    median {p:.3f} s (whole process)")
    print(f"pulse is {s / p:.0f}x faster than warm Spark, {cold / p:.0f}x than its first job")


if __name__ == "__main__":
    main()
