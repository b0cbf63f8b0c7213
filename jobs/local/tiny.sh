#!/usr/bin/env bash
# The main job on the built-in tiny default, end to end as far as the pipeline exists today.
#
#   bash jobs/local/tiny.sh [WORKDIR]        (default WORKDIR: runs/tiny)
#
# Today (foundation issue) that is the checkpoint life cycle the later stages build on:
#   1. ovr_init     a tiny Qwen2.5-VL-shaped model (inputs/tiny/config.json) in Hugging Face layout
#   2. ovr_convert  HF -> ovr HDF5 checkpoints; three seeds stand in for three RL checkpoints until
#                   ovr_sft / ovr_rollout / ovr_ppo exist
#   3. ovr_average  their uniform average, on 2 MPI ranks (the paper's final model)
#   4. ovr_convert  the average back to a Hugging Face directory, and a byte-identity check
#   5. ovr_inspect  the result, with every dataset's checksum verified
#   6. ovr_inspect generate  greedy generation from the averaged checkpoint (the rollout engine)
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
"$BIN/ovr_init" --model-config "$REPO/inputs/tiny/config.json" --seed 0 --dtype BF16 -o "$WORK/hf_base"

echo "== 2. HF -> HDF5 checkpoints (three stand-ins for RL checkpoints, each committed and pointed at by 'latest')"
for step in 100 200 300; do
  "$BIN/ovr_init" --model-config "$REPO/inputs/tiny/config.json" --seed $step --dtype BF16 -o "$WORK/hf_$step"
  "${MPIRUN[@]}" "$BIN/ovr_convert" --step $step --update-latest "$WORK/hf_$step" "$WORK/ckpt/step_$step.h5"
done
echo "latest -> $(cat "$WORK/ckpt/latest")"

echo "== 3. uniform average of the three checkpoints on $NP ranks"
"${MPIRUN[@]}" "$BIN/ovr_average" -o "$WORK/final.h5" "$WORK/ckpt/step_100.h5" "$WORK/ckpt/step_200.h5" "$WORK/ckpt/step_300.h5"

echo "== 4. export to Hugging Face safetensors, and a byte-identity check of the round trip"
"$BIN/ovr_convert" "$WORK/final.h5" "$WORK/final_hf"
"$BIN/ovr_convert" "$WORK/final_hf" "$WORK/final_again.h5"
"$BIN/ovr_convert" "$WORK/final_again.h5" "$WORK/final_hf_again"
cmp "$WORK/final_hf/model.safetensors" "$WORK/final_hf_again/model.safetensors"
echo "HF -> HDF5 -> HF: byte-identical"

echo "== 5. inspect (every dataset's CRC-32 verified)"
"$BIN/ovr_inspect" checkpoint "$WORK/final.h5" | sed -n '1,12p;/^integrity/p'
echo "== 6. generate from the averaged checkpoint (the engine rollouts will use)"
"$BIN/ovr_inspect" generate --model "$WORK/final.h5" --prompt-ids 1,2,3,4 --max-new-tokens 8 --greedy --threads 1 \
  | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); s=d['samples'][0]; print('prompt', d['prompt_ids'], '-> generated', s['ids'], '(' + s['finish_reason'] + ')')"
echo "== done in $(( $(date +%s) - start )) s; outputs in $WORK"
