#!/usr/bin/env bash
# Measures how fresh live windows are in ClickHouse, as the README reports:
# `pulse run --clickhouse` fed live by the local fake Binance, which replays
# a real capture in real time with its trade times moved to now; then the
# p50 and p99 of pulse_window_store_latency_seconds{sink="clickhouse"} (a
# window's end to its row in ClickHouse) and of the emit latency.
#
#   scripts/freshness.sh [SECONDS] [CAPTURE] [MODE]
#
# defaults: 120, the BTCUSDT capture, MODE `run`. MODE `consume` measures
# the storage path instead: `pulse produce` (live from the fake, with its
# progress markers) into the test broker, and `pulse consume` into
# ClickHouse; the latency is read from the consumer's /metrics, so it starts
# when the consumer read the trade at the window's end.
#
# Needs the test servers (scripts/services.sh installs and starts them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-120}
capture=${2:-../shared/data/binance-usdm_btcusdt@trade_2024-07-18T235702Z_2024-07-19T000502Z.jsonl.gz}
mode=${3:-run}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

eval "$(scripts/services.sh up)"
cargo build --release -q -p pulse-cli -p pulse-testkit --bin pulse --bin fake-binance

target/release/fake-binance "$capture" >"$work/fake.out" &
pids+=($!)
for _ in $(seq 100); do grep -q '^ws=' "$work/fake.out" && break; sleep 0.1; done
read -r ws rest < <(sed -n 's/^ws=\(.*\) rest=\(.*\)$/\1 \2/p' "$work/fake.out")

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ "$mode" = consume ]; then
  topic="freshness_$$"
  PULSE_LOG=warn target/release/pulse produce --symbols BTCUSDT \
    --binance-ws-url "$ws" --binance-rest-url "$rest" \
    --brokers "$PULSE_TEST_KAFKA_BROKERS" --topic "$topic" 2>"$work/produce.err" &
  pids+=($!)
  PULSE_LOG=warn target/release/pulse consume \
    --brokers "$PULSE_TEST_KAFKA_BROKERS" --topic "$topic" \
    --clickhouse "$PULSE_TEST_CLICKHOUSE_URL" --database "freshness_$$" \
    --metrics "127.0.0.1:$port" 2>"$work/consume.err" &
  pids+=($!)
  echo "measuring for $seconds s: pulse produce → broker → pulse consume (insert interval 500 ms) fed live from $(basename "$capture")" >&2
else
  PULSE_LOG=warn target/release/pulse run --symbols BTCUSDT -q \
    --binance-ws-url "$ws" --binance-rest-url "$rest" \
    --clickhouse "$PULSE_TEST_CLICKHOUSE_URL" --database "freshness_$$" \
    --dashboard "127.0.0.1:$port" 2>"$work/pulse.err" &
  pids+=($!)
  echo "measuring for $seconds s: pulse run --clickhouse (insert interval 200 ms) fed live from $(basename "$capture")" >&2
fi
sleep "$seconds"
curl -fsS "http://127.0.0.1:$port/metrics" >"$work/metrics.txt"

python3 - "$work/metrics.txt" <<'PY'
import re, sys

def buckets(text, metric, label=""):
    """(upper bound, cumulative count) of one histogram's series."""
    out = []
    for line in text.splitlines():
        if line.startswith(metric + "_bucket{") and label in line:
            le = re.search(r'le="([^"]+)"', line).group(1)
            out.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    return out

def quantile(series, q):
    """Linear within the bucket, as Prometheus' histogram_quantile."""
    want, lo, below = q * series[-1][1], 0.0, 0.0
    for le, count in series:
        if count >= want:
            if le == float("inf"):
                return lo
            return lo + (le - lo) * ((want - below) / (count - below) if count > below else 1.0)
        lo, below = le, count
    return lo

text = open(sys.argv[1]).read()
for name, metric, label in [
    ("window end -> row in ClickHouse", "pulse_window_store_latency_seconds", 'sink="clickhouse"'),
    ("window end -> emitted", "pulse_window_emit_latency_seconds", ""),
]:
    series = buckets(text, metric, label)
    if not series or series[-1][1] == 0:
        sys.exit(f"no {metric} samples: did pulse receive trades?")
    p50, p99 = (quantile(series, q) * 1000 for q in (0.5, 0.99))
    print(f"{name}: {int(series[-1][1])} windows, p50 {p50:.0f} ms, p99 {p99:.0f} ms")
PY
