#!/usr/bin/env bash
# Generation throughput, ovr against Hugging Face transformers, on the same ~50M-parameter
# Qwen2 weights (bench/configs/qwen2_50m.json), threads, prompts and sampling settings.
#
#   bash bench/generation_bench.sh [PYTHON]     PYTHON: an interpreter with torch + transformers
#                                               (e.g. a venv: pip install torch transformers)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${1:-python3}"
WORK="${WORK:-/tmp/ovr_gen_bench}"
THREADS="${THREADS:-2}" PROMPT="${PROMPT:-64}" NEW="${NEW:-128}" BATCHES="${BATCHES:-1 16 64}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml=ob1
mkdir -p "$WORK"
[ -f "$WORK/model/model.safetensors" ] || "$REPO/build/src/ovr_init" --model-config "$REPO/bench/configs/qwen2_50m.json" --seed 1 -o "$WORK/model" >/dev/null
echo "generation: prompt $PROMPT tokens, $NEW new tokens per sequence, top-p 0.95, $THREADS threads, fp32"
"$REPO/build/bench/generation_bench" "$WORK/model" "$THREADS" "$PROMPT" "$NEW" $BATCHES | tee "$WORK/ovr.jsonl"
"$PY" "$REPO/bench/generation_bench_hf.py" "$WORK/model" "$THREADS" "$PROMPT" "$NEW" $BATCHES 2>/dev/null | tee "$WORK/hf.jsonl"
"$PY" - "$WORK/ovr.jsonl" "$WORK/hf.jsonl" <<'PY'
import json, sys
ovr = {r["batch"]: r for r in map(json.loads, open(sys.argv[1]))}
hf = {r["batch"]: r for r in map(json.loads, open(sys.argv[2]))}
print(f"{'batch':>5} {'decode tok/s ovr':>17} {'transformers':>13} {'ratio':>6}   {'prefill tok/s ovr':>18} {'transformers':>13} {'ratio':>6}")
for b in sorted(ovr):
    o, h = ovr[b], hf[b]
    print(f"{b:>5} {o['decode_tok_s']:>17.0f} {h['decode_tok_s']:>13.0f} {o['decode_tok_s']/h['decode_tok_s']:>5.2f}x"
          f"   {o['prefill_tok_s']:>18.0f} {h['prefill_tok_s']:>13.0f} {o['prefill_tok_s']/h['prefill_tok_s']:>5.2f}x")
print("goal: decode >= 1.5x transformers at batch 16 and 64")
PY
