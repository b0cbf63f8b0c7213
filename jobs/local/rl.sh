#!/usr/bin/env bash
# The RL loop on one machine: for each iteration K, ovr_rollout then ovr_ppo, under mpirun.
#
#   bash jobs/local/rl.sh WORKDIR POLICY0 PROMPTS ITERATIONS [extra rollout options -- extra ppo options]
#
# WORKDIR/policy/step_00000000.h5 is POLICY0 converted (an SFT checkpoint or HF model). Every
# step is skipped when its output exists, and each output appears atomically, so after a crash,
# a kill or a requeue the same command continues where it stopped and computes exactly what an
# uninterrupted run would (CPU, same number of ranks).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${OVR_BIN:-$REPO/build/src}"
WORK="$1" POLICY0="$2" PROMPTS="$3" ITERS="$4"; shift 4
ROLLOUT_OPTS=() PPO_OPTS=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do ROLLOUT_OPTS+=("$1"); shift; done
[ $# -gt 0 ] && shift
PPO_OPTS=("$@")
NP="${OVR_NP:-2}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
MPIRUN=(mpirun -n "$NP")
step() { printf '%s/step_%08d.h5' "$1" "$2"; }
mkdir -p "$WORK/policy" "$WORK/critic" "$WORK/rollouts"
[ -f "$(step "$WORK/policy" 0)" ] || "$BIN/ovr_convert" "$POLICY0" "$(step "$WORK/policy" 0)" >/dev/null
for ((k = 0; k < ITERS; k++)); do
  rollout="$(printf '%s/rollouts/iter_%06d.h5' "$WORK" $k)"
  if [ ! -f "$rollout" ]; then
    "${MPIRUN[@]}" "$BIN/ovr_rollout" --policy "$(step "$WORK/policy" $k)" --prompts "$PROMPTS" --iteration $k \
      --output "$rollout" "${ROLLOUT_OPTS[@]}"
  fi
  if [ ! -f "$(step "$WORK/policy" $((k + 1)))" ]; then
    critic=(); [ $k -gt 0 ] && critic=(--critic "$(step "$WORK/critic" $k)")
    "${MPIRUN[@]}" "$BIN/ovr_ppo" --policy "$(step "$WORK/policy" $k)" "${critic[@]}" --rollouts "$rollout" \
      --policy-output "$WORK/policy" --critic-output "$WORK/critic" "${PPO_OPTS[@]}"
  fi
done
echo "RL: $ITERS iterations done; policy $(step "$WORK/policy" "$ITERS")"
