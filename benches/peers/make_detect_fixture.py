#!/usr/bin/env python3
"""Reference detections made with ultralytics YOLOv5's own detect pipeline (yolov5==7.0.14).

For each synthetic scene in crates/yolo-compress/tests/fixtures/ (scene_a.png, scene_b.png; drawn
by make_scene.py) this runs the steps detect.py runs for a .pt model, calling the package's own
functions:
  1. yolov5.utils.dataloaders.LoadImages(path, img_size=IMGSZ, stride=32, auto=True):
     cv2.imread (BGR) -> letterbox (cv2.resize INTER_LINEAR, grey 114 border, padding to the
     smallest multiple of 32, split between both sides) -> HWC BGR to CHW RGB, uint8.
  2. torch.from_numpy(im).float() / 255, batch axis added.
  3. Forward of yolov5n with the random fixture weights, Conv+BN fused with model.fuse(), eval
     (detect.py loads .pt weights through attempt_load(..., fuse=True)).
  4. non_max_suppression(pred, conf_thres=CONF, iou_thres=0.45, classes=None, agnostic=False,
     max_det=1000) (multi_label=False, as in detect.py).
  5. scale_boxes(letterboxed_hw, boxes, original_shape): boxes back to original-image pixels,
     clipped to the image. detect.py then rounds them to whole pixels.

Weights: shared/fixtures/yolov5n_random.pt, a plain state_dict of yolov5n with random weights
(see shared/fixtures/README.md). The model is built as the fixtures are: Model(<packaged
yolov5n.yaml>, ch=3, nc=80), then load_state_dict. The constructor sets every BatchNorm eps to 1e-3.

Output: crates/yolo-compress/tests/fixtures/detect_yolov5n_random.json with, per image,
  - detections in NMS keep order (descending score): class_id, score, bbox_xyxy (original-image
    pixels, unrounded, after scale_boxes and clipping), bbox_xyxy_rounded (what detect.py prints
    and saves), bbox_xyxy_letterboxed (network-input pixels, before scale_boxes);
  - letterboxed_shapes [h, w] and a "preprocess" block: the letterbox numbers (ratio, float pads,
    integer top/bottom/left/right borders), the input tensor shape, the mean of the float input
    in 0..1, per-channel means, and exact integer checksums of the uint8 letterboxed RGB CHW image;
  - "robustness": how near the closest anchor's score lies to the conf threshold and the closest
    same-class candidate pair to the IoU threshold; the detections of the unfused model and of a
    float64 forward compared with these; and the effect of +-1 on 1 % of the input pixel values.
Also crates/yolo-compress/tests/fixtures/<scene>_letterboxed_<imgsz>.png: the exact uint8 RGB
network input (LoadImages' output, HWC), so the model + NMS + scale_boxes part can be tested on
its own. The random-weight model is sensitive to its input: +-1 on 1 % of the pixel values moves
scores by 2e-3..5e-3 and can drop or add a box, while a float64 forward of the same input keeps
every box (scores within 1e-5, boxes within 2e-3 px). So an end-to-end check from scene_*.png needs
a bit-exact cv2 INTER_LINEAR letterbox: compare the uint8 checksums first.
With --bus-out it runs the same pipeline at --bus-imgsz (640) on the bus.jpg photo bundled
in the yolov5 pip package and writes that result to the given file only (keep it out of the repo).

Run (by hand; CI does not run it):
  /path/to/venv/bin/python benches/peers/make_scene.py
  /path/to/venv/bin/python benches/peers/make_detect_fixture.py --bus-out /tmp/bus_reference.json
  /path/to/venv/bin/python benches/peers/make_detect_fixture.py --sweep   # counts per conf only
Needs: torch, numpy, opencv-python-headless, pyyaml, yolov5==7.0.14 + ultralytics (--no-deps) and
their small imports (see benches/peers/latency.py), setuptools<81.
"""
import argparse
import contextlib
import copy
import hashlib
import io
import json
import logging
import os
import sys
import warnings

warnings.filterwarnings("ignore")
import numpy as np
import torch
from PIL import Image

torch.set_num_threads(2)

import yolov5  # noqa: E402
from yolov5.utils.general import LOGGER  # noqa: E402

LOGGER.setLevel(logging.WARNING)
from yolov5.models.yolo import Model  # noqa: E402
from yolov5.utils.augmentations import letterbox  # noqa: E402
from yolov5.utils.dataloaders import LoadImages  # noqa: E402
from yolov5.utils.general import box_iou, non_max_suppression, scale_boxes  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
FIXOUT = os.path.join(REPO, "crates", "yolo-compress", "tests", "fixtures")
YROOT = os.path.dirname(yolov5.__file__)
DEFAULT_WEIGHTS = os.path.abspath(os.path.join(REPO, "..", "shared", "fixtures", "yolov5n_random.pt"))
SCENES = ["scene_a.png", "scene_b.png"]
IOU = 0.45
MAX_DET = 1000
STRIDE = 32


def load_models(weights):
    with contextlib.redirect_stdout(io.StringIO()):
        m = Model(os.path.join(YROOT, "models", "yolov5n.yaml"), ch=3, nc=80)
        m.load_state_dict(torch.load(weights, map_location="cpu"))
        m.float().eval()
        unfused = Model(os.path.join(YROOT, "models", "yolov5n.yaml"), ch=3, nc=80)
        unfused.load_state_dict(torch.load(weights, map_location="cpu"))
        unfused.float().eval()
        fused = m.fuse().eval()
    assert all(b.eps == 1e-3 for b in unfused.modules() if isinstance(b, torch.nn.BatchNorm2d))
    return fused, unfused


def load_image(path, imgsz):
    """Exactly what detect.py gets from LoadImages for one image file."""
    ds = LoadImages(path, img_size=imgsz, stride=STRIDE, auto=True)
    _p, im, im0, _cap, _s = next(iter(ds))
    return im, im0


def preprocess_info(im, im0, imgsz):
    """Letterbox numbers (recomputed with yolov5's letterbox) and checksums of the network input."""
    lb, ratio, (dw, dh) = letterbox(im0, imgsz, stride=STRIDE, auto=True)
    assert np.array_equal(lb[:, :, ::-1].transpose(2, 0, 1), im), "LoadImages != letterbox"
    h0, w0 = im0.shape[:2]
    new_unpad_wh = [int(round(w0 * ratio[0])), int(round(h0 * ratio[1]))]
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    x = torch.from_numpy(np.ascontiguousarray(im)).float() / 255
    im64 = im.astype(np.int64)
    return {
        "original_hw": [h0, w0],
        "ratio": float(ratio[0]),
        "resized_hw": [new_unpad_wh[1], new_unpad_wh[0]],
        "resized": bool((w0, h0) != tuple(new_unpad_wh)),
        "pad_wh_float": [float(dw), float(dh)],
        "border_top_bottom_left_right": [top, bottom, left, right],
        "pad_value": 114,
        "input_shape": [1] + list(x.shape),
        "input_mean": float(x.double().mean()),  # of the float32 tensor, summed in float64
        "input_mean_exact": float(im64.sum()) / (255.0 * im64.size),  # uint8_sum / (255 * numel)
        "input_channel_mean_rgb": [float(v) for v in x.double().mean(dim=(1, 2))],
        "input_std": float(x.double().std()),
        "uint8_sum": int(im64.sum()),
        "uint8_channel_sum_rgb": [int(v) for v in im64.sum(axis=(1, 2))],
        "uint8_chw_rgb_sha256": hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest(),
        "original_rgb_hwc_sha256": hashlib.sha256(np.ascontiguousarray(im0[:, :, ::-1]).tobytes()).hexdigest(),
    }


def forward(model, im):
    x = torch.from_numpy(np.ascontiguousarray(im)).float()
    x /= 255
    x = x[None]
    with torch.no_grad():
        pred, _raw = model(x)
    return x, pred


def detect(model, im, im0, conf):
    x, pred = forward(model, im)
    det = non_max_suppression(pred, conf_thres=conf, iou_thres=IOU, classes=None, agnostic=False,
                              max_det=MAX_DET)[0]
    letterboxed = det[:, :4].clone()
    det[:, :4] = scale_boxes(x.shape[2:], det[:, :4], im0.shape)
    return pred, det, letterboxed


def margins(pred, conf):
    """How close the decisions lie to the thresholds, over all anchors of the decoded output.
    A box passes iff score = obj * max_cls > conf (score <= obj, so the obj > conf pre-filter never
    decides alone). score: min over anchors of |score - conf|. iou: min over pairs of same-class
    candidates above conf of |IoU - iou_thres| (a superset of the pairs NMS compares)."""
    p = pred[0].double()
    score, cls = (p[:, 5:] * p[:, 4:5]).max(1)
    cand = score > conf
    xy, wh = p[cand, :2], p[cand, 2:4]
    boxes = torch.cat([xy - wh / 2, xy + wh / 2], 1)
    c = cls[cand]
    m_iou = None
    if len(boxes) > 1:
        iou = box_iou(boxes, boxes)
        same = (c[:, None] == c[None, :]) & ~torch.eye(len(boxes), dtype=torch.bool)
        if same.any():
            m_iou = float((iou[same] - IOU).abs().min())
    return {"min_abs_score_minus_conf": float((score - conf).abs().min()),
            "candidates_above_conf": int(cand.sum()),
            "min_abs_iou_minus_iou_thres_same_class": m_iou}


def match(d_ref, d_other, tol_px=1.0):
    """For each reference box, the nearest same-class box of d_other by the largest coordinate
    difference (many of these random-weight boxes are clipped to zero-height lines, so IoU is no
    use here). Returns (matched boxes / max(len) with difference <= tol_px, max |score diff| and
    max |coordinate diff| over the matched ones)."""
    if len(d_ref) == 0 or len(d_other) == 0:
        return (1.0 if len(d_ref) == len(d_other) else 0.0), None, None
    a, b = d_ref.double(), d_other.double()
    dist = (a[:, None, :4] - b[None, :, :4]).abs().amax(2)
    dist[a[:, 5][:, None] != b[:, 5][None, :]] = float("inf")
    best, j = dist.min(1)
    ok = best <= tol_px
    if not ok.any():
        return 0.0, None, None
    sd = float((a[ok, 4] - b[j[ok], 4]).abs().max())
    return float(ok.sum()) / max(len(a), len(b)), sd, float(best[ok].max())


def det_rows(det, letterboxed):
    rows = []
    for d, lb in zip(det.tolist(), letterboxed.tolist()):
        rows.append({
            "class_id": int(d[5]),
            "score": float(d[4]),
            "bbox_xyxy": [float(v) for v in d[:4]],
            "bbox_xyxy_rounded": [float(round(v)) for v in torch.tensor(d[:4]).round().tolist()],
            "bbox_xyxy_letterboxed": [float(v) for v in lb],
        })
    return rows


def run_images(paths, fused, unfused, imgsz, conf, save_letterboxed=False, sensitivity=True):
    fused64 = copy.deepcopy(fused).double()
    out = {"images": {}, "letterboxed_shapes": {}, "preprocess": {}, "robustness": {}}
    for path in paths:
        name = os.path.basename(path)
        im, im0 = load_image(path, imgsz)
        pred, det, lb = detect(fused, im, im0, conf)
        _pred_u, det_u, _ = detect(unfused, im, im0, conf)
        out["images"][name] = det_rows(det, lb)
        out["letterboxed_shapes"][name] = list(im.shape[1:])
        out["preprocess"][name] = preprocess_info(im, im0, imgsz)
        if save_letterboxed:
            stem = os.path.splitext(name)[0]
            lb_name = f"{stem}_letterboxed_{imgsz}.png"
            Image.fromarray(np.ascontiguousarray(im.transpose(1, 2, 0)), "RGB").save(
                os.path.join(os.path.dirname(path), lb_name), optimize=True)
            out["preprocess"][name]["letterboxed_png"] = lb_name

        rob = margins(pred, conf)
        scores = det[:, 4].tolist()
        rob["min_score_gap_between_detections"] = min([p - q for p, q in zip(scores, scores[1:])], default=None)
        frac, sd, bd = match(det, det_u)
        rob["unfused_model"] = {"same_classes_in_order": det.shape == det_u.shape and bool(torch.equal(det[:, 5], det_u[:, 5])),
                                "matched_fraction": frac, "max_score_diff": sd, "max_box_diff_px": bd}
        # float64 forward of the same fused weights on the same input
        x64 = torch.from_numpy(np.ascontiguousarray(im)).double()[None] / 255
        with torch.no_grad():
            pred64 = fused64(x64)[0]
        d64 = non_max_suppression(pred64, conf_thres=conf, iou_thres=IOU, max_det=MAX_DET)[0]
        d64[:, :4] = scale_boxes(x64.shape[2:], d64[:, :4], im0.shape)
        frac, sd, bd = match(det, d64)
        rob["float64_forward"] = {"same_classes_in_order": det.shape == d64.shape and bool(torch.equal(det[:, 5], d64[:, 5])),
                                  "matched_fraction": frac, "max_score_diff": sd, "max_box_diff_px": bd,
                                  "decoded_max_abs_diff": float((pred.double() - pred64).abs().max())}
        if sensitivity:
            # +-1 on 1 % of the original image's uint8 values, then the whole pipeline again;
            # a box counts as kept when a same-class box lies within 1 px on every coordinate
            rng = np.random.default_rng(123)
            trials = []
            for _ in range(3):
                bump = (rng.random(im0.shape) < 0.01) * rng.choice([-1, 1], im0.shape)
                im0p = np.clip(im0.astype(np.int64) + bump, 0, 255).astype(np.uint8)
                imp = letterbox(im0p, imgsz, stride=STRIDE, auto=True)[0][:, :, ::-1].transpose(2, 0, 1)
                _, dp, _ = detect(fused, np.ascontiguousarray(imp), im0p, conf)
                f, sd, bd = match(det, dp)
                trials.append({"n": len(dp), "matched_fraction": round(f, 3), "max_score_diff": sd})
            rob["input_plus_minus_1_on_1pct_of_pixels"] = trials
        out["robustness"][name] = rob
        print(f"{name}: input {list(im.shape)}, {len(det)} detections, classes "
              f"{sorted(set(int(c) for c in det[:, 5].tolist()))}, margins score "
              f"{rob['min_abs_score_minus_conf']:.2e} iou {rob['min_abs_iou_minus_iou_thres_same_class']}",
              file=sys.stderr)
    return out


def main():
    ap = argparse.ArgumentParser(description="Reference detections with ultralytics' detect pipeline.")
    ap.add_argument("--weights", default=DEFAULT_WEIGHTS)
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--out", default=os.path.join(FIXOUT, "detect_yolov5n_random.json"))
    ap.add_argument("--bus-out", default=None, help="also run on the package's data/images/bus.jpg; write here")
    ap.add_argument("--bus-imgsz", type=int, default=640)
    ap.add_argument("--sweep", action="store_true", help="only print detection counts for several conf values")
    args = ap.parse_args()

    fused, unfused = load_models(args.weights)
    paths = [os.path.join(FIXOUT, s) for s in SCENES]

    if args.sweep:
        for conf in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7):
            counts = {}
            for p in paths:
                im, im0 = load_image(p, args.imgsz)
                counts[os.path.basename(p)] = len(detect(fused, im, im0, conf)[1])
            print(conf, counts)
        return

    res = run_images(paths, fused, unfused, args.imgsz, args.conf, save_letterboxed=True)
    doc = {
        "generator": "benches/peers/make_detect_fixture.py",
        "reference": "yolov5==7.0.14 pip package (ultralytics YOLOv5 v7.0): LoadImages, fused model, "
                     "non_max_suppression, scale_boxes, as detect.py",
        "weights": os.path.basename(args.weights),
        "weights_sha256": hashlib.sha256(open(args.weights, "rb").read()).hexdigest(),
        "model": "yolov5n.yaml, nc=80, BatchNorm eps 1e-3, Conv+BN fused",
        "imgsz": args.imgsz,
        "stride": STRIDE,
        "auto": True,
        "conf": args.conf,
        "iou": IOU,
        "max_det": MAX_DET,
        "multi_label": False,
        "agnostic": False,
        "notes": [
            "bbox_xyxy: original-image pixels, unrounded, clipped to the image; compare these with a "
            "tolerance. bbox_xyxy_rounded is detect.py's .round() of the same numbers.",
            "scale_boxes removes the padding as (letterboxed - original*gain)/2 in float, not the integer "
            "border letterbox added (top = round(dh - 0.1), left = round(dw - 0.1)); gain = min(h1/h0, w1/w0).",
            "Detections are in NMS keep order: descending score. score = obj * max class prob.",
            "Input: LoadImages reads with cv2.imread (BGR), letterboxes in BGR with cv2.resize "
            "INTER_LINEAR and a (114,114,114) border, then flips to RGB CHW; float input = uint8 / 255.",
            "preprocess.*.input_mean is the mean of the float32 input (uint8 / 255 rounded to float32) "
            "summed in float64; input_mean_exact = uint8_sum / (255 * numel); they differ by ~1e-8.",
            "preprocess.*.uint8_* are exact checksums of that uint8 RGB CHW letterboxed image; "
            "preprocess.*.letterboxed_png holds that image (RGB, HWC) losslessly.",
            "This random-weight model is very input-sensitive (see robustness.*.input_plus_minus_1_on_1pct_of_pixels): "
            "test the model + NMS from the letterboxed PNG, and the pre-processing by its checksums; "
            "float rounding in the forward pass is harmless (robustness.*.float64_forward).",
            "The scenes are drawn at low contrast on purpose (see benches/peers/make_scene.py): at full "
            "contrast this model saturates (hundreds of boxes, scores exactly 1.0).",
        ],
        **res,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)", file=sys.stderr)

    if args.bus_out:
        bus = os.path.join(YROOT, "data", "images", "bus.jpg")
        if not os.path.exists(bus):
            print(f"no {bus}; skipping the bus reference", file=sys.stderr)
            return
        bres = run_images([bus], fused, unfused, args.bus_imgsz, args.conf, sensitivity=False)
        bdoc = {k: v for k, v in doc.items() if k not in ("images", "letterboxed_shapes", "preprocess", "robustness")}
        bdoc.update({"imgsz": args.bus_imgsz, "image_source": bus,
                     "note": "bus.jpg ships with the yolov5 pip package (AGPL-3.0); keep this file and the image "
                             "out of the repository. JPEG decoders differ slightly, so compare with a tolerance."})
        bdoc.update(bres)
        with open(args.bus_out, "w") as f:
            json.dump(bdoc, f, indent=1)
            f.write("\n")
        print(f"wrote {args.bus_out}", file=sys.stderr)


if __name__ == "__main__":
    main()
