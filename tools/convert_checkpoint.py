#!/usr/bin/env python3
"""Converts an official FlashInternImage checkpoint to the library's files.

    python3 tools/convert_checkpoint.py CHECKPOINT.pth OUT.safetensors
        [--variant t|s|b|l] [--ema] [--config OUT.json]
        [--offset-scale X] [--level2-post-norm-block-ids I,J,...]

Reads a PyTorch checkpoint (the state dict under "model", "module" or bare;
with --ema the EMA weights under "model_ema", as upstream's training script
saves them), checks every key and shape against the FlashInternImage model
the weights describe, and writes

  OUT.safetensors  the state dict under upstream's key names, floats as F32,
                   BatchNorm's num_batches_tracked as a 0-d I64 (the library
                   ignores it), header metadata {"format": "pt"};
  OUT.json         the model's constructor options (the "config" object of
                   the golden cases' meta.json) plus "img_size", the
                   resolution the variant was trained at (the --config path
                   overrides where it goes).

The configuration is the preset of --variant, or else it is read off the
shapes (channels, depths, groups, MLP ratio, head width, classes, which
optional tensors exist). offset_scale and the ids of level 2's extra norms
are not stored in the weights: they come from the released variant the
shapes match, or from --offset-scale / --level2-post-norm-block-ids.

Only objects the state dict needs are unpickled (tensors, dicts, numbers);
other classes in the file (a yacs config, an optimizer's state) load as
inert placeholders, so no code of theirs runs and their packages need not
be installed. Needs python3-torch and python3-numpy. Exit status 0 on
success, 1 on any error (one line on stderr; no file is written).
"""

import argparse
import collections
import json
import math
import os
import pickle
import re
import struct
import sys
import tempfile
import types

try:
    import numpy  # noqa: F401  (Tensor.numpy() needs it)
    import torch
except ImportError as exc:  # pragma: no cover - depends on the machine
    sys.stderr.write(
        "convert_checkpoint: needs PyTorch and NumPy (Debian: apt-get install "
        "python3-torch python3-numpy): %s\n" % exc)
    sys.exit(1)


class ConvertError(Exception):
    """An error the user can act on; printed as one line."""


# ------------------------------------------------------------- presets

# Upstream's classification/configs/flash_intern_image_*.yaml over
# config.py's defaults (FlashInternImage's cls_scale default 1.5).
_BASE = {
    "mlp_ratio": 4.0,
    "layer_scale": None,
    "post_norm": False,
    "dw_kernel_size": None,
    "res_post_norm": False,
    "center_feature_scale": False,
    "level2_post_norm": False,
    "level2_post_norm_block_ids": None,
    "mlp_fc2_bias": False,
    "dcn_output_bias": False,
    "cls_scale": 1.5,
    "num_classes": 1000,
    "act_layer": "GELU",
    "norm_layer": "LN",
}
PRESETS = {
    "t": dict(_BASE, channels=64, depths=[4, 4, 18, 4], groups=[4, 8, 16, 32],
              offset_scale=1.0, img_size=224),
    "s": dict(_BASE, channels=80, depths=[4, 4, 21, 4],
              groups=[5, 10, 20, 40], offset_scale=1.0, layer_scale=1e-5,
              post_norm=True, dw_kernel_size=3, img_size=224),
    "b": dict(_BASE, channels=112, depths=[4, 4, 21, 4],
              groups=[7, 14, 28, 56], offset_scale=0.5, layer_scale=1e-5,
              post_norm=True, dw_kernel_size=3, img_size=224),
    "l": dict(_BASE, channels=160, depths=[5, 5, 22, 5],
              groups=[10, 20, 40, 80], offset_scale=2.0, layer_scale=1e-5,
              post_norm=True, dw_kernel_size=3, mlp_fc2_bias=True,
              dcn_output_bias=True, img_size=384),
}
# Field order of the written JSON (the golden meta.json "config" object).
CONFIG_FIELDS = [
    "channels", "depths", "groups", "mlp_ratio", "offset_scale",
    "layer_scale", "post_norm", "dw_kernel_size", "res_post_norm",
    "center_feature_scale", "level2_post_norm", "level2_post_norm_block_ids",
    "mlp_fc2_bias", "dcn_output_bias", "cls_scale", "num_classes",
    "act_layer", "norm_layer", "img_size"
]
# What the shapes say; a preset matches when these agree.
STRUCTURAL = [
    "channels", "depths", "groups", "mlp_ratio", "post_norm",
    "dw_kernel_size", "res_post_norm", "center_feature_scale",
    "level2_post_norm", "mlp_fc2_bias", "dcn_output_bias"
]


def offset_mask_rows(groups):
    """DCNv4's offset_mask width: 3 values per point, 9 points per group,
    rounded up to a multiple of 8."""
    return int(math.ceil(groups * 9 * 3 / 8) * 8)


def expected_shapes(cfg):
    """Every state-dict key of upstream's model for cfg, with its shape."""
    c0 = cfg["channels"]
    keys = collections.OrderedDict()

    def linear(prefix, out_f, in_f, bias=True):
        keys[prefix + ".weight"] = (out_f, in_f)
        if bias:
            keys[prefix + ".bias"] = (out_f,)

    def norm(prefix, dim):
        keys[prefix + ".weight"] = (dim,)
        keys[prefix + ".bias"] = (dim,)

    keys["patch_embed.conv1.weight"] = (c0 // 2, 3, 3, 3)
    keys["patch_embed.conv1.bias"] = (c0 // 2,)
    norm("patch_embed.norm1.1", c0 // 2)
    keys["patch_embed.conv2.weight"] = (c0, c0 // 2, 3, 3)
    keys["patch_embed.conv2.bias"] = (c0,)
    norm("patch_embed.norm2.1", c0)
    dw = cfg["dw_kernel_size"]
    for lvl in range(4):
        ch = c0 * 2**lvl
        hidden = int(ch * cfg["mlp_ratio"])
        for b in range(cfg["depths"][lvl]):
            p = "levels.%d.blocks.%d." % (lvl, b)
            if cfg["layer_scale"] is not None:
                keys[p + "gamma1"] = (ch,)
                keys[p + "gamma2"] = (ch,)
            norm(p + "norm1.0", ch)
            if dw is not None:
                keys[p + "dcn.offset_mask_dw.weight"] = (ch, 1, dw, dw)
                keys[p + "dcn.offset_mask_dw.bias"] = (ch,)
            linear(p + "dcn.offset_mask", offset_mask_rows(cfg["groups"][lvl]),
                   ch)
            linear(p + "dcn.value_proj", ch, ch)
            linear(p + "dcn.output_proj", ch, ch, cfg["dcn_output_bias"])
            norm(p + "norm2.0", ch)
            linear(p + "mlp.fc1", hidden, ch)
            linear(p + "mlp.fc2", ch, hidden, cfg["mlp_fc2_bias"])
            if cfg["res_post_norm"]:
                norm(p + "res_post_norm1.0", ch)
                norm(p + "res_post_norm2.0", ch)
        p = "levels.%d." % lvl
        if not cfg["post_norm"] or cfg["center_feature_scale"]:
            norm(p + "norm.0", ch)
        if lvl == 2 and cfg["level2_post_norm"]:
            for i in range(len(cfg["level2_post_norm_block_ids"] or [])):
                norm(p + "post_norms.%d.0" % i, ch)
        if lvl < 3:
            keys[p + "downsample.conv.weight"] = (2 * ch, ch, 3, 3)
            norm(p + "downsample.norm.1", 2 * ch)
    features = c0 * 8
    width = int(features * cfg["cls_scale"])
    keys["conv_head.0.weight"] = (width, features, 1, 1)
    norm("conv_head.1.0", width)
    keys["conv_head.1.0.running_mean"] = (width,)
    keys["conv_head.1.0.running_var"] = (width,)
    keys["conv_head.1.0.num_batches_tracked"] = ()
    if cfg["num_classes"] > 0:
        linear("head", cfg["num_classes"], width)
    return keys


# ------------------------------------------------------------- loading


class _Placeholder(dict):
    """Stands for any class the state dict does not need."""

    def __init__(self, *args, **kwargs):  # pylint: disable=unused-argument
        super().__init__()

    def __setstate__(self, state):
        self.state = state


_ALLOWED = {
    "collections": {"OrderedDict"},
    "torch._utils": {
        "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter",
        "_rebuild_parameter_with_state"
    },
    "torch._tensor": {"_rebuild_from_type_v2"},
    "torch": {
        "Size", "device", "float32", "float16", "bfloat16", "float64",
        "int64", "int32", "uint8", "bool"
    },
    "torch.serialization": {"_get_layout"},
    "builtins": {
        "set", "frozenset", "slice", "range", "complex", "bytearray", "dict",
        "list", "tuple", "int", "float", "str", "bytes", "bool"
    },
    "_codecs": {"encode"},
    "numpy": {"dtype", "ndarray"},
    "numpy.core.multiarray": {"scalar", "_reconstruct"},
}


class _Unpickler(pickle.Unpickler):

    def find_class(self, module, name):
        if name in _ALLOWED.get(module, ()):
            try:
                return super().find_class(module, name)
            except (ImportError, AttributeError):
                pass
        return type(name, (_Placeholder,), {"__module__": "placeholder"})


def _pickle_module():
    """pickle, with the restricted Unpickler (what torch.load needs of a
    pickle module)."""
    mod = types.ModuleType("convert_checkpoint_pickle")
    mod.__dict__.update(
        (k, v) for k, v in vars(pickle).items() if not k.startswith("__"))
    mod.Unpickler = _Unpickler
    mod.load = lambda f, **kwargs: _Unpickler(f, **kwargs).load()
    return mod


def load_checkpoint(path):
    if not os.path.isfile(path):
        raise ConvertError("%s: no such file" % path)
    module = _pickle_module()
    # PyTorch 1.13's torch.load replaces a pickle_module argument by its
    # module-level pickle unless weights_only is set: swap that too.
    saved = torch.serialization.pickle
    torch.serialization.pickle = module
    try:
        return torch.load(path, map_location="cpu", pickle_module=module)
    except Exception as exc:  # any failure means it is not a checkpoint
        raise ConvertError("%s is not a PyTorch checkpoint (%s: %s)" %
                           (path, type(exc).__name__, exc)) from None
    finally:
        torch.serialization.pickle = saved


def is_state_dict(obj):
    return (isinstance(obj, dict) and len(obj) > 0 and
            all(isinstance(k, str) for k in obj) and
            all(isinstance(v, torch.Tensor) for v in obj.values()))


def pick_state_dict(ckpt, path, ema):
    if not isinstance(ckpt, dict):
        raise ConvertError("%s holds a %s, not a checkpoint dict" %
                           (path, type(ckpt).__name__))
    top = ", ".join(sorted(str(k) for k in ckpt)[:8]) or "none"
    if ema:
        if "model_ema" not in ckpt:
            raise ConvertError("%s has no EMA weights ('model_ema'; "
                               "top-level keys: %s)" % (path, top))
        sd, where = ckpt["model_ema"], "model_ema"
    elif is_state_dict(ckpt):
        sd, where = ckpt, "the file itself"
    else:
        for key in ("model", "module", "state_dict"):
            if key in ckpt:
                sd, where = ckpt[key], key
                break
        else:
            raise ConvertError("%s has no model state dict (no 'model' or "
                               "'module' entry, and it is not a bare state "
                               "dict; top-level keys: %s)" % (path, top))
    if not is_state_dict(sd):
        raise ConvertError("%s: '%s' is not a state dict of tensors" %
                           (path, where))
    # DistributedDataParallel saves under "module.".
    if all(k.startswith("module.") for k in sd):
        sd = collections.OrderedDict(
            (k[len("module."):], v) for k, v in sd.items())
    return sd


# ------------------------------------------------------------- inference


def _shape(sd, key):
    if key not in sd:
        raise ConvertError("not a FlashInternImage state dict: key %s is "
                           "missing" % key)
    return tuple(sd[key].shape)


def infer_config(sd):
    """The constructor options the shapes imply (offset_scale and the
    level-2 norm ids excepted: the weights do not hold them)."""
    c0 = _shape(sd, "patch_embed.conv2.weight")[0]
    depths, groups, hidden = [], [], []
    for lvl in range(4):
        ids = set()
        pat = re.compile(r"levels\.%d\.blocks\.(\d+)\." % lvl)
        for k in sd:
            m = pat.match(k)
            if m:
                ids.add(int(m.group(1)))
        if not ids:
            raise ConvertError("not a FlashInternImage state dict: level %d "
                               "has no blocks (levels.%d.blocks.0.*)" %
                               (lvl, lvl))
        depths.append(max(ids) + 1)
        p = "levels.%d.blocks.0." % lvl
        rows = _shape(sd, p + "dcn.offset_mask.weight")[0]
        g = [n for n in range(1, rows + 1) if offset_mask_rows(n) == rows]
        if not g:
            raise ConvertError("%sdcn.offset_mask.weight has %d rows, which "
                               "is no group count's (ceil(27 G / 8) * 8)" %
                               (p, rows))
        groups.append(g[0])
        hidden.append(_shape(sd, p + "mlp.fc1.weight")[0])
    b0 = "levels.0.blocks.0."
    dw_key = b0 + "dcn.offset_mask_dw.weight"
    post_norm = "levels.0.norm.0.weight" not in sd
    l2_norms = set()
    for k in sd:
        m = re.match(r"levels\.2\.post_norms\.(\d+)\.", k)
        if m:
            l2_norms.add(int(m.group(1)))
    features = c0 * 8
    width = _shape(sd, "conv_head.0.weight")[0]
    cfg = dict(
        _BASE,
        channels=c0,
        depths=depths,
        groups=groups,
        mlp_ratio=hidden[0] / c0,
        offset_scale=None,
        layer_scale=1e-5 if b0 + "gamma1" in sd else None,
        post_norm=post_norm,
        dw_kernel_size=_shape(sd, dw_key)[-1] if dw_key in sd else None,
        res_post_norm=b0 + "res_post_norm1.0.weight" in sd,
        center_feature_scale=False,
        level2_post_norm=bool(l2_norms),
        level2_post_norm_block_ids=None,
        mlp_fc2_bias=b0 + "mlp.fc2.bias" in sd,
        dcn_output_bias=b0 + "dcn.output_proj.bias" in sd,
        cls_scale=width / features,
        num_classes=_shape(sd, "head.weight")[0] if "head.weight" in sd else 0,
        img_size=224,
    )
    cfg["_level2_norm_count"] = len(l2_norms)
    return cfg


def matching_preset(cfg):
    for name, preset in PRESETS.items():
        if all(preset[f] == cfg[f] for f in STRUCTURAL) and (
                preset["layer_scale"] is None) == (cfg["layer_scale"] is None):
            return name
    return None


def build_config(sd, args):
    if args.variant:
        cfg = dict(PRESETS[args.variant])
    else:
        cfg = infer_config(sd)
        name = matching_preset(cfg)
        if name:
            cfg["offset_scale"] = PRESETS[name]["offset_scale"]
            cfg["img_size"] = PRESETS[name]["img_size"]
    if args.offset_scale is not None:
        cfg["offset_scale"] = args.offset_scale
    if cfg["offset_scale"] is None:
        raise ConvertError("the shapes match no released variant and "
                           "offset_scale is not stored in the weights: pass "
                           "--offset-scale (t, s: 1.0, b: 0.5, l: 2.0)")
    if args.level2_post_norm_block_ids is not None:
        cfg["level2_post_norm"] = True
        cfg["level2_post_norm_block_ids"] = args.level2_post_norm_block_ids
    elif cfg.get("_level2_norm_count"):
        raise ConvertError("level 2 has %d extra norms (levels.2.post_norms.*)"
                           " whose block ids the weights do not hold: pass "
                           "--level2-post-norm-block-ids" %
                           cfg["_level2_norm_count"])
    cfg.pop("_level2_norm_count", None)
    for lvl in range(4):
        ch = cfg["channels"] * 2**lvl
        if ch % cfg["groups"][lvl]:
            raise ConvertError("level %d: %d channels do not split into %d "
                               "groups" % (lvl, ch, cfg["groups"][lvl]))
    ids = cfg["level2_post_norm_block_ids"] or []
    if any(i < 0 or i >= cfg["depths"][2] for i in ids):
        raise ConvertError("--level2-post-norm-block-ids: level 2 has %d "
                           "blocks" % cfg["depths"][2])
    return cfg


def check_keys(sd, cfg, what):
    expected = expected_shapes(cfg)
    for key, shape in expected.items():
        if key not in sd:
            if key.endswith("num_batches_tracked"):
                continue  # optional: eval ignores it
            raise ConvertError("%s: key %s is missing" % (what, key))
        got = tuple(sd[key].shape)
        if got != shape:
            raise ConvertError("%s: key %s has shape %s, expected %s" %
                               (what, key, list(got), list(shape)))
    for key in sd:
        if key not in expected:
            raise ConvertError("%s: unexpected key %s" % (what, key))


# ------------------------------------------------------------- writing


def to_bytes(key, tensor):
    t = tensor.detach().cpu().contiguous()
    if key.endswith("num_batches_tracked"):
        return "I64", t.to(torch.int64).numpy().astype("<i8").tobytes()
    if not t.is_floating_point():
        raise ConvertError("key %s holds %s, not floats" % (key, t.dtype))
    return "F32", t.to(torch.float32).numpy().astype("<f4").tobytes()


def _write_atomic(path, write):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".convert-")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_safetensors(path, sd):
    header = collections.OrderedDict()
    header["__metadata__"] = {"format": "pt"}
    blobs, offset = [], 0
    for key, tensor in sd.items():
        dtype, data = to_bytes(key, tensor)
        header[key] = {
            "dtype": dtype,
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(data)]
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # data starts 8-byte aligned

    def write(f):
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)

    _write_atomic(path, write)


def write_config(path, cfg):
    ordered = collections.OrderedDict((f, cfg[f]) for f in CONFIG_FIELDS)
    text = (json.dumps(ordered, indent=1) + "\n").encode("utf-8")
    _write_atomic(path, lambda f: f.write(text))


# ------------------------------------------------------------- main


def _block_ids(text):
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            "expected comma-separated block indices") from None


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="convert_checkpoint.py",
        description="FlashInternImage .pth checkpoint -> safetensors + "
        "config JSON for dcnv4.")
    ap.add_argument("checkpoint", help="official checkpoint (.pth)")
    ap.add_argument("output", help="safetensors file to write")
    ap.add_argument("--variant", choices=sorted(PRESETS),
                    help="the released variant (default: read off the shapes)")
    ap.add_argument("--ema", action="store_true",
                    help="convert the EMA weights ('model_ema')")
    ap.add_argument("--config", metavar="JSON",
                    help="where the config goes (default: OUTPUT with .json)")
    ap.add_argument("--offset-scale", type=float,
                    help="the DCNv4 offset_scale (not stored in weights)")
    ap.add_argument("--level2-post-norm-block-ids", type=_block_ids,
                    metavar="I,J,...",
                    help="level 2 blocks followed by an extra norm (H/G)")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    config_path = args.config
    if config_path is None:
        base = args.output
        if base.endswith(".safetensors"):
            base = base[:-len(".safetensors")]
        config_path = base + ".json"
    try:
        ckpt = load_checkpoint(args.checkpoint)
        sd = pick_state_dict(ckpt, args.checkpoint, args.ema)
        cfg = build_config(sd, args)
        what = "%s%s" % (args.checkpoint, " (EMA)" if args.ema else "")
        if args.variant:
            what += " as variant %s" % args.variant
        check_keys(sd, cfg, what)
        write_config(config_path, cfg)
        try:
            write_safetensors(args.output, sd)
        except BaseException:
            os.unlink(config_path)  # both files or neither
            raise
    except ConvertError as exc:
        sys.stderr.write("convert_checkpoint: %s\n" % exc)
        return 1
    except OSError as exc:
        sys.stderr.write("convert_checkpoint: %s\n" % exc)
        return 1
    sys.stdout.write("wrote %s (%d tensors) and %s\n" %
                     (args.output, len(sd), config_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
