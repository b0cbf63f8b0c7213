#!/usr/bin/env bash
# Disk per RL iteration, before and after jobs/local/rl.sh's retention, in the same run:
#   - measured on the tiny default (2 ranks, CPU): the same loop run twice, once keeping every step
#     whole (OVR_KEEP_OPTIMIZER=all: the old behaviour) and once with retention (OVR_SNAPSHOT_EVERY=2);
#     per iteration the MB the run directory holds, and the final step's state compared bit for bit;
#   - computed for the paper's run (Qwen2.5-VL-7B policy and critic, 900 iterations) from the
#     measured per-tensor layout (docs/disk-budget.md has the formulas).
#
#   bash bench/rl_disk.sh [ITERATIONS]     (default 6)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
ITERS="${1:-6}"
WORK="${WORK:-/tmp/ovr_rl_disk}"
BIN="${OVR_BIN:-$REPO/build/src}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_pml=ob1 OMP_NUM_THREADS=1
rm -rf "$WORK"; mkdir -p "$WORK"
TOK="$REPO/inputs/tiny/tokenizer.json"
"$BIN/ovr_init" --model-config "$REPO/inputs/tiny/config.json" --seed 0 -o "$WORK/init.h5" >/dev/null
loop() {  # DIR: the tiny RL loop (GAE, with a critic)
  OVR_NP=2 bash "$REPO/jobs/local/rl.sh" "$1" "$WORK/init.h5" "$REPO/inputs/tiny/rl_arith.jsonl" "$ITERS" \
    --tokenizer "$TOK" --prompts-per-iteration 16 --n 4 --max-new-tokens 32 --seed 1 -- \
    --warmup-steps 0 --policy-lr 5e-5 --critic-lr 5e-4 --seq-len 256 --minibatches 2 --critic-steps 2
}
OVR_KEEP_OPTIMIZER=all loop "$WORK/all" >"$WORK/all.log" 2>&1
OVR_SNAPSHOT_EVERY=2 loop "$WORK/kept" >"$WORK/kept.log" 2>&1
total() { grep "disk:" "$1" | sed 's/.*iteration \([0-9]*\) done; disk: policy \([0-9.]*\) MB, critic \([0-9.]*\) MB, rollouts \([0-9.]*\) MB/\1 \2 \3 \4/'; }
echo "tiny model, $ITERS iterations: MB in the run directory after each iteration"
echo "iteration  every step whole (before)  retention, snapshot every 2 (after)"
paste <(total "$WORK/all.log") <(total "$WORK/kept.log") |
  awk '{printf "%9d  %25.2f  %35.2f\n", $1, $2 + $3 + $4, $6 + $7 + $8; a = $2 + $3 + $4; b = $6 + $7 + $8}
       END {printf "final: %.2f MB before, %.2f MB after (%.1fx less)\n", a, b, a / b}'
same=ok
last=$(printf 'step_%08d.h5' "$ITERS")
for who in policy critic; do
  for g in /model /optim /state; do h5diff "$WORK/all/$who/$last" "$WORK/kept/$who/$last" $g $g >/dev/null || same="DIFFERS ($who $g)"; done
done
echo "final policy and critic state with and without retention: $same"
policy_full=$(stat -c %s "$WORK/kept/policy/$last") policy_weights=$(stat -c %s "$WORK/kept/policy/step_00000002.h5")
echo "tiny policy step: $policy_full bytes whole, $policy_weights bytes as weights only"

# The paper's run, computed. Parameter counts of Qwen2.5-VL-7B from its config (hidden 3584,
# intermediate 18944, 28 layers, 4 KV heads, vocab 152064, untied lm_head; vision 32 blocks of 1280):
# the LLM 7.615e9 (embeddings 0.545e9, lm_head 0.545e9), the vision tower and merger 0.676e9.
# The policy trains the LLM (--train llm), the critic model.* and its head (lm_head frozen).
awk -v iters=900 -v every=10 -v mean_tokens=10000 -v samples=8192 'BEGIN {
  llm = 7.615e9; vision = 0.676e9; lm_head = 0.545e9; all = llm + vision
  gb = 1e9; tb = 1e12
  pol_f32 = 4 * all + 12 * llm;            crit_f32 = 4 * all + 12 * (llm - lm_head)   # model + master, exp_avg, exp_avg_sq
  pol_bf16 = 2 * all + 12 * llm;           crit_bf16 = 2 * all + 12 * (llm - lm_head)
  snapshot = 2 * all                                                                  # weights only, BF16
  rollout = samples * mean_tokens * 8                                                 # int32 token + float32 log-prob
  printf "\nQwen2.5-VL-7B policy + critic, %d iterations (computed; mean response %d tokens, %d samples per iteration)\n", iters, mean_tokens, samples
  printf "%-52s %14s %14s\n", "", "per iteration", "900 iterations"
  printf "%-52s %11.1f GB %11.1f TB\n", "before: every step whole, F32 model (old default)", (pol_f32 + crit_f32 + rollout) / gb, iters * (pol_f32 + crit_f32 + rollout) / tb
  printf "%-52s %11.1f GB %11.1f TB\n", "before, BF16 model", (pol_bf16 + crit_bf16 + rollout) / gb, iters * (pol_bf16 + crit_bf16 + rollout) / tb
  peak = (iters / every) * snapshot + 2 * (pol_bf16 + crit_bf16) + iters * rollout
  printf "%-52s %11.1f GB %11.1f TB\n", "after: BF16 snapshot every 10, newest whole", (snapshot / every + rollout) / gb, peak / tb
  printf "  (the newest policy %.0f GB + critic %.0f GB whole, twice while a step is written; snapshots %.1f GB each)\n", pol_bf16 / gb, crit_bf16 / gb, snapshot / gb
}'
