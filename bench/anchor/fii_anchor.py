#!/usr/bin/env python3
"""The PyTorch anchor of dcnv4-bench's FlashInternImage rows (issue 31).

Runs upstream's classification model (OpenGVLab/DCNv4,
classification/models/flash_intern_image.py) with upstream's CUDA DCNv4
operator (DCNv4_op, built in place), in eval mode, channels-last, under
torch.no_grad(), and times the rows dcnv4-bench times, with the same keys:

  fii forward   ms per batch: CUDA events around each call, calls queued
                back to back (as dcnv4-bench's profiling markers), median
  fii latency   batch 1: host clock around one call and a synchronize
  fii stem, fii level0..3, fii head
                events between upstream's modules (patch_embed, levels[i]
                with its downsampling, conv_head + avgpool + head)

Usage (on the GPU machine, after
`cd DCNv4_op && TORCH_CUDA_ARCH_LIST=9.0 python3 setup.py build_ext --inplace`):

  python3 bench/anchor/fii_anchor.py --upstream UPSTREAM_DIR --out anchor.csv

Each (variant, batch) runs in its own process, so that an operator crash
loses only its rows (reported as failed). timm is not needed: its
trunc_normal_ and DropPath are stubbed when it is missing. --dcn-op torch
replaces the CUDA extension with a PyTorch implementation of the DCNv4
forward (grid_sample), for trying the script without a GPU (--device cpu
--tiny).
"""

import argparse
import contextlib
import copy
import csv
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
import types

DTYPES = ("float32", "float16", "bfloat16")
# dcnv4-bench's rows on a GPU: (variant, image size, batch).
FULL_ROWS = [("t", 224, 1), ("t", 224, 64), ("s", 224, 1), ("s", 224, 64),
             ("b", 224, 1), ("b", 224, 64), ("l", 384, 1), ("l", 384, 16)]
CONFIGS = {"t": "flash_intern_image_t_1k_224.yaml",
           "s": "flash_intern_image_s_1k_224.yaml",
           "b": "flash_intern_image_b_1k_224.yaml",
           "l": "flash_intern_image_l_22kto1k_384.yaml"}
# upstream's classification/config.py defaults of the options build.py reads.
DEFAULTS = {"CORE_OP": "DCNv4", "DEPTHS": [4, 4, 18, 4],
            "GROUPS": [4, 8, 16, 32], "CHANNELS": 64, "LAYER_SCALE": None,
            "OFFSET_SCALE": 1.0, "MLP_RATIO": 4.0, "POST_NORM": False,
            "RES_POST_NORM": False, "DW_KERNEL_SIZE": None,
            "USE_CLIP_PROJECTOR": False, "LEVEL2_POST_NORM": False,
            "LEVEL2_POST_NORM_BLOCK_IDS": None,
            "CENTER_FEATURE_SCALE": False, "MLP_FC2_BIAS": False,
            "DCN_OUTPUT_BIAS": False}
STAGES = ("fii stem", "fii level0", "fii level1", "fii level2", "fii level3",
          "fii head")
FIELDS = ("op", "set", "shape", "dtype", "median_ms", "images_per_s",
          "share_of_forward", "launches", "status", "device", "torch")


def parse_rows(text):
    """'t:224:1,l:384:16' -> [(variant, size, batch), ...]."""
    rows = []
    for item in text.split(","):
        m = re.fullmatch(r"([tsbl]):(\d+):(\d+)", item.strip())
        if not m or int(m.group(2)) < 1 or int(m.group(3)) < 1:
            raise argparse.ArgumentTypeError(
                f"bad row {item!r}: want VARIANT:SIZE:BATCH, e.g. t:224:64")
        rows.append((m.group(1), int(m.group(2)), int(m.group(3))))
    return rows


def parse_dtypes(text):
    names = [d.strip() for d in text.split(",") if d.strip()]
    bad = [d for d in names if d not in DTYPES]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"bad dtype list {text!r}: choose from {','.join(DTYPES)}")
    return names


def positive(text):
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return v


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream", required=True,
                   help="checkout of OpenGVLab/DCNv4 (classification/, "
                        "DCNv4_op/ with the extension built in place)")
    p.add_argument("--out", default="anchor.csv", help="CSV to write")
    p.add_argument("--rows", type=parse_rows, default=None,
                   help="VARIANT:SIZE:BATCH,... (default: dcnv4-bench's GPU "
                        "rows; --quick: T only)")
    p.add_argument("--dtypes", type=parse_dtypes, default=list(DTYPES))
    p.add_argument("--reps", type=positive, default=50,
                   help="timed calls per row (median)")
    p.add_argument("--warmup", type=positive, default=10)
    p.add_argument("--quick", action="store_true",
                   help="T only, 15 calls per row")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--dcn-op", choices=("cuda", "torch"), default="cuda",
                   help="upstream's extension, or a PyTorch DCNv4 forward "
                        "(slow; to try the script without a GPU)")
    p.add_argument("--tiny", action="store_true",
                   help="a two-block model of each preset's options, to try "
                        "the script on a CPU")
    p.add_argument("--timeout", type=positive, default=600,
                   help="seconds per (variant, batch) process")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p


# ------------------------------------------------------------ upstream


def read_config(path):
    """MODEL.FLASH_INTERN_IMAGE of one of upstream's yaml files over
    config.py's defaults (PyYAML when present, else the files' simple
    'KEY: value' subset)."""
    text = open(path).read()
    try:
        import yaml
        model = (yaml.safe_load(text) or {}).get("MODEL", {})
        section = dict(model.get("FLASH_INTERN_IMAGE", {}) or {})
    except ImportError:
        section, inside, indent = {}, False, None
        for line in text.splitlines():
            code = line.split("#", 1)[0].rstrip()
            if not code.strip():
                continue
            depth = len(code) - len(code.lstrip())
            if code.strip() == "FLASH_INTERN_IMAGE:":
                inside, indent = True, depth
                continue
            if inside and depth <= indent:
                inside = False
            if inside and ":" in code:
                key, value = code.strip().split(":", 1)
                section[key.strip()] = yaml_scalar(value.strip())
    config = dict(DEFAULTS)
    for key, value in section.items():
        if isinstance(value, str) and key not in ("CORE_OP",):
            value = yaml_scalar(value)
        config[key] = value
    return config


def yaml_scalar(v):
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none", "~", ""):
        return None
    if v.startswith("[") and v.endswith("]"):
        return [yaml_scalar(x.strip()) for x in v[1:-1].split(",") if x.strip()]
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        return v[1:-1]
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return v


def stub_imports(dcn_op):
    """timm's two names that upstream's model imports; torch.cuda.amp's
    custom_fwd/custom_bwd where a newer torch dropped them; and, with
    dcn_op 'torch', a PyTorch stand-in for the compiled DCNv4.ext."""
    import torch
    try:
        import timm.models.layers  # noqa: F401
    except ImportError:
        class DropPath(torch.nn.Module):
            def __init__(self, drop_prob=0.0):
                super().__init__()
                self.drop_prob = drop_prob

            def forward(self, x):
                if self.drop_prob == 0.0 or not self.training:
                    return x
                keep = 1 - self.drop_prob
                mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1))
                return x * mask.bernoulli_(keep) / keep

        layers = types.ModuleType("timm.models.layers")
        layers.DropPath = DropPath
        layers.trunc_normal_ = torch.nn.init.trunc_normal_
        models = types.ModuleType("timm.models")
        models.layers = layers
        timm = types.ModuleType("timm")
        timm.models = models
        sys.modules.update({"timm": timm, "timm.models": models,
                            "timm.models.layers": layers})
    amp = torch.cuda.amp
    for name in ("custom_fwd", "custom_bwd"):
        if not hasattr(amp, name):
            setattr(amp, name, lambda f=None, **_: f if f else (lambda g: g))
    if not torch.cuda.is_available():
        # DCNv4's FlashDeformAttn module reads the GPU's compute capability
        # when it is imported; any listed one does for a CPU run.
        torch.cuda.get_device_properties = \
            lambda *_: types.SimpleNamespace(major=9, minor=0)
    if dcn_op == "torch":
        ext = types.ModuleType("DCNv4.ext")
        ext.dcnv4_forward = dcnv4_forward_torch
        sys.modules["DCNv4.ext"] = ext


def dcnv4_forward_torch(value, offset_mask, kh, kw, sh, sw, ph, pw, dh, dw,
                        group, group_channels, offset_scale, im2col_step,
                        remove_center, d_stride=None, block_thread=None,
                        softmax=False):
    """DCNv4's forward (the extension's argument list) with grid_sample:
    value (N, H, W, G*D); offset_mask (N, Ho, Wo, >= G*K*3), per group K
    (x, y) offsets then K weights, points x-major; bilinear sampling with
    zeros outside."""
    import torch
    import torch.nn.functional as F
    N, H, W, _ = value.shape
    G, D = group, group_channels
    Ho = (H + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    Wo = (W + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    points = [(i, j) for i in range(kw) for j in range(kh)
              if not (remove_center and i == kw // 2 and j == kh // 2)]
    K = len(points)
    om = offset_mask[..., :G * K * 3].float().reshape(N, Ho, Wo, G, 3 * K)
    off = om[..., :2 * K].reshape(N, Ho, Wo, G, K, 2)
    m = om[..., 2 * K:]
    if softmax:
        m = m.softmax(-1)
    dev = value.device
    base_w = (dw * (kw - 1)) // 2
    base_h = (dh * (kh - 1)) // 2
    wo = torch.arange(Wo, device=dev, dtype=torch.float32)
    ho = torch.arange(Ho, device=dev, dtype=torch.float32)
    p0w = base_w - pw + wo * sw - base_w * offset_scale   # (Wo,)
    p0h = base_h - ph + ho * sh - base_h * offset_scale   # (Ho,)
    pi = torch.tensor([p[0] for p in points], device=dev, dtype=torch.float32)
    pj = torch.tensor([p[1] for p in points], device=dev, dtype=torch.float32)
    x = p0w.view(1, 1, Wo, 1, 1) + (pi * dw + off[..., 0]) * offset_scale
    y = p0h.view(1, Ho, 1, 1, 1) + (pj * dh + off[..., 1]) * offset_scale
    # grid_sample, align_corners=False: pixel centre i at (2i + 1) / n - 1
    gx = (2 * x + 1) / W - 1
    gy = (2 * y + 1) / H - 1
    grid = torch.stack((gx, gy), -1)                      # N,Ho,Wo,G,K,2
    grid = grid.permute(0, 3, 1, 2, 4, 5).reshape(N * G, Ho, Wo * K, 2)
    v = value.float().reshape(N, H, W, G, D).permute(0, 3, 4, 1, 2)
    v = v.reshape(N * G, D, H, W)
    s = F.grid_sample(v, grid, mode="bilinear", padding_mode="zeros",
                      align_corners=False)               # N*G, D, Ho, Wo*K
    s = s.reshape(N, G, D, Ho, Wo, K)
    w = m.permute(0, 3, 1, 2, 4).unsqueeze(2)             # N, G, 1, Ho, Wo, K
    out = (s * w).sum(-1)                                 # N, G, D, Ho, Wo
    out = out.permute(0, 3, 4, 1, 2).reshape(N, Ho, Wo, G * D)
    return out.to(value.dtype)


def build_model(upstream, variant, tiny):
    import torch
    config = read_config(os.path.join(upstream, "classification", "configs",
                                      CONFIGS[variant]))
    if tiny:
        config["DEPTHS"] = [1, 1, 1, 1]
    from models.flash_intern_image import FlashInternImage
    # upstream's constructor prints its options
    with contextlib.redirect_stdout(sys.stderr):
        model = FlashInternImage(
            core_op=config["CORE_OP"], num_classes=1000,
            channels=config["CHANNELS"], depths=config["DEPTHS"],
            groups=config["GROUPS"], layer_scale=config["LAYER_SCALE"],
            offset_scale=config["OFFSET_SCALE"],
            post_norm=config["POST_NORM"], mlp_ratio=config["MLP_RATIO"],
            with_cp=False, drop_path_rate=0.0,
            mlp_fc2_bias=config["MLP_FC2_BIAS"],
            dcn_output_bias=config["DCN_OUTPUT_BIAS"],
            res_post_norm=config["RES_POST_NORM"],
            dw_kernel_size=config["DW_KERNEL_SIZE"],
            use_clip_projector=config["USE_CLIP_PROJECTOR"],
            level2_post_norm=config["LEVEL2_POST_NORM"],
            level2_post_norm_block_ids=config["LEVEL2_POST_NORM_BLOCK_IDS"],
            center_feature_scale=config["CENTER_FEATURE_SCALE"])
    randomize(model, torch.Generator().manual_seed(ord(variant)))
    return model.eval()


def randomize(model, gen):
    """Random weights drawn as dcnv4-bench draws them (upstream's own init
    zeroes the offset/mask projections, which would make every sample land
    on the grid): matrices U(+-0.5 sqrt(3/fan_in)), biases U(+-0.2), norm
    weights U(0.5, 1.5), layer scales U(0.3, 0.8), running means U(+-0.3),
    running variances U(0.5, 1.5)."""
    import torch

    def uniform(t, lo, hi):
        t.copy_(torch.rand(t.shape, generator=gen) * (hi - lo) + lo)

    with torch.no_grad():
        for name, t in list(model.named_parameters()) + \
                list(model.named_buffers()):
            if not t.is_floating_point():
                continue
            leaf = name.rsplit(".", 1)[-1]
            if t.ndim > 1:
                bound = 0.5 * math.sqrt(3.0 / (t.numel() // t.shape[0]))
                uniform(t, -bound, bound)
            elif leaf in ("gamma1", "gamma2"):
                uniform(t, 0.3, 0.8)
            elif leaf == "running_mean":
                uniform(t, -0.3, 0.3)
            elif leaf in ("running_var", "weight"):
                uniform(t, 0.5, 1.5)
            else:
                uniform(t, -0.2, 0.2)


# ------------------------------------------------------------ timing


class Clock:
    """CUDA events on a GPU, the host clock on a CPU."""

    def __init__(self, device):
        import torch
        self.torch = torch
        self.cuda = device.startswith("cuda")

    def mark(self):
        if self.cuda:
            e = self.torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def ms(self, a, b):
        return a.elapsed_time(b) if self.cuda else (b - a) * 1e3


def stages_forward(model, x, clock):
    """upstream's forward_features + head, a mark at each stage boundary."""
    import torch
    marks = [clock.mark()]
    x = model.patch_embed(x)
    N, H, W, C = x.shape
    x = x.view(N, H * W, C)
    shape = (H, W)
    marks.append(clock.mark())
    for level in model.levels:
        x, shape = level(x, shape=shape)
        marks.append(clock.mark())
    h, w = shape
    x = x.view(N, h, w, -1)
    x = model.conv_head(x.permute(0, 3, 1, 2))
    x = model.avgpool(x)
    x = model.head(torch.flatten(x, 1))
    marks.append(clock.mark())
    return x, marks


def time_row(model, x, clock, reps, warmup):
    """(forward ms, per-stage ms, sync ms) medians."""
    for _ in range(warmup):
        model(x)
    clock.sync()
    pairs = []
    for _ in range(reps):
        a = clock.mark()
        model(x)
        pairs.append((a, clock.mark()))
    clock.sync()
    forward = statistics.median(clock.ms(a, b) for a, b in pairs)
    runs = []
    for i in range(warmup + reps):
        _, marks = stages_forward(model, x, clock)
        if i >= warmup:
            runs.append(marks)
    clock.sync()
    stages = [statistics.median(clock.ms(m[s], m[s + 1]) for m in runs)
              for s in range(len(STAGES))]
    sync = []
    for _ in range(reps):
        t0 = time.perf_counter()
        model(x)
        clock.sync()
        sync.append((time.perf_counter() - t0) * 1e3)
    return forward, stages, statistics.median(sync)


def child(args, variant, size, batch):
    """One (variant, batch), every dtype: rows as JSON lines on stdout."""
    sys.path.insert(0, os.path.join(args.upstream, "DCNv4_op"))
    sys.path.insert(0, os.path.join(args.upstream, "classification"))
    stub_imports(args.dcn_op)
    import torch
    torch.backends.cudnn.benchmark = True
    dev = torch.device(args.device)
    master = build_model(args.upstream, variant, args.tiny)
    clock = Clock(args.device)
    gen = torch.Generator().manual_seed(size * 31 + batch)
    image = torch.rand((batch, 3, size, size), generator=gen) * 4 - 2
    shape = f"{batch}x3x{size}x{size}"
    for dtype in args.dtypes:
        base = {"set": f"fii-{variant}", "shape": shape, "dtype": dtype,
                "launches": args.reps, "device": device_name(torch, dev),
                "torch": torch.__version__}
        try:
            model = copy.deepcopy(master).to(dev, getattr(torch, dtype))
            model = model.to(memory_format=torch.channels_last)
            x = image.to(dev, getattr(torch, dtype)).contiguous(
                memory_format=torch.channels_last)
            with torch.no_grad():
                if not torch.isfinite(model(x).float()).all():
                    raise RuntimeError("non-finite logits")
                fwd, stages, sync = time_row(model, x, clock, args.reps,
                                             args.warmup)
            del model, x
            rows = [dict(base, op="fii forward", median_ms=fwd,
                         images_per_s=batch / fwd * 1e3)]
            if batch == 1:
                rows.append(dict(base, op="fii latency", median_ms=sync,
                                 images_per_s=batch / sync * 1e3))
            total = sum(stages)
            rows += [dict(base, op=name, median_ms=ms,
                          share_of_forward=ms / total if total else 0)
                     for name, ms in zip(STAGES, stages)]
        except Exception as e:  # a failed row is reported, the rest go on
            print(f"fii-{variant} {shape} {dtype}: {e}", file=sys.stderr)
            rows = [dict(base, op="fii forward", status=f"failed: {e}")]
        for r in rows:
            r.setdefault("status", "ok")
            print(json.dumps(r), flush=True)
        if dev.type == "cuda":
            torch.cuda.empty_cache()


def device_name(torch, dev):
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return "cpu"


def main(argv=None):
    args = make_parser().parse_args(argv)
    if args.quick and args.reps == 50:
        args.reps = 15
    rows = args.rows or [r for r in FULL_ROWS if not args.quick or r[0] == "t"]
    if not os.path.isdir(os.path.join(args.upstream, "classification",
                                      "models")):
        sys.exit(f"fii_anchor: {args.upstream} has no classification/models "
                 "(want a checkout of OpenGVLab/DCNv4)")
    if args.child:
        v, size, batch = parse_rows(args.child)[0]
        child(args, v, size, batch)
        return 0
    out_rows, failures = [], 0
    for variant, size, batch in rows:
        cmd = [sys.executable, os.path.abspath(__file__),
               "--child", f"{variant}:{size}:{batch}"] + passthrough(args)
        t0 = time.time()
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True,
                               timeout=args.timeout)
            got = [json.loads(line) for line in p.stdout.splitlines()
                   if line.startswith("{")]
            why = f"exit status {p.returncode}" if p.returncode else ""
        except subprocess.TimeoutExpired:
            got, why = [], f"timed out after {args.timeout} s"
        seen = {r["dtype"] for r in got}
        for dtype in args.dtypes:  # a crash loses its rows: say so
            if dtype not in seen:
                got.append({"op": "fii forward", "set": f"fii-{variant}",
                            "shape": f"{batch}x3x{size}x{size}",
                            "dtype": dtype, "launches": args.reps,
                            "status": f"failed: {why or 'no result'}"})
        for r in got:
            failures += r["status"] != "ok"
            print(f"{r['op']:<12} {r['set']:<6} {r['shape']:<14} "
                  f"{r['dtype']:<9} {fmt(r.get('median_ms'), '9.3f')} ms "
                  f"{fmt(r.get('images_per_s'), '9.1f')} img/s "
                  f"{fmt(r.get('share_of_forward'), '6.3f')} {r['status']}",
                  flush=True)
        out_rows += got
        print(f"# fii-{variant} {batch}x{size}: {time.time() - t0:.0f} s",
              flush=True)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in out_rows:
            w.writerow({k: fmt(r.get(k), ".5f") if isinstance(r.get(k), float)
                        else r.get(k, "") for k in FIELDS})
    print(f"anchor: {args.out} ({len(out_rows)} rows, {failures} failed)")
    return 1 if failures else 0


def passthrough(args):
    out = ["--upstream", args.upstream, "--dtypes", ",".join(args.dtypes),
           "--reps", str(args.reps), "--warmup", str(args.warmup),
           "--device", args.device, "--dcn-op", args.dcn_op]
    return out + (["--tiny"] if args.tiny else [])


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


if __name__ == "__main__":
    sys.exit(main())
