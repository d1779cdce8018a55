#!/usr/bin/env python3
"""Ours against the anchors: dcnv4-bench's results.csv joined with the CSVs
of bench/anchor/op_anchor.py (the CUDA extensions: upstream, fork) and
bench/anchor/fii_anchor.py (PyTorch running upstream's FlashInternImage),
on (op, set, shape, groups_x_channels, dtype). One line per row: our ms,
each anchor's ms per call and kernel-only, the speedups over the best
anchor (its ms / ours: above 1 we are faster; per call and kernel-only),
and each anchor's crash / wrong marks; then the launch floors (an empty
kernel timed as each side times its rows: ours by its OpenCL event, the CUDA
extensions' by torch.profiler), where the files have them, the part of a
few-microsecond row's kernel-only ratio that is measurement and not work.
Then the targets, where their rows were measured, each `met` or `NOT met`
with the rows that miss; a forward row that misses says its kernel-only
ratio net of the two launch floors, a layer row what each side spends
besides the core forward (the projections):

  issue 34  FlashDeformAttn backward >= 1.5x the best CUDA extension per
            call (fp32, fp16; every fda-detr shape); every forward row
            kernel-only >= 1.2x; every fp32 DCNv4 layer row >= 1.0x PyTorch
            per call
  issue 31  FlashInternImage-T fp32: batch-64 throughput >= 1.0x PyTorch's,
            batch-1 latency >= 2.0x (a half of its time)

  python3 bench/anchor/join.py RESULTS.csv ANCHOR.csv [ANCHOR.csv ...]
                               [--ops PREFIX] [--csv OUT]

The best anchor of a row is the fastest whose output was right; a crashed
anchor has no time, a wrong one (verify_error above its limit) counts only
when no anchor was right, and the line says so.
"""

import argparse
import csv
import math
import statistics
import sys

KEY = ("op", "set", "shape", "groups_x_channels", "dtype")
ANY = "*"  # an anchor file without groups_x_channels (fii_anchor.py's)


def number(text):
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if v > 0 and math.isfinite(v) else None


def read_csv(path):
    try:
        f = open(path, newline="")
    except OSError as e:
        sys.exit(f"join: {e}")
    with f:
        reader = csv.DictReader(f)
        names = reader.fieldnames or []
        missing = [k for k in ("op", "set", "shape", "dtype", "median_ms")
                   if k not in names]
        if missing:
            sys.exit(f"join: {path} lacks column(s) {', '.join(missing)}")
        return names, list(reader)


def read_ours(path, prefix):
    _, rows = read_csv(path)
    return {tuple(r.get(k, "") for k in KEY): r for r in rows
            if r["op"].startswith(prefix)}


class Anchor:
    """One measured row of one anchor implementation."""

    def __init__(self, r):
        self.ms = number(r.get("median_ms"))
        self.kernel_ms = number(r.get("kernel_ms"))
        self.status = (r.get("status") or "ok").strip()
        self.error = number(r.get("verify_error"))
        self.images_per_s = number(r.get("images_per_s"))
        self.launch_floor_ms = number(r.get("launch_floor_ms"))

    @property
    def ok(self):
        return self.status == "ok" and self.ms is not None

    @property
    def wrong(self):
        return self.status == "wrong" and self.ms is not None

    def mark(self):
        """'' when ok, else a short word (crash, wrong 1.0e-01, ...)."""
        if self.ok:
            return ""
        if self.wrong:
            return f"wrong {self.error:.1e}" if self.error else "wrong"
        return self.status.split(" (")[0] if self.status else "failed"


def read_anchors(paths, prefix):
    """{key: {impl: Anchor}}, impls in file order (fii_anchor.py's rows
    are 'pytorch')."""
    anchors, impls = {}, []
    for path in paths:
        names, rows = read_csv(path)
        for r in rows:
            if not r["op"].startswith(prefix):
                continue
            impl = r.get("impl") or "pytorch"
            if impl not in impls:
                impls.append(impl)
            key = tuple(r.get(k, "") if k in names else ANY for k in KEY)
            anchors.setdefault(key, {})[impl] = Anchor(r)
    return anchors, impls


def launch_floors(ours, anchors, impls):
    """{who: ms}: 'ours', then each anchor implementation (in `impls`
    order), the median over its rows read that carry launch_floor_ms."""
    def median_of(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None
    out = {"ours": median_of(number(r.get("launch_floor_ms"))
                             for r in ours.values())}
    for impl in impls:
        out[impl] = median_of(found[impl].launch_floor_ms
                              for found in anchors.values() if impl in found)
    return {who: ms for who, ms in out.items() if ms is not None}


def lookup(anchors, key):
    found = anchors.get(key)
    if found is None:
        found = anchors.get(key[:3] + (ANY,) + key[4:])
    return found or {}


class Row:
    def __init__(self, key, ours, theirs):
        self.key, self.theirs = key, theirs
        self.ours = number(ours.get("median_ms")) if ours else None
        self.ours_ips = number(ours.get("images_per_s")) if ours else None
        right = [(i, a) for i, a in theirs.items() if a.ok]
        self.against_wrong = not right
        pool = right or [(i, a) for i, a in theirs.items() if a.wrong]
        times = [a.ms for _, a in pool]
        kernels = [(a.kernel_ms, i) for i, a in pool
                   if a.kernel_ms is not None]
        self.best = min(times) if times else None
        self.best_kernel, self.best_kernel_impl = \
            min(kernels) if kernels else (None, None)
        self.speedup = self.best / self.ours \
            if self.best and self.ours else None
        self.kernel_speedup = self.best_kernel / self.ours \
            if self.best_kernel and self.ours else None

    def marks(self, impls):
        out = [f"{i}: {self.theirs[i].mark()}" for i in impls
               if i in self.theirs and self.theirs[i].mark()]
        if self.against_wrong and self.best is not None:
            out.append("(best is wrong)")
        if self.ours is None:
            out.append("ours: not measured")
        return "; ".join(out)


def show(v, spec, width):
    return (format(v, spec) if v is not None else "-").rjust(width)


def print_table(rows, impls):
    head = (f"{'op':<17} {'set':<9} {'shape':<14} {'GxD':<6} {'dtype':<8} "
            f"{'ours':>8}")
    for i in impls:
        head += f" {i[:8]:>8} {'kernel':>8}"
    print(head + f" {'x call':>7} {'x kern':>7}  marks")
    for r in rows:
        op, set_, shape, config, dtype = r.key
        line = (f"{op:<17} {set_:<9} {shape:<14} {config:<6} {dtype:<8} "
                f"{show(r.ours, '.4f', 8)}")
        for i in impls:
            a = r.theirs.get(i)
            line += (f" {show(a.ms if a else None, '.4f', 8)}"
                     f" {show(a.kernel_ms if a else None, '.4f', 8)}")
        print(line + f" {show(r.speedup, '.2f', 7)} "
              f"{show(r.kernel_speedup, '.2f', 7)}  {r.marks(impls)}")


def write_csv(path, rows, impls):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        head = list(KEY) + ["ours_ms"]
        for i in impls:
            head += [f"{i}_ms", f"{i}_kernel_ms", f"{i}_status",
                     f"{i}_verify_error"]
        w.writerow(head + ["best_ms", "speedup", "best_kernel_ms",
                           "kernel_speedup"])

        def num(v):
            return "" if v is None else f"{v:.5g}"
        for r in rows:
            line = list(r.key) + [num(r.ours)]
            for i in impls:
                a = r.theirs.get(i)
                line += ([num(a.ms), num(a.kernel_ms), a.status, num(a.error)]
                         if a else ["", "", "", ""])
            w.writerow(line + [num(r.best), num(r.speedup),
                               num(r.best_kernel), num(r.kernel_speedup)])


def check(name, rows, measure, limit, why=None):
    """One target over its rows: 'met' / 'NOT met' with the misses (each
    followed by why(row) in brackets where that says something), or
    'not measured'."""
    if not rows:
        return [f"{name}: not measured"]
    misses, missing = [], []
    for r in rows:
        v = getattr(r, measure)
        label = " ".join(k for k in r.key if k != "-")
        if v is None:
            missing.append(label + (f" ({r.marks(list(r.theirs))})"
                                    if r.marks(list(r.theirs)) else ""))
        elif v < limit:
            reason = why(r) if why else None
            misses.append(f"{label} {v:.2f}x"
                          + (f" ({reason})" if reason else ""))
    worst = min((getattr(r, measure) for r in rows
                 if getattr(r, measure) is not None), default=None)
    verdict = "NOT met" if misses or missing else "met"
    out = [f"{name}: {verdict} ({len(rows) - len(misses) - len(missing)} of "
           f"{len(rows)} rows >= {limit}x"
           + (f", lowest {worst:.2f}x" if worst is not None else "") + ")"]
    out += [f"  below: {m}" for m in misses]
    out += [f"  no ratio: {m}" for m in missing]
    return out


def net_of_floors(r, floors):
    """A kernel-only ratio with each side's launch floor taken off its time:
    how the kernels compare as work, where both floors are known."""
    mine, theirs = floors.get("ours"), floors.get(r.best_kernel_impl)
    if mine is None or theirs is None or r.ours is None \
            or r.best_kernel is None or r.ours <= mine \
            or r.best_kernel <= theirs:
        return None
    net = (r.best_kernel - theirs) / (r.ours - mine)
    return f"{net:.2f}x net of the launch floors"


def projections(r, by_key):
    """A layer row's time less its core forward's (the same set, shape,
    GxD and dtype): ours, and the best anchor's kernels less its forward
    kernel; what the projections (GEMMs, bias, reshapes) take on each
    side."""
    core = by_key.get(("forward",) + r.key[1:])
    if core is None or r.ours is None or core.ours is None:
        return None
    impl = r.best_kernel_impl
    theirs = core.theirs.get(impl)
    mine = r.ours - core.ours
    if theirs is None or theirs.kernel_ms is None or r.best_kernel is None:
        return f"ours {mine:.3f} ms besides the core forward"
    return (f"besides the core forward: ours {mine:.3f} ms, {impl}'s "
            f"kernels {r.best_kernel - theirs.kernel_ms:.3f} ms")


def targets(rows, floors=None):
    floors = floors or {}
    by_key = {r.key: r for r in rows}
    cuda = [r for r in rows if any(i in ("upstream", "fork")
                                   for i in r.theirs)]
    out = []
    fda_bwd = [r for r in cuda if r.key[0] == "backward"
               and r.key[1].startswith("fda")
               and r.key[4] in ("float32", "float16")]
    forward = [r for r in cuda if r.key[0] == "forward"]
    layer = [r for r in cuda if r.key[0] == "layer forward"
             and r.key[4] == "float32"]
    if fda_bwd or forward or layer:
        out += check("issue 34, FlashDeformAttn backward fp32/fp16 per call "
                     "vs best CUDA", fda_bwd, "speedup", 1.5)
        out += check("issue 34, every forward row kernel-only vs best CUDA "
                     "kernel", forward, "kernel_speedup", 1.2,
                     lambda r: net_of_floors(r, floors))
        out += check("issue 34, every fp32 DCNv4 layer row per call vs "
                     "PyTorch", layer, "speedup", 1.0,
                     lambda r: projections(r, by_key))
    fii = {r.key[:3] + (r.key[4],): r for r in rows
           if r.key[0].startswith("fii")}
    if fii:
        for op, shape, what, limit in (
                ("fii forward", "64x3x224x224", "batch-64 throughput", 1.0),
                ("fii forward", "1x3x224x224", "batch-1 latency", 2.0),
                ("fii latency", "1x3x224x224",
                 "batch-1 latency, synchronous", 2.0)):
            r = fii.get((op, "fii-t", shape, "float32"))
            out += check(f"issue 31, FlashInternImage-T fp32 {what}",
                         [r] if r else [], "speedup", limit)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("ours", help="dcnv4-bench's results.csv")
    p.add_argument("anchors", nargs="+",
                   help="op_anchor.py's and/or fii_anchor.py's CSVs")
    p.add_argument("--ops", default="",
                   help="only rows whose op starts with this")
    p.add_argument("--csv", help="also write the joined rows here")
    args = p.parse_args(argv)
    ours = read_ours(args.ours, args.ops)
    anchors, impls = read_anchors(args.anchors, args.ops)
    keys = list(ours)
    for key in anchors:  # anchor rows we did not time, at the end
        if not any(k == key or (key[3] == ANY and k[:3] + k[4:] ==
                                key[:3] + key[4:]) for k in keys):
            keys.append(key)
    rows = [Row(k, ours.get(k), lookup(anchors, k)) for k in keys]
    rows = [r for r in rows if r.theirs or r.ours is not None]
    print_table(rows, impls)
    floors = launch_floors(ours, anchors, impls)
    if floors:
        print("launch floor, an empty kernel: " + "; ".join(
            f"{who} ({'OpenCL event' if who == 'ours' else 'torch.profiler'})"
            f" {ms:.4f} ms" for who, ms in floors.items()))
    if args.csv:
        write_csv(args.csv, rows, impls)
    for line in targets(rows, floors):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
