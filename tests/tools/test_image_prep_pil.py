#!/usr/bin/env python3
"""tools/image_prep.c and image_decode.c against PIL and torchvision.

    python3 tests/tools/test_image_prep_pil.py PREP_DUMP

For images written here (PNG in every PIL mode upstream's loader converts,
JPEG), PREP_DUMP decodes and preprocesses each one; the expectation is
upstream's evaluation transform on Image.open(path).convert("RGB"):
torchvision's Resize(int(size / crop_ratio), BICUBIC), CenterCrop(size),
ToTensor(), Normalize(mean, std) where python3-torchvision is installed,
else the same steps written with PIL and NumPy. Every result must be
bit-identical (JPEG too: both decode with the system's libjpeg). Exit 77
(a skip) without python3-pil or python3-numpy.
"""

import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    from PIL import Image
except ImportError as exc:
    print("SKIP: test_image_prep_pil needs python3-pil and python3-numpy "
          "(%s)" % exc)
    sys.exit(77)
try:
    import torchvision.transforms as T
except ImportError:
    T = None

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, summary  # noqa: E402

PREP_DUMP = sys.argv[1]
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)



def expected_torchvision(img, size, ratio):
    t = T.Compose([
        T.Resize(int(size / ratio), interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(size),
        T.ToTensor(),
        T.Normalize(MEAN, STD)
    ])
    return t(img).numpy()


def expected_pil(img, size, ratio):
    """torchvision's steps on a PIL image, written out."""
    short = int(size / ratio)
    w, h = img.size
    if w <= h:
        nw, nh = short, int(short * h / w)
    else:
        nw, nh = int(short * w / h), short
    img = img.resize((nw, nh), Image.BICUBIC)
    left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
    a = np.asarray(img.crop((left, top, left + size, top + size)))
    x = a.astype(np.float32).transpose(2, 0, 1) / np.float32(255)
    mean = np.asarray(MEAN, np.float32)[:, None, None]
    std = np.asarray(STD, np.float32)[:, None, None]
    return (x - mean) / std


def prep(path, size, ratio, tmp):
    out = os.path.join(tmp, "out.npy")
    p = subprocess.run([PREP_DUMP, path, str(size), repr(ratio), out],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, check=False)
    if p.returncode != 0:
        return None, p.stdout.strip()
    return np.load(out), ""


def smooth_noise(rng, w, h):
    """Texture at several scales, so that every kernel tap matters."""
    img = rng.integers(0, 256, (h, w, 3)).astype(np.float64)
    big = rng.integers(0, 256, (h // 8 + 2, w // 8 + 2, 3)).astype(np.float64)
    big = np.kron(big, np.ones((8, 8, 1)))[:h, :w]
    return np.clip(0.5 * img + 0.5 * big, 0, 255).astype(np.uint8)


def main():
    rng = np.random.default_rng(31)
    ref = expected_torchvision if T else expected_pil
    print("expectation: %s" %
          ("torchvision.transforms" if T else "PIL + NumPy (no torchvision)"))
    with tempfile.TemporaryDirectory(prefix="test_image_prep_pil-") as tmp:
        cases = [  # width, height, size, crop ratio
            (640, 480, 224, 0.875), (480, 640, 224, 1.0), (300, 300, 224, 1.0),
            (100, 70, 224, 0.875), (1000, 333, 96, 1.0), (57, 311, 48, 0.875),
            (224, 224, 224, 1.0), (225, 226, 224, 1.0), (500, 375, 384, 1.0),
            (31, 17, 64, 0.5), (2000, 1500, 224, 0.875), (1, 5, 3, 1.0),
        ]
        for w, h, size, ratio in cases:
            arr = smooth_noise(rng, w, h)
            path = os.path.join(tmp, "img.png")
            Image.fromarray(arr, "RGB").save(path)
            got, msg = prep(path, size, ratio, tmp)
            what = "%dx%d -> %d (ratio %g)" % (w, h, size, ratio)
            check(got is not None, what + ": prep_dump ran (%s)" % msg)
            if got is None:
                continue
            want = ref(Image.open(path).convert("RGB"), size, ratio)
            check(got.shape == want.shape, what + ": shape")
            if got.shape == want.shape:
                diff = np.abs(got - want).max()
                check(diff == 0.0, "%s: bit-identical (max diff %g)" %
                      (what, diff))
        # Every PIL mode upstream's loader converts with convert("RGB").
        base = smooth_noise(rng, 90, 70)
        modes = {
            "L": Image.fromarray(base[:, :, 0], "L"),
            "LA": Image.fromarray(base[:, :, :2].copy(), "LA"),
            "RGBA": Image.fromarray(
                np.dstack([base, base[:, :, :1]]), "RGBA"),
            "P": Image.fromarray(base, "RGB").quantize(64),
        }
        for mode, img in modes.items():
            path = os.path.join(tmp, "mode.png")
            img.save(path)
            got, msg = prep(path, 64, 0.875, tmp)
            check(got is not None, "PNG %s: prep_dump ran (%s)" % (mode, msg))
            if got is not None:
                want = ref(Image.open(path).convert("RGB"), 64, 0.875)
                diff = np.abs(got - want).max()
                check(diff == 0.0, "PNG %s: bit-identical (max diff %g)" %
                      (mode, diff))
        # JPEG: libjpeg as in PIL, so identical too; grey, progressive.
        jpegs = [("q95 4:4:4", "RGB", dict(quality=95, subsampling=0)),
                 ("q75 4:2:0", "RGB", dict(quality=75, subsampling=2)),
                 ("progressive", "RGB", dict(quality=85, progressive=True)),
                 ("grey", "L", dict(quality=90))]
        for name, mode, opts in jpegs:
            path = os.path.join(tmp, "img.jpg")
            arr = smooth_noise(rng, 333, 250)
            img = Image.fromarray(arr, "RGB")
            (img if mode == "RGB" else img.convert("L")).save(path, **opts)
            got, msg = prep(path, 224, 0.875, tmp)
            check(got is not None, "JPEG %s: prep_dump ran (%s)" % (name, msg))
            if got is not None:
                want = ref(Image.open(path).convert("RGB"), 224, 0.875)
                diff = np.abs(got - want).max()
                check(diff == 0.0, "JPEG %s: bit-identical (max diff %g)" %
                      (name, diff))
        # A truncated JPEG is refused, as PIL refuses it.
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[:len(data) // 2])
        got, msg = prep(path, 8, 1.0, tmp)
        check(got is None and "cannot decode" in msg,
              "truncated JPEG refused (%s)" % msg)
        # Not an image, missing file.
        path = os.path.join(tmp, "text.png")
        with open(path, "w") as f:
            f.write("not a PNG\n")
        got, msg = prep(path, 8, 1.0, tmp)
        check(got is None and "cannot decode" in msg and path in msg,
              "garbage: 'cannot decode' naming the file (%s)" % msg)
        got, msg = prep(os.path.join(tmp, "absent.jpg"), 8, 1.0, tmp)
        check(got is None and "cannot read" in msg and "No such file" in msg,
              "missing file: 'cannot read ... No such file' (%s)" % msg)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
