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
#
# Retention (what 900 iterations of a 7B policy and critic leave on disk: docs/disk-budget.md).
# Only the newest policy and critic steps keep their optimizer state, which the next PPO update
# and a resume need. Once step N is committed, an older policy step K is reduced to its weights
# (in ovr_ppo's --save-dtype; what averaging and evaluation read) when K is a multiple of
# OVR_SNAPSHOT_EVERY and deleted otherwise; older critic steps are deleted; rollout files older
# than the newest OVR_KEEP_ROLLOUTS go. A kill at any moment leaves a run that resumes.
#   OVR_SNAPSHOT_EVERY  keep the weights of every Nth policy step (default 1: all of them)
#   OVR_KEEP_ROLLOUTS   keep only the newest N rollout files (default 0: all)
#   OVR_KEEP_OPTIMIZER  "all" keeps every step whole, optimizer state included (the old behaviour)
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
SNAPSHOT_EVERY="${OVR_SNAPSHOT_EVERY:-1}" KEEP_ROLLOUTS="${OVR_KEEP_ROLLOUTS:-0}" KEEP_OPTIMIZER="${OVR_KEEP_OPTIMIZER:-last}"
[[ "$SNAPSHOT_EVERY" =~ ^[1-9][0-9]*$ ]] || { echo "rl.sh: error: OVR_SNAPSHOT_EVERY must be a whole number >= 1, not '$SNAPSHOT_EVERY'" >&2; exit 2; }
[[ "$KEEP_ROLLOUTS" =~ ^[0-9]+$ ]] || { echo "rl.sh: error: OVR_KEEP_ROLLOUTS must be a whole number (0: all), not '$KEEP_ROLLOUTS'" >&2; exit 2; }
[[ "$KEEP_OPTIMIZER" =~ ^(last|all)$ ]] || { echo "rl.sh: error: OVR_KEEP_OPTIMIZER must be last or all, not '$KEEP_OPTIMIZER'" >&2; exit 2; }
step_of() { local b; b=$(basename "$1" .h5); echo $((10#${b##*_})); }  # .../step_00000012.h5 -> 12
newest_step() {  # the highest committed policy step (-1: none)
  local f n=-1
  for f in "$WORK"/policy/step_????????.h5; do [ -e "$f" ] && [ "$(step_of "$f")" -gt $n ] && n=$(step_of "$f"); done
  echo $n
}
# Whether a step file still holds optimizer state (ovr_ppo's output, not yet reduced to weights):
# 0 yes, 1 no, 2 it could not be inspected (then it is left alone, with a warning).
has_optimizer() {
  local out
  out=$("$BIN/ovr_inspect" checkpoint --verify false --json "$1" 2>&1) || { echo "rl.sh: warning: cannot inspect $1, left as it is: $out" >&2; return 2; }
  grep -q '^  "optim": \[' <<<"$out"
}
# retain N: step N is committed; reduce or remove what is older (see Retention above). Steps below
# RETAINED were handled by an earlier call; the first call (at start-up) looks at them all.
RETAINED=0 ROLLOUTS_RETAINED=0
retain() {
  local n=$1 f k rc
  [ "$KEEP_OPTIMIZER" = all ] && return 0
  rm -f "$WORK"/policy/*.reducing "$WORK"/policy/*.reducing.tmp  # left by a kill during a reduction
  for ((k = RETAINED; k < n; k++)); do
    f=$(step "$WORK/policy" $k)
    if [ -e "$f" ]; then
      if ((k % SNAPSHOT_EVERY)); then rm -f "$f"
      else
        rc=0; has_optimizer "$f" || rc=$?
        # ovr_convert copies the weights alone to a new file; the rename over the old is atomic.
        if [ $rc = 0 ]; then
          if "$BIN/ovr_convert" --format hdf5 --role policy --step "$k" "$f" "$f.reducing" >/dev/null; then mv -f "$f.reducing" "$f"
          else echo "rl.sh: warning: reducing $f to its weights failed; it keeps its optimizer state" >&2; fi
        fi
      fi
    fi
    rm -f "$(step "$WORK/critic" $k)"
  done
  RETAINED=$n
  if [ "$KEEP_ROLLOUTS" -gt 0 ]; then
    for ((k = ROLLOUTS_RETAINED; k < n - KEEP_ROLLOUTS; k++)); do rm -f "$(printf '%s/rollouts/iter_%06d.h5' "$WORK" $k)"; done
    ((n - KEEP_ROLLOUTS > ROLLOUTS_RETAINED)) && ROLLOUTS_RETAINED=$((n - KEEP_ROLLOUTS))
  fi
  return 0
}
mb() { du -sk "$@" 2>/dev/null | awk '{s += $1} END {printf "%.2f", s / 1024}'; }
mkdir -p "$WORK/policy" "$WORK/rollouts"
# One loop per run directory: a second rl.sh (or ranks of a killed one still running: they inherit
# the lock's descriptor) is refused. The kernel drops the lock when the last holder ends.
exec 9>"$WORK/.ovr-lock"
flock -n 9 || { echo "rl.sh: error: $WORK is in use by another RL loop ($(cat "$WORK/.ovr-lock.holder" 2>/dev/null || echo unknown)); wait for it, or use another directory" >&2; exit 1; }
echo "rl.sh (pid $$ on $(hostname), since $(date -u '+%Y-%m-%d %H:%M:%S UTC'))" > "$WORK/.ovr-lock.holder"
START=$(newest_step)
if [ "$START" -lt 0 ]; then "$BIN/ovr_convert" "$POLICY0" "$(step "$WORK/policy" 0)" >/dev/null; START=0; fi
retain "$START"  # what a run killed between a commit and its retention left
for ((k = START; k < ITERS; k++)); do
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
  retain $((k + 1))
  echo "RL: iteration $k done; disk: policy $(mb "$WORK/policy") MB, critic $(mb "$WORK/critic") MB, rollouts $(mb "$WORK/rollouts") MB"
done
echo "RL: $ITERS iterations done; policy $(step "$WORK/policy" "$ITERS")"
