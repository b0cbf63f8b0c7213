#!/usr/bin/env bash
# RL figures on the tiny default, 2 ranks, CPU, each with its baseline from the same run:
#   - learning: mean reward per iteration of a short PPO run from an SFT'd tiny model on the
#     arithmetic prompts (inputs/tiny/rl_arith.jsonl) — the curve should rise;
#   - rollout tokens/s (the whole phase: generation, rewards, bookkeeping, the collective write)
#     against the engine's own prefill + decode time (goal: overhead <= 10%);
#   - PPO tokens/s (response tokens x (1 + policy passes + critic passes) per second).
#
#   [SFT_EPOCHS=16 POLICY_LR=5e-5 CRITIC_LR=5e-4] bash bench/rl_bench.sh [ITERATIONS]     (default 12)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
ITERS="${1:-12}"
SFT_EPOCHS="${SFT_EPOCHS:-16}" POLICY_LR="${POLICY_LR:-5e-5}" CRITIC_LR="${CRITIC_LR:-5e-4}"
WORK="${WORK:-/tmp/ovr_rl_bench}"
BIN="$REPO/build/src"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
rm -rf "$WORK"; mkdir -p "$WORK"
TOK="$REPO/inputs/tiny/tokenizer.json"
"$BIN/ovr_init" --model-config "$REPO/inputs/tiny/config.json" --seed 0 -o "$WORK/init" >/dev/null
mpirun -n 2 "$BIN/ovr_sft" --init "$WORK/init" --tokenizer "$TOK" --data "$REPO/inputs/tiny/sft_arith.jsonl" \
  --output "$WORK/sft" --seq-len 256 --global-batch 4 --epochs "$SFT_EPOCHS" --lr 5e-3 --warmup-steps 5 --save-every 0 --log-every 1000 \
  | grep -E "done"
OVR_NP=2 bash "$REPO/jobs/local/rl.sh" "$WORK/rl" "$WORK/sft/$(cat "$WORK/sft/latest")" "$REPO/inputs/tiny/rl_arith.jsonl" "$ITERS" \
  --tokenizer "$TOK" --prompts-per-iteration 32 --n 8 --max-new-tokens 64 --seed 1 -- \
  --warmup-steps 0 --policy-lr "$POLICY_LR" --critic-lr "$CRITIC_LR" --seq-len 256 --minibatches 2 --critic-steps 2 >"$WORK/rl.log" 2>&1
python3 - "$WORK/rl/rollouts/rollout_metrics.jsonl" "$WORK/rl/policy/ppo_metrics.jsonl" <<'PY'
import json, sys
ro = [json.loads(l) for l in open(sys.argv[1])]
ppo = [json.loads(l) for l in open(sys.argv[2])]
print("iteration  mean reward  groups none correct  response length  ppo value loss  expl. var")
for r, p in zip(ro, ppo):
    print(f"{r['iteration']:>9}  {r['reward']:>11.3f}  {r['groups_none_correct']:>19.2f}  {r['response_length_mean']:>15.1f}"
          f"  {p['value_loss']:>14.4f}  {p['explained_variance']:>9.3f}")
first = sum(r["reward"] for r in ro[:3]) / 3
last = sum(r["reward"] for r in ro[-3:]) / 3
print(f"mean reward, first 3 iterations {first:.3f} -> last 3 {last:.3f}")
tok = sum(r["generated_tokens"] for r in ro); wall = sum(r["seconds"] for r in ro); eng = sum(r["engine_seconds"] for r in ro)
print(f"rollout: {tok / wall:.0f} tok/s for the whole phase; the engine alone {tok / eng:.0f} tok/s "
      f"(overhead {100 * (1 - eng / wall):.1f}%, goal <= 10%); raw decode {sum(r['engine_decode_tokens_per_s'] for r in ro) / len(ro):.0f} tok/s")
print(f"ppo: {sum(p['tokens_per_s'] for p in ppo) / len(ppo):.0f} tok/s (response tokens x passes / s), "
      f"{sum(p['seconds'] for p in ppo) / len(ppo):.2f} s per iteration")
PY
