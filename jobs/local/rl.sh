#!/usr/bin/env bash
# The RL loop on one machine: for each iteration K, ovr_rollout then ovr_ppo, under mpirun.
# PPO options may pick the advantage estimator (--advantage gae|grpo|rloo; gae, with a critic, by default).
#
#   bash jobs/local/rl.sh WORKDIR POLICY0 PROMPTS ITERATIONS [extra rollout options -- extra ppo options]
#
# WORKDIR/policy/step_00000000.h5 is POLICY0 converted (an SFT checkpoint or HF model). Every
# step is skipped when its output exists, and each output appears atomically, so after a crash,
# a kill or a requeue the same command continues where it stopped and computes exactly what an
# uninterrupted run would (CPU, same number of ranks).
#
# It is also the loop body of jobs/slurm/rl.sbatch:
#   OVR_LAUNCHER=mpirun (default: mpirun -n OVR_NP, OVR_NP default 2) or srun (srun --mpi=pmix on the
#                allocation's tasks, or -n OVR_NP); OVR_MPIRUN_ARGS / OVR_SRUN_ARGS are added to the launcher.
#   SIGUSR1 asks for a stop: the running step finishes (the signal is not passed on to it), no new
#   step starts, and the script exits 75 ("requeue me"); the same command later continues.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${OVR_BIN:-$REPO/build/src}"
WORK="$1" POLICY0="$2" PROMPTS="$3" ITERS="$4"; shift 4
ROLLOUT_OPTS=() PPO_OPTS=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do ROLLOUT_OPTS+=("$1"); shift; done
[ $# -gt 0 ] && shift
PPO_OPTS=("$@")
# The critic's files exist only for --advantage gae (the default); grpo and rloo have no critic. (An
# estimator set only in a --config file is not seen here: ovr_ppo then warns that the critic
# options it gets are unused, and ignores them.)
ADVANTAGE=gae
for ((i = 0; i < ${#PPO_OPTS[@]}; i++)); do
  case "${PPO_OPTS[i]}" in
    --advantage) ADVANTAGE="${PPO_OPTS[i + 1]:-}" ;;
    --advantage=*) ADVANTAGE="${PPO_OPTS[i]#*=}" ;;
  esac
done
NP="${OVR_NP:-2}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
case "${OVR_LAUNCHER:-mpirun}" in  # the same choice as jobs/slurm/common.sh's ovr_launcher
  mpirun) MPIRUN=(mpirun -n "$NP" ${OVR_MPIRUN_ARGS:-}) ;;
  srun) MPIRUN=(srun --mpi=pmix --kill-on-bad-exit=1 ${OVR_NP:+-n "$OVR_NP"} ${OVR_SRUN_ARGS:-}) ;;
  *) echo "rl.sh: error: OVR_LAUNCHER must be mpirun or srun, not '$OVR_LAUNCHER'" >&2; exit 2 ;;
esac
# A trap runs only once the foreground command has ended: the running step always completes.
STOP=0
trap 'STOP=1' USR1
stop_point() {
  if [ "$STOP" = 1 ]; then echo "RL: stop requested; exiting 75 before $1 (rerun the same command to continue)"; exit 75; fi
}
step() { printf '%s/step_%08d.h5' "$1" "$2"; }
mkdir -p "$WORK/policy" "$WORK/rollouts"
# One loop per run directory: a second rl.sh (or ranks of a killed one still running: they inherit
# the lock's descriptor) is refused. The kernel drops the lock when the last holder ends.
exec 9>"$WORK/.ovr-lock"
flock -n 9 || { echo "rl.sh: error: $WORK is in use by another RL loop ($(cat "$WORK/.ovr-lock.holder" 2>/dev/null || echo unknown)); wait for it, or use another directory" >&2; exit 1; }
echo "rl.sh (pid $$ on $(hostname), since $(date -u '+%Y-%m-%d %H:%M:%S UTC'))" > "$WORK/.ovr-lock.holder"
[ -f "$(step "$WORK/policy" 0)" ] || "$BIN/ovr_convert" "$POLICY0" "$(step "$WORK/policy" 0)" >/dev/null
for ((k = 0; k < ITERS; k++)); do
  rollout="$(printf '%s/rollouts/iter_%06d.h5' "$WORK" $k)"
  if [ ! -f "$rollout" ]; then
    stop_point "the rollout of iteration $k"
    "${MPIRUN[@]}" "$BIN/ovr_rollout" --policy "$(step "$WORK/policy" $k)" --prompts "$PROMPTS" --iteration $k \
      --output "$rollout" "${ROLLOUT_OPTS[@]}"
  fi
  if [ ! -f "$(step "$WORK/policy" $((k + 1)))" ]; then
    stop_point "the PPO update of iteration $k"
    critic=()
    if [ "$ADVANTAGE" = gae ]; then
      critic=(--critic-output "$WORK/critic")
      [ $k -gt 0 ] && critic+=(--critic "$(step "$WORK/critic" $k)")
    fi
    "${MPIRUN[@]}" "$BIN/ovr_ppo" --policy "$(step "$WORK/policy" $k)" "${critic[@]}" --rollouts "$rollout" \
      --policy-output "$WORK/policy" "${PPO_OPTS[@]}"
  fi
done
echo "RL: $ITERS iterations done; policy $(step "$WORK/policy" "$ITERS")"
