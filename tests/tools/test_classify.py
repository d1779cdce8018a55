#!/usr/bin/env python3
"""dcnv4-classify end to end, on image files written here.

    python3 tests/tools/test_classify.py DCNV4_CLASSIFY CONVERTER \\
        DCNV4_RUN PREP_DUMP

A tiny random FlashInternImage (16 channels, 10 classes) is saved as a
training checkpoint, converted with tools/convert_checkpoint.py, and used to
classify PNG and JPEG files: the exit status, the printed top-5 format,
batches of any size giving the same answer, and the same probabilities as
softmax(dcnv4-run's logits) on the tensor prep_dump makes of the image. Then
the errors: an image that cannot be read, weights of another model, labels
of another size, a missing config, bad options. Exit 77 (a skip) without
python3-torch, python3-numpy or python3-pil.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    from PIL import Image
except ImportError as exc:
    print("SKIP: test_classify needs python3-torch, python3-numpy and "
          "python3-pil (%s); tools/setup.sh installs them" % exc)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, summary  # noqa: E402
from fii_skeleton import BASE, random_state_dict  # noqa: E402

CLASSIFY, CONVERTER, DCNV4_RUN, PREP_DUMP = sys.argv[1:5]
SIZE = 64
LINE = re.compile(r"^  (\d\.\d{4})  (\d+)(?:  (.*))?$")



def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, check=False)
    return p.returncode, p.stdout, p.stderr


def parse(stdout, what):
    """{image: [(probability, class, name)]} from dcnv4-classify's output."""
    result, current = {}, None
    for line in stdout.splitlines():
        m = LINE.match(line)
        if m:
            check(current is not None, what + ": a class line after a path")
            if current is not None:
                result[current].append(
                    (float(m.group(1)), int(m.group(2)), m.group(3)))
        else:
            check(not line.startswith(" "), what + ": line %r" % line)
            current = line
            result[current] = []
    return result


def classify(tmp, images, *extra):
    cmd = [CLASSIFY, "--weights", os.path.join(tmp, "tiny.safetensors"),
           "--size", str(SIZE)] + list(extra) + images
    return run(cmd)


def convert(tmp, sd, name):
    pth = os.path.join(tmp, name + ".pth")
    torch.save({"model": sd, "epoch": 1}, pth)
    rc, out, err = run([sys.executable, CONVERTER, pth,
                        os.path.join(tmp, name + ".safetensors"),
                        "--offset-scale", "1.0"])
    check(rc == 0, "convert %s (%s)" % (name, out + err))


def test_classify(tmp):
    rng = np.random.default_rng(5)
    imgs = []
    for i, (w, h, fmt) in enumerate([(100, 80, "png"), (70, 90, "jpg"),
                                     (64, 64, "png"), (150, 60, "jpg")]):
        path = os.path.join(tmp, "img%d.%s" % (i, fmt))
        arr = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        Image.fromarray(arr, "RGB").save(path)
        imgs.append(path)
    grey = os.path.join(tmp, "grey.png")
    Image.fromarray(rng.integers(0, 256, (50, 50)).astype(np.uint8),
                    "L").save(grey)
    imgs.append(grey)
    labels = os.path.join(tmp, "labels.txt")
    with open(labels, "w") as f:
        f.write("".join("name %d, with spaces\n" % i for i in range(10)))

    rc, out, err = classify(tmp, imgs, "--labels", labels, "--batch", "2")
    check(rc == 0, "5 images in batches of 2: exit 0 (%d: %s)" % (rc, err))
    res = parse(out, "batches of 2")
    check(list(res) == imgs, "one block per image, in order (%s)" % list(res))
    for img, rows in res.items():
        check(len(rows) == 5, "%s: top 5 (%d rows)" % (img, len(rows)))
        probs = [p for p, _, _ in rows]
        check(probs == sorted(probs, reverse=True), img + ": best first")
        check(sum(probs) <= 1.0 + 5e-4 and probs[0] > 0, img + ": softmax")
        check(len({c for _, c, _ in rows}) == len(rows), img + ": distinct")
        for _, c, name in rows:
            check(0 <= c < 10 and name == "name %d, with spaces" % c,
                  "%s: class %d named from the labels (%r)" % (img, c, name))

    # Any batch size, the same answer; no labels, no names.
    rc, out1, err = classify(tmp, imgs, "--batch", "1", "--top", "3")
    check(rc == 0, "batch 1: exit 0 (%s)" % err)
    res1 = parse(out1, "batch 1")
    for img in imgs:
        a, b = res.get(img, [])[:3], res1.get(img, [])
        check(len(b) == 3 and all(n is None for _, _, n in b),
              "%s: --top 3 without labels" % img)
        check(len(a) == len(b) and all(
            abs(p - q) <= 2e-4 for (p, _, _), (q, _, _) in zip(a, b)),
              "%s: batch 1 = batch 2 (%s vs %s)" % (img, a, b))

    # The same numbers as dcnv4-run's logits on prep_dump's tensor.
    case = os.path.join(tmp, "case")
    os.mkdir(case)
    rc, _, err = run([PREP_DUMP, imgs[1], str(SIZE), "1.0",
                      os.path.join(tmp, "x.npy")])
    check(rc == 0, "prep_dump (%s)" % err)
    x = np.load(os.path.join(tmp, "x.npy"))[None]
    np.save(os.path.join(case, "image.npy"), x.astype("<f4"))
    shutil.copy(os.path.join(tmp, "tiny.safetensors"),
                os.path.join(case, "weights.safetensors"))
    with open(os.path.join(tmp, "tiny.json")) as f:
        cfg = json.load(f)
    cfg.pop("img_size", None)

    def top5(dtype):
        """softmax(dcnv4-run's logits) in `dtype`: the top 5, or []."""
        with open(os.path.join(case, "meta.json"), "w") as f:
            json.dump({"op": "flash_intern_image", "dtype": dtype, "N": 1,
                       "H": SIZE, "W": SIZE, "config": cfg}, f)
        out_dir = os.path.join(tmp, "out_" + dtype)
        rc, _, err = run([DCNV4_RUN, case, out_dir])
        check(rc == 0, "dcnv4-run on the preprocessed image, %s (%s)"
              % (dtype, err))
        if rc != 0:
            return []
        logits = np.load(os.path.join(out_dir, "logits.npy"))[0]
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return [(round(float(p[c]), 4), int(c)) for c in np.argsort(-p)[:5]]

    def same_top5(got, want, what):
        ok = len(got) == 5 and len(want) == 5
        for i, (a, b) in enumerate(zip(got, want)):
            # Classes may swap only where probabilities all but tie.
            tie = any(abs(b[0] - w[0]) < 3e-4
                      for j, w in enumerate(want) if j != i)
            ok = ok and abs(a[0] - b[0]) <= 1.5e-4 and (a[1] == b[1] or tie)
        check(ok, "%s: %s vs %s" % (what, got, want))

    same_top5([(q, c) for q, c, _ in res.get(imgs[1], [])], top5("float32"),
              "softmax of dcnv4-run's logits")

    # 16-bit storage runs and gives dcnv4-run's probabilities in that dtype.
    # Not compared with float32's: this tiny random model (N(0, 0.2) weights,
    # not scaled by fan-in) amplifies rounding; bfloat16 weights alone moved
    # img0's top probability from 0.19 to 0.23, and 16-bit activations to
    # 0.27.
    rc, out16, err = classify(tmp, imgs[:2], "--dtype", "bfloat16")
    check(rc == 0, "--dtype bfloat16: exit 0 (%s)" % err)
    r16 = parse(out16, "bfloat16")
    for img in imgs[:2]:
        b = r16.get(img, [])
        check(len(b) == 5 and 0 < b[0][0] <= 1,
              "%s: bfloat16 top 5 (%s)" % (img, b))
    same_top5([(q, c) for q, c, _ in r16.get(imgs[1], [])], top5("bfloat16"),
              "bfloat16: softmax of dcnv4-run's logits")


def test_errors(tmp):
    good = os.path.join(tmp, "img0.png")
    text = os.path.join(tmp, "notes.jpg")
    with open(text, "w") as f:
        f.write("not a JPEG\n")
    rc, out, err = classify(tmp, [good, text, os.path.join(tmp, "gone.png")])
    check(rc == 2, "unreadable images: exit 2 (%d)" % rc)
    check("cannot decode %s" % text in err, "names the undecodable file: " +
          err)
    check("cannot read %s" % os.path.join(tmp, "gone.png") in err and
          "No such file" in err, "names the missing file: " + err)
    check(list(parse(out, "skip")) == [good], "the good image classified")

    # Weights of another model: 7 classes where the config says 10.
    other = dict(BASE, num_classes=7)
    convert(tmp, random_state_dict(other, 9, scale=0.2), "other")
    rc, out, err = run([CLASSIFY, "--weights",
                        os.path.join(tmp, "other.safetensors"), "--config",
                        os.path.join(tmp, "tiny.json"), good])
    check(rc == 2 and "head" in err and "does not fit" in err,
          "weights of another model: exit 2 naming the key (%d: %s)" %
          (rc, err.strip()))
    check(out == "", "nothing printed for a model that does not load")
    rc, out, err = run([CLASSIFY, "--weights",
                        os.path.join(tmp, "tiny.safetensors"), "--variant",
                        "t", good])
    check(rc == 2 and "patch_embed" in err,
          "--variant t with tiny weights: exit 2 naming a key (%s)" %
          err.strip())
    rc, out, err = run([CLASSIFY, "--weights", os.path.join(tmp, "none.st"),
                        "--config", os.path.join(tmp, "tiny.json"), good])
    check(rc == 2 and "none.st" in err, "missing weights file: " + err)

    labels = os.path.join(tmp, "short.txt")
    with open(labels, "w") as f:
        f.write("a\nb\n")
    rc, _, err = classify(tmp, [good], "--labels", labels)
    check(rc == 2 and "2 name(s), the model 10 classes" in err,
          "labels of another size: " + err)
    nocfg = os.path.join(tmp, "alone.safetensors")
    shutil.copy(os.path.join(tmp, "tiny.safetensors"), nocfg)
    rc, _, err = run([CLASSIFY, "--weights", nocfg, good])
    check(rc == 2 and "alone.json does not exist" in err, "no config: " + err)
    bad_cfg = os.path.join(tmp, "bad.json")
    with open(bad_cfg, "w") as f:
        f.write('{"channels": 16}')
    rc, _, err = run([CLASSIFY, "--weights", nocfg, "--config", bad_cfg, good])
    check(rc == 2 and "bad.json" in err and "depths" in err,
          "incomplete config: " + err)
    for args, needle in [(["--size", "0"], "--size"),
                         (["--crop-ratio", "1.5"], "--crop-ratio"),
                         (["--dtype", "int8"], "--dtype"),
                         (["--batch", "x"], "--batch"),
                         (["--frobnicate"], "unknown option")]:
        rc, out, err = classify(tmp, [good], *args)
        check(rc == 2 and needle in err and out == "",
              "%s: exit 2 naming %s (%d: %s)" % (args, needle, rc, err))
    rc, out, err = run([CLASSIFY, "--weights", nocfg, good, "--top"])
    check(rc == 2 and "--top needs a value" in err, "--top at the end: " + err)
    rc, _, err = run([CLASSIFY, "--weights", nocfg])
    check(rc == 2 and "no image" in err, "no image: " + err)
    rc, out, _ = run([CLASSIFY, "--help"])
    check(rc == 0 and "usage: dcnv4-classify" in out, "--help")


def main():
    with tempfile.TemporaryDirectory(prefix="test_classify-") as tmp:
        convert(tmp, random_state_dict(BASE, 8, scale=0.2), "tiny")
        test_classify(tmp)
        test_errors(tmp)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
