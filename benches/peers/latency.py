#!/usr/bin/env python3
"""Peer latency baseline: YOLOv5 forward pass in PyTorch eager and in ONNX Runtime, on CPU.

What it measures
    The wall-clock time of one forward pass (batch 1, fp32, a square IMGSZ x IMGSZ input, 640 by
    default) of the YOLOv5 reference models, built from the yaml files packaged in the pip package
    `yolov5==7.0.14` (ultralytics YOLOv5 v7.0). The weights are the constructor's random init;
    weight values have no effect on the time of a dense conv net.
    Each model is put in eval mode and Conv+BN are fused with `model.fuse()`, as ultralytics'
    detect.py and val.py do. It is timed in two runtimes:
      (a) "torch": PyTorch eager, `torch.set_num_threads(THREADS)`, under `torch.inference_mode()`.
          The timed call is the full `model(x)`, including the Detect decode.
      (b) "onnxruntime": the same fused model, exported to ONNX (opset 12, legacy TorchScript
          exporter, Detect in export mode so that it returns only the decoded tensor) into a
          temporary directory. It runs on the CPU execution provider with intra_op_num_threads =
          THREADS, inter_op_num_threads = 1, sequential execution and all graph optimisations.
    Each (runtime, model) pair gets WARMUP untimed runs, then RUNS timed runs. The timer is
    time.perf_counter(). The input is the same fixed random tensor (seed 0) every time.
    The script also records max |torch - onnxruntime| on the decoded output, as a sanity check.

Output
    A JSON object on stdout, and also in --out FILE when that is given:
      {"torch": {"yolov5n": {"median_ms", "min_ms", "max_ms", "mean_ms", "runs", "warmup"}, ...},
       "onnxruntime": {...}, "onnx_vs_torch_max_abs_diff": {...}, "threads": 2, "imgsz": 640,
       "batch": 1, "dtype": "float32", "cpu": "<model name from /proc/cpuinfo>", "cpu_count": N,
       "loadavg_before": [...], "loadavg_after": [...], "versions": {...}}
    Progress goes to stderr.

How to run it (by hand; CI does not run it)
    /path/to/venv/bin/python benches/peers/latency.py --out /tmp/peers.json
    /path/to/venv/bin/python benches/peers/latency.py --models yolov5n --runs 50 --threads 1
    On a shared or busy machine the numbers are noisy: compare the medians, and look at the load
    averages recorded in the JSON. PyTorch's OpenMP threads suffer most: on the 2-core dev box
    with a compile job running (load ~3.6), yolov5n took a median 372 ms with --threads 2 but
    109 ms with --threads 1 (ONNX Runtime: 102 ms and 62 ms). Measure when the machine is idle.

Python packages it needs (pip, PyPI)
    torch, numpy, onnx, onnxruntime, pyyaml, plus `yolov5==7.0.14` and `ultralytics` installed with
    `--no-deps` (yolov5.utils.general imports ultralytics.utils.checks), `setuptools<81` (yolov5
    imports pkg_resources), and the small packages yolov5's modules import: opencv-python-headless,
    pandas, requests, tqdm, matplotlib, seaborn, psutil, thop, gitpython, Pillow, scipy, torchvision.
    PyPI's Linux torch wheel also pulls its CUDA libraries (about 3 GB); only the CPU is used.
"""
import argparse
import contextlib
import io
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def stats(times_s, warmup):
    ms = [t * 1e3 for t in times_s]
    return {
        "median_ms": round(statistics.median(ms), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "runs": len(ms),
        "warmup": warmup,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="yolov5n,yolov5s",
                    help="comma-separated model names from yolov5/models/*.yaml (default: yolov5n,yolov5s)")
    ap.add_argument("--runs", type=int, default=30, help="timed runs per model and runtime (default 30)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed warm-up runs (default 5)")
    ap.add_argument("--imgsz", type=int, default=640, help="square input size (default 640)")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads for both runtimes (default 2)")
    ap.add_argument("--runtimes", default="torch,onnxruntime", help="which runtimes (default: both)")
    ap.add_argument("--out", default=None, help="also write the JSON to this file")
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    import yolov5
    from yolov5.utils.general import LOGGER
    LOGGER.setLevel(logging.WARNING)
    from yolov5.models.yolo import Model

    yroot = os.path.dirname(yolov5.__file__)
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]

    ort = None
    if "onnxruntime" in runtimes:
        import onnx
        import onnxruntime as ort

    result = {r: {} for r in runtimes}
    if "onnxruntime" in runtimes and "torch" in runtimes:
        result["onnx_vs_torch_max_abs_diff"] = {}
    result.update({
        "threads": args.threads, "imgsz": args.imgsz, "batch": 1, "dtype": "float32",
        "cpu": cpu_name(), "cpu_count": os.cpu_count(), "loadavg_before": loadavg(),
    })

    x = torch.rand(1, 3, args.imgsz, args.imgsz, generator=torch.Generator().manual_seed(0))
    for name in models:
        cfg = os.path.join(yroot, "models", f"{name}.yaml")
        if not os.path.exists(cfg):
            cfg = os.path.join(yroot, "models", "hub", f"{name}.yaml")
        torch.manual_seed(0)
        with contextlib.redirect_stdout(io.StringIO()):
            model = Model(cfg, ch=3, nc=80).eval()
            model = model.fuse().eval()
        n_params = sum(p.numel() for p in model.parameters())
        log(f"{name}: fused, {n_params:,} parameters")

        y_torch = None
        if "torch" in runtimes:
            with torch.inference_mode():
                for _ in range(args.warmup):
                    model(x)
                times = []
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    y = model(x)
                    times.append(time.perf_counter() - t0)
                y_torch = y[0].numpy().copy()
            result["torch"][name] = stats(times, args.warmup)
            log(f"  torch       median {result['torch'][name]['median_ms']:.1f} ms")

        if "onnxruntime" in runtimes:
            det = model.model[-1]
            det.export = True  # Detect returns only the decoded tensor (no raw per-level list)
            with tempfile.TemporaryDirectory() as td:
                path = os.path.join(td, f"{name}.onnx")
                with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
                    torch.onnx.export(model, (x,), path, opset_version=12, dynamo=False,
                                      input_names=["images"], output_names=["output0"],
                                      do_constant_folding=True)
                onnx.checker.check_model(onnx.load(path))
                so = ort.SessionOptions()
                so.intra_op_num_threads = args.threads
                so.inter_op_num_threads = 1
                so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            det.export = False
            feed = {"images": x.numpy()}
            for _ in range(args.warmup):
                sess.run(None, feed)
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                out = sess.run(None, feed)
                times.append(time.perf_counter() - t0)
            result["onnxruntime"][name] = stats(times, args.warmup)
            log(f"  onnxruntime median {result['onnxruntime'][name]['median_ms']:.1f} ms")
            if y_torch is not None:
                result["onnx_vs_torch_max_abs_diff"][name] = float(np.abs(out[0] - y_torch).max())
            del sess

    result["loadavg_after"] = loadavg()
    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                "yolov5": getattr(yolov5, "__version__", "?")}
    if ort is not None:
        versions["onnxruntime"] = ort.__version__
        versions["onnx"] = onnx.__version__
    result["versions"] = versions
    result["torch_config"] = {"mkldnn": torch.backends.mkldnn.is_available(),
                              "num_threads": torch.get_num_threads()}

    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
