#!/usr/bin/env bash
# Images/s through image processor + vision tower, ovr against transformers, on 8 PNGs between
# 300x200 and 1600x1200 (made by image_processor_bench), a 4-block 640-wide vision tower with
# Qwen2.5-VL's layout (bench/configs/qwen2_5_vl_vision_bench.json), fp32, same threads.
#   bash bench/vision_bench.sh [PYTHON]    PYTHON: with torch, transformers and pillow
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${1:-python3}"
WORK="${WORK:-/tmp/ovr_vision_bench}" THREADS="${THREADS:-2}" MAX_PIXELS="${MAX_PIXELS:-451584}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml=ob1
mkdir -p "$WORK"
"$REPO/build/bench/image_processor_bench" "$WORK" 1 >/dev/null
[ -f "$WORK/model/model.safetensors" ] || "$REPO/build/src/ovr_init" --model-config "$REPO/bench/configs/qwen2_5_vl_vision_bench.json" --seed 3 -o "$WORK/model" >/dev/null
IMAGES=$(ls "$WORK"/ovr_image_bench_*.png | head -8)
echo "vision: 8 images, max_pixels $MAX_PIXELS (an RL-style limit), $THREADS threads, fp32"
"$REPO/build/bench/vision_bench" "$WORK/model" "$THREADS" "$MAX_PIXELS" $IMAGES | tee "$WORK/ovr.json"
"$PY" "$REPO/bench/vision_bench_hf.py" "$WORK/model" "$THREADS" "$MAX_PIXELS" $IMAGES 2>/dev/null | tee "$WORK/hf.json"
"$PY" -c "import json; o=json.load(open('$WORK/ovr.json')); h=json.load(open('$WORK/hf.json')); assert o['llm_tokens']==h['llm_tokens'], (o, h); print(f\"images/s: ovr {o['images_per_s']:.2f}, transformers {h['images_per_s']:.2f}, ratio {o['images_per_s']/h['images_per_s']:.2f}x (goal >= 1x); same {o['llm_tokens']} LLM tokens\")"
