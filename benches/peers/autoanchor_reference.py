#!/usr/bin/env python3
"""Reference numbers for yolo-compress's AutoAnchor (crates/train/src/autoanchor/).

What it is
    An independent NumPy re-computation (our own code) of the anchor-fit metric that ultralytics
    YOLOv5's utils/autoanchor.py uses in check_anchors and kmean_anchors: for label size wh and anchor
    k, r = wh / k, x = min over (w, h) of min(r, 1/r); best = max over anchors of x;
    BPR = mean(best > 1/thr), AAT = mean over labels of sum over anchors (x > 1/thr),
    fitness = mean(best * (best > 1/thr)). Everything is float32, as in the torch original; the
    metric is also evaluated with torch, written the way autoanchor.py writes it, to show the two agree.

What it prints
    1. BPR, AAT and fitness of a fixed set of 30 label sizes (BOXES, pixels) against YOLOv5's default
       COCO anchors at thr 4.0 and 3.0, and against a set of small anchors at thr 4.0. These numbers
       are hard-coded in crates/train/tests/autoanchor.rs (test `anchor_fit_matches_numpy_reference`).
    2. With --kmeans: ultralytics' own kmean_anchors (scipy k-means + 1000 generations) on synthetic
       label sizes drawn from 9 clusters, the same recipe as the Rust test
       `kmeans_recovers_synthetic_clusters` (not the same random draws), for comparison only.

Usage
    /work/venv-peers/bin/python benches/peers/autoanchor_reference.py [--kmeans]
"""

import argparse

import numpy as np

BOXES = np.array(
    [
        [40.0, 52.0], [39.0, 51.0], [2.5, 3.0], [1.0, 40.0], [5.0, 7.0], [8.0, 8.0], [12.5, 30.25],
        [20.0, 18.0], [33.0, 23.0], [64.0, 32.0], [90.0, 60.0], [120.0, 240.0], [250.0, 200.0],
        [600.0, 500.0], [640.0, 10.0], [15.0, 300.0], [47.75, 61.5], [1500.0, 1300.0], [3.0, 3.0],
        [100.0, 100.0], [180.0, 45.0], [0.5, 0.5], [7.0, 90.0], [55.0, 55.0], [400.0, 120.0],
        [28.0, 14.0], [9.5, 3.25], [160.0, 480.0], [300.0, 620.0], [72.0, 110.0],
    ],
    dtype=np.float32,
)
COCO = np.array(
    [[10, 13], [16, 30], [33, 23], [30, 61], [62, 45], [59, 119], [116, 90], [156, 198], [373, 326]],
    dtype=np.float32,
)
SMALL = np.array([[4, 5], [8, 6], [12, 14]], dtype=np.float32)

# 9 cluster centres (pixels at imgsz 640) for the synthetic k-means check
CENTRES = np.array(
    [[8, 10], [20, 40], [45, 25], [40, 90], [90, 60], [80, 170], [160, 120], [220, 300], [450, 380]],
    dtype=np.float64,
)


def fit_numpy(wh, k, thr):
    t = np.float32(1.0) / np.float32(thr)
    r = wh[:, None, :] / k[None, :, :]
    x = np.minimum(r, np.float32(1.0) / r).min(2)
    best = x.max(1)
    bpr = (best > t).astype(np.float64).mean()
    aat = (x > t).astype(np.float64).sum(1).mean()
    fitness = (best * (best > t)).astype(np.float64).mean()
    return bpr, aat, fitness, best


def fit_torch(wh, k, thr):
    import torch

    wh, k = torch.tensor(wh), torch.tensor(k)
    r = wh[:, None] / k[None]
    x = torch.min(r, 1 / r).min(2)[0]
    best = x.max(1)[0]
    aat = (x > 1 / thr).float().sum(1).mean()
    bpr = (best > 1 / thr).float().mean()
    fitness = (best * (best > 1 / thr).float()).mean()
    return float(bpr), float(aat), float(fitness)


def reference():
    for name, k, thr in (("coco", COCO, 4.0), ("coco", COCO, 3.0), ("small", SMALL, 4.0)):
        bpr, aat, fit, best = fit_numpy(BOXES, k, thr)
        print(f"{name} thr={thr}: bpr={bpr!r} ({round(bpr * len(BOXES))}/{len(BOXES)}) aat={aat!r} "
              f"({round(aat * len(BOXES))}/{len(BOXES)}) fitness={fit:.9f}")
        try:
            tb, ta, tf = fit_torch(BOXES, k, thr)
            print(f"  torch: bpr={tb:.9f} aat={ta:.9f} fitness={tf:.9f}")
        except ImportError:
            pass
        print("  best:", " ".join(f"{b:.6f}" for b in best))


class FakeDataset:
    """What kmean_anchors reads from a dataset: image shapes (w, h) and labels [cls, x, y, w, h]."""

    def __init__(self, rng, per_cluster=150, imgsz=640):
        self.shapes = np.full((1, 2), imgsz, dtype=np.float64)
        wh = []
        for c in CENTRES:
            wh.append(c * rng.uniform(0.85, 1.15, size=(per_cluster, 2)))
        wh = np.concatenate(wh) / imgsz
        lab = np.zeros((len(wh), 5), dtype=np.float32)
        lab[:, 3:5] = wh
        self.labels = [lab]


def kmeans_comparison():
    import torch
    from yolov5.utils.autoanchor import kmean_anchors

    rng = np.random.default_rng(0)
    np.random.seed(0)
    torch.manual_seed(0)
    import random

    random.seed(0)
    ds = FakeDataset(rng)
    k = kmean_anchors(ds, n=9, img_size=640, thr=4.0, gen=1000, verbose=False)
    wh = np.concatenate([l[:, 3:5] * 640 for l in ds.labels]).astype(np.float32)
    print("ultralytics kmean_anchors:", np.round(k, 1).tolist())
    print("  bpr new / coco:", fit_numpy(wh, k, 4.0)[0], fit_numpy(wh, COCO, 4.0)[0])
    print("  fitness new / coco / centres:", fit_numpy(wh, k, 4.0)[2], fit_numpy(wh, COCO, 4.0)[2],
          fit_numpy(wh, CENTRES.astype(np.float32), 4.0)[2])


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kmeans", action="store_true", help="also run ultralytics' kmean_anchors")
    args = ap.parse_args()
    reference()
    if args.kmeans:
        kmeans_comparison()
