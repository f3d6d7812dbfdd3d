#!/usr/bin/env python3
"""Write the cv2.resize reference cases for yolo-compress-data's bilinear resize.

Writes crates/data/tests/fixtures/cv2_resize.bin: small RGB images made with numpy
(numpy.random.default_rng(SEED)), each resized with
cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR) to a few target sizes: upscales,
downscales, non-integer ratios, exact 2x downscales (OpenCV switches those to its INTER_AREA
fast path), 1-pixel targets and extreme aspect ratios. crates/data/tests/cv2_resize.rs checks
that `resize_bilinear` reproduces every output byte for byte.

cv2.resize does not care about channel order, so the arrays are simply treated as RGB.

File layout (all integers little-endian):

    magic      8 bytes  b"CV2RSZ1\\0"
    n_ver      u16      length of the version text
    version    n_ver    UTF-8, e.g. "opencv-python-headless cv2 5.0.0, numpy 2.4.6"
    n_images   u32
    n_images times:
        src_w, src_h, n_targets      u32 each
        src    src_w * src_h * 3 bytes, row-major RGB
        n_targets times:
            dst_w, dst_h             u32 each
            dst    dst_w * dst_h * 3 bytes, row-major RGB (the cv2.resize output)

The file stays under 300 KB. numpy does not promise the same random streams across versions, so the .bin
file in the repository, not this script, is the reference.

Run:  /path/to/venv/bin/python benches/peers/make_resize_fixture.py [--out FILE]
Needs: numpy, opencv-python-headless.
"""
import argparse
import hashlib
import os
import struct

import cv2
import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(REPO, "crates", "data", "tests", "fixtures", "cv2_resize.bin")
MAGIC = b"CV2RSZ1\0"
SEED = 20240607

# (src_w, src_h, kind, [(dst_w, dst_h), ...]); kind picks how the pixels are made.
CASES = [
    (1, 1, "noise", [(1, 1), (5, 3), (2, 7)]),
    (2, 2, "noise", [(4, 4), (3, 5), (1, 1)]),
    (3, 1, "extremes", [(7, 2), (1, 1), (2, 1)]),
    (1, 9, "noise", [(1, 4), (3, 13), (2, 2)]),
    (7, 5, "noise", [(13, 11), (3, 2), (1, 5)]),
    (16, 9, "gradient", [(32, 18), (8, 5), (23, 13)]),
    (33, 17, "noise", [(17, 9), (64, 40), (33, 1)]),
    (80, 60, "noise", [(40, 30), (53, 47), (1, 60)]),
    (97, 131, "smooth", [(64, 87), (107, 144)]),
    (131, 97, "noise", [(83, 61), (140, 100)]),
    (120, 3, "noise", [(40, 1), (240, 6), (77, 5)]),
    (4, 96, "smooth", [(2, 48), (9, 150), (1, 31)]),
    (61, 47, "extremes", [(90, 70), (30, 23), (61, 12)]),
]


def make_image(rng, w, h, kind):
    if kind == "noise":
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind == "extremes":
        # only 0 and 255: the largest jumps, the corner cases of the fixed-point arithmetic
        return (rng.integers(0, 2, (h, w, 3), dtype=np.uint8) * 255).astype(np.uint8)
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    if kind == "gradient":
        base = np.stack([xx * 255.0 / max(w - 1, 1), yy * 255.0 / max(h - 1, 1), (xx + yy) * 7.0 % 256], axis=-1)
    else:  # smooth: a few sinusoids plus mild noise, closer to a photo
        ph = rng.uniform(0, 2 * np.pi, (3, 2))
        fr = rng.uniform(0.03, 0.2, (3, 2))
        base = np.stack(
            [128 + 100 * np.sin(fr[c, 0] * xx + ph[c, 0]) * np.cos(fr[c, 1] * yy + ph[c, 1]) for c in range(3)],
            axis=-1,
        )
        base = base + rng.normal(0, 6, base.shape)
    return np.clip(np.rint(base), 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()

    rng = np.random.default_rng(SEED)
    version = f"opencv-python-headless cv2 {cv2.__version__}, numpy {np.__version__}".encode()
    blob = bytearray(MAGIC)
    blob += struct.pack("<H", len(version)) + version
    n = sum(len(t) for *_, t in CASES)
    blob += struct.pack("<I", len(CASES))
    for sw, sh, kind, targets in CASES:
        img = np.ascontiguousarray(make_image(rng, sw, sh, kind))
        assert img.shape == (sh, sw, 3)
        blob += struct.pack("<3I", sw, sh, len(targets)) + img.tobytes()
        for dw, dh in targets:
            out = cv2.resize(img, (dw, dh), interpolation=cv2.INTER_LINEAR)
            out = np.ascontiguousarray(out.reshape(dh, dw, 3))
            blob += struct.pack("<2I", dw, dh) + out.tobytes()

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "wb") as f:
        f.write(blob)
    print(f"{args.out}: {len(CASES)} images, {n} cases, {len(blob)} bytes, sha256 {hashlib.sha256(blob).hexdigest()}")
    print(version.decode())


if __name__ == "__main__":
    main()
