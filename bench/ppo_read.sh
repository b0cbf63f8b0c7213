#!/usr/bin/env bash
# Bytes each ovr_ppo rank reads, on 1, 2 and 4 ranks, against the whole-file reads every rank used
# to do (the baseline: every byte on every rank): of the rollout responses, and of the model weights
# (policy and critic, read together and shared: io/shared_model_source.h). Goal: ∝ 1/N.
#
#   bash bench/ppo_read.sh
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${WORK:-/tmp/ovr_ppo_read}"
BIN="${OVR_BIN:-$REPO/build/src}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_pml=ob1 OMP_NUM_THREADS=1
rm -rf "$WORK"; mkdir -p "$WORK"
"$BIN/ovr_init" --model-config "$REPO/inputs/tiny/config.json" --seed 0 -o "$WORK/init.h5" >/dev/null
mpirun -n 2 "$BIN/ovr_rollout" --policy "$WORK/init.h5" --tokenizer "$REPO/inputs/tiny/tokenizer.json" \
  --prompts "$REPO/inputs/tiny/rl_arith.jsonl" --prompts-per-iteration 32 --n 8 --max-new-tokens 64 -o "$WORK/iter.h5" >/dev/null
echo "rollout file: $(stat -c %s "$WORK/iter.h5") bytes, 256 samples"
# The policy and, at iteration 0, the critic's backbone are both read from init.h5.
models=$("$BIN/ovr_inspect" checkpoint --json --verify false "$WORK/init.h5" |
  python3 -c "import json, sys; print(2 * sum(t['bytes'] for t in json.load(sys.stdin)['model']))")
echo "ranks  response bytes read by rank 0  whole-file read (before)  ratio  model bytes read by rank 0  whole models (before)  ratio"
for np in 1 2 4; do
  rm -rf "$WORK/p$np" "$WORK/c$np"
  mpirun -n $np "$BIN/ovr_ppo" --policy "$WORK/init.h5" --rollouts "$WORK/iter.h5" --policy-output "$WORK/p$np" --critic-output "$WORK/c$np" \
    --seq-len 512 --minibatches 2 --warmup-steps 0 >/dev/null
  python3 - "$WORK/p$np/ppo_metrics.jsonl" "$np" "$models" <<'PY'
import json, sys
m = json.loads(open(sys.argv[1]).readline())
whole = m["response_tokens"] * 8
models = int(sys.argv[3])
print(f"{sys.argv[2]:>5}  {m['rollout_bytes_read_rank0']:>29.0f}  {whole:>24}  {m['rollout_bytes_read_rank0'] / whole:.3f}"
      f"  {m['model_bytes_read_rank0']:>26.0f}  {models:>21}  {m['model_bytes_read_rank0'] / models:.3f}")
PY
done
