#!/usr/bin/env bash
# Forward latency of yolov5n/s at 640, batch 1, fp32: yolo-compress (flex CPU backend, fused) and its
# peers (PyTorch eager, ONNX Runtime; see latency.py) measured back to back on the same machine.
#
#   benches/peers/side_by_side.sh /path/to/venv/bin/python [RUNS] > /tmp/side_by_side.json
#
# Builds `ycomp` in release first. Run it on an otherwise idle machine; the load average before and
# after each step is recorded. Output: one JSON object per line (ycomp runs, then latency.py).
set -euo pipefail
PY=${1:?usage: side_by_side.sh PYTHON [RUNS]}
RUNS=${2:-30}
cd "$(dirname "$0")/../.."
cargo build --release -q -p yolo-compress --bin ycomp
YCOMP=${CARGO_TARGET_DIR:-target}/release/ycomp
for m in yolov5n yolov5s; do
  echo "{\"loadavg\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"ycomp\": $("$YCOMP" bench --model "$m.yaml" --imgsz 640 --runs "$RUNS" --warmup 3 --json)}"
done
"$PY" benches/peers/latency.py --models yolov5n,yolov5s --runs "$RUNS" --threads 2 2>/dev/null |
  "$PY" -c 'import json, sys; print(json.dumps(json.load(sys.stdin)))'
