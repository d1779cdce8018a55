#!/usr/bin/env python3
"""Ours against the anchor: dcnv4-bench's results.csv and fii_anchor.py's CSV
joined on (op, set, shape, dtype), one line per row with both times and
ours/theirs (below 1: we are faster), and the issue 31 targets at the end
(FlashInternImage-T fp32: batch-64 throughput >= 1.0x the anchor's, batch-1
latency <= 0.5x the anchor's).

  python3 bench/anchor/join.py RESULTS.csv ANCHOR.csv [--ops fii] [--csv OUT]
"""

import argparse
import csv
import sys

KEY = ("op", "set", "shape", "dtype")


def number(text):
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if v > 0 else None


def read(path, prefix):
    rows = {}
    try:
        f = open(path, newline="")
    except OSError as e:
        sys.exit(f"join: {e}")
    with f:
        reader = csv.DictReader(f)
        missing = [k for k in KEY + ("median_ms",)
                   if k not in (reader.fieldnames or [])]
        if missing:
            sys.exit(f"join: {path} lacks column(s) {', '.join(missing)}")
        for r in reader:
            if r["op"].startswith(prefix):
                rows[tuple(r[k] for k in KEY)] = r
    return rows


def targets(joined):
    """The issue's two fp32 FlashInternImage-T targets, where measured."""
    out = []
    want = [("fii forward", "64x3x224x224", "throughput", 1.0,
             "ours/theirs ms <= 1.0 (throughput >= 1.0x)"),
            ("fii forward", "1x3x224x224", "batch-1 latency", 0.5,
             "ours/theirs ms <= 0.5"),
            ("fii latency", "1x3x224x224", "batch-1 latency, synchronous",
             0.5, "ours/theirs ms <= 0.5")]
    for op, shape, what, limit, rule in want:
        r = joined.get((op, "fii-t", shape, "float32"))
        if r and r[2] is not None:
            verdict = "met" if r[2] <= limit else "NOT met"
            out.append(f"T fp32 {what}: {r[2]:.2f} ({rule}): {verdict}")
        else:
            out.append(f"T fp32 {what}: not measured")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("ours", help="dcnv4-bench's results.csv")
    p.add_argument("theirs", help="fii_anchor.py's CSV")
    p.add_argument("--ops", default="fii",
                   help="rows whose op starts with this (default fii)")
    p.add_argument("--csv", help="also write the joined rows here")
    args = p.parse_args(argv)
    ours, theirs = read(args.ours, args.ops), read(args.theirs, args.ops)
    keys = list(ours) + [k for k in theirs if k not in ours]
    joined, speeds = {}, {}
    for k in keys:
        a, b = ours.get(k), theirs.get(k)
        ms_a = number(a["median_ms"]) if a else None
        ms_b = number(b["median_ms"]) if b else None
        joined[k] = (ms_a, ms_b, ms_a / ms_b if ms_a and ms_b else None)
        speeds[k] = (number(a.get("images_per_s")) if a else None,
                     number(b.get("images_per_s")) if b else None)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(KEY + ("ours_ms", "theirs_ms", "ours_over_theirs"))
            for k, values in joined.items():
                w.writerow(k + tuple("" if v is None else f"{v:.5f}"
                                     for v in values))

    def show(v, spec, width):
        return (format(v, spec) if v is not None else "-").rjust(width)
    print(f"{'op':<12} {'set':<6} {'shape':<14} {'dtype':<9} "
          f"{'ours ms':>10} {'theirs ms':>10} {'ours/theirs':>11} "
          f"{'ours img/s':>10} {'theirs img/s':>12}")
    for k, (ms_a, ms_b, ratio) in joined.items():
        ips_a, ips_b = speeds[k]
        print(f"{k[0]:<12} {k[1]:<6} {k[2]:<14} {k[3]:<9} "
              f"{show(ms_a, '.3f', 10)} {show(ms_b, '.3f', 10)} "
              f"{show(ratio, '.2f', 11)} {show(ips_a, '.1f', 10)} "
              f"{show(ips_b, '.1f', 12)}")
    for line in targets(joined):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
