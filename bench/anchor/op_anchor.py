#!/usr/bin/env python3
"""The CUDA anchor of dcnv4-bench's operator rows (issue 34).

Builds the CUDA extensions of upstream OpenGVLab/DCNv4 (DCNv4_op/) and,
optionally, of the fork nusu-github/DCNv4 (package dcnv4/) from checkouts
you fetched, then times the rows `dcnv4-bench --ops core,layer,fda` times,
with the same keys (op, set, shape, groups_x_channels, dtype):

  forward, backward, forward+backward   the DCNv4 operator on the paper's
        shapes (3x3, stride 1, pad 1, offset_mask padded to a multiple of 8)
  layer forward   PyTorch's DCNv4 module of the checkout (value and
        offset/mask projections, the operator, output projection)
  forward, backward, forward+backward (set fda-detr)   FlashDeformAttn on
        Deformable DETR's encoder (2x20000 queries) and decoder (2x900,
        2x300): 4 levels 100x134 .. 13x17, 8 heads of 32 channels, 4 points

Each row has two times: median_ms, CUDA events around each call, calls
queued back to back (what a caller pays: the extension's zero-filled output
included); kernel_ms, the CUDA kernels of one call from torch.profiler, the
zero-fills left out (the figure to hold a kernel against); launch_floor_ms,
an empty CUDA kernel (torch.cuda._sleep(0), one thread) timed as kernel_ms
is, beside dcnv4-bench's empty OpenCL kernel. Inputs are drawn
as dcnv4-bench draws them and rotated over several sets so that one pass is
several times the L2 cache. Each extension's outputs (forward, and both
gradients where a backward row is timed) are compared on the same inputs
with a float64 PyTorch reference (this file's own, grid_sample based):
verify_error is the relative L2 of the output on forward rows, the worst of
the two gradients' on backward rows, the worse of both on forward+backward
rows; above --wrong-above the row's status is `wrong`. Each (checkout, shape) runs in its own process: a crash or a hang
marks the rows it did not finish `crash` / `timeout`, and the rest go on.

Usage (GPU machine; the build takes minutes, so keep the extensions):

  python3 bench/anchor/op_anchor.py --upstream UP [--fork FORK] \\
      --ext-dir EXT --out anchor.csv [--ops core,layer,fda] [--quick]

--ext-dir: where the built extensions are kept, stripped, as
EXT/upstream-so.tgz and EXT/fork-so.tgz (paths relative to the checkout's
root; in 15 MiB parts .00, .01, ... when larger): found there, a build is
skipped. --build-only builds (or finds) them and stops.
Then `python3 bench/anchor/join.py results.csv anchor.csv` prints ours
against theirs. --impl torch (with --device cpu) times a PyTorch stand-in,
to try the script without a GPU.
"""

import argparse
import csv
import glob
import io
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import time

DTYPES = ("float32", "float16", "bfloat16")
OPS = ("core", "layer", "fda")
IMPLS = ("upstream", "fork", "torch")
# dcnv4-bench's paper shapes (DESIGN.md §5): (set, N, H, W, C).
PAPER_SHAPES = [
    ("standard", 64, 56, 56, 128), ("standard", 64, 28, 28, 256),
    ("standard", 64, 14, 14, 512), ("standard", 64, 7, 7, 1024),
    ("standard", 64, 14, 14, 768), ("high-res", 1, 200, 320, 128),
    ("high-res", 1, 100, 160, 256), ("high-res", 1, 50, 80, 512),
    ("high-res", 1, 25, 40, 1024), ("high-res", 1, 64, 64, 768)]
QUICK_SHAPES = (0, 5)  # dcnv4-bench --quick: the first of each set
# FlashDeformAttn (bench_fda.c): levels, heads x channels, points, queries.
FDA_LEVELS = ((100, 134), (50, 67), (25, 34), (13, 17))
FDA_GROUP, FDA_CHANNELS, FDA_POINTS, FDA_BATCH = 8, 32, 4, 2
FDA_QUERIES = (20000, 900, 300)
# The checkouts' own call arguments.
DCN_IM2COL_STEP, FDA_IM2COL_STEP = 256, 64
WARMUP = 3  # dcnv4-bench's
FIELDS = ("op", "set", "shape", "groups_x_channels", "dtype", "impl",
          "median_ms", "kernel_ms", "kernels_per_call", "verify_error",
          "status", "input_sets", "launches", "device", "torch",
          "launch_floor_ms")
WRONG_ABOVE = {"float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}
# ATen's housekeeping kernels: the zero-fill of each output (and memsets).
FILL = re.compile(r"FillFunctor|fill_kernel|[Mm]emset|zero_")


# --------------------------------------------------------------- options


def csv_list(choices):
    def parse(text):
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(
                f"bad list {text!r}: choose from {','.join(choices)}")
        return items
    return parse


def positive(text):
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return v


def int_list(text):
    return [positive(t) for t in text.split(",") if t.strip()]


def shape_arg(text):
    m = re.fullmatch(r"(\d+)x(\d+)x(\d+)x(\d+)", text.strip())
    if not m or min(int(g) for g in m.groups()) < 1:
        raise argparse.ArgumentTypeError(f"bad shape {text!r}: want NxHxWxC")
    n, h, w, c = (int(g) for g in m.groups())
    sets = [s for s, *dims in PAPER_SHAPES if dims == [n, h, w, c]]
    return (sets[0] if sets else "custom", n, h, w, c)


def make_parser():
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--upstream", help="checkout of OpenGVLab/DCNv4 (or its "
                   "DCNv4_op folder)")
    p.add_argument("--fork", help="checkout of nusu-github/DCNv4 (dcnv4/, "
                   "setup.py)")
    p.add_argument("--impl", type=csv_list(IMPLS), default=None,
                   help="which to time (default: those given; torch: a "
                        "PyTorch stand-in, no checkout needed)")
    p.add_argument("--ext-dir", default="anchor-ext",
                   help="kept extensions (IMPL-so.tgz), reused when present "
                        "(default anchor-ext)")
    p.add_argument("--work", default=None,
                   help="where the checkouts are copied and built (default "
                        "a folder beside --ext-dir)")
    p.add_argument("--build-only", action="store_true",
                   help="build (or find) the extensions, time nothing")
    p.add_argument("--jobs", type=positive, default=8,
                   help="MAX_JOBS of each build (default 8)")
    p.add_argument("--arch", default="9.0",
                   help="TORCH_CUDA_ARCH_LIST of the builds (default 9.0)")
    p.add_argument("--build-timeout", type=positive, default=540,
                   help="seconds for the builds together (default 540)")
    p.add_argument("--out", default="anchor.csv", help="CSV to write")
    p.add_argument("--ops", type=csv_list(OPS), default=list(OPS),
                   help="rows of core,layer,fda (default all)")
    p.add_argument("--dtypes", type=csv_list(DTYPES),
                   default=["float32", "float16"],
                   help="of float32,float16,bfloat16 (default the first "
                        "two, as dcnv4-bench)")
    p.add_argument("--group-channels", type=int_list, default=[16, 32],
                   help="D of the DCNv4 rows (default 16,32)")
    p.add_argument("--shape", type=shape_arg, action="append",
                   help="NxHxWxC instead of the paper's (repeatable)")
    p.add_argument("--fda-queries", type=int_list, default=list(FDA_QUERIES),
                   help="FlashDeformAttn queries (default 20000,900,300)")
    p.add_argument("--forward-only", action="store_true",
                   help="no backward rows")
    p.add_argument("--quick", action="store_true",
                   help="dcnv4-bench --quick's rows, 15 launches")
    p.add_argument("--reps", type=positive, default=None,
                   help="timed calls per row (default 50, quick 15)")
    p.add_argument("--no-kernel-time", action="store_true",
                   help="skip torch.profiler's kernel-only times")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the float64 comparison")
    p.add_argument("--wrong-above", type=float, default=None,
                   help="relative L2 above which a row is wrong (default "
                        "1e-4 fp32, 1e-2 fp16, 5e-2 bf16)")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--timeout", type=positive, default=180,
                   help="seconds per (checkout, shape) process")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p


def check_args(p, args):
    if args.impl is None:
        args.impl = [i for i in ("upstream", "fork") if getattr(args, i)]
        if not args.impl:
            p.error("give --upstream DIR (and optionally --fork DIR), or "
                    "--impl torch")
    for impl in ("upstream", "fork"):
        if impl in args.impl and not getattr(args, impl):
            p.error(f"--impl {impl} needs --{impl} DIR")
    if args.upstream:
        root = os.path.abspath(args.upstream)
        if os.path.basename(root) != "DCNv4_op":
            root = os.path.join(root, "DCNv4_op")
        if not os.path.isfile(os.path.join(root, "setup.py")) or \
                not os.path.isdir(os.path.join(root, "DCNv4")):
            p.error(f"--upstream {args.upstream}: no DCNv4_op/setup.py and "
                    "DCNv4_op/DCNv4 (want a checkout of OpenGVLab/DCNv4)")
        args.upstream = os.path.abspath(args.upstream)
    if args.fork:
        if not os.path.isfile(os.path.join(args.fork, "setup.py")) or \
                not os.path.isdir(os.path.join(args.fork, "dcnv4", "csrc")):
            p.error(f"--fork {args.fork}: no setup.py and dcnv4/csrc (want a "
                    "checkout of nusu-github/DCNv4)")
        args.fork = os.path.abspath(args.fork)
    for d in args.group_channels:
        if d % 16 and set(args.impl) - {"torch"}:
            p.error(f"--group-channels {d}: the CUDA extensions want a "
                    "multiple of 16")
    if args.reps is None:
        args.reps = 15 if args.quick else 50
    args.ext_dir = os.path.abspath(args.ext_dir)
    if args.work is None:
        args.work = args.ext_dir.rstrip("/") + "-work"
    args.work = os.path.abspath(args.work)


# -------------------------------------------------------------- building

# impl -> (the folder setup.py is in and the one on sys.path, the built
# extension's glob), both relative to the checkout's root
PACKAGES = {"upstream": ("DCNv4_op", "DCNv4_op/DCNv4/ext*.so"),
            "fork": (".", "dcnv4/dcnv4_C*.so")}
SPLIT = 15 << 20  # kept archives in parts below the device tool's 16 MiB


def copy_checkout(src, dst):
    """A copy of the checkout to build in (sources only: no build output,
    no git history); upstream's sources lose the THC include current torch
    no longer ships."""
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "build", "*.so", "*.egg-info", "__pycache__"))
    for path in glob.glob(os.path.join(dst, "**", "*.*"), recursive=True):
        if os.path.islink(path) or \
                os.path.splitext(path)[1] not in (".cu", ".cuh", ".h", ".cpp"):
            continue
        text = open(path, errors="surrogateescape").read()
        kept = "".join(line for line in text.splitlines(True)
                       if line.strip() != "#include <THC/THCAtomics.cuh>")
        if kept != text:
            open(path, "w", errors="surrogateescape").write(kept)


def kept_archive(ext_dir, impl):
    """EXT/IMPL-so.tgz, or its parts IMPL-so.tgz.00, .01, ... joined:
    bytes, or None."""
    whole = os.path.join(ext_dir, f"{impl}-so.tgz")
    parts = [whole] if os.path.isfile(whole) else \
        sorted(glob.glob(whole + ".[0-9][0-9]"))
    if not parts:
        return None
    return b"".join(open(p, "rb").read() for p in parts)


def unpack(blob, work):
    """The archive's .so files into the copy (relative paths only)."""
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile()
                   and m.name.endswith(".so") and not m.name.startswith("/")
                   and ".." not in m.name.split("/")]
        for m in members:
            dest = os.path.join(work, os.path.normpath(m.name))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                f.write(tar.extractfile(m).read())
    return [m.name for m in members]


def keep(built, work, ext_dir, impl):
    """Strips the built extension and keeps it as EXT/IMPL-so.tgz (in
    parts of 15 MiB when larger), paths relative to the checkout's root,
    as unpack() reads them. Returns the files written."""
    subprocess.run(["strip", "--strip-unneeded", built], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(built, arcname="./" + os.path.relpath(built, work))
    blob = buf.getvalue()
    os.makedirs(ext_dir, exist_ok=True)
    for old in glob.glob(os.path.join(ext_dir, f"{impl}-so.tgz*")):
        os.remove(old)
    name = os.path.join(ext_dir, f"{impl}-so.tgz")
    if len(blob) <= SPLIT:
        open(name, "wb").write(blob)
        return [name]
    names = []
    for i in range(0, len(blob), SPLIT):
        names.append(f"{name}.{i // SPLIT:02d}")
        open(names[-1], "wb").write(blob[i:i + SPLIT])
    return names


def prepare(args, log=print):
    """Copies each checkout under --work with its extension: from --ext-dir
    when kept there, else built (the builds in parallel), stripped and kept
    in --ext-dir. Returns {impl: python path entry}; a failed build is left
    out (its log is named)."""
    paths, builds = {}, {}
    for impl in args.impl:
        if impl == "torch":
            continue
        sub, pattern = PACKAGES[impl]
        work = os.path.join(args.work, impl)
        src = getattr(args, impl)
        if impl == "upstream" and os.path.basename(src) == "DCNv4_op":
            copy_checkout(src, os.path.join(work, "DCNv4_op"))
        else:
            copy_checkout(src, work)
        blob = kept_archive(args.ext_dir, impl)
        if blob is not None:
            got = unpack(blob, work)
            if glob.glob(os.path.join(work, pattern)):
                log(f"{impl}: extension kept in {args.ext_dir} "
                    f"({', '.join(got)})")
                paths[impl] = os.path.join(work, sub)
                continue
            log(f"{impl}: {args.ext_dir}/{impl}-so.tgz has no {pattern}")
        log_path = os.path.join(args.work, f"{impl}-build.log")
        env = dict(os.environ, TORCH_CUDA_ARCH_LIST=args.arch,
                   MAX_JOBS=str(args.jobs))
        builds[impl] = (subprocess.Popen(
            [sys.executable, "setup.py", "build_ext", "--inplace"],
            cwd=os.path.join(work, sub), env=env,
            stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
            start_new_session=True), log_path, time.time())
        log(f"{impl}: building (log {log_path})")
    deadline = time.time() + args.build_timeout
    for impl, (proc, log_path, t0) in builds.items():
        try:
            rc = proc.wait(timeout=max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = "timeout"
        sub, pattern = PACKAGES[impl]
        work = os.path.join(args.work, impl)
        built = sorted(glob.glob(os.path.join(work, pattern)))
        if rc != 0 or not built:
            log(f"{impl}: build FAILED ({rc}); see {log_path}")
            continue
        names = keep(built[0], work, args.ext_dir, impl)
        size = sum(os.path.getsize(n) for n in names) / 2**20
        log(f"{impl}: built in {time.time() - t0:.0f} s, kept in "
            f"{', '.join(names)} ({size:.1f} MiB)")
        paths[impl] = os.path.join(work, sub)
    return paths


# ------------------------------------------------------- float64 reference


def dcnv4_reference(value, om, group, group_channels, kernel=3, stride=1,
                    pad=1, dilation=1, offset_scale=1.0):
    """DCNv4's forward (upstream's operator semantics), differentiable:
    value (N, H, W, G*D); om (N, Ho, Wo, >= G*K*3), per group the K points'
    (x, y) offsets then their K weights, points in x-major order (point
    i*kernel + j at column i, row j); bilinear sampling, zero outside."""
    import torch
    import torch.nn.functional as F
    N, H, W, _ = value.shape
    G, D, K = group, group_channels, kernel * kernel
    Ho = (H + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1
    Wo = (W + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1
    om = om[..., :G * K * 3].reshape(N, Ho, Wo, G, 3 * K)
    dev, dt = value.device, value.dtype
    base = (dilation * (kernel - 1)) // 2
    p0w = (base - pad + torch.arange(Wo, device=dev, dtype=dt) * stride
           - base * offset_scale).view(1, 1, Wo, 1)
    p0h = (base - pad + torch.arange(Ho, device=dev, dtype=dt) * stride
           - base * offset_scale).view(1, Ho, 1, 1)
    v = value.reshape(N, H, W, G, D).permute(0, 3, 4, 1, 2)
    v = v.reshape(N * G, D, H, W)
    out = 0
    for i in range(kernel):
        for j in range(kernel):
            k = i * kernel + j
            x = p0w + (i * dilation + om[..., 2 * k]) * offset_scale
            y = p0h + (j * dilation + om[..., 2 * k + 1]) * offset_scale
            # grid_sample, align_corners=False: pixel i at (2i + 1) / n - 1
            grid = torch.stack(((2 * x + 1) / W - 1, (2 * y + 1) / H - 1), -1)
            grid = grid.permute(0, 3, 1, 2, 4).reshape(N * G, Ho, Wo, 2)
            s = F.grid_sample(v, grid, mode="bilinear", padding_mode="zeros",
                              align_corners=False)       # N*G, D, Ho, Wo
            m = om[..., 2 * K + k].permute(0, 3, 1, 2).reshape(N * G, 1, Ho,
                                                                Wo)
            out = out + s * m
    out = out.reshape(N, G, D, Ho, Wo).permute(0, 3, 4, 1, 2)
    return out.reshape(N, Ho, Wo, G * D)


def fda_reference(value, levels, sla, points):
    """FlashDeformAttn's forward, differentiable: value (N, S, G, D), the
    levels' pixels one after another; sla (N, Q, G, L*P*3), per head the
    L*P locations (x, y) in [0, 1] then the L*P attention logits (softmax
    over all of them); output (N, Q, G*D)."""
    import torch
    import torch.nn.functional as F
    N, S, G, D = value.shape
    Q, L, P = sla.shape[1], len(levels), points
    loc = sla[..., :L * P * 2].reshape(N, Q, G, L, P, 2)
    attn = torch.softmax(sla[..., L * P * 2:L * P * 3], -1)
    attn = attn.reshape(N, Q, G, L, P)
    out, start = 0, 0
    for lvl, (h, w) in enumerate(levels):
        v = value[:, start:start + h * w].permute(0, 2, 3, 1)
        v = v.reshape(N * G, D, h, w)
        grid = (2 * loc[:, :, :, lvl] - 1).permute(0, 2, 1, 3, 4)
        s = F.grid_sample(v, grid.reshape(N * G, Q, P, 2), mode="bilinear",
                          padding_mode="zeros", align_corners=False)
        a = attn[:, :, :, lvl].permute(0, 2, 1, 3).reshape(N * G, 1, Q, P)
        out = out + (s * a).sum(-1)                       # N*G, D, Q
        start += h * w
    return out.reshape(N, G, D, Q).permute(0, 3, 1, 2).reshape(N, Q, G * D)


def relative_l2(got, want):
    got, want = got.detach().double(), want.detach().double()
    den = float(want.norm())
    return float((got - want).norm()) / den if den > 0 else float("inf")


# -------------------------------------------------------------- backends


def stub_amp(torch):
    """torch.cuda.amp's custom_fwd/custom_bwd where a newer torch dropped
    them (upstream's functions import them)."""
    amp = torch.cuda.amp
    for name in ("custom_fwd", "custom_bwd"):
        if not hasattr(amp, name):
            setattr(amp, name, lambda f=None, **_: f if f else (lambda g: g))


class Backend:
    """One extension's calls with its own launch parameters, computed
    once per shape as the checkout's Python wrappers compute them."""

    def __init__(self, impl, path):
        import torch
        self.impl = impl
        if path:
            sys.path.insert(0, path)
        stub_amp(torch)
        if impl == "upstream":
            from DCNv4 import ext
            from DCNv4.functions import dcnv4_func
            from DCNv4.functions import flash_deform_attn_func as fda_func
            from DCNv4.modules.dcnv4 import DCNv4 as module
            self.ops, self.dcn_spec = ext, dcnv4_func.findspec
            self.dcn_spec_bwd = dcnv4_func.find_spec_bwd
            self.fda_spec, self.fda_spec_bwd = fda_func.findspec, \
                fda_func.findspec_bwd
            self.module = module
        elif impl == "fork":
            from dcnv4 import ops
            from dcnv4.functions import dcnv4_func
            from dcnv4.functions import flash_deform_attn_func as fda_func
            from dcnv4.modules.dcnv4 import dcnv4 as module
            self.ops, self.dcn_spec = ops, dcnv4_func.findspec
            self.dcn_spec_bwd = dcnv4_func.find_spec_bwd
            self.fda_spec, self.fda_spec_bwd = fda_func.findspec, \
                fda_func.find_spec_bwd
            self.module = module
        else:
            self.module = None

    def dcnv4(self, n, h, w, g, d):
        """(forward(value, om), backward(value, om, grad_out))."""
        if self.impl == "torch":
            return torch_dcnv4(g, d)
        ops = self.ops
        fs, ft = self.dcn_spec(n, h, w, g, d)
        bs, bt = self.dcn_spec_bwd(n, h, w, g, d)
        conv = (3, 3, 1, 1, 1, 1, 1, 1, g, d, 1.0, DCN_IM2COL_STEP)

        def forward(value, om):
            return ops.dcnv4_forward(value, om, *conv, 0, fs, ft, False)

        def backward(value, om, grad_out):
            return ops.dcnv4_backward(value, om, *conv, grad_out, 0, bs, bt,
                                      False)
        return forward, backward

    def fda(self, n, q, g, d, shapes, starts, points):
        if self.impl == "torch":
            return torch_fda(points)
        ops = self.ops
        fs, ft = self.fda_spec(n, q, g, d)
        bs, bt = self.fda_spec_bwd(n, q, g, d)

        def forward(value, sla):
            return ops.flash_deform_attn_forward(
                value, shapes, starts, sla, FDA_IM2COL_STEP, points, fs, ft)

        def backward(value, sla, grad_out):
            return ops.flash_deform_attn_backward(
                value, shapes, starts, sla, grad_out, FDA_IM2COL_STEP, points,
                bs, bt)
        return forward, backward

    def layer(self, channels, group):
        if self.module is None:
            return TorchLayer(channels, group)
        return self.module(channels=channels, group=group)


def torch_dcnv4(g, d):
    """The PyTorch stand-in (--impl torch): the reference in float32."""
    def forward(value, om):
        return dcnv4_reference(value.float(), om.float(), g, d).to(value.dtype)

    def backward(value, om, grad_out):
        v = value.float().requires_grad_()
        o = om.float().requires_grad_()
        dcnv4_reference(v, o, g, d).backward(grad_out.float())
        return v.grad.to(value.dtype), o.grad.to(om.dtype)
    return forward, backward


def torch_fda(points):
    def forward(value, sla, levels=None):
        return fda_reference(value.float(), levels, sla.float(),
                             points).to(value.dtype)

    def backward(value, sla, grad_out, levels=None):
        v = value.float().requires_grad_()
        s = sla.float().requires_grad_()
        fda_reference(v, levels, s, points).backward(grad_out.float())
        return v.grad.to(value.dtype), s.grad.to(sla.dtype)
    return forward, backward


def TorchLayer(channels, group):
    """upstream's DCNv4 module's structure over the stand-in operator."""
    import torch

    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            k = group * 9
            self.value_proj = torch.nn.Linear(channels, channels)
            self.offset_mask = torch.nn.Linear(channels,
                                               (k * 3 + 7) // 8 * 8)
            self.output_proj = torch.nn.Linear(channels, channels)

        def forward(self, x, shape):
            n, length, c = x.shape
            h, w = shape
            v = self.value_proj(x).reshape(n, h, w, c)
            om = self.offset_mask(x).reshape(n, h, w, -1)
            y = dcnv4_reference(v.float(), om.float(), group,
                                channels // group).to(x.dtype)
            return self.output_proj(y.reshape(n, length, c))
    return Layer()


def layer_reference(layer, x64, h, w, group):
    """The layer's forward in float64 from its own weights: value and
    offset/mask projections, the operator, output projection."""
    import torch.nn.functional as F

    def linear(m, t):
        b = m.bias.double() if m.bias is not None else None
        return F.linear(t, m.weight.double(), b)
    n, length, c = x64.shape
    v = linear(layer.value_proj, x64).reshape(n, h, w, c)
    om = linear(layer.offset_mask, x64).reshape(n, h, w, -1)
    y = dcnv4_reference(v, om, group, c // group)
    return linear(layer.output_proj, y.reshape(n, length, c))


# ---------------------------------------------------------------- timing


class Timer:
    def __init__(self, torch, device, reps, kernel_time):
        self.torch, self.reps, self.kernel_time = torch, reps, kernel_time
        self.cuda = device.type == "cuda"

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def per_call(self, call, nsets):
        """Median ms of one call, each between two CUDA events, the calls
        queued back to back (the host clock on a CPU)."""
        for i in range(WARMUP):
            call(i % nsets)
        self.sync()
        marks = []
        for i in range(self.reps):
            if self.cuda:
                a = self.torch.cuda.Event(enable_timing=True)
                b = self.torch.cuda.Event(enable_timing=True)
                a.record()
                call(i % nsets)
                b.record()
            else:
                a = time.perf_counter()
                call(i % nsets)
                b = time.perf_counter()
            marks.append((a, b))
        self.sync()
        return statistics.median(a.elapsed_time(b) if self.cuda
                                 else (b - a) * 1e3 for a, b in marks)

    def kernels(self, call, nsets):
        """(median ms of one call's CUDA kernels without the zero-fills,
        kernels per call); (None, None) off a GPU or when not asked."""
        if not (self.cuda and self.kernel_time):
            return None, None
        from torch.profiler import ProfilerActivity, profile
        self.sync()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for i in range(self.reps):
                call(i % nsets)
            self.sync()
        found = sorted(k for k in kernel_events(prof)
                       if not FILL.search(k[2]))
        if not found:
            return None, None
        per_call = len(found) / self.reps
        if per_call != int(per_call):  # unequal calls: the mean
            return sum(k[1] for k in found) / self.reps, per_call
        step = int(per_call)
        sums = [sum(k[1] for k in found[i:i + step])
                for i in range(0, len(found), step)]
        return statistics.median(sums), step


    def launch_floor(self):
        """Median ms of an empty CUDA kernel (torch.cuda._sleep(0): one
        thread that reads the clock once), timed as kernels() times theirs;
        None off a GPU or when kernel times are off."""
        def empty(_):
            self.torch.cuda._sleep(0)
        if self.cuda and self.kernel_time:
            for i in range(WARMUP):
                empty(i)
        return self.kernels(empty, 1)[0]


def kernel_events(prof):
    """(start, ms, name) of every GPU kernel the profiler saw."""
    import torch
    cuda = torch.autograd.DeviceType.CUDA
    out = []
    try:
        for e in prof.profiler.kineto_results.events():
            if e.device_type() != cuda:
                continue
            if hasattr(e, "start_ns"):
                start, ms = e.start_ns(), e.duration_ns() * 1e-6
            else:
                start, ms = e.start_us(), e.duration_us() * 1e-3
            out.append((start, ms, e.name()))
    except AttributeError:
        out = []
    if not out:
        for e in prof.events():
            if e.device_type == cuda:
                out.append((e.time_range.start, e.time_range.elapsed_us()
                            * 1e-3, e.name))
    return out


def input_sets(torch, device, bytes_per_set):
    """As dcnv4-bench: one pass over the sets is 4x the larger of the L2
    cache and 64 MiB; 1 to 16 sets."""
    cache = 0
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        cache = getattr(props, "L2_cache_size", 0) or 0
    want = 4.0 * max(cache, 64 << 20)
    return max(1, min(16, math.ceil(want / bytes_per_set)))


# ------------------------------------------------------------ the child


def child(args, spec, path):
    """One (checkout, shape): every dtype and op of it, one JSON line per
    row on stdout as soon as it is measured."""
    import torch
    dev = torch.device(args.device)
    torch.manual_seed(1234)
    backend = Backend(spec["impl"], path)
    timer = Timer(torch, dev, args.reps, not args.no_kernel_time)
    base = {"impl": spec["impl"], "launches": args.reps,
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda"
            else "cpu", "torch": torch.__version__,
            "launch_floor_ms": timer.launch_floor()}
    try:
        for dtype_name in args.dtypes:
            dtype = getattr(torch, dtype_name)
            rows = (fda_rows if spec["kind"] == "fda" else core_rows)(
                args, spec, backend, timer, torch, dev, dtype)
            for row in rows:  # each row as soon as it is measured
                row = dict(base, dtype=dtype_name, **row)
                limit = args.wrong_above or WRONG_ABOVE[dtype_name]
                err = row.get("verify_error")
                row["status"] = "wrong" if err is not None and \
                    not err <= limit else "ok"
                print(json.dumps(row), flush=True)
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    except Exception as e:  # e.g. CUDA's illegal address: the parent says
        line = (str(e).strip().splitlines() or [""])[0]
        print(json.dumps({"error": f"{type(e).__name__}: {line}"[:100]}),
              flush=True)
        raise


def draw(torch, shape, dev, dtype, gen, kind):
    """Random tensors as dcnv4-bench draws them: 'value' U(-1, 1);
    ('om', 3K) offsets N(0, 1.5^2) then weights U(0, 0.25) in each group's
    3K lanes; ('sla', 2LP) locations U(0, 1) then logits N(0, 1)."""
    if kind == "value":
        t = torch.rand(shape, generator=gen, device=dev) * 2 - 1
        return t.to(dtype)
    name, split = kind
    lane = torch.arange(shape[-1], device=dev)
    if name == "om":
        lane = lane % split
        first = torch.randn(shape, generator=gen, device=dev) * 1.5
        second = torch.rand(shape, generator=gen, device=dev) * 0.25
        cut = 2 * split // 3
    else:
        first = torch.rand(shape, generator=gen, device=dev)
        second = torch.randn(shape, generator=gen, device=dev)
        cut = split
    return torch.where(lane < cut, first, second).to(dtype)


def core_rows(args, spec, backend, timer, torch, dev, dtype):
    _, n, h, w, c = spec["shape"]
    d = spec["d"]
    g = c // d
    common = {"set": spec["shape"][0], "shape": f"{n}x{h}x{w}x{c}",
              "groups_x_channels": f"{g}x{d}"}
    gen = torch.Generator(device=dev).manual_seed(h * 131 + d)
    stride = (g * 27 + 7) // 8 * 8
    es = torch.empty((), dtype=dtype).element_size()
    want_core = "core" in args.ops
    backward = want_core and not args.forward_only
    if want_core:
        fwd_bytes = es * (2 * n * h * w * c + n * h * w * stride)
        bwd_bytes = es * (3 * n * h * w * c + 2 * n * h * w * stride)
        nsets = input_sets(torch, dev, fwd_bytes
                           + (bwd_bytes if backward else 0))
        sets = [(draw(torch, (n, h, w, c), dev, dtype, gen, "value"),
                 draw(torch, (n, h, w, stride), dev, dtype, gen, ("om", 27)),
                 draw(torch, (n, h, w, c), dev, dtype, gen, "value")
                 if backward else None) for _ in range(nsets)]
        forward, back = backend.dcnv4(n, h, w, g, d)
        err = (None, None)
        if not args.no_verify:
            err = verify_core(torch, forward, back if backward else None,
                              sets[0], g, d)
        fwd = timing(timer, lambda i: forward(sets[i][0], sets[i][1]), nsets)
        yield dict(common, op="forward", verify_error=err[0],
                   input_sets=nsets, **fwd)
        if backward:
            bwd = timing(timer, lambda i: back(*sets[i]), nsets)
            yield dict(common, op="backward", verify_error=err[1],
                       input_sets=nsets, **bwd)
            yield dict(common, op="forward+backward",
                       verify_error=worst(err), input_sets=nsets,
                       **add(fwd, bwd))
        del sets
    if "layer" in args.ops:
        yield dict(common, op="layer forward",
                   **layer_row(args, backend, timer, torch, dev, dtype, gen,
                               n, h, w, c, g))


def timing(timer, call, nsets):
    ms = timer.per_call(call, nsets)
    kms, per_call = timer.kernels(call, nsets)
    return {"median_ms": ms, "kernel_ms": kms, "kernels_per_call": per_call}


def add(a, b):
    """forward+backward: the two medians added, as dcnv4-bench does."""
    k = None if a["kernel_ms"] is None or b["kernel_ms"] is None \
        else a["kernel_ms"] + b["kernel_ms"]
    per = None if k is None else a["kernels_per_call"] + b["kernels_per_call"]
    return {"median_ms": a["median_ms"] + b["median_ms"], "kernel_ms": k,
            "kernels_per_call": per}


def worst(errors):
    """The larger of (forward, backward) errors, None when not verified."""
    known = [e for e in errors if e is not None]
    return max(known) if known else None


def verify_core(torch, forward, backward, tensors, g, d):
    """Relative L2 of the extension's output and worst relative L2 of its
    gradients (None without a backward) against the float64 reference on
    the same inputs: (forward, backward)."""
    value, om, grad_out = tensors
    v64 = value.double().requires_grad_(backward is not None)
    o64 = om.double().requires_grad_(backward is not None)
    ref = dcnv4_reference(v64, o64, g, d)
    fwd_err, bwd_err = relative_l2(forward(value, om), ref), None
    if backward is not None:
        ref.backward(grad_out.double())
        gi, gom = backward(value, om, grad_out)
        bwd_err = max(relative_l2(gi, v64.grad), relative_l2(gom, o64.grad))
    del ref, v64, o64
    return fwd_err, bwd_err


def layer_row(args, backend, timer, torch, dev, dtype, gen, n, h, w, c, g):
    if os.environ.get("DCNV4_ANCHOR_TEST_CRASH") == f"{n}x{h}x{w}x{c}":
        os.kill(os.getpid(), signal.SIGSEGV)  # the runner's own test
    layer = backend.layer(c, g)
    cpu_gen = torch.Generator().manual_seed(h * 7 + c // g)
    with torch.no_grad():  # bench_layer.c's U(+-1/sqrt(fan_in)), not zeros
        for t in layer.parameters():
            fan_in = t.numel() // t.shape[0] if t.ndim > 1 else t.shape[0]
            bound = 1 / math.sqrt(fan_in)
            t.copy_(torch.rand(t.shape, generator=cpu_gen) * 2 * bound - bound)
    layer = layer.to(dev, dtype).eval()
    es = torch.empty((), dtype=dtype).element_size()
    nsets = input_sets(torch, dev, 2.0 * n * h * w * c * es)
    inputs = [draw(torch, (n, h * w, c), dev, dtype, gen, "value")
              for _ in range(nsets)]
    err = None
    with torch.no_grad():
        if not args.no_verify:
            err = relative_l2(layer(inputs[0], (h, w)),
                              layer_reference(layer, inputs[0].double(), h, w,
                                              g))
        t = timing(timer, lambda i: layer(inputs[i], (h, w)), nsets)
    return dict(t, verify_error=err, input_sets=nsets)


def fda_rows(args, spec, backend, timer, torch, dev, dtype):
    q = spec["queries"]
    n, g, d, p, lv = FDA_BATCH, FDA_GROUP, FDA_CHANNELS, FDA_POINTS, \
        FDA_LEVELS
    if dev.type != "cuda":  # bench_fda.c's CPU rows: one image
        n = 1
    s = sum(a * b for a, b in lv)
    common = {"set": "fda-detr", "shape": f"{n}x{q}x4lvl",
              "groups_x_channels": f"{g}x{d}"}
    shapes = torch.tensor(lv, dtype=torch.int64, device=dev)
    starts = torch.tensor([0] + [sum(a * b for a, b in lv[:i])
                                 for i in range(1, len(lv))],
                          dtype=torch.int64, device=dev)
    lanes = len(lv) * p
    es = torch.empty((), dtype=dtype).element_size()
    fwd_bytes = es * (n * s * g * d + n * q * g * lanes * 3 + n * q * g * d)
    bwd_bytes = es * (2 * n * s * g * d + 2 * n * q * g * lanes * 3
                      + n * q * g * d)
    backward = not args.forward_only
    nsets = input_sets(torch, dev, fwd_bytes + bwd_bytes)
    gen = torch.Generator(device=dev).manual_seed(77 + q)
    sets = [(draw(torch, (n, s, g, d), dev, dtype, gen, "value"),
             draw(torch, (n, q, g, lanes * 3), dev, dtype, gen,
                  ("sla", 2 * lanes)),
             draw(torch, (n, q, g * d), dev, dtype, gen, "value"))
            for _ in range(nsets)]
    forward, back = backend.fda(n, q, g, d, shapes, starts, p)
    if backend.impl == "torch":
        f0, b0 = forward, back
        forward = lambda v, sla: f0(v, sla, levels=lv)  # noqa: E731
        back = lambda v, sla, go: b0(v, sla, go, levels=lv)  # noqa: E731
    err = (None, None)
    if not args.no_verify:
        value, sla, grad_out = sets[0]
        v64 = value.double().requires_grad_(backward)
        s64 = sla.double().requires_grad_(backward)
        ref = fda_reference(v64, lv, s64, p)
        fwd_err, bwd_err = relative_l2(forward(value, sla), ref), None
        if backward:
            ref.backward(grad_out.double())
            gv, gs = back(value, sla, grad_out)
            bwd_err = max(relative_l2(gv, v64.grad),
                          relative_l2(gs, s64.grad))
        err = (fwd_err, bwd_err)
        del ref, v64, s64
    fwd = timing(timer, lambda i: forward(sets[i][0], sets[i][1]), nsets)
    yield dict(common, op="forward", verify_error=err[0], input_sets=nsets,
               **fwd)
    if backward:
        bwd = timing(timer, lambda i: back(*sets[i]), nsets)
        yield dict(common, op="backward", verify_error=err[1],
                   input_sets=nsets, **bwd)
        yield dict(common, op="forward+backward", verify_error=worst(err),
                   input_sets=nsets, **add(fwd, bwd))


# ------------------------------------------------------------ the parent


def plan(args):
    """The children, in dcnv4-bench's order, each with the rows it owes:
    [(spec, [(op, set, shape, GxD), ...])]."""
    jobs = []
    shapes = args.shape or [s for i, s in enumerate(PAPER_SHAPES)
                            if not args.quick or i in QUICK_SHAPES]
    core_ops = []
    if "core" in args.ops:
        core_ops = ["forward"] + ([] if args.forward_only
                                  else ["backward", "forward+backward"])
    if "layer" in args.ops:
        core_ops.append("layer forward")
    for impl in args.impl:
        if core_ops:
            for d in args.group_channels:
                for shape in shapes:
                    set_, n, h, w, c = shape
                    if c % d:
                        continue
                    owed = [(op, set_, f"{n}x{h}x{w}x{c}", f"{c // d}x{d}")
                            for op in core_ops]
                    jobs.append(({"impl": impl, "kind": "core",
                                  "shape": list(shape), "d": d}, owed))
        if "fda" in args.ops:
            n = FDA_BATCH if args.device.startswith("cuda") else 1
            for q in args.fda_queries:
                owed = [(op, "fda-detr", f"{n}x{q}x4lvl",
                         f"{FDA_GROUP}x{FDA_CHANNELS}")
                        for op in ["forward"] + (
                            [] if args.forward_only
                            else ["backward", "forward+backward"])]
                jobs.append(({"impl": impl, "kind": "fda", "queries": q},
                             owed))
    return jobs


def passthrough(args):
    out = ["--dtypes", ",".join(args.dtypes), "--ops", ",".join(args.ops),
           "--reps", str(args.reps), "--device", args.device,
           "--impl", ",".join(args.impl), "--ext-dir", args.ext_dir,
           "--work", args.work]
    for name in ("upstream", "fork"):
        if getattr(args, name):
            out += [f"--{name}", getattr(args, name)]
    if args.wrong_above is not None:
        out += ["--wrong-above", str(args.wrong_above)]
    for flag in ("forward_only", "no_kernel_time", "no_verify"):
        if getattr(args, flag):
            out.append("--" + flag.replace("_", "-"))
    return out


def run_child(args, spec, path, owed):
    """Runs one child; rows it printed, plus each owed row it did not print,
    marked crash (a signal or an error exit) or timeout."""
    env = dict(os.environ)
    env["DCNV4_ANCHOR_PATH"] = path or ""
    cmd = [sys.executable, os.path.abspath(__file__), "--child",
           json.dumps(spec)] + passthrough(args)
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True,
                           timeout=args.timeout, env=env)
        out, rc = p.stdout, p.returncode
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) \
            else (e.stdout or "")
        rc = "timeout"
    lines = [json.loads(line) for line in out.splitlines()
             if line.startswith("{")]
    got = [r for r in lines if "op" in r]
    error = [r["error"] for r in lines if "error" in r]
    if rc == "timeout":
        why = "timeout"
    elif error:
        why = f"crash ({error[0]})"
    elif rc < 0:
        why = f"crash ({signal.Signals(-rc).name})"
    elif rc:
        why = f"crash (exit status {rc})"
    else:
        why = "crash (no result)"
    seen = {(r["op"], r["set"], r["shape"], r["groups_x_channels"],
             r["dtype"]) for r in got}
    for dtype in args.dtypes:
        for op, set_, shape, config in owed:
            if (op, set_, shape, config, dtype) not in seen:
                got.append({"op": op, "set": set_, "shape": shape,
                            "groups_x_channels": config, "dtype": dtype,
                            "impl": spec["impl"], "launches": args.reps,
                            "status": why})
    return got


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    if args.child:
        child(args, json.loads(args.child),
              os.environ.get("DCNV4_ANCHOR_PATH") or None)
        return 0
    t0 = time.time()
    paths = prepare(args)
    print(f"# extensions ready: {', '.join(paths) or 'none'} "
          f"({time.time() - t0:.0f} s)", flush=True)
    if args.build_only:
        return 0 if len(paths) == len(set(args.impl) - {"torch"}) else 1
    count = bad = 0
    print(f"{'impl':<9} {'op':<17} {'set':<9} {'shape':<14} {'GxD':<6} "
          f"{'dtype':<8} {'ms':>9} {'kernel':>9} {'verify':>9} status",
          flush=True)
    with open(args.out, "w", newline="") as f:  # row by row: a timeout of
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()                          # the whole run keeps them
        for spec, owed in plan(args):
            impl = spec["impl"]
            if impl != "torch" and impl not in paths:
                got = [{"op": op, "set": s, "shape": sh,
                        "groups_x_channels": cfg, "dtype": dt, "impl": impl,
                        "status": "not built"}
                       for dt in args.dtypes for op, s, sh, cfg in owed]
            else:
                got = run_child(args, spec, paths.get(impl), owed)
            for r in got:
                count += 1
                bad += r["status"] != "ok"
                print(f"{impl:<9} {r['op']:<17} {r['set']:<9} "
                      f"{r['shape']:<14} {r['groups_x_channels']:<6} "
                      f"{r['dtype']:<8} {fmt(r.get('median_ms'), '9.4f')} "
                      f"{fmt(r.get('kernel_ms'), '9.4f')} "
                      f"{fmt(r.get('verify_error'), '9.2e')} {r['status']}",
                      flush=True)
                w.writerow({k: "" if r.get(k) is None else
                            format(r[k], ".5g") if isinstance(r[k], float)
                            else r[k] for k in FIELDS})
            f.flush()
    print(f"anchor: {args.out} ({count} rows, {bad} not ok, "
          f"{time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
