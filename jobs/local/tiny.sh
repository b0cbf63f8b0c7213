#!/usr/bin/env bash
# The main job on the built-in tiny default: the paper's pipeline, end to end, in minutes on a CPU.
#
#   bash jobs/local/tiny.sh [WORKDIR]        (default WORKDIR: runs/tiny)
#
# The task (inputs/tiny/make_transfer_task.py, docs/tiny-task.md): add the two digits of a
# picture. The reasoning (restate, compute, verify, box) is taught on text problems only; the
# question is whether it works on pictures, and whether RL on pictures sharpens it.
#   0. the "base" a Qwen2.5-VL is before OVR: a tiny model (inputs/tiny/transfer_config.json)
#      taught arithmetic facts and to read numbers (0a: language model, on text), then its vision
#      tower aligned to the frozen language model (0b: the same reading questions on pictures).
#      It has never seen a sum problem, a reasoning trace or \boxed{}.
#   1. the language-only cold start: SFT on text sum problems with the reasoning trace
#      (vision frozen), 2 MPI ranks, ZeRO-2
#   2. RL: PPO with a critic on picture and text problems (ovr_rollout -> ovr_ppo, jobs/local/rl.sh)
#   3. the uniform average of the last RL policies (ovr_average), exported to Hugging Face format
# After each stage ovr_eval measures accuracy on 100 held-out pictures and 100 text problems
# (greedy); the table (postprocess/eval_table.py), the reward curve and the rate of the
# verification step on pictures and text (postprocess/behaviours.py) are printed at the end, with
# the figures in WORKDIR/figures (postprocess/curves.py).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${1:-$REPO/runs/tiny}"
BIN="${OVR_BIN:-$REPO/build/src}"
NP="${OVR_NP:-2}"
RL_ITERS="${OVR_TINY_RL_ITERS:-30}"
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
MPIRUN=(mpirun -n "$NP")
TOK="$REPO/inputs/tiny/tokenizer.json"
PRE="$REPO/inputs/tiny/preprocessor_config.json"

if [ ! -x "$BIN/ovr_eval" ] || [ ! -x "$BIN/ovr_sft" ]; then
  echo "== building ovr (first run only)"
  bash "$REPO/scripts/build.sh" >/dev/null
fi
rm -rf "$WORK"; mkdir -p "$WORK"
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start )) s"; }
TASK="$WORK/task"
"$PY" "$REPO/inputs/tiny/make_transfer_task.py" "$TASK" --seed 0

sft() {  # sft STAGE INIT DATA EPOCHS LR MODULES: one SFT stage on $NP ranks; prints its last line
  "${MPIRUN[@]}" "$BIN/ovr_sft" --init "$2" --data "$3" --output "$WORK/$1" --epochs "$4" --lr "$5" --train "$6" \
    --tokenizer "$TOK" --preprocessor "$PRE" --seq-len 128 --global-batch 32 --micro-batch $((32 / NP)) \
    --warmup-steps 10 --save-every 0 --log-every 100000 2>&1 | tr '\r' '\n' | grep -E '^\[.*step [0-9]+/' | tail -1
}
evaluate() {  # evaluate MODEL LABEL: accuracy on held-out pictures and text problems
  for set in image text; do
    "${MPIRUN[@]}" "$BIN/ovr_eval" --model "$1" --tokenizer "$TOK" --preprocessor "$PRE" --benchmark "tiny-$set" \
      --data "$TASK/eval_$set.jsonl" --instruction none --max-new-tokens 64 -o "$WORK/eval/$2/$set" 2>&1 \
      | grep -o "on tiny-$set: .*avg@k [0-9.]*" | sed "s/^/   $2 /"
  done
}
policy_at() { printf '%s/rl/policy/step_%08d.h5' "$WORK" "$1"; }

echo "== 0. the base: 0a language model on text facts and reading questions; 0b vision aligned to it ($(elapsed))"
"$BIN/ovr_init" --model-config "$REPO/inputs/tiny/transfer_config.json" --seed 0 -o "$WORK/init" >/dev/null
sft base_text "$WORK/init" "$TASK/base_text.jsonl" 64 3e-3 llm
sft base "$WORK/base_text" "$TASK/base_image.jsonl" 10 3e-3 vision,merger
evaluate "$WORK/base" base

echo "== 1. language-only cold start: SFT on text problems with the reasoning trace ($(elapsed))"
sft sft "$WORK/base" "$TASK/sft_text.jsonl" 40 1e-3 llm
evaluate "$WORK/sft" sft

echo "== 2. RL: $RL_ITERS iterations of PPO with a critic on picture and text problems ($(elapsed))"
OVR_NP="$NP" OVR_BIN="$BIN" bash "$REPO/jobs/local/rl.sh" "$WORK/rl" "$WORK/sft/$(cat "$WORK/sft/latest")" "$TASK/rl_prompts.jsonl" "$RL_ITERS" \
  --tokenizer "$TOK" --preprocessor "$PRE" --prompts-per-iteration 16 --n 8 --max-new-tokens 64 -- \
  --preprocessor "$PRE" --warmup-steps 0 --policy-lr 5e-5 --critic-lr 5e-4 --seq-len 512 --minibatches 2 --critic-steps 2 \
  | grep -E "ovr_rollout .*iteration [0-9]*0:|RL:" | sed -E 's/^\[ovr_rollout[^]]*\] /   /; s/, groups.*//'
evaluate "$(policy_at "$RL_ITERS")" rl

echo "== 3. the uniform average of the last three RL policies ($(elapsed))"
"${MPIRUN[@]}" "$BIN/ovr_average" -o "$WORK/final.h5" "$(policy_at $((RL_ITERS - 2)))" "$(policy_at $((RL_ITERS - 1)))" \
  "$(policy_at "$RL_ITERS")" >/dev/null
evaluate "$WORK/final.h5" average
"$BIN/ovr_convert" "$WORK/final.h5" "$WORK/final_hf" >/dev/null && echo "   exported for serving elsewhere: $WORK/final_hf (Hugging Face safetensors)"

echo "== accuracy (%) after each stage: held-out pictures and text problems, greedy ($(elapsed))"
labels=()
for stage in base sft rl average; do for set in image text; do labels+=(--label "$WORK/eval/$stage/$set=$stage"); done; done
"$PY" "$REPO/postprocess/eval_table.py" "$WORK"/eval/{base,sft,rl,average}/{image,text} "${labels[@]}" \
  --markdown "$WORK/accuracy.md" --csv "$WORK/accuracy.csv"
echo "== RL reward per iteration (mean over 16 prompts x 8 samples; pictures / text)"
"$PY" - "$WORK/rl/rollouts/rollout_metrics.jsonl" <<'EOF'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows[r["iteration"]] = r
for i, r in sorted(rows.items()):
    img, txt = r["reward_image"], r["reward_text"]
    bar = "#" * round(40 * r["reward"])
    print(f"  {i:3d}  {r['reward']:.2f}  image {img if img is None else f'{img:.2f}'}  text {txt if txt is None else f'{txt:.2f}'}  {bar}")
EOF
"$PY" "$REPO/postprocess/curves.py" "$WORK/rl" --out "$WORK/figures" >/dev/null && echo "figures: $WORK/figures"
echo "== the verification step (\"check 8-2=6\") in RL samples: pictures vs text, first and last iteration"
first="$WORK/rl/rollouts/iter_000000.h5" last="$(printf '%s/rl/rollouts/iter_%06d.h5' "$WORK" $((RL_ITERS - 1)))"
"$PY" "$REPO/postprocess/behaviours.py" --tokenizer "$TOK" "$first" "$last" --label "$first=iteration 0" \
  --label "$last=iteration $((RL_ITERS - 1))" | grep -E '^\| (input|---|.*verification)'
"$PY" - "$WORK" <<'EOF'
import json, sys
acc = {s: {t: json.load(open(f"{sys.argv[1]}/eval/{s}/{t}/summary.json"))["avg_at_k"] for t in ("image", "text")}
       for s in ("base", "sft", "rl", "average")}
img = [acc[s]["image"] for s in ("base", "sft", "rl")]
rising = img[0] < img[1] < img[2]
print(f"picture accuracy {img[0]:.2f} (base) -> {img[1]:.2f} (after text-only SFT) -> {img[2]:.2f} (after RL): "
      + ("rises at every stage" if rising else "does NOT rise at every stage"))
EOF
echo "== done in $(elapsed); outputs in $WORK"
