#!/usr/bin/env bash
# The main job on the built-in tiny default, end to end as far as the pipeline exists today.
#
#   bash jobs/local/tiny.sh [WORKDIR]        (default WORKDIR: runs/tiny)
#
# The pipeline of the paper on the tiny default (Slurm jobs and evaluation come with their issues):
#   1. ovr_init     a tiny Qwen2.5-VL-shaped model (inputs/tiny/config.json) in Hugging Face layout
#   2. ovr_sft      the cold-start SFT on 2 MPI ranks (ZeRO-2): a small arithmetic set with a
#                   verification trace (inputs/tiny/sft_arith.jsonl), byte-level tokenizer
#                   (inputs/tiny/tokenizer.json)
#   3. RL           4 iterations of ovr_rollout -> ovr_ppo on arithmetic prompts (jobs/local/rl.sh)
#   4. ovr_average  the uniform average of the last three RL policies, on 2 ranks
#   5. ovr_convert  the average to a Hugging Face directory, and a byte-identity round trip
#   6. ovr_inspect  the result, with every dataset's checksum verified; the averaged model
#                   answers a held-out question
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${1:-$REPO/runs/tiny}"
BIN="$REPO/build/src"
NP="${OVR_NP:-2}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
MPIRUN=(mpirun -n "$NP")

if [ ! -x "$BIN/ovr_average" ] || [ ! -x "$BIN/ovr_init" ]; then
  echo "== building ovr (first run only)"
  bash "$REPO/scripts/build.sh" >/dev/null
fi
rm -rf "$WORK"; mkdir -p "$WORK/ckpt"
start=$(date +%s)

echo "== 1. a tiny Qwen2.5-VL model in Hugging Face layout"
"$BIN/ovr_init" --model-config "$REPO/inputs/tiny/config.json" --seed 0 -o "$WORK/hf_base"

echo "== 2. SFT on $NP ranks: the arithmetic trace set, 16 epochs"
"${MPIRUN[@]}" "$BIN/ovr_sft" --init "$WORK/hf_base" --tokenizer "$REPO/inputs/tiny/tokenizer.json" \
  --data "$REPO/inputs/tiny/sft_arith.jsonl" --output "$WORK/sft" --seq-len 256 --global-batch 4 --epochs 16 \
  --lr 5e-3 --warmup-steps 5 --save-every 0 --log-every 48

echo "== 3. RL on $NP ranks: 4 iterations of rollout (32 prompts x 8 samples) and PPO with a critic"
OVR_NP="$NP" bash "$REPO/jobs/local/rl.sh" "$WORK/rl" "$WORK/sft/$(cat "$WORK/sft/latest")" "$REPO/inputs/tiny/rl_arith.jsonl" 4 \
  --tokenizer "$REPO/inputs/tiny/tokenizer.json" --prompts-per-iteration 32 --n 8 --max-new-tokens 64 -- \
  --warmup-steps 0 --policy-lr 5e-5 --critic-lr 5e-4 --seq-len 256 --minibatches 2 --critic-steps 2 \
  | grep -E "ovr_rollout .*iteration|ovr_ppo .*iteration|RL:"

echo "== 4. uniform average of the last three RL policies on $NP ranks (the paper's final model)"
"${MPIRUN[@]}" "$BIN/ovr_average" -o "$WORK/final.h5" "$WORK/rl/policy/step_00000002.h5" "$WORK/rl/policy/step_00000003.h5" \
  "$WORK/rl/policy/step_00000004.h5"

echo "== 5. export to Hugging Face safetensors, and a byte-identity check of the round trip"
"$BIN/ovr_convert" "$WORK/final.h5" "$WORK/final_hf"
"$BIN/ovr_convert" "$WORK/final_hf" "$WORK/final_again.h5"
"$BIN/ovr_convert" "$WORK/final_again.h5" "$WORK/final_hf_again"
cmp "$WORK/final_hf/model.safetensors" "$WORK/final_hf_again/model.safetensors"
echo "HF -> HDF5 -> HF: byte-identical"

echo "== 6. inspect (every dataset's CRC-32 verified)"
"$BIN/ovr_inspect" checkpoint "$WORK/final.h5" | sed -n '1,12p;/^integrity/p'
echo "== 7. the averaged model answers a question (the engine rollouts will use)"
"$BIN/ovr_inspect" generate --model "$WORK/final.h5" --tokenizer "$REPO/inputs/tiny/tokenizer.json" --chat \
  --prompt "What is 7+5?" --max-new-tokens 48 --greedy --threads 1 \
  | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); s=d['samples'][0]; print('What is 7+5? ->', repr(s['text']), '(' + s['finish_reason'] + ')')"
echo "== done in $(( $(date +%s) - start )) s; outputs in $WORK"
