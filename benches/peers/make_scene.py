#!/usr/bin/env python3
"""Draw the two synthetic test "photos" used by the detection fixture.

Writes crates/yolo-compress/tests/fixtures/scene_a.png (300x200, W x H) and scene_b.png
(173x241, both dimensions odd). They are made-up street-like scenes: a sky gradient, ground,
rectangles and discs and a few figure-like shapes, a soft shading, and mild pixel noise.
Nothing in them is taken from a real photo, so they can live in the repository.

The last step, tone(), compresses the contrast around mid-grey (a hazy, overcast look), with a
per-scene factor (CONTRAST below). This is on purpose: the fixture model, yolov5n with the random
"calibrated" weights of shared/fixtures, is a very high-gain function of the image. At full contrast
it saturates (scene_b gave 254 boxes at conf 0.25 and still 143 at conf 0.99, with 62 candidates
whose score is exactly 1.0 in float32, so their NMS order is a tie), and a flat image brighter
than about 170 already fires everywhere. The factors were chosen with make_detect_fixture.py so
that detect.py's default conf 0.25 gives a usable number of boxes (3..60) whose scores and IoUs
keep a clear distance from the conf and IoU thresholds and from each other (no near-ties).

All pixel values are computed with numpy (float64 masks from pixel-centre coordinates, no
anti-aliasing library calls) and the result is only encoded by Pillow. The random parts come from
numpy.random.default_rng(seed). Re-running with the same numpy version gives the same pixels;
numpy does not promise the same random streams across versions, so the PNG files in the
repository, not this script, are the reference. The script prints each file's size and the
SHA-256 of its RGB pixel bytes (also stored in detect_yolov5n_random.json).

Run:  /path/to/venv/bin/python benches/peers/make_scene.py [--outdir DIR]
Needs: numpy, Pillow.
"""
import argparse
import hashlib
import os

import numpy as np
from PIL import Image

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(REPO, "crates", "yolo-compress", "tests", "fixtures")


# contrast factor of tone() per scene, see above
CONTRAST = {"scene_a": 0.47, "scene_b": 0.385}


def tone(img_u8, k):
    """Compress the contrast around mid-grey: 128 + k * (img - mean(img)), rounded, clipped."""
    img = img_u8.astype(np.float64)
    return np.clip(np.rint((img - img.mean()) * k + 128.0), 0, 255).astype(np.uint8)


class Canvas:
    def __init__(self, w, h):
        self.w, self.h = w, h
        self.img = np.zeros((h, w, 3), np.float64)
        self.yy, self.xx = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5  # pixel centres

    def fill(self, mask, rgb, alpha=1.0):
        a = (mask.astype(np.float64) * alpha)[..., None]
        self.img = self.img * (1 - a) + a * np.asarray(rgb, np.float64)[None, None, :]

    def rect(self, x0, y0, x1, y1):
        return (self.xx >= x0) & (self.xx < x1) & (self.yy >= y0) & (self.yy < y1)

    def ellipse(self, cx, cy, rx, ry):
        return ((self.xx - cx) / rx) ** 2 + ((self.yy - cy) / ry) ** 2 <= 1.0

    def triangle(self, p0, p1, p2):
        def side(a, b):
            return (b[0] - a[0]) * (self.yy - a[1]) - (b[1] - a[1]) * (self.xx - a[0])
        s0, s1, s2 = side(p0, p1), side(p1, p2), side(p2, p0)
        return ((s0 >= 0) & (s1 >= 0) & (s2 >= 0)) | ((s0 <= 0) & (s1 <= 0) & (s2 <= 0))

    def vgradient(self, y0, y1, top, bottom):
        t = np.clip((self.yy - y0) / max(y1 - y0, 1e-9), 0, 1)[..., None]
        col = (1 - t) * np.asarray(top, np.float64) + t * np.asarray(bottom, np.float64)
        m = ((self.yy >= y0) & (self.yy < y1)).astype(np.float64)[..., None]
        self.img = self.img * (1 - m) + m * col

    def figure(self, cx, foot_y, height, shirt, trousers, skin=(224, 172, 140)):
        """A standing person-like silhouette: head, torso, two legs, two arms."""
        hh = height
        head_r = 0.09 * hh
        self.fill(self.ellipse(cx, foot_y - hh + head_r, head_r * 0.85, head_r), skin)
        torso = self.rect(cx - 0.13 * hh, foot_y - hh + 2 * head_r, cx + 0.13 * hh, foot_y - 0.45 * hh)
        self.fill(torso, shirt)
        self.fill(self.rect(cx - 0.19 * hh, foot_y - hh + 2.3 * head_r, cx - 0.13 * hh, foot_y - 0.5 * hh), shirt)
        self.fill(self.rect(cx + 0.13 * hh, foot_y - hh + 2.3 * head_r, cx + 0.19 * hh, foot_y - 0.5 * hh), shirt)
        self.fill(self.rect(cx - 0.12 * hh, foot_y - 0.45 * hh, cx - 0.015 * hh, foot_y), trousers)
        self.fill(self.rect(cx + 0.015 * hh, foot_y - 0.45 * hh, cx + 0.12 * hh, foot_y), trousers)

    def car(self, x0, y_ground, length, body, window=(150, 185, 210)):
        h = 0.38 * length
        self.fill(self.rect(x0, y_ground - 0.62 * h, x0 + length, y_ground - 0.18 * h), body)
        self.fill(self.rect(x0 + 0.22 * length, y_ground - h, x0 + 0.75 * length, y_ground - 0.6 * h), body)
        self.fill(self.rect(x0 + 0.27 * length, y_ground - 0.93 * h, x0 + 0.47 * length, y_ground - 0.62 * h), window)
        self.fill(self.rect(x0 + 0.5 * length, y_ground - 0.93 * h, x0 + 0.70 * length, y_ground - 0.62 * h), window)
        for wx in (x0 + 0.2 * length, x0 + 0.8 * length):
            self.fill(self.ellipse(wx, y_ground - 0.18 * h, 0.11 * length, 0.11 * length), (25, 25, 28))
            self.fill(self.ellipse(wx, y_ground - 0.18 * h, 0.05 * length, 0.05 * length), (160, 160, 165))

    def finish(self, rng, noise_sigma, vignette):
        cx, cy = self.w / 2, self.h / 2
        r2 = ((self.xx - cx) / self.w) ** 2 + ((self.yy - cy) / self.h) ** 2
        self.img *= (1.0 - vignette * r2)[..., None]
        self.img += rng.normal(0.0, noise_sigma, self.img.shape)
        return np.clip(np.rint(self.img), 0, 255).astype(np.uint8)


def scene_a(seed=11):
    """300 x 200: street with sky, sun, buildings, two cars, three figures, a ball."""
    rng = np.random.default_rng(seed)
    c = Canvas(300, 200)
    c.vgradient(0, 120, (96, 150, 220), (200, 222, 240))          # sky
    c.vgradient(120, 200, (118, 112, 104), (70, 66, 62))          # road
    c.fill(c.ellipse(250, 32, 17, 17), (255, 236, 160))           # sun
    for i, (x0, wdt, hgt, col) in enumerate([(0, 48, 78, (160, 90, 70)), (52, 40, 96, (190, 180, 150)),
                                             (96, 60, 60, (120, 130, 150)), (200, 55, 88, (170, 120, 90))]):
        c.fill(c.rect(x0, 120 - hgt, x0 + wdt, 120), col)
        for wy in range(int(120 - hgt + 8), 114, 14):               # windows
            for wx in range(x0 + 6, x0 + wdt - 8, 12):
                c.fill(c.rect(wx, wy, wx + 6, wy + 8), (235, 225, 150) if (wx + wy + i) % 3 else (60, 70, 90))
    c.fill(c.triangle((96, 60), (126, 38), (156, 60)), (140, 60, 50))  # roof
    c.fill(c.rect(0, 150, 300, 153), (230, 230, 220), alpha=0.8)   # lane marking
    c.car(20, 178, 95, (200, 30, 35))
    c.car(170, 192, 120, (30, 70, 160))
    c.figure(138, 176, 62, (40, 140, 70), (40, 40, 60))
    c.figure(158, 170, 48, (220, 200, 40), (80, 60, 40))
    c.figure(285, 186, 70, (200, 200, 205), (30, 30, 35))
    c.fill(c.ellipse(122, 183, 6, 6), (250, 250, 250))            # ball
    c.fill(c.ellipse(122, 183, 3, 2.5), (20, 20, 20))
    return tone(c.finish(rng, noise_sigma=3.0, vignette=0.6), CONTRAST["scene_a"])


def scene_b(seed=22):
    """173 x 241 (portrait, odd dims): park with grass, tree, a figure, a dog-like shape, a kite."""
    rng = np.random.default_rng(seed)
    c = Canvas(173, 241)
    c.vgradient(0, 130, (130, 170, 230), (225, 235, 245))         # sky
    c.vgradient(130, 241, (96, 160, 70), (50, 105, 40))           # grass
    c.fill(c.ellipse(40, 40, 28, 13), (250, 250, 250), alpha=0.85)  # clouds
    c.fill(c.ellipse(62, 34, 20, 11), (250, 250, 250), alpha=0.85)
    c.fill(c.rect(120, 70, 134, 150), (100, 70, 45))              # tree trunk
    c.fill(c.ellipse(127, 62, 38, 42), (40, 110, 45))             # crown
    c.fill(c.ellipse(112, 50, 16, 14), (60, 135, 60))
    c.fill(c.triangle((30, 95), (48, 80), (58, 104)), (230, 60, 120))  # kite
    c.fill(c.triangle((30, 95), (58, 104), (44, 112)), (250, 190, 40))
    kite_line = np.abs((c.xx - 44) * (206 - 112) - (c.yy - 112) * (70 - 44)) / np.hypot(206 - 112, 70 - 44) < 0.6
    c.fill(kite_line & (c.yy > 112) & (c.yy < 206), (40, 40, 40))
    for _ in range(40):                                           # flowers
        x, y = rng.uniform(0, 173), rng.uniform(175, 241)
        col = [(250, 250, 120), (250, 120, 160), (255, 255, 255)][int(rng.integers(0, 3))]
        c.fill(c.ellipse(x, y, 1.8, 1.8), col)
    c.figure(74, 232, 110, (220, 80, 40), (50, 60, 110))
    c.fill(c.ellipse(128, 212, 22, 10), (150, 110, 70))           # dog body
    c.fill(c.ellipse(150, 200, 9, 8), (150, 110, 70))             # dog head
    for lx in (112, 120, 136, 143):
        c.fill(c.rect(lx, 212, lx + 4, 230), (130, 95, 60))
    c.fill(c.rect(4, 150, 50, 156), (120, 80, 50))                # bench
    c.fill(c.rect(4, 160, 50, 165), (120, 80, 50))
    c.fill(c.rect(8, 156, 12, 180), (60, 60, 60))
    c.fill(c.rect(42, 156, 46, 180), (60, 60, 60))
    return tone(c.finish(rng, noise_sigma=3.0, vignette=0.5), CONTRAST["scene_b"])


def save(arr, path):
    Image.fromarray(arr, "RGB").save(path, optimize=True)
    digest = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
    print(f"{os.path.relpath(path, REPO)}: {arr.shape[1]}x{arr.shape[0]} (WxH), "
          f"{os.path.getsize(path)} bytes, rgb sha256 {digest}")


def main():
    ap = argparse.ArgumentParser(description="Draw the synthetic fixture scenes.")
    ap.add_argument("--outdir", default=DEFAULT_OUT)
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    save(scene_a(), os.path.join(args.outdir, "scene_a.png"))
    save(scene_b(), os.path.join(args.outdir, "scene_b.png"))


if __name__ == "__main__":
    main()
