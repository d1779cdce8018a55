#!/usr/bin/env python3
"""Tests tools/convert_checkpoint.py on checkpoints written here with PyTorch.

    python3 tests/tools/test_convert.py CONVERTER [GOLDEN_DIR]

The state dicts come from a skeleton of upstream's FlashInternImage built
from torch.nn modules under upstream's attribute names (no computation,
just the parameters), filled with random values. Where GOLDEN_DIR has the
fii_* cases, the skeleton's keys and shapes are first checked against their
weights, and the converter's config against their meta.json. Exit 77 (a
skip) with a message when PyTorch or NumPy is missing.
"""

import contextlib
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import textwrap

try:
    import numpy as np
    import torch
    from torch import nn
except ImportError as exc:
    print("SKIP: test_convert needs python3-torch and python3-numpy (%s); "
          "tools/setup.sh installs them" % exc)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, summary  # noqa: E402
from fii_skeleton import BASE, Model, random_state_dict  # noqa: E402

CONVERTER = os.path.abspath(sys.argv[1])
GOLDEN = sys.argv[2] if len(sys.argv) > 2 else None



# ------------------------------------------------------------ helpers


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    meta = header.pop("__metadata__", None)
    tensors, end = {}, 0
    for key, info in header.items():
        b, e = info["data_offsets"]
        check(b == end, "%s: tensors packed in order (%s)" % (path, key))
        end = e
        tensors[key] = (info["dtype"], tuple(info["shape"]), data[b:e])
    check(end == len(data), "%s: data section fully used" % path)
    check((8 + n) % 8 == 0, "%s: data 8-byte aligned" % path)
    return meta, list(header), tensors


def run(args, separate=False):
    """Runs the converter: in this process (PyTorch loads once), or as its
    own process where the exit status or a clean sys.path matters."""
    if separate:
        p = subprocess.run([sys.executable, CONVERTER] + args,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, check=False)
        return p.returncode, p.stdout + p.stderr
    sys.path.insert(0, os.path.dirname(CONVERTER))
    import convert_checkpoint as cc  # pylint: disable=import-outside-toplevel
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            rc = cc.main(args)
        except SystemExit as exc:
            rc = exc.code
    return rc, buf.getvalue()


def check_round_trip(sd, st_path, what):
    """Every key, in order, with its shape and bit-exact float32 value."""
    meta, order, got = read_safetensors(st_path)
    check(meta == {"format": "pt"}, what + ": metadata")
    check(order == list(sd), what + ": same keys in the same order")
    for k, v in sd.items():
        if k not in got:
            continue
        dtype, shape, raw = got[k]
        check(shape == tuple(v.shape), "%s: shape of %s" % (what, k))
        if k.endswith("num_batches_tracked"):
            check(dtype == "I64" and raw == np.asarray(v.numpy(), "<i8")
                  .tobytes(), "%s: %s as I64" % (what, k))
        else:
            want = v.to(torch.float32).numpy().astype("<f4").tobytes()
            check(dtype == "F32" and raw == want,
                  "%s: %s bit-exact F32" % (what, k))


def check_config(path, want, what):
    with open(path) as f:
        got = json.load(f)
    for field, value in want.items():
        check(got.get(field) == value,
              "%s: config %s = %r (got %r)" % (what, field, value,
                                               got.get(field)))


def expect_error(args, needle, what, outputs=(), separate=False):
    rc, out = run(args, separate)
    check(rc == 1, "%s: exit status 1 (got %d: %s)" % (what, rc, out.strip()))
    check(needle in out, "%s: message names %r (got: %s)" %
          (what, needle, out.strip()))
    check(out.count("\n") == 1, "%s: one line (got: %s)" % (what, out))
    for o in outputs:
        check(not os.path.exists(o), "%s: %s not written" % (what, o))


# ------------------------------------------------------------ the tests


def test_golden_shapes(tmp):
    """The skeleton has each golden case's keys and shapes; converting it
    gives that case's config."""
    if not GOLDEN or not os.path.isdir(GOLDEN):
        print("note: no golden folder, golden-shape checks skipped")
        return
    cases = sorted(c for c in os.listdir(GOLDEN) if c.startswith("fii_"))
    check(len(cases) >= 1, "golden fii_* cases exist")
    for case in cases:
        with open(os.path.join(GOLDEN, case, "meta.json")) as f:
            cfg = json.load(f)["config"]
        _, order, golden = read_safetensors(
            os.path.join(GOLDEN, case, "weights.safetensors"))
        sd = random_state_dict(cfg, seed=len(case))
        check(list(sd) == order, case + ": skeleton keys = golden keys")
        for k in order:
            check(k in sd and tuple(sd[k].shape) == golden[k][1],
                  "%s: skeleton shape of %s" % (case, k))
        pth = os.path.join(tmp, case + ".pth")
        out = os.path.join(tmp, case + ".safetensors")
        torch.save({"model": sd, "epoch": 3}, pth)
        rc, msg = run([pth, out, "--offset-scale", str(cfg["offset_scale"])])
        check(rc == 0, "%s: converts (%s)" % (case, msg.strip()))
        if rc == 0:
            check_round_trip(sd, out, case)
            check_config(os.path.join(tmp, case + ".json"),
                         dict(cfg, img_size=224), case)
        # No released variant has 16 channels: offset_scale must be given.
        expect_error([pth, os.path.join(tmp, "x.safetensors")],
                     "--offset-scale", case + " without --offset-scale",
                     [os.path.join(tmp, "x.safetensors")])


def test_presets():
    """The converter's key list of each released variant is the skeleton's,
    and its shapes are recognised as that variant."""
    sys.path.insert(0, os.path.dirname(CONVERTER))
    import convert_checkpoint as cc  # pylint: disable=import-outside-toplevel
    # Full-size models: leave the parameters uninitialised (untouched pages
    # cost nothing), only their shapes matter.
    saved = nn.Linear.reset_parameters, nn.modules.conv._ConvNd.reset_parameters
    nn.Linear.reset_parameters = lambda self: None
    nn.modules.conv._ConvNd.reset_parameters = lambda self: None
    try:
        for name, preset in sorted(cc.PRESETS.items()):
            sd = Model(preset).state_dict()
            want = cc.expected_shapes(preset)
            check(list(want) == list(sd), "preset %s: key list" % name)
            for k, v in sd.items():
                check(want.get(k) == tuple(v.shape),
                      "preset %s: %s" % (name, k))
            inferred = cc.infer_config(sd)
            check(cc.matching_preset(inferred) == name,
                  "preset %s: recognised from shapes" % name)
            params = sum(v.numel() for k, v in sd.items()
                         if not k.endswith("num_batches_tracked"))
            print("preset %s: %d keys, %.1fM parameters" %
                  (name, len(sd), params / 1e6))
    finally:
        nn.Linear.reset_parameters, nn.modules.conv._ConvNd.reset_parameters = saved


def test_flags(tmp):
    """Every optional tensor is read off the state dict."""
    cfg = dict(BASE, channels=32, depths=[2, 1, 3, 1], groups=[2, 2, 4, 4],
               mlp_ratio=3.0, layer_scale=1e-5, post_norm=True,
               dw_kernel_size=5, mlp_fc2_bias=True, dcn_output_bias=True,
               cls_scale=2.0, num_classes=0, offset_scale=0.25)
    sd = random_state_dict(cfg, seed=5)
    pth, out = os.path.join(tmp, "flags.pth"), os.path.join(
        tmp, "flags.safetensors")
    torch.save({"model": sd}, pth)
    rc, msg = run([pth, out, "--offset-scale", "0.25"])
    check(rc == 0, "flags: converts (%s)" % msg.strip())
    if rc == 0:
        check_round_trip(sd, out, "flags")
        check_config(os.path.join(tmp, "flags.json"), cfg, "flags")
    # res_post_norm and level 2's extra norms (H/G options).
    cfg = dict(BASE, res_post_norm=True, level2_post_norm=True,
               depths=[1, 1, 3, 1], level2_post_norm_block_ids=[0, 2])
    sd = random_state_dict(cfg, seed=6)
    torch.save(sd, pth)
    out2 = os.path.join(tmp, "hg.safetensors")
    rc, msg = run([pth, out2, "--offset-scale", "1",
                   "--level2-post-norm-block-ids", "0,2"])
    check(rc == 0, "res_post_norm/level2: converts (%s)" % msg.strip())
    if rc == 0:
        check_round_trip(sd, out2, "res_post_norm/level2")
        check_config(os.path.join(tmp, "hg.json"), cfg, "res_post_norm/level2")
    expect_error([pth, os.path.join(tmp, "x.safetensors"), "--offset-scale",
                  "1"], "--level2-post-norm-block-ids",
                 "level 2 norms without their ids")
    expect_error([pth, os.path.join(tmp, "x.safetensors"), "--offset-scale",
                  "1", "--level2-post-norm-block-ids", "0,1,2"],
                 "levels.2.post_norms.2.0.weight", "one id too many")


def test_ema_and_layouts(tmp):
    sd = random_state_dict(BASE, seed=1)
    ema = random_state_dict(BASE, seed=2)
    # A class the converter cannot import (upstream saves its yacs config)
    # and one whose unpickling would run a command: both must stay inert.
    mod_dir = os.path.join(tmp, "mods")
    os.mkdir(mod_dir)
    marker = os.path.join(tmp, "payload-ran")
    with open(os.path.join(mod_dir, "fake_yacs_mod.py"), "w") as f:
        f.write(
            textwrap.dedent("""
            import os
            class CfgNode(dict):
                pass
            class Payload:
                def __init__(self, path):
                    self.path = path
                def __reduce__(self):
                    return (os.system, ("touch " + self.path,))
            """))
    sys.path.insert(0, mod_dir)
    import fake_yacs_mod  # pylint: disable=import-outside-toplevel
    node = fake_yacs_mod.CfgNode(DATA={"IMG_SIZE": 224})
    pth = os.path.join(tmp, "train.pth")
    torch.save(
        {
            "model": sd,
            "model_ema": {"module." + k: v for k, v in ema.items()},
            "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3}]},
            "epoch": 299,
            "max_accuracy": np.float64(83.4),
            "config": node,
            "payload": fake_yacs_mod.Payload(marker),
        }, pth)
    out = os.path.join(tmp, "main.safetensors")
    rc, msg = run([pth, out, "--offset-scale", "1"], separate=True)
    check(rc == 0, "training checkpoint: converts (%s)" % msg.strip())
    check(not os.path.exists(marker), "unpickling ran no foreign code")
    if rc == 0:
        check_round_trip(sd, out, "training checkpoint 'model'")
    out = os.path.join(tmp, "ema.safetensors")
    rc, msg = run([pth, out, "--offset-scale", "1", "--ema"], separate=True)
    check(rc == 0, "--ema: converts (%s)" % msg.strip())
    if rc == 0:
        check_round_trip(ema, out, "--ema 'model_ema' (module. stripped)")
    # Bare state dict, half precision (fp16 -> F32 is exact), custom config
    # path, no num_batches_tracked (optional).
    half = random_state_dict(BASE, seed=3, dtype=torch.float16)
    del half["conv_head.1.0.num_batches_tracked"]
    torch.save(half, pth)
    out, cfg_path = os.path.join(tmp, "bare.safetensors"), os.path.join(
        tmp, "other.json")
    rc, msg = run([pth, out, "--offset-scale", "1", "--config", cfg_path])
    check(rc == 0, "bare fp16: converts (%s)" % msg.strip())
    if rc == 0:
        check_round_trip(half, out, "bare fp16")
        check_config(cfg_path, BASE, "bare fp16 --config")
    # Under "module" (upstream's load_pretrained accepts it too).
    torch.save({"module": sd}, pth)
    rc, msg = run([pth, os.path.join(tmp, "m.safetensors"), "--offset-scale",
                   "1"])
    check(rc == 0, "'module' entry: converts (%s)" % msg.strip())


def test_errors(tmp):
    out = os.path.join(tmp, "err.safetensors")
    outs = [out, os.path.join(tmp, "err.json")]
    pth = os.path.join(tmp, "err.pth")
    expect_error([os.path.join(tmp, "absent.pth"), out], "no such file",
                 "missing file", outs)
    with open(pth, "wb") as f:
        f.write(b"this is not a checkpoint\n" * 10)
    expect_error([pth, out], "is not a PyTorch checkpoint", "garbage", outs,
                 separate=True)
    torch.save([1, 2, 3], pth)
    expect_error([pth, out], "not a checkpoint dict", "a list", outs)
    torch.save({"epoch": 1, "optimizer": {}}, pth)
    expect_error([pth, out], "has no model state dict", "no state dict",
                 outs)
    torch.save({"model": {"fc.weight": torch.zeros(2)}, "lr": 0.1}, pth)
    expect_error([pth, out], "patch_embed.conv2.weight", "another model",
                 outs)
    sd = random_state_dict(BASE, seed=4)
    torch.save({"model": sd}, pth)
    expect_error([pth, out, "--ema", "--offset-scale", "1"], "model_ema",
                 "--ema without EMA weights", outs)
    expect_error([pth, out, "--variant", "t"],
                 "key patch_embed.conv1.weight has shape [8, 3, 3, 3], "
                 "expected [32, 3, 3, 3]", "--variant t on other shapes",
                 outs)
    broken = dict(sd)
    del broken["levels.1.blocks.0.norm2.0.bias"]
    torch.save({"model": broken}, pth)
    expect_error([pth, out, "--offset-scale", "1"],
                 "key levels.1.blocks.0.norm2.0.bias is missing",
                 "missing key", outs)
    broken = dict(sd, **{"head.bias": torch.zeros(11)})
    torch.save({"model": broken}, pth)
    expect_error([pth, out, "--offset-scale", "1"],
                 "key head.bias has shape [11], expected [10]", "wrong shape",
                 outs)
    broken = dict(sd, **{"levels.0.blocks.0.extra.weight": torch.zeros(3)})
    torch.save({"model": broken}, pth)
    expect_error([pth, out, "--offset-scale", "1"],
                 "unexpected key levels.0.blocks.0.extra.weight",
                 "unexpected key", outs)
    broken = dict(sd)
    broken["levels.0.blocks.0.dcn.offset_mask.weight"] = torch.zeros(33, 16)
    torch.save({"model": broken}, pth)
    expect_error([pth, out, "--offset-scale", "1"], "no group count",
                 "offset_mask rows of no group count", outs)
    broken = dict(sd, **{"head.bias": torch.zeros(10, dtype=torch.int32)})
    torch.save({"model": broken}, pth)
    expect_error([pth, out, "--offset-scale", "1"], "head.bias holds",
                 "integer weights", outs)
    torch.save({"model": {}}, pth)
    expect_error([pth, out], "not a state dict", "empty state dict", outs)


def main():
    with tempfile.TemporaryDirectory(prefix="test_convert-") as tmp:
        test_golden_shapes(tmp)
        test_presets()
        test_flags(tmp)
        test_ema_and_layouts(tmp)
        test_errors(tmp)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
