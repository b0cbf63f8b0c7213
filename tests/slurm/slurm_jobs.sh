#!/usr/bin/env bash
# The jobs/slurm/ scripts against a real Slurm: a fresh single-node cluster (munged, slurmctld,
# slurmd) on localhost, started by tests/slurm/local-slurm.sh in a temporary directory on a random
# port, and stopped whatever happens. On the tiny model it checks:
#   1. rl.sbatch: 3 RL iterations on 2 ranks (srun --mpi=pmix): policies 1..3, rollouts 0..2, one
#      metrics line per iteration;
#   2. sweep.sbatch: a 2-task array over two policy learning rates: a run directory each, the same
#      rollouts, different policies;
#   3. preemption of rl.sbatch (mpirun): `scontrol requeue` while PPO runs (the step dies and is
#      redone), then `scancel -s USR1 -b` (the pre-timeout signal) while PPO runs (it finishes, the
#      job requeues itself); no iteration lost or repeated, and the final policy and critic equal
#      run 1's bit for bit;
#   4. sft.sbatch: SIGUSR1 reaches ovr_sft through srun, it checkpoints and exits 75, the job
#      requeues itself and the resumed run ends equal to an uninterrupted one;
#   5. average.sbatch and eval.sbatch (ovr_eval on the tiny RL checkpoints): the list parsed
#      into checkpoints x benchmarks, one task each, finished tasks skipped; missing variables give
#      one clear line.
#
#   bash tests/slurm/slurm_jobs.sh BIN_DIR WORK_DIR
# Exit status 77 (skip) only when the Slurm daemons are not installed (scripts/install-deps.sh).
set -uo pipefail
[ $# = 2 ] || { echo "usage: $0 BIN_DIR WORK_DIR"; exit 2; }
for b in slurmctld slurmd munged sbatch srun scontrol squeue scancel; do
  command -v "$b" >/dev/null 2>&1 || { echo "SKIP: '$b' is not installed (apt-get install slurmctld slurmd slurm-client munge)"; exit 77; }
done
BIN="$(cd "$1" && pwd)" || exit 1
WORK="$2"
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
LS="$REPO/tests/slurm/local-slurm.sh"
TINY="$REPO/inputs/tiny"
T0=$(date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "[$(since "$T0") s] $*"; }
fail() { echo "FAIL: $*"; exit 1; }
ok() { say "ok: $*"; }

# Nothing from the caller's environment (say, a ctest run inside a real allocation) may steer the
# jobs or the test cluster's clients.
unset $(compgen -v OVR_) $(compgen -v SLURM_) $(compgen -v SBATCH_) $(compgen -v SRUN_) 2>/dev/null
export OMPI_MCA_btl=self,vader  # shared memory only: no rank listens on a network port
export OMPI_MCA_pml=ob1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ "$(id -u)" = 0 ] || fail "run as root: the cluster's slurmctld and slurmd run as root (SlurmUser=root)"
for b in ovr_init ovr_convert ovr_rollout ovr_ppo ovr_sft ovr_average; do [ -x "$BIN/$b" ] || fail "no $BIN/$b"; done
rm -rf "$WORK" && mkdir -p "$WORK" || fail "cannot create $WORK"

# ---- the cluster: a fresh directory and a random port pair; another port if that one is taken
CL=""
# Loopback-only sockets need `hostname` to resolve to 127.0.0.1 (see local-slurm.sh); where it does
# not (a container whose name maps to its own address), the daemons listen on all addresses instead.
if [ "$(getent ahostsv4 "$(hostname)" 2>/dev/null | awk 'NR == 1 {print $1}')" != 127.0.0.1 ]; then
  export LOCAL_SLURM_BIND=any
  say "hostname '$(hostname)' does not resolve to 127.0.0.1: slurmctld and slurmd will listen on all addresses"
fi
diagnose() {
  echo "---- squeue / jobs"; squeue 2>&1 | tail -20
  for f in "$CL"/log/slurmctld.log "$CL"/log/slurmd-localhost.log; do
    [ -f "$f" ] && { echo "---- tail $f"; tail -25 "$f"; }
  done
  for f in "$WORK"/*.out; do [ -f "$f" ] && { echo "---- tail $f"; tail -30 "$f"; }; done
}
cleanup() {
  local rc=$?
  trap - EXIT
  [ "$rc" != 0 ] && [ -n "$CL" ] && diagnose
  if [ -n "$CL" ]; then
    bash "$LS" stop "$CL" | sed 's/^/  /'
    cp -r "$CL/log" "$WORK/slurm-log" 2>/dev/null; rm -rf "$CL"
  fi
  say "done (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
for _ in 1 2 3 4 5; do
  CL=$(mktemp -d /tmp/ovr-slurm.XXXXXX)
  export LOCAL_SLURM_PORT=$((20000 + RANDOM % 6000 * 2)) LOCAL_SLURM_FRESH=1  # below the ephemeral range
  if bash "$LS" start "$CL" >"$WORK/cluster-start.txt" 2>&1; then break; fi
  cat "$WORK/cluster-start.txt"; bash "$LS" stop "$CL" >/dev/null 2>&1; rm -rf "$CL"; CL=""
done
[ -n "$CL" ] || fail "no Slurm cluster could be started (5 tries)"
export SLURM_CONF="$CL/etc/slurm.conf"
# Under srun, Open MPI names its shared-memory segments and session directory after Slurm's job
# and step ids; keep them in this cluster's directory, away from a concurrent run's job 1.
export TMPDIR="$CL/tmp" OMPI_MCA_btl_vader_backing_directory="$CL/tmp"
say "cluster up on port $LOCAL_SLURM_PORT: $(tail -1 "$WORK/cluster-start.txt" | cut -c1-60)"

# Every wait ends by DEADLINE, well inside ctest's TIMEOUT (600 s): a test killed from outside would
# leave the daemons running, as they are not its children.
DEADLINE=$(($(date +%s) + 480))
by_deadline() { local e=$(($(date +%s) + $1)); echo $((e < DEADLINE ? e : DEADLINE)); }
state() { squeue -h -j "$1" -o %T 2>/dev/null | sort -u | tr '\n' ' ' | sed 's/ $//'; }
field() { scontrol -o show job "$1" 2>/dev/null | grep -o " $2=[^ ]*" | head -1 | cut -d= -f2-; }
# wait_state JOB STATE SECONDS: until every task of JOB is in STATE
wait_state() {
  local end; end=$(by_deadline "$3")
  until [ "$(state "$1")" = "$2" ]; do
    [ "$(date +%s)" -lt "$end" ] || fail "job $1 is '$(state "$1")', not $2, after $3 s"
    sleep 0.2
  done
}
# wait_done JOB SECONDS: until JOB (all its tasks) left the queue; fails unless all COMPLETED with 0
wait_done() {
  local end; end=$(by_deadline "$2")
  while [ -n "$(state "$1")" ]; do
    [ "$(date +%s)" -lt "$end" ] || fail "job $1 still '$(state "$1")' after $2 s"
    sleep 0.3
  done
  bash "$LS" wait "$1" "$CL" >/dev/null || fail "job $1 did not complete: $(scontrol -o show job "$1" | grep -o 'JobState=[^ ]*\|ExitCode=[^ ]*' | tr '\n' ' ')"
}
# wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds
wait_for() {
  local end what=$2; end=$(by_deadline "$1"); shift 2
  until "$@"; do [ "$(date +%s)" -lt "$end" ] || fail "waited $1 s for $what"; sleep 0.1; done
}
# procs REGEX: the pids whose command line matches REGEX (from /proc: procps may not be installed)
procs() {
  local p args
  for p in /proc/[0-9]*; do
    mapfile -d "" args 2>/dev/null <"$p/cmdline" || continue
    [[ "${args[*]}" =~ $1 ]] && echo "${p#/proc/}"
  done
  return 0
}
running() { [ -n "$(procs "$1")" ]; }
# restart_now JOB (just seen PENDING after a requeue): a requeued job waits cred_expire (30 s here,
# 120 s by default) before it may run again; skip that wait, but only once
#  - the previous run's job steps have ended: a new step with the same id (JOB.0) cannot bind the
#    PMIx socket of one that is still finishing;
#  - the clock has passed the second in which slurmd revoked the job's credential: a credential
#    issued in that same second counts as revoked, and the job fails ("Job credential revoked").
no_stepd() {  # no slurmstepd of job $1 of this cluster (another test may run its own job $1) is left
  local p
  for p in $(procs "^slurmstepd: \[$1\."); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qxF "SLURM_CONF=$SLURM_CONF" && return 1
  done
  return 0
}
restart_now() {
  local t revoked
  t=$(date +%s.%N) revoked=$(date +%s)
  wait_for 30 "the job steps of job $1's previous run to end" no_stepd "$1"
  while [ "$(date +%s)" -le "$revoked" ]; do sleep 0.05; done
  scontrol update jobid="$1" StartTime=now || fail "scontrol update jobid=$1 StartTime=now"
  wait_state "$1" RUNNING 60
  say "   StartTime=now: RUNNING again after $(since "$t") s"
}
submit() { sbatch --parsable "$@" || fail "sbatch $*"; }
same() {  # same A B GROUP: the datasets under GROUP are equal (not the attributes of the files' roots)
  h5diff -q "$1" "$2" "$3" "$3" >/dev/null 2>&1
}
# metrics_once FILE N: the JSONL has exactly one line for each iteration 0..N-1
metrics_once() {
  local got want
  got=$(grep -o '"iteration":[0-9]*' "$1" 2>/dev/null | cut -d: -f2 | tr '\n' ' ')
  want=$(seq 0 $(($2 - 1)) | tr '\n' ' ')
  [ "$got" = "$want" ] || fail "$1: iterations [${got% }], expected [${want% }] (each exactly once)"
}

# ---- inputs: a random tiny policy, small RL sizes as option files (so that a sweep may override them)
"$BIN/ovr_init" --model-config "$TINY/config.json" --seed 0 -o "$WORK/policy0.h5" >/dev/null || fail "ovr_init"
printf '%s\n' 'prompts-per-iteration = 4   # tiny: a few seconds per iteration' 'n = 4' 'max-new-tokens = 32' 'seed = 5' \
  >"$WORK/rollout.ini"
printf '%s\n' 'warmup-steps = 0' 'policy-lr = 5e-5' 'critic-lr = 5e-4' 'seq-len = 256' 'minibatches = 2' 'critic-steps = 2' \
  >"$WORK/ppo.ini"
export OVR_BIN="$BIN" OVR_POLICY0="$WORK/policy0.h5" OVR_PROMPTS="$TINY/rl_arith.jsonl" OVR_TOKENIZER="$TINY/tokenizer.json" \
  OVR_ROLLOUT_CONFIG="$WORK/rollout.ini" OVR_PPO_CONFIG="$WORK/ppo.ini"
P=policy/step_0000000 R=rollouts/iter_00000  # + the number

# ---- 0. a missing variable or file: one clear line, exit 1 (no Slurm needed)
out=$(OVR_WORK="$WORK/x" OVR_ITERATIONS=1 OVR_PROMPTS='' bash "$REPO/jobs/slurm/rl.sbatch" 2>&1 >/dev/null); rc=$?
[ "$rc" = 1 ] && [ "$(echo "$out" | wc -l)" = 1 ] && [[ "$out" == "ovr: error: OVR_PROMPTS is not set"* ]] ||
  fail "rl.sbatch without OVR_PROMPTS: exit $rc, '$out'"
out=$(OVR_AVERAGE_INPUTS="$WORK/nope.h5" OVR_AVERAGE_OUTPUT="$WORK/a.h5" bash "$REPO/jobs/slurm/average.sbatch" 2>&1 >/dev/null); rc=$?
[ "$rc" = 1 ] && [ "$out" = "ovr: error: OVR_AVERAGE_INPUTS checkpoint '$WORK/nope.h5' does not exist" ] ||
  fail "average.sbatch on a missing checkpoint: exit $rc, '$out'"
ok "a missing variable or file stops a script with one line on stderr: $out"

# ---- 1. rl.sbatch, 3 iterations, 2 ranks through srun
J1=$(OVR_WORK="$WORK/rl" OVR_ITERATIONS=3 submit -n 2 -o "$WORK/rl-%j.out" "$REPO/jobs/slurm/rl.sbatch")
say "1. rl.sbatch: job $J1 (3 iterations, 2 ranks, srun)"
wait_done "$J1" 150
grep -q "launcher srun" "$WORK/rl-$J1.out" || fail "rl-$J1.out: the job did not use srun"
for k in 0 1 2; do [ -f "$WORK/rl/$R$k.h5" ] || fail "no rollout file $R$k.h5"; done
for k in 1 2 3; do [ -f "$WORK/rl/$P$k.h5" ] || fail "no policy step $k"; done
# Retention: only the newest critic step is kept (the policy's older steps stay, as weights only).
[ "$(cd "$WORK/rl/critic" && ls step_*)" = step_00000003.h5 ] || fail "critic steps kept: $(ls "$WORK/rl/critic")"
[ ! -e "$WORK/rl/${P}4.h5" ] || fail "a 4th iteration ran"
metrics_once "$WORK/rl/rollouts/rollout_metrics.jsonl" 3
metrics_once "$WORK/rl/policy/ppo_metrics.jsonl" 3
ok "job $J1 completed: policy steps 1-3, rollouts 0-2, one rollout and one PPO metrics line per iteration"

# ---- 2+5. the sweep array, the average and the eval array, submitted together
printf 'name\tppo:policy-lr\tOVR_ITERATIONS\nlr-small\t5e-5\t1\nlr-large\t5e-3\t1\n' >"$WORK/sweep.tsv"
J2=$(OVR_SWEEP_TABLE="$WORK/sweep.tsv" OVR_RUN_ROOT="$WORK/sweep" submit --array=0-1 -n 1 -o "$WORK/sweep-%A_%a.out" \
  "$REPO/jobs/slurm/sweep.sbatch")
J5=$(OVR_AVERAGE_INPUTS="$WORK/rl/policy/step_0000000[23].h5" OVR_AVERAGE_OUTPUT="$WORK/final.h5" \
  submit -n 2 -o "$WORK/average-%j.out" "$REPO/jobs/slurm/average.sbatch")
cat >"$WORK/eval.list" <<EOF
# checkpoints x benchmarks
checkpoint $WORK/rl/${P}3.h5
checkpoint $WORK/rl/${P}2.h5 second    # named
benchmark arith $TINY/rl_arith.jsonl --fields question=prompt --max-new-tokens 16 --k 2
benchmark mixed $REPO/tests/fixtures/eval/bad_rows.jsonl --max-new-tokens 8
EOF
J6=$(OVR_EVAL_LIST="$WORK/eval.list" OVR_EVAL_ROOT="$WORK/eval" \
  submit --array=0-3 -n 1 -o "$WORK/eval-%A_%a.out" "$REPO/jobs/slurm/eval.sbatch" --seed 3)
say "2. sweep.sbatch: array job $J2 (2 tasks); 5. average.sbatch: job $J5; eval.sbatch: array job $J6 (4 tasks)"
wait_done "$J2" 120
for n in lr-small lr-large; do
  [ -f "$WORK/sweep/$n/${P}1.h5" ] || fail "sweep task $n: no policy step 1"
  [ ! -e "$WORK/sweep/$n/${P}2.h5" ] || fail "sweep task $n: OVR_ITERATIONS=1 from the table not honoured"
done
grep -q -- "--policy-lr 5e-3" "$WORK/sweep/lr-large/sweep_task.txt" || fail "sweep task 1 did not record its options"
same "$WORK/sweep/lr-small/${R}0.h5" "$WORK/sweep/lr-large/${R}0.h5" /rollout || fail "the sweep tasks' rollouts differ"
same "$WORK/sweep/lr-small/${P}1.h5" "$WORK/sweep/lr-large/${P}1.h5" /model && fail "the sweep tasks' policies are equal"
ok "sweep array $J2: run dirs lr-small and lr-large, the same rollouts, different policies after one update"
wait_done "$J5" 60
"$BIN/ovr_average" -o "$WORK/final_direct.h5" "$WORK/rl/${P}2.h5" "$WORK/rl/${P}3.h5" >/dev/null || fail "ovr_average"
same "$WORK/final.h5" "$WORK/final_direct.h5" /model || fail "average.sbatch's result differs from ovr_average's"
ok "average job $J5: the average of steps 2 and 3 (glob), equal to ovr_average run directly"
wait_done "$J6" 60
i=0
for c in "step_00000003:$WORK/rl/${P}3.h5" "second:$WORK/rl/${P}2.h5"; do
  for b in "arith:$TINY/rl_arith.jsonl" "mixed:$REPO/tests/fixtures/eval/bad_rows.jsonl"; do
    IFS=: read -r bn bd <<<"$b"
    d="$WORK/eval/${c%%:*}/$bn"
    [ -f "$d/summary.json" ] || fail "eval task $i: no $d/summary.json"
    got=$(/usr/bin/python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(s['model'], s['benchmark'], s['data'], s['k'], s['seed'])" "$d/summary.json")
    want="${c#*:} $bn $bd $([ "$bn" = arith ] && echo 2 || echo 1) 3"
    [ "$got" = "$want" ] || fail "eval task $i: summary says [$got], expected [$want]"
    i=$((i + 1))
  done
done
J6b=$(OVR_EVAL_LIST="$WORK/eval.list" OVR_EVAL_ROOT="$WORK/eval" \
  submit --array=2 -n 1 -o "$WORK/eval-%A_%a.out" "$REPO/jobs/slurm/eval.sbatch")
wait_done "$J6b" 60
grep -q "summary.json exists: done already" "$WORK/eval-${J6b}_2.out" || fail "eval task 2 ran again"
ok "eval array $J6: 2 checkpoints x 2 benchmarks = 4 tasks with the right ovr_eval arguments; a finished task is skipped"

# ---- 3. preemption: a hard requeue while PPO 0 runs, then the pre-timeout signal while PPO 1 runs
J3=$(OVR_WORK="$WORK/pre" OVR_ITERATIONS=3 OVR_LAUNCHER=mpirun submit -n 2 -o "$WORK/pre-%j.out" "$REPO/jobs/slurm/rl.sbatch")
say "3. rl.sbatch: job $J3 (3 iterations, 2 ranks, mpirun), to be preempted twice"
wait_for 90 "PPO of iteration 0 to start" running "ovr_ppo --policy $WORK/pre/${P}0.h5"
sleep 0.3
t=$(date +%s.%N)
scontrol requeue "$J3" || fail "scontrol requeue $J3"
wait_state "$J3" PENDING 60
say "   scontrol requeue during PPO 0: PENDING after $(since "$t") s (Restarts=$(field "$J3" Restarts)); PPO 0 $([ -f "$WORK/pre/${P}1.h5" ] && echo finished || echo was killed)"
restart_now "$J3"
wait_for 90 "PPO of iteration 1 to start" running "ovr_ppo --policy $WORK/pre/${P}1.h5"
t=$(date +%s.%N)
scancel -s USR1 -b "$J3" || fail "scancel -s USR1 -b $J3"
wait_state "$J3" PENDING 90
say "   scancel -s USR1 -b during PPO 1: the job requeued itself after $(since "$t") s (Restarts=$(field "$J3" Restarts))"
[ -f "$WORK/pre/${P}2.h5" ] || fail "PPO 1, running when SIGUSR1 came, did not finish"
[ ! -e "$WORK/pre/${R}2.h5" ] || fail "a new step (rollout 2) started after SIGUSR1"
grep -q "stop requested; exiting 75 before the rollout of iteration 2" "$WORK/pre-$J3.out" || fail "no stop message in pre-$J3.out"
restart_now "$J3"
wait_done "$J3" 150
[ "$(field "$J3" Restarts)" = 2 ] || fail "job $J3: Restarts=$(field "$J3" Restarts), expected 2"
grep -q "ovr rl: restart 2," "$WORK/pre-$J3.out" || fail "pre-$J3.out: no run with SLURM_RESTART_COUNT=2"
metrics_once "$WORK/pre/rollouts/rollout_metrics.jsonl" 3
metrics_once "$WORK/pre/policy/ppo_metrics.jsonl" 3
for who in policy critic; do
  for g in /model /optim /state; do
    same "$WORK/rl/$who/step_00000003.h5" "$WORK/pre/$who/step_00000003.h5" $g || fail "$who step 3: $g differs from the uninterrupted run"
  done
done
ok "job $J3: 2 restarts (SLURM_RESTART_COUNT 1, 2), each iteration's rollout and PPO exactly once, final policy and critic = job $J1's"

# ---- 4. sft.sbatch: SIGUSR1 -> srun -> ovr_sft checkpoints and exits 75 -> requeue -> resume
SFT=(--seq-len 128 --global-batch 4 --epochs 2 --lr 5e-3 --warmup-steps 2 --save-every 0 --log-every 100)
J4=$(OVR_INIT="$WORK/policy0.h5" OVR_DATA="$TINY/sft_arith.jsonl" OVR_OUTPUT="$WORK/sft" \
  submit -n 1 -o "$WORK/sft-%j.out" "$REPO/jobs/slurm/sft.sbatch" "${SFT[@]}")
say "4. sft.sbatch: job $J4 (48 steps, 1 rank), stopped by SIGUSR1 after its first step"
wait_for 60 "the first SFT step" test -s "$WORK/sft/metrics.jsonl"
scancel -s USR1 -b "$J4" || fail "scancel -s USR1 -b $J4"
wait_state "$J4" PENDING 60
stopped=$(cat "$WORK/sft/latest" 2>/dev/null)
say "   stopped at ${stopped:-nothing}; the job requeued itself (Restarts=$(field "$J4" Restarts))"
[[ "$stopped" == step_000000[0-3]?.h5 ]] && [ "$stopped" != step_00000048.h5 ] || fail "SFT did not stop early with a checkpoint: latest '$stopped'"
restart_now "$J4"
wait_done "$J4" 90
grep -q "ovr sft: restart 1," "$WORK/sft-$J4.out" || fail "sft-$J4.out: no run with SLURM_RESTART_COUNT=1"
"$BIN/ovr_sft" --init "$WORK/policy0.h5" --data "$TINY/sft_arith.jsonl" --tokenizer "$OVR_TOKENIZER" --output "$WORK/sft_direct" \
  "${SFT[@]}" >/dev/null 2>&1 || fail "uninterrupted ovr_sft"
same "$WORK/sft/step_00000048.h5" "$WORK/sft_direct/step_00000048.h5" /model || fail "the requeued SFT differs from an uninterrupted one"
ok "job $J4: stopped at $stopped, requeued, resumed; step 48 = an uninterrupted run's"

say "all checks passed"
