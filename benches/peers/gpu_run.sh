#!/usr/bin/env bash
# One-shot GPU measurement on a machine with an NVIDIA GPU and PyTorch (the device machine): Vulkan
# forward latency and training-step throughput of `ycomp` next to ultralytics' PyTorch/CUDA, and a
# short training run on the synthetic dataset. Everything lands in $OUT (or /tmp/gpu-out).
#
#   benches/peers/gpu_run.sh gpu/ycomp.gz   # a release `ycomp` built with --features vulkan, gzipped
#
# Python peers need `yolov5==7.0.14` (+ ultralytics, thop, setuptools<81) wheels in gpu/*.whl.
set -u
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
B=/tmp/ycomp
if [ -d .gl ]; then for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
f=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f $f ] && export VK_DRIVER_FILES=$f __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
gunzip -c "$1" > $B && chmod +x $B
if ls gpu/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site gpu/*.whl \
    && export PYTHONPATH=/tmp/site
fi
nvidia-smi -L | tee "$OUT/gpu.txt"
log() { echo "== $*" | tee -a "$OUT/log.txt"; }
run() { log "$*"; timeout 90 "$@" 2>>"$OUT/stderr.txt" | tee -a "$OUT/results.jsonl"; }
# Training step, yolov5n 320 batch 16.
run $B bench --train --device vulkan --model yolov5n.yaml --imgsz 320 --batch 16 --runs 10 --warmup 3 --json
run python3 benches/peers/train_step.py --device cuda --model yolov5n.yaml --imgsz 320 --batch 16 --runs 10 --warmup 3 --threads 16
run $B bench --train --device cpu --model yolov5n.yaml --imgsz 320 --batch 16 --runs 5 --warmup 1 --json
# Forward latency (fused, eval), batch 1 and 16.
for m in yolov5n yolov5s; do
  run $B bench --device vulkan --model $m.yaml --imgsz 640 --batch 1 --runs 30 --warmup 5 --json
  run $B bench --device vulkan --model $m.yaml --imgsz 640 --batch 16 --runs 10 --warmup 3 --json
  run python3 benches/peers/train_step.py --forward --device cuda --model $m.yaml --imgsz 640 --batch 1 --runs 30 --warmup 5
  run python3 benches/peers/train_step.py --forward --device cuda --model $m.yaml --imgsz 640 --batch 16 --runs 10 --warmup 3
done
# A real training run on the synthetic dataset (loader + train + val per epoch).
log synth+train
$B synth --out /tmp/synth --images 1000 --val 200 --imgsz 256 --quiet
timeout 170 $B train --device vulkan --data /tmp/synth/data.yaml --model yolov5n.yaml --imgsz 256 --batch 16 \
  --epochs 40 --workers 8 --project /tmp/runs --name gpu --noplots --json > "$OUT/train.json" 2>>"$OUT/stderr.txt"
cp /tmp/runs/gpu/results.csv "$OUT/" 2>/dev/null
tail -c 3000 "$OUT/stderr.txt"
