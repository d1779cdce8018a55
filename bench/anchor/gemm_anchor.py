#!/usr/bin/env python3
"""The PyTorch anchor of dcnv4-bench's GEMM rows (issue 32).

Times torch.matmul(a, b.t()) (cuBLAS) at the shapes dcnv4-bench --ops gemm
times (bench/bench_gemm.c): FlashInternImage-T (C 64) and -B (C 112) at
batch 64 and 224x224 images, levels 0-3 (M = 64 * (56 >> level)^2, C_l =
C << level), the DCNv4 layer's C x C projection ("proj") and the MLP's fc1
(C -> 4C) and fc2 (4C -> C), in fp32, fp16 and bf16. fp32 stays fp32:
torch.backends.cuda.matmul.allow_tf32 is set False (PyTorch's default), as
dcnv4-bench's fp32 rows use no TF32. Each row: the median of CUDA events
around calls queued back to back, after warm-up, rotating input sets so
that one pass over them is several times the L2 cache (as dcnv4-bench).

  python3 bench/anchor/gemm_anchor.py --out gemm_anchor.csv
  python3 bench/anchor/join.py RESULTS.csv gemm_anchor.csv --ops gemm
  python3 bench/anchor/gemm_anchor.py --summary RESULTS.csv gemm_anchor.csv

--gemm MxNxK (repeatable) times those shapes instead, as dcnv4-bench --gemm.

The CSV has the columns bench/anchor/join.py reads (op, set, shape, dtype,
median_ms) plus tflops. --summary prints, per dtype, each shape's ratio of
throughputs (ours / torch.matmul = their ms / our ms) and the geometric
mean; issue 32's target is fp16 >= 0.6.
"""

import argparse
import csv
import math
import statistics
import sys

DTYPES = ("float32", "float16", "bfloat16")
MODELS = (("fii-t", 64), ("fii-b", 112))
KINDS = (("proj", 1, 1), ("fc1", 4, 1), ("fc2", 1, 4))
FIELDS = ("op", "set", "shape", "groups_x_channels", "dtype", "median_ms",
          "tflops", "launches", "status", "device", "torch")


def shapes(batch):
    """(set, kind, m, n, k) in dcnv4-bench's order."""
    for name, c in MODELS:
        for level in range(4):
            side = 56 >> level
            for kind, mult_n, mult_k in KINDS:
                ch = c << level
                yield name, kind, batch * side * side, ch * mult_n, ch * mult_k


def time_one(torch, m, n, k, dtype, reps, warmup, device):
    esize = torch.tensor([], dtype=dtype).element_size()
    per_set = esize * (m * k + n * k + m * n)
    l2 = 50 << 20
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        l2 = getattr(props, "L2_cache_size", l2) or l2
    sets = max(1, min(16, math.ceil(4 * max(l2, 64 << 20) / per_set)))
    gen = torch.Generator(device=device).manual_seed(m * 31 + n + k)
    a = [torch.rand(m, k, device=device, dtype=dtype, generator=gen) * 2 - 1
         for _ in range(sets)]
    b = torch.rand(n, k, device=device, dtype=dtype, generator=gen) * 2 - 1
    out = torch.empty(m, n, device=device, dtype=dtype)
    for i in range(warmup):
        torch.matmul(a[i % sets], b.t(), out=out)
    if device.type != "cuda":
        import time
        times = []
        for i in range(reps):
            t0 = time.perf_counter()
            torch.matmul(a[i % sets], b.t(), out=out)
            times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)
    events = [torch.cuda.Event(enable_timing=True) for _ in range(reps + 1)]
    torch.cuda.synchronize(device)
    # A spin kernel first, so that every call is queued before the GPU
    # reaches it: the events then time cuBLAS's kernels back to back, not
    # Python's dispatch (about 30 us a call, longer than the small GEMMs).
    torch.cuda._sleep(100_000_000)
    events[0].record()
    for i in range(reps):
        torch.matmul(a[i % sets], b.t(), out=out)
        events[i + 1].record()
    torch.cuda.synchronize(device)
    return statistics.median(events[i].elapsed_time(events[i + 1])
                             for i in range(reps))


def run(args):
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device(args.device)
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else "cpu")
    rows = []
    for dt in args.dtypes:
        dtype = getattr(torch, dt)
        todo = ([("custom", "gemm", m, n, k) for m, n, k in args.gemm]
                if args.gemm else shapes(args.batch))
        for set_, kind, m, n, k in todo:
            row = {"op": "gemm", "set": set_, "shape": f"{m}x{n}x{k}",
                   "groups_x_channels": kind, "dtype": dt,
                   "launches": args.reps, "device": name,
                   "torch": torch.__version__}
            try:
                ms = time_one(torch, m, n, k, dtype, args.reps, args.warmup,
                              device)
                row.update(median_ms=ms, tflops=2.0 * m * n * k / ms * 1e-9,
                           status="ok")
            except RuntimeError as e:  # out of memory and the like
                row["status"] = f"failed: {e}".replace("\n", " ")[:200]
            rows.append(row)
            print(f"gemm {set_:<6} {row['shape']:<18} {kind:<5} {dt:<9} "
                  f"{fmt(row.get('median_ms'), '9.4f')} ms "
                  f"{fmt(row.get('tflops'), '7.1f')} TFLOP/s {row['status']}",
                  flush=True)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: fmt(r.get(k), ".5f") if isinstance(r.get(k), float)
                        else r.get(k, "") for k in FIELDS})
    failed = sum(r["status"] != "ok" for r in rows)
    print(f"anchor: {args.out} ({len(rows)} rows, {failed} failed)")
    return 1 if failed else 0


def summary(ours_path, theirs_path, names=("ours", "torch"), target=True):
    """Per shape the throughput of ours over theirs (their ms / our ms),
    and the geometric mean per dtype; returns {dtype: mean}."""
    def read(path):
        with open(path, newline="") as f:
            return {(r["set"], r["shape"], r["dtype"]): r
                    for r in csv.DictReader(f) if r["op"] == "gemm"}
    ours, theirs = read(ours_path), read(theirs_path)
    means = {}
    for dt in DTYPES:
        ratios = []
        for key in sorted(k for k in ours if k[2] == dt):
            a, b = ours[key], theirs.get(key)
            try:
                ms_a, ms_b = float(a["median_ms"]), float(b["median_ms"])
            except (TypeError, ValueError):
                continue
            if ms_a <= 0 or ms_b <= 0:
                continue
            ratios.append(ms_b / ms_a)
            print(f"{dt:<9} {key[0]:<6} {key[1]:<18} "
                  f"{a.get('groups_x_channels', ''):<5} {names[0]} "
                  f"{ms_a:8.4f} ms {names[1]} {ms_b:8.4f} ms  "
                  f"{names[0]}/{names[1]} throughput {ms_b / ms_a:5.2f}")
        if ratios:
            gm = math.exp(sum(map(math.log, ratios)) / len(ratios))
            means[dt] = gm
            note = ("  (issue 32: >= 0.6)"
                    if target and dt == "float16" else "")
            print(f"{dt}: geometric mean of {len(ratios)} shapes "
                  f"{gm:.2f}{note}")
    return means


def sweeps(base, others):
    best = None
    for path in others:
        print(f"== {path} against {base}")
        gm = summary(path, base, names=("sweep", "base"), target=False).get(
            "float16")
        if gm is not None and (best is None or gm > best[1]):
            best = (path, gm)
    if best:
        print(f"best: {best[0]}, {best[1]:.3f}x the baseline's throughput "
              f"(float16 geometric mean)")
    return 0


def gemm_shape(text):
    try:
        m, n, k = (int(x) for x in text.split("x"))
    except ValueError:
        m = 0
    if m < 1 or n < 1 or k < 1:
        raise argparse.ArgumentTypeError(f"{text}: want MxNxK")
    return m, n, k


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="gemm_anchor.csv", help="CSV to write")
    p.add_argument("--dtypes", default=",".join(DTYPES),
                   type=lambda s: [d for d in s.split(",") if d])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--gemm", type=gemm_shape, action="append", default=[],
                   metavar="MxNxK",
                   help="this shape instead of the models' (repeatable; set "
                        "custom, as dcnv4-bench --gemm)")
    p.add_argument("--reps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--device", default="cuda")
    p.add_argument("--summary", nargs=2, metavar=("RESULTS", "ANCHOR"),
                   help="compare dcnv4-bench's results.csv with this "
                        "script's CSV instead of timing")
    p.add_argument("--sweeps", nargs="+", metavar="RESULTS",
                   help="dcnv4-bench results.csv files of one job, the "
                        "first the baseline: each other's throughput over "
                        "it per shape, then the best by float16 geometric "
                        "mean")
    args = p.parse_args(argv)
    if args.summary:
        summary(*args.summary)
        return 0
    if args.sweeps:
        return sweeps(args.sweeps[0], args.sweeps[1:])
    bad = [d for d in args.dtypes if d not in DTYPES]
    if bad:
        p.error(f"unknown dtype(s) {', '.join(bad)}")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
