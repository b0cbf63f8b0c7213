# jobs/slurm/common.sh: what every ovr batch script shares (sourced, never run): site setup, the
# MPI launcher, checks that stop with one clear line, and the stop-signal / self-requeue protocol.
# The sourcing script has set OVR_REPO (the ovr checkout). See jobs/slurm/README.md.
set -uo pipefail

ovr_log() { echo "[$(date '+%F %T')${SLURM_JOB_ID:+ job $SLURM_JOB_ID}] $*"; }
ovr_die() { echo "ovr: error: $*" >&2; exit 1; }
# ovr_require VAR "what it is": the variable must be set and non-empty
ovr_require() { [ -n "${!1:-}" ] || ovr_die "$1 is not set: $2 (see jobs/slurm/README.md)"; }
# ovr_require_path PATH "what it is": the file or directory must exist
ovr_require_path() { [ -e "$1" ] || ovr_die "$2 '$1' does not exist"; }

# Site configuration, in this order so that each can set what the next one reads:
#   OVR_ENV      file(s) of variables, colon-separated (e.g. inputs/qwen2.5-vl-7b/rl.env); they set
#                defaults (VAR=${VAR:-value}), so the submitting environment still wins
#   OVR_SETUP    a shell file sourced as is (conda/spack/venv activation, site variables)
#   OVR_MODULES  environment modules to load (module load $OVR_MODULES)
IFS=: read -ra _ovr_envs <<<"${OVR_ENV:-}"
for _f in "${_ovr_envs[@]}"; do
  case "$_f" in /*) ;; *) [ -e "$_f" ] || _f="$OVR_REPO/$_f" ;; esac  # relative: to the cwd, else the repo
  ovr_require_path "$_f" "OVR_ENV file"
  . "$_f" || ovr_die "sourcing OVR_ENV file '$_f' failed"
done
if [ -n "${OVR_SETUP:-}" ]; then
  ovr_require_path "$OVR_SETUP" "OVR_SETUP file"
  . "$OVR_SETUP" || ovr_die "sourcing OVR_SETUP file '$OVR_SETUP' failed"
fi
if [ -n "${OVR_MODULES:-}" ]; then
  command -v module >/dev/null 2>&1 || ovr_die "OVR_MODULES is set but there is no 'module' command on $(hostname)"
  module load $OVR_MODULES || ovr_die "module load $OVR_MODULES failed"
fi

OVR_BIN="${OVR_BIN:-$OVR_REPO/build/src}"
export OVR_REPO OVR_BIN
# ovr_require_bin NAME: an ovr executable in OVR_BIN
ovr_require_bin() { [ -x "$OVR_BIN/$1" ] || ovr_die "$OVR_BIN/$1 is missing (build ovr, or set OVR_BIN to its bin directory)"; }

# One rank per task. Inside Slurm the default launcher is srun with PMIx (Debian's and most sites'
# Open MPI have no PMI-1/2 client); mpirun also reads the allocation. Outside Slurm (running the
# script with plain bash), mpirun. jobs/local/rl.sh makes the same choice from the same variables.
OVR_LAUNCHER="${OVR_LAUNCHER:-$([ -n "${SLURM_JOB_ID:-}" ] && echo srun || echo mpirun)}"
case "$OVR_LAUNCHER" in
  srun) OVR_LAUNCH=(srun --mpi=pmix --kill-on-bad-exit=1 ${OVR_NP:+-n "$OVR_NP"} ${OVR_SRUN_ARGS:-}) ;;
  mpirun)
    # rl.sh runs `mpirun -n OVR_NP`: give it the allocation's size.
    [ -n "${SLURM_NTASKS:-}" ] && OVR_NP="${OVR_NP:-$SLURM_NTASKS}"
    OVR_LAUNCH=(mpirun ${OVR_NP:+-n "$OVR_NP"} ${OVR_MPIRUN_ARGS:-}) ;;
  *) ovr_die "OVR_LAUNCHER must be srun or mpirun, not '$OVR_LAUNCHER'" ;;
esac
export OVR_LAUNCHER ${OVR_NP:+OVR_NP}
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}"

# ovr_run CMD...: runs CMD (a launcher, or jobs/local/rl.sh) and implements the stop protocol.
#  - SIGUSR1 to this batch shell (#SBATCH --signal=B:USR1@SECONDS before the time limit, or
#    `scancel -s USR1 -b JOB`) is passed on to CMD. srun and mpirun forward it to every rank, where
#    ovr_sft finishes its step, writes a checkpoint and exits 75; rl.sh keeps it from its running
#    step, lets that step finish and exits 75 before the next one.
#  - Exit status 75 ("requeue me"): the job requeues itself and, when it runs again, resumes from
#    what was written (ovr_sft from OUTPUT/latest, rl.sh from the existing steps).
# CMD runs in the background because bash runs a trap only once the foreground command ends.
# A stop request that comes before CMD starts (SIGUSR1 would otherwise kill this shell) skips it.
OVR_STOP=0
trap 'OVR_STOP=1' USR1
ovr_run() {
  local pid rc=75
  if [ "$OVR_STOP" = 0 ]; then
    ovr_log "run: $*"
    "$@" &
    pid=$!
    trap "ovr_log 'SIGUSR1: asking pid $pid to stop after its current step'; kill -USR1 $pid 2>/dev/null" USR1
    while kill -0 "$pid" 2>/dev/null; do wait "$pid"; [ $? = 127 ] && break; done  # a trap ends wait early
    wait "$pid"; rc=$?  # bash keeps the status of a reaped background job
    trap 'OVR_STOP=1' USR1
  fi
  if [ "$rc" != 75 ]; then ovr_log "exit status $rc"; return "$rc"; fi
  if [ -z "${SLURM_JOB_ID:-}" ]; then ovr_log "stopped (75): run the same command again to continue"; exit 75; fi
  ovr_log "stopped (75): requeueing job $SLURM_JOB_ID; it resumes from what it wrote"
  scontrol requeue "$SLURM_JOB_ID" ||
    ovr_die "scontrol requeue $SLURM_JOB_ID failed (submitted with --no-requeue, or JobRequeue=0?); submit the same job again to resume"
  exit 0  # Slurm now ends this run (SIGTERM) and puts the job back in the queue
}

# ovr_job_banner NAME: one line a user reading the (appended) output file can find each run by
ovr_job_banner() {
  ovr_log "== ovr $1: restart ${SLURM_RESTART_COUNT:-0}, ${SLURM_NTASKS:-?} task(s) on ${SLURM_JOB_NODELIST:-$(hostname)}, launcher $OVR_LAUNCHER, repo $OVR_REPO"
}

# ---- the two training stages, shared by sft.sbatch / rl.sbatch and the sweep ---------------------

# ovr_stage_sft OUTPUT [ovr_sft options]: ovr_sft on OVR_INIT / OVR_DATA (+ OVR_SFT_CONFIG, OVR_TOKENIZER);
# a run on an OUTPUT that has `latest` resumes there (ovr_sft does it).
ovr_stage_sft() {
  local out=$1 opts=() data=() f; shift
  ovr_require OVR_INIT "the model SFT starts from (HF directory, .safetensors or ovr checkpoint)"
  ovr_require OVR_DATA "the SFT training JSONL file(s), space-separated"
  ovr_require_path "$OVR_INIT" OVR_INIT
  read -ra data <<<"$OVR_DATA"
  for f in "${data[@]}"; do ovr_require_path "$f" "OVR_DATA file"; done
  ovr_require_bin ovr_sft
  if [ -n "${OVR_SFT_CONFIG:-}" ]; then ovr_require_path "$OVR_SFT_CONFIG" OVR_SFT_CONFIG; opts+=(--config "$OVR_SFT_CONFIG"); fi
  if [ -n "${OVR_TOKENIZER:-}" ]; then ovr_require_path "$OVR_TOKENIZER" OVR_TOKENIZER; opts+=(--tokenizer "$OVR_TOKENIZER"); fi
  mkdir -p "$out" || ovr_die "cannot create the output directory '$out'"
  ovr_run "${OVR_LAUNCH[@]}" "$OVR_BIN/ovr_sft" "${opts[@]}" --init "$OVR_INIT" --data "${data[@]}" --output "$out" "$@"
}

# ovr_stage_rl WORK [ovr_rollout options] [-- ovr_ppo options]: OVR_ITERATIONS of rollout -> PPO from
# OVR_POLICY0 on OVR_PROMPTS (+ OVR_ROLLOUT_CONFIG, OVR_PPO_CONFIG, OVR_TOKENIZER), by jobs/local/rl.sh,
# which skips every step whose output exists: a rerun continues where the last one stopped.
ovr_stage_rl() {
  local work=$1 ro=() pp=() b; shift
  ovr_require OVR_POLICY0 "the starting policy (the SFT checkpoint or an HF model)"
  ovr_require OVR_PROMPTS "the RL prompts JSONL"
  ovr_require OVR_ITERATIONS "the number of RL iterations to reach"
  ovr_require_path "$OVR_POLICY0" OVR_POLICY0
  ovr_require_path "$OVR_PROMPTS" OVR_PROMPTS
  [[ "$OVR_ITERATIONS" =~ ^[0-9]+$ ]] || ovr_die "OVR_ITERATIONS must be a whole number, not '$OVR_ITERATIONS'"
  for b in ovr_convert ovr_rollout ovr_ppo; do ovr_require_bin "$b"; done
  if [ -n "${OVR_ROLLOUT_CONFIG:-}" ]; then ovr_require_path "$OVR_ROLLOUT_CONFIG" OVR_ROLLOUT_CONFIG; ro+=(--config "$OVR_ROLLOUT_CONFIG"); fi
  if [ -n "${OVR_TOKENIZER:-}" ]; then ovr_require_path "$OVR_TOKENIZER" OVR_TOKENIZER; ro+=(--tokenizer "$OVR_TOKENIZER"); fi
  if [ -n "${OVR_PPO_CONFIG:-}" ]; then ovr_require_path "$OVR_PPO_CONFIG" OVR_PPO_CONFIG; pp+=(--config "$OVR_PPO_CONFIG"); fi
  while [ $# -gt 0 ] && [ "$1" != -- ]; do ro+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  ovr_run bash "$OVR_REPO/jobs/local/rl.sh" "$work" "$OVR_POLICY0" "$OVR_PROMPTS" "$OVR_ITERATIONS" "${ro[@]}" -- "${pp[@]}" "$@"
}
