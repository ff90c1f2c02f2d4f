#!/usr/bin/env python3
"""Builds a many-symbol replay file from the recorded USD-M BTCUSDT captures.

    scripts/many-symbols.py OUT [--symbols 300] [--repeat 20] [--data DIR]

The three USD-M `@trade` captures (44,949 frames) are written `--repeat`
times, one after another, and frame i goes to symbol `S{i mod N}USDT`
(S000USDT, S001USDT, ...), round-robin. So each symbol gets its own
contiguous trade ids and never sees time go backwards, each copy is moved
later in time by whole seconds so the next one starts a second after the
previous ended (window contents stay those of the real trades), and prices,
quantities and sides are the recorded ones, byte for byte. The defaults give
the 898,980 frames over 300 symbols of issue 13's dashboard benchmark:

    scripts/many-symbols.py /tmp/many.jsonl
    /usr/bin/time -v target/release/pulse run --replay /tmp/many.jsonl -q --dashboard off

OUT ending in `.gz` is gzip-compressed. Frames keep Binance's key order and
compact form, so pulse's fast parser path reads them as it reads the real
thing.
"""

import argparse
import gzip
import json
import os
import sys

CAPTURES = [
    "binance-usdm_btcusdt@trade_2023-04-04T235820Z_2023-04-05T000654Z.jsonl.gz",
    "binance-usdm_btcusdt@trade_2024-07-18T235702Z_2024-07-19T000502Z.jsonl.gz",
    "binance-usdm_btcusdt@trade_2024-08-08T235416Z_2024-08-08T235959Z.jsonl.gz",
]


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--symbols", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--data",
        default=os.environ.get("PULSE_DATA_DIR", os.path.join(root, "..", "shared", "data")),
    )
    args = parser.parse_args()

    captures = []
    for name in CAPTURES:
        with gzip.open(os.path.join(args.data, name), "rt") as f:
            captures.append([json.loads(line) for line in f if line.strip()])

    symbols = [f"S{i:03d}USDT" for i in range(args.symbols)]
    next_id = [1] * args.symbols
    opener = gzip.open if args.out.endswith(".gz") else open
    frames = 0
    base_ms = None
    with opener(args.out, "wt") as out:
        for _ in range(args.repeat):
            for frames_of_capture in captures:
                first = frames_of_capture[0]["data"]["T"]
                if base_ms is None:
                    base_ms = first - first % 1000
                # Whole seconds, so every trade stays in its own window.
                shift = base_ms - (first - first % 1000)
                for frame in frames_of_capture:
                    k = frames % args.symbols
                    data = dict(frame["data"])
                    data["E"] += shift
                    data["T"] += shift
                    data["s"] = symbols[k]
                    data["t"] = next_id[k]
                    next_id[k] += 1
                    line = {"stream": symbols[k].lower() + "@trade", "data": data}
                    out.write(json.dumps(line, separators=(",", ":")) + "\n")
                    frames += 1
                last = frames_of_capture[-1]["data"]["T"] + shift
                base_ms = last - last % 1000 + 2000
    print(f"{frames} frames, {args.symbols} symbols -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
