#!/usr/bin/env bash
# Device-machine check of pruning and distillation (issue #5): the 300-epoch yolov5s of
# docs/pruning.md is pruned again by EagleEye on this machine's CPU and on its GPU (Vulkan), both
# models are validated on the test set on each, their forward latency is measured on the GPU, and
# a distillation fine-tune (`ycomp train --teacher`) runs 2 epochs on the GPU next to the CPU.
#
#   benches/peers/gpu_prune.sh gpu/ycomp.xz gpu/teacher.xz   # carry: .gl gpu/ycomp.xz gpu/teacher.xz
#
# ycomp.xz: a release `ycomp` built with --features vulkan, stripped, xz'd; teacher.xz: the base
# model packed by benches/peers/f32pack.py (12 low mantissa bits dropped; its test mAP50-95 is
# unchanged, 0.491). Everything lands in $OUT (or /tmp/gpu-out). The transfer holds ~3 MB to spare
# under the 64 MiB cap (the repository alone is 38.5 MB). Expected on the CPU, from the dev VM:
# EagleEye picks candidate 3 (0.520 FLOPs, 3,660,280 params); test mAP50-95 0.491 (base), 0.290
# (pruned, before fine-tuning).
set -u
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
REPO=$(pwd)
if [ -d .gl ]; then for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
f=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f $f ] && export VK_DRIVER_FILES=$f
Y=/tmp/ycomp
xz -dc "$1" > $Y && chmod +x $Y
T=/tmp/teacher.safetensors
python3 benches/peers/f32pack.py unpack "$2" $T
W=/tmp/w; mkdir -p $W; cd $W
nvidia-smi -L; nproc; date
t0=$(date +%s)
el() { echo "== [$(( $(date +%s) - t0 )) s] $*"; }
S="--classes 3 --imgsz 64 --min-objects 1 --max-objects 2 --min-size 12 --max-size 0.6 --clutter 0.2 --noise 3 --quiet"
$Y synth --out data --images 400 --val 100 --seed 0 $S
$Y synth --out test --images 1 --val 1000 --seed 7 $S
# Expected (the dev VM's files): data 8b40d158f3851eb0e74193480711c5d2, test 54b04f4017a0628891eeb5e5fde6e102.
for d in data test; do (cd $d && find labels -name '*.txt' | sort | xargs cat | md5sum | sed "s/-/$d labels/"); done
el "EagleEye on the CPU"
timeout 240 $Y prune --weights $T --data data/data.yaml --imgsz 64 --method eagleeye --target-flops 0.5 --out ee_cpu.safetensors --json > "$OUT/prune_cpu.json"
grep -E '"(params_after|flops_fraction|map50_95_after_prune)"' "$OUT/prune_cpu.json" | head
el "validation on the test set"
for w in $T ee_cpu.safetensors; do for d in cpu vulkan; do
  echo "$w $d $(timeout 90 $Y val --device $d --weights $w --data test/data.yaml --imgsz 64 --batch 32 2>&1 | grep -E '^\s+all')"
done; done
el "forward latency (fused, eval, output copied to the host)"
for r in 1 2; do for w in $T ee_cpu.safetensors; do
  for a in "--imgsz 640 --batch 1 --runs 30 --warmup 5" "--imgsz 640 --batch 16 --runs 10 --warmup 3" "--imgsz 64 --batch 1 --runs 30 --warmup 5"; do
    echo "round $r $w $a $(timeout 60 $Y bench --device vulkan --weights $w $a --json 2>/dev/null | tr -d '\n ')"
  done
done; done
el "distillation fine-tune, 2 of 60 epochs, GPU then CPU"
K="--model ee_cpu.safetensors --teacher $T --data data/data.yaml --imgsz 64 --batch 16 --nbs 16 --epochs 60 --stop-after 2 --optimizer adam --hyp $REPO/benches/peers/hyp_ft.yaml --seed 0 --noval --noplots --json --project runs"
timeout 200 $Y train --device vulkan $K --name kd_gpu > "$OUT/kd_gpu.json" 2> kd_gpu.err; tail -n 3 kd_gpu.err
timeout 90 $Y train --device cpu $K --name kd_cpu > "$OUT/kd_cpu.json" 2> kd_cpu.err; tail -n 3 kd_cpu.err
el "EagleEye on the GPU"
timeout 200 $Y prune --device vulkan --weights $T --data data/data.yaml --imgsz 64 --method eagleeye --target-flops 0.5 --out ee_gpu.safetensors --json > "$OUT/prune_gpu.json"
grep -E '"(params_after|flops_fraction|map50_95_after_prune)"' "$OUT/prune_gpu.json" | head
el done
