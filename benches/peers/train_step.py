"""Time ultralytics YOLOv5 training steps (the peer of `ycomp bench --train`).

One step = forward in train mode, ComputeLoss, backward, clip_grad_norm_(10), SGD (smart_optimizer,
Nesterov), zero_grad, ModelEMA update — on a fixed random batch with 8 random boxes per image, as
`ycomp bench --train` does. Prints one JSON line like `ycomp bench --json`.

    python benches/peers/train_step.py --model yolov5n.yaml --imgsz 320 --batch 16 --runs 10 [--device cuda]
"""
import argparse
import json
import os
import statistics
import time

import torch
import yaml

import yolov5
from yolov5.models.yolo import Model
from yolov5.utils.loss import ComputeLoss
from yolov5.utils.torch_utils import ModelEMA, smart_optimizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="yolov5n.yaml")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--forward", action="store_true", help="time the fused eval forward pass instead (like ycomp bench)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(a.seed)
    root = os.path.dirname(yolov5.__file__)
    dev = torch.device(a.device)
    model = Model(os.path.join(root, "models", a.model), ch=3, nc=80).to(dev)
    hyp = yaml.safe_load(open(os.path.join(root, "data", "hyps", "hyp.scratch-low.yaml")))
    nl = model.model[-1].nl
    hyp["box"] *= 3 / nl
    hyp["cls"] *= 80 / 80 * 3 / nl
    hyp["obj"] *= (a.imgsz / 640) ** 2 * 3 / nl
    model.hyp = hyp
    model.train()
    compute_loss = ComputeLoss(model)
    opt = smart_optimizer(model, "SGD", 0.01, 0.937, 5e-4)
    ema = ModelEMA(model)
    g = torch.Generator().manual_seed(a.seed)
    n = a.batch * 8
    wh = torch.rand(n, 2, generator=g) * 0.48 + 0.02
    xy = wh / 2 + torch.rand(n, 2, generator=g) * (1 - wh)
    cls = torch.randint(0, 80, (n, 1), generator=g).float()
    img = (torch.arange(n) // 8).float().unsqueeze(1)
    targets = torch.cat([img, cls, xy, wh], 1).to(dev)
    x = torch.rand(a.batch, 3, a.imgsz, a.imgsz, generator=g).to(dev)
    ms = []
    if a.forward:
        model.eval()
        model = model.fuse()
        with torch.inference_mode():
            for i in range(a.warmup + a.runs):
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t = time.perf_counter()
                y = model(x)[0].cpu()
                if i >= a.warmup:
                    ms.append((time.perf_counter() - t) * 1e3)
        a.mode = "forward"
    for i in range(0 if a.forward else a.warmup + a.runs):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        pred = model(x)
        loss, _ = compute_loss(pred, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
        opt.step()
        opt.zero_grad()
        ema.update(model)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= a.warmup:
            ms.append((time.perf_counter() - t) * 1e3)
    med = statistics.median(ms)
    print(json.dumps({"median_ms": med, "min_ms": min(ms), "max_ms": max(ms), "images_per_s": a.batch * 1e3 / med,
                      "backend": f"pytorch-{a.device}", "model": a.model, "imgsz": a.imgsz, "batch": a.batch,
                      "runs": a.runs, "mode": "forward" if a.forward else "train_step", "torch": torch.__version__, "threads": a.threads}))


if __name__ == "__main__":
    main()
