"""A skeleton of upstream's FlashInternImage for the tests: torch.nn modules
under upstream's attribute names (classification/models/
flash_intern_image.py), parameters only, no forward. Its state_dict() has
upstream's keys, shapes and order; random_state_dict fills it."""

import torch
from torch import nn

def ln_seq(dim, lead):
    """build_norm_layer's Sequential: the LayerNorm after `lead` format
    changes (parameterless)."""
    return nn.Sequential(*([nn.Identity()] * lead), nn.LayerNorm(dim))


class Dcn(nn.Module):

    def __init__(self, ch, groups, dw, out_bias):
        super().__init__()
        if dw is not None:
            self.offset_mask_dw = nn.Conv2d(ch, ch, dw, padding=dw // 2,
                                            groups=ch)
        rows = -(-groups * 27 // 8) * 8
        self.offset_mask = nn.Linear(ch, rows)
        self.value_proj = nn.Linear(ch, ch)
        self.output_proj = nn.Linear(ch, ch, bias=out_bias)


class Mlp(nn.Module):

    def __init__(self, ch, hidden, fc2_bias):
        super().__init__()
        self.fc1 = nn.Linear(ch, hidden)
        self.fc2 = nn.Linear(hidden, ch, bias=fc2_bias)


class Block(nn.Module):

    def __init__(self, ch, groups, cfg):
        super().__init__()
        self.norm1 = ln_seq(ch, 0)
        self.dcn = Dcn(ch, groups, cfg["dw_kernel_size"],
                       cfg["dcn_output_bias"])
        self.norm2 = ln_seq(ch, 0)
        self.mlp = Mlp(ch, int(ch * cfg["mlp_ratio"]), cfg["mlp_fc2_bias"])
        if cfg["layer_scale"] is not None:
            self.gamma1 = nn.Parameter(torch.ones(ch))
            self.gamma2 = nn.Parameter(torch.ones(ch))
        if cfg["res_post_norm"]:
            self.res_post_norm1 = ln_seq(ch, 0)
            self.res_post_norm2 = ln_seq(ch, 0)


class Downsample(nn.Module):

    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1, bias=False)
        self.norm = ln_seq(2 * ch, 1)


class Level(nn.Module):

    def __init__(self, lvl, cfg):
        super().__init__()
        ch = cfg["channels"] * 2**lvl
        self.blocks = nn.ModuleList(
            Block(ch, cfg["groups"][lvl], cfg)
            for _ in range(cfg["depths"][lvl]))
        if not cfg["post_norm"] or cfg["center_feature_scale"]:
            self.norm = ln_seq(ch, 0)
        ids = cfg["level2_post_norm_block_ids"]
        if lvl == 2 and cfg["level2_post_norm"] and ids:
            self.post_norms = nn.ModuleList(ln_seq(ch, 0) for _ in ids)
        if lvl < 3:
            self.downsample = Downsample(ch)


class Stem(nn.Module):

    def __init__(self, c0):
        super().__init__()
        self.conv1 = nn.Conv2d(3, c0 // 2, 3, stride=2, padding=1)
        self.norm1 = ln_seq(c0 // 2, 1)
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(c0 // 2, c0, 3, stride=2, padding=1)
        self.norm2 = ln_seq(c0, 1)


class Model(nn.Module):

    def __init__(self, cfg):
        super().__init__()
        c0 = cfg["channels"]
        self.patch_embed = Stem(c0)
        self.levels = nn.ModuleList(Level(i, cfg) for i in range(4))
        width = int(c0 * 8 * cfg["cls_scale"])
        self.conv_head = nn.Sequential(
            nn.Conv2d(c0 * 8, width, 1, bias=False),
            nn.Sequential(nn.BatchNorm2d(width)), nn.GELU())
        if cfg["num_classes"] > 0:
            self.head = nn.Linear(width, cfg["num_classes"])


BASE = {
    "channels": 16, "depths": [1, 1, 2, 1], "groups": [1, 2, 4, 8],
    "mlp_ratio": 4.0, "offset_scale": 1.0, "layer_scale": None,
    "post_norm": False, "dw_kernel_size": None, "res_post_norm": False,
    "center_feature_scale": False, "level2_post_norm": False,
    "level2_post_norm_block_ids": None, "mlp_fc2_bias": False,
    "dcn_output_bias": False, "cls_scale": 1.5, "num_classes": 10,
    "act_layer": "GELU", "norm_layer": "LN"
}


def random_state_dict(cfg, seed, dtype=torch.float32, scale=1.0):
    """Normal values times `scale`; with scale < 1 a usable model: norm
    weights and BatchNorm variances near 1 (positive)."""
    gen = torch.Generator().manual_seed(seed)
    sd = Model(cfg).state_dict()
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(1234, dtype=torch.int64)
            continue
        x = torch.randn(v.shape, generator=gen) * scale
        if scale < 1.0 and (k.endswith("running_var") or
                            (v.dim() == 1 and "norm" in k and
                             k.endswith("weight"))):
            x = 1.0 + x.abs()
        sd[k] = x.to(dtype)
    return sd
