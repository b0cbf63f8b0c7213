#!/usr/bin/env bash
# The main job on the built-in tiny default: the paper's pipeline, end to end, in minutes on a CPU.
#
#   bash jobs/local/tiny.sh [--seed N] [--no-text-sft] [--base DIR] [--until base|sft] [--advantage A] [WORKDIR]
#
#   WORKDIR        default runs/tiny (runs/tiny-control with --no-text-sft); emptied first
#   --seed N       the seed of everything: the task's pictures and problems, the model's
#                  initialisation, the data order of each stage, sampling in RL (default 0)
#   --no-text-sft  the control: RL straight from the base, without the language-only cold start
#   --base DIR     reuse the stage-0 base of an earlier run with the same seed (DIR/latest), e.g.
#                  the control after the full run (jobs/local/tiny_seeds.sh does so)
#   --until STAGE  stop after the base or the SFT stage (with their checks): the CI test
#   --advantage A  the RL stage's advantage estimator: gae (PPO with a critic, the paper's;
#                  default), grpo or rloo (no critic: each prompt's 8 samples are the baseline)
#
# The task (inputs/tiny/make_transfer_task.py, docs/tiny-task.md): add the two digits of a
# picture. The reasoning (restate, compute, verify, box) is taught on text problems only; the
# question is whether it works on pictures, and whether RL on pictures sharpens it.
#   0. the "base" a Qwen2.5-VL is before OVR: a tiny model (inputs/tiny/transfer_config.json)
#      trained whole on arithmetic facts and on reading numbers, written and drawn. It has never
#      seen a sum problem, the verification step or \boxed{}.
#   1. the language-only cold start: SFT on text sum problems with the reasoning trace
#      (vision frozen), 2 MPI ranks, ZeRO-2
#   2. RL: PPO with a critic (or --advantage grpo|rloo) on picture and text problems (ovr_rollout ->
#      ovr_ppo, jobs/local/rl.sh)
#   3. the uniform average of the last RL policies (ovr_average), exported to Hugging Face format
# Each stage is checked before the next starts: a base that did not learn to read, or a cold start
# that did not learn the text problems, stops the run with one line that says so (exit 1). After
# each stage ovr_eval measures accuracy on 100 held-out pictures and 100 text problems (greedy); the
# table, the reward curve and the rate of the verification step on pictures and text are printed
# at the end, with WORKDIR/summary.json (accuracies, stage times) and the figures in WORKDIR/figures.
# The run ends with whether the paper's claim held (exit 0) or not (exit 1).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
SEED=0 CONTROL=0 BASE_FROM="" UNTIL="" WORK="" ADVANTAGE=gae
usage() { sed -n '4,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) [[ "${2:-}" =~ ^[0-9]+$ ]] || { echo "tiny.sh: error: --seed needs a non-negative integer" >&2; exit 2; }; SEED=$2; shift 2 ;;
    --no-text-sft) CONTROL=1; shift ;;
    --base) [ -f "${2:-}/latest" ] || { echo "tiny.sh: error: --base ${2:-}: no checkpoint there (DIR/latest)" >&2; exit 2; }
            BASE_FROM="$(cd "$2" && pwd)"; shift 2 ;;
    --until) [[ "${2:-}" =~ ^(base|sft)$ ]] || { echo "tiny.sh: error: --until takes base or sft" >&2; exit 2; }; UNTIL=$2; shift 2 ;;
    --advantage) [[ "${2:-}" =~ ^(gae|grpo|rloo)$ ]] || { echo "tiny.sh: error: --advantage takes gae, grpo or rloo" >&2; exit 2; }
                 ADVANTAGE=$2; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "tiny.sh: error: unknown option $1" >&2; exit 2 ;;
    *) [ -z "$WORK" ] || { echo "tiny.sh: error: one WORKDIR only" >&2; exit 2; }; WORK=$1; shift ;;
  esac
done
[ "$CONTROL" = 1 ] && [ "$UNTIL" = sft ] && { echo "tiny.sh: error: --until sft has no SFT stage with --no-text-sft" >&2; exit 2; }
[ -n "$WORK" ] || WORK="$REPO/runs/tiny$([ "$CONTROL" = 1 ] && echo -control)"
BIN="${OVR_BIN:-$REPO/build/src}"
NP="${OVR_NP:-2}"
RL_ITERS="${OVR_TINY_RL_ITERS:-30}"
BASE_EPOCHS="${OVR_TINY_BASE_EPOCHS:-12}"  # a smaller value shows the base check failing (tests/cli/tiny_stages_cli.sh)
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
MPIRUN=(mpirun -n "$NP")
TOK="$REPO/inputs/tiny/tokenizer.json"
PRE="$REPO/inputs/tiny/preprocessor_config.json"
# What each stage must reach for the next one to mean anything (docs/tiny-task.md, "Checks").
BASE_MAX_LOSS=0.1      # stage 0: mean loss of its last 20 steps (reading and facts learnt)
SFT_MIN_TEXT=0.9       # stage 1: greedy accuracy on the held-out text problems

if [ ! -x "$BIN/ovr_eval" ] || [ ! -x "$BIN/ovr_sft" ]; then
  echo "== building ovr (first run only)"
  bash "$REPO/scripts/build.sh" >/dev/null
fi
rm -rf "$WORK"; mkdir -p "$WORK"
start=$(date +%s) stage_start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start )) s"; }
STAGE_TIMES=""
stage_done() {  # stage_done NAME: records and prints the time the stage took
  local s=$(( $(date +%s) - stage_start ))
  STAGE_TIMES="$STAGE_TIMES\"$1\": $s, "; echo "   stage $1 took $s s"; stage_start=$(date +%s)
}
fail() { echo "tiny.sh: STOPPED: $*" | tee "$WORK/FAILED" >&2; exit 1; }
TASK="$WORK/task"
"$PY" "$REPO/inputs/tiny/make_transfer_task.py" "$TASK" --seed "$SEED" | sed 's/^/   /'

sft() {  # sft STAGE INIT DATA EPOCHS LR MODULES: one SFT stage on $NP ranks; prints its last line
  "${MPIRUN[@]}" "$BIN/ovr_sft" --init "$2" --data "$3" --output "$WORK/$1" --epochs "$4" --lr "$5" --train "$6" \
    --seed "$SEED" --tokenizer "$TOK" --preprocessor "$PRE" --seq-len 128 --global-batch 32 --micro-batch $((32 / NP)) \
    --warmup-steps 10 --save-every 0 --log-every 100000 > "$WORK/$1.log" 2>&1 || fail "stage $1: ovr_sft failed: $(tail -1 "$WORK/$1.log")"
  tr '\r' '\n' < "$WORK/$1.log" | grep -E '^\[.*step [0-9]+/' | tail -1 | sed 's/^/   /'
}
final_loss() {  # final_loss STAGE: mean loss of the stage's last 20 steps (one batch is noisy)
  "$PY" -c "import json,sys; l=[json.loads(x)['loss'] for x in open(sys.argv[1])][-20:]; print(f'{sum(l)/len(l):.4f}')" "$WORK/$1/metrics.jsonl"
}
accuracy() {  # accuracy LABEL SET: avg@k of an evaluation
  "$PY" -c "import json,sys; print(f\"{json.load(open(sys.argv[1]))['avg_at_k']:.2f}\")" "$WORK/eval/$1/$2/summary.json"
}
evaluate() {  # evaluate MODEL LABEL: accuracy on held-out pictures and text problems
  for set in image text; do
    "${MPIRUN[@]}" "$BIN/ovr_eval" --model "$1" --tokenizer "$TOK" --preprocessor "$PRE" --benchmark "tiny-$set" \
      --data "$TASK/eval_$set.jsonl" --instruction none --max-new-tokens 64 -o "$WORK/eval/$2/$set" > "$WORK/eval_$2_$set.log" 2>&1 \
      || fail "evaluation of $2 on $set failed: $(tail -1 "$WORK/eval_$2_$set.log")"
    grep -o "on tiny-$set: .*avg@k [0-9.]*" "$WORK/eval_$2_$set.log" | sed "s/^/   $2 /"
  done
}
policy_at() { printf '%s/rl/policy/step_%08d.h5' "$WORK" "$1"; }
write_summary() {  # write_summary STAGES...: WORKDIR/summary.json for tiny_seeds.sh and the CI test
  "$PY" - "$WORK" "$SEED" "$CONTROL" "{${STAGE_TIMES%, }}" "$ADVANTAGE" "$@" <<'EOF'
import json, os, sys
work, seed, control, times, advantage = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", json.loads(sys.argv[4]), sys.argv[5]
stages = sys.argv[6:]
acc = {s: {t: json.load(open(f"{work}/eval/{s}/{t}/summary.json"))["avg_at_k"] for t in ("image", "text")} for s in stages}
env = {k: os.environ.get(k, "") for k in ("ATEN_CPU_CAPABILITY", "OPENBLAS_CORETYPE")}
json.dump({"seed": seed, "control": control, "advantage": advantage, "env": env, "stage_seconds": times, "accuracy": acc}, open(f"{work}/summary.json", "w"), indent=1)
EOF
}

echo "== 0. the base: the whole model trained on arithmetic facts and on reading numbers, written and drawn ($(elapsed))"
if [ -n "$BASE_FROM" ]; then
  ln -s "$BASE_FROM" "$WORK/base"; echo "   reusing the base of $BASE_FROM"
else
  "$BIN/ovr_init" --model-config "$REPO/inputs/tiny/transfer_config.json" --seed "$SEED" -o "$WORK/init" >/dev/null
  sft base "$WORK/init" "$TASK/base.jsonl" "$BASE_EPOCHS" 3e-3 all
fi
loss=$(final_loss base)
"$PY" -c "import sys; sys.exit(float(sys.argv[1]) > float(sys.argv[2]))" "$loss" "$BASE_MAX_LOSS" \
  || fail "stage 0 did not teach the base to read numbers and facts: loss $loss > $BASE_MAX_LOSS (the next stages would start from a model that cannot read)"
echo "   check: base loss $loss <= $BASE_MAX_LOSS"
evaluate "$WORK/base" base
stage_done base
stages=(base)

if [ "$CONTROL" = 1 ]; then
  echo "== 1. (control: no language-only cold start; RL starts from the base)"
  RL_FROM="$WORK/base/$(cat "$WORK/base/latest")"
elif [ "$UNTIL" != base ]; then
  echo "== 1. language-only cold start: SFT on text problems with the reasoning trace ($(elapsed))"
  sft sft "$WORK/base" "$TASK/sft_text.jsonl" 80 1e-3 llm
  evaluate "$WORK/sft" sft
  text=$(accuracy sft text)
  "$PY" -c "import sys; sys.exit(float(sys.argv[1]) < float(sys.argv[2]))" "$text" "$SFT_MIN_TEXT" \
    || fail "stage 1 did not teach the text problems: text accuracy $text < $SFT_MIN_TEXT (RL would have no reasoning to transfer)"
  echo "   check: text accuracy after SFT $text >= $SFT_MIN_TEXT"
  stage_done sft
  stages+=(sft)
  RL_FROM="$WORK/sft/$(cat "$WORK/sft/latest")"
fi
if [ -n "$UNTIL" ]; then
  write_summary "${stages[@]}"
  echo "== stopped after stage $UNTIL as asked; checks passed ($(elapsed)); $WORK/summary.json"
  exit 0
fi

critic=(--critic-lr 5e-4 --critic-steps 2) how="PPO with a critic"
[ "$ADVANTAGE" = gae ] || critic=() how="PPO with $ADVANTAGE advantages (no critic)"
echo "== 2. RL: $RL_ITERS iterations of $how on picture and text problems ($(elapsed))"
OVR_NP="$NP" OVR_BIN="$BIN" bash "$REPO/jobs/local/rl.sh" "$WORK/rl" "$RL_FROM" "$TASK/rl_prompts.jsonl" "$RL_ITERS" \
  --tokenizer "$TOK" --preprocessor "$PRE" --prompts-per-iteration 16 --n 8 --max-new-tokens 64 --seed "$SEED" -- \
  --advantage "$ADVANTAGE" --preprocessor "$PRE" --warmup-steps 0 --policy-lr 1e-4 "${critic[@]}" --seq-len 512 --minibatches 2 \
  --seed "$SEED" > "$WORK/rl.log" 2>&1 || fail "stage 2 (RL) failed: $(tail -1 "$WORK/rl.log")"
grep -E "ovr_rollout .*iteration [0-9]*0:|RL:" "$WORK/rl.log" | sed -E 's/^\[ovr_rollout[^]]*\] /   /; s/, groups.*//'
evaluate "$(policy_at "$RL_ITERS")" rl
stage_done rl
stages+=(rl)

echo "== 3. the uniform average of the last three RL policies ($(elapsed))"
"${MPIRUN[@]}" "$BIN/ovr_average" -o "$WORK/final.h5" "$(policy_at $((RL_ITERS - 2)))" "$(policy_at $((RL_ITERS - 1)))" \
  "$(policy_at "$RL_ITERS")" >/dev/null
evaluate "$WORK/final.h5" average
"$BIN/ovr_convert" "$WORK/final.h5" "$WORK/final_hf" >/dev/null && echo "   exported for serving elsewhere: $WORK/final_hf (Hugging Face safetensors)"
stage_done average
stages+=(average)
write_summary "${stages[@]}"

echo "== accuracy (%) after each stage: held-out pictures and text problems, greedy ($(elapsed))"
labels=() dirs=()
for stage in "${stages[@]}"; do for set in image text; do labels+=(--label "$WORK/eval/$stage/$set=$stage"); dirs+=("$WORK/eval/$stage/$set"); done; done
"$PY" "$REPO/postprocess/eval_table.py" "${dirs[@]}" "${labels[@]}" --markdown "$WORK/accuracy.md" --csv "$WORK/accuracy.csv"
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
  --label "$last=iteration $((RL_ITERS - 1))" | grep -E '^\| (input|---|.*verification)' || true
echo "== stage times: ${STAGE_TIMES%, }"
status=0
"$PY" - "$WORK/summary.json" <<'EOF' || status=$?
import json, sys
s = json.load(open(sys.argv[1]))
acc = s["accuracy"]
if s["control"]:
    print(f"control (no text-only cold start): picture accuracy {acc['base']['image']:.2f} (base) -> {acc['rl']['image']:.2f} "
          f"(after RL); the full pipeline's claim is checked by jobs/local/tiny_seeds.sh against this")
    sys.exit(0)
img = [acc[st]["image"] for st in ("base", "sft", "rl")]
holds = img[0] < img[1] < img[2] and img[2] >= 0.5 and acc["sft"]["text"] >= 0.9
print(f"picture accuracy {img[0]:.2f} (base) -> {img[1]:.2f} (after text-only SFT) -> {img[2]:.2f} (after RL); "
      f"text {acc['sft']['text']:.2f} after SFT: "
      + ("the claim HOLDS (rises at every stage, >= 0.5 after RL, text >= 0.9 after SFT)" if holds else
         "the claim does NOT hold (wanted: rising at every stage, >= 0.5 after RL, text >= 0.9 after SFT)"))
sys.exit(0 if holds else 1)
EOF
echo "== done in $(elapsed); outputs in $WORK"
exit $status
