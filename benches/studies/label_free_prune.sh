#!/usr/bin/env bash
# Label-free pruning of the real pretrained COCO yolov5s on the shared street-camera frames: every
# criterion / compensation / BN setting of docs/pruning.md ("Real models, unlabeled images"), both
# checkpoint forms, one-shot and iterative, with params, GFLOPs, fidelity on the 60 held-out frames
# (f0340-f0399, never used for calibration) and latency. Adaptive BN: 4 batches of 16 frames
# (BN=0 rows: none).
#
#   cargo build --release -p yolo-compress --bin ycomp
#   bash benches/studies/label_free_prune.sh OUT_DIR [IMGSZ]      # ~25 min on 2 cores at 320 px
set -euo pipefail
OUT=${1:?output folder}; IMGSZ=${2:-320}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
Y=${YCOMP:-$ROOT/target/release/ycomp}
F=${FIXTURES:-$ROOT/../shared/fixtures}
UNFUSED=$F/pretrained/yolov5s_coco.pt; FUSED=$F/pretrained/yolov5s_coco_fused.pt; FRAMES=$F/real/frames
mkdir -p "$OUT"
row() { # name weights args...
  local name=$1 w=$2; shift 2
  "$Y" prune --weights "$w" --calib "$FRAMES" --holdout 60 --imgsz "$IMGSZ" --bn-batches "${BN:-4}" \
    --out "$OUT/$name.safetensors" --json "$@" > "$OUT/$name.json" 2> "$OUT/$name.err"
  local lat
  lat=$("$Y" bench --weights "$OUT/$name.safetensors" --imgsz "$IMGSZ" --runs 10 --json 2>/dev/null \
    | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["median_ms"], 1))')
  python3 - "$OUT/$name.json" "$name" "$lat" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
share = d["map50_95_after_prune"] / d["map50_95_before"]
print(f"| {sys.argv[2]} | {d['flops_fraction']:.3f} | {d['params_after']:,} | {d['gflops_after']:.2f} | "
      f"{d['map50_95_after_prune']:.4f} | {100 * share:.1f} % | {sys.argv[3]} |")
PY
}
echo "| run | FLOPs kept | params | GFLOPs @$IMGSZ | fidelity | share of float | latency ms |"
echo "|---|---|---|---|---|---|---|"
base=$("$Y" bench --weights "$UNFUSED" --model yolov5s.yaml --imgsz "$IMGSZ" --runs 10 --json 2>/dev/null \
  | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["median_ms"], 1))')
gf=$("$Y" info --model yolov5s.yaml --imgsz "$IMGSZ" --json | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["gflops"], 2))')
echo "| float (unpruned) | 1.000 | 7,235,389 | $gf | - | 100 % | $base |"
T=0.9
BN=0 row "l1_uniform_none_stale_$T" "$UNFUSED" --method l1 --target-flops $T --compensate none --no-reanchor
row "l1_uniform_none_abn_$T" "$UNFUSED" --method l1 --target-flops $T --compensate none --no-reanchor
row "l1_uniform_mean_$T" "$UNFUSED" --method l1 --target-flops $T --compensate mean
row "group_uniform_mean_$T" "$UNFUSED" --method group --target-flops $T --compensate mean
row "act_uniform_mean_$T" "$UNFUSED" --method act --scope uniform --target-flops $T --compensate mean
row "act_raw_none_$T" "$UNFUSED" --method act --scope raw --target-flops $T --compensate none
row "act_raw_mean_noreanchor_$T" "$UNFUSED" --method act --scope raw --target-flops $T --compensate mean --no-reanchor
BN=0 row "act_raw_mean_stale_$T" "$UNFUSED" --method act --scope raw --target-flops $T --compensate mean
row "act_raw_linear_$T" "$UNFUSED" --method act --scope raw --target-flops $T --compensate linear
row "act_raw_mean_$T" "$UNFUSED" --method act --scope raw --target-flops $T --compensate mean
row "act_raw_mean_steps3_$T" "$UNFUSED" --method act --scope raw --target-flops $T --compensate mean --steps 3
row "fused_act_raw_mean_$T" "$FUSED" --method act --scope raw --target-flops $T --compensate mean
T=0.7
row "l1_uniform_none_abn_$T" "$UNFUSED" --method l1 --target-flops $T --compensate none --no-reanchor
row "act_uniform_mean_$T" "$UNFUSED" --method act --scope uniform --target-flops $T --compensate mean
row "act_raw_none_$T" "$UNFUSED" --method act --scope raw --target-flops $T --compensate none
row "act_raw_mean_$T" "$UNFUSED" --method act --scope raw --target-flops $T --compensate mean
row "act_raw_mean_steps3_$T" "$UNFUSED" --method act --scope raw --target-flops $T --compensate mean --steps 3
row "fused_act_raw_mean_$T" "$FUSED" --method act --scope raw --target-flops $T --compensate mean
row "act_global_mean_0.5" "$UNFUSED" --method act --scope global --target-flops 0.5 --compensate mean
row "act_raw_mean_0.5" "$UNFUSED" --method act --scope raw --target-flops 0.5 --compensate mean
row "act_raw_mean_steps3_0.5" "$UNFUSED" --method act --scope raw --target-flops 0.5 --compensate mean --steps 3
