#!/usr/bin/env bash
# Provenance: the project's measured recipe (shared notes local-slurm.sh + slurm-local.md,
# 2026-11-26, Debian 12: slurm-wlm 22.05.8, munge 0.5.15), used by tests/slurm/slurm_jobs.sh to run
# the jobs/slurm/ scripts against a real Slurm on localhost. One change: TmpFS=DIR/tmp, because
# srun --mpi=pmix makes TmpFS/spmix_appdir_<uid>_<job>.<step> (TmpFS defaults to /tmp), so two
# clusters running at once collided on job 1's directory and the second srun failed to launch.
#
# local-slurm.sh - start/stop a real single-node Slurm cluster (munged + slurmctld
# + slurmd) entirely under one directory, bound to 127.0.0.1 only, as root.
# Tested on Debian 12 (slurm-wlm 22.05.8, munge 0.5.15, Open MPI 4.1.4/PMIx 4.2.2).
#
# Usage:
#   local-slurm.sh install            # apt-get install the needed Debian packages
#   local-slurm.sh start   [DIR]      # idempotent; prints "READY" line when usable
#   local-slurm.sh stop    [DIR]      # cancels jobs, stops daemons by PID
#   local-slurm.sh status  [DIR]
#   local-slurm.sh env     [DIR]      # prints: export SLURM_CONF=DIR/etc/slurm.conf
#   local-slurm.sh restart [DIR]
#   local-slurm.sh wait JOBID [DIR]   # like 'sbatch --wait' but polls every 0.5 s (sbatch
#                                     # --wait sleeps 2, 8, 32, 32... s between polls);
#                                     # exit status: 0 if all tasks COMPLETED, else the
#                                     # highest exit code (1 if killed/cancelled/timed out)
# DIR defaults to $LOCAL_SLURM_DIR or /tmp/local-slurm.
#
# Clients (sbatch, squeue, srun, scontrol, sinfo, scancel) need
#   export SLURM_CONF=DIR/etc/slurm.conf
# Jobs inherit it (even with --export=NONE, slurmstepd sets SLURM_CONF).
#
# Knobs (environment):
#   LOCAL_SLURM_PORT=16817     slurmctld port; slurmd uses PORT+1
#   LOCAL_SLURM_FRESH=1        wipe job state/spool before starting (new job ids)
#   LOCAL_SLURM_MPI=auto       MpiDefault: auto (pmix if usable, else none)|pmix|pmi2|none
#   LOCAL_SLURM_EXTRA_CONF=... extra slurm.conf lines (newline separated), appended; a key
#                              already in the file is overridden (Slurm logs "specified more
#                              than once, latest value used")
#   LOCAL_SLURM_TIMEOUT=60     seconds to wait for each daemon / node idle
#   LOCAL_SLURM_CRED_EXPIRE=30 AuthInfo cred_expire (Slurm's default is 120 s); it is also the
#                              time a requeued job waits (Reason=BeginTime) before it may restart
#   LOCAL_SLURM_SCHED_PARAMS="sched_interval=2,bf_interval=2"  SchedulerParameters (Slurm
#                              defaults 60/30 s); pending jobs whose BeginTime passed are only
#                              picked up by these periodic passes. Append ",kill_invalid_depend"
#                              to cancel jobs whose dependency can never be satisfied.
#   LOCAL_SLURM_BIND=loopback  loopback: slurmctld, slurmd, srun and slurmstepd bind to the
#                              address `hostname` resolves to, which must be 127.0.0.1 (checked);
#                              any: bind 0.0.0.0 (only if the hostname cannot be made to resolve
#                              to 127.0.0.1; the ports then listen on all interfaces)
set -euo pipefail

PROG=local-slurm
log() { echo "$PROG: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }

CMD=${1:-}
DIR=${2:-${LOCAL_SLURM_DIR:-/tmp/local-slurm}}
case "$DIR" in /*) ;; *) DIR="$PWD/$DIR" ;; esac
DIR=${DIR%/}
PORT=${LOCAL_SLURM_PORT:-16817}
SPORT=$((PORT + 1))
TIMEOUT=${LOCAL_SLURM_TIMEOUT:-60}
NODE=localhost
CONF="$DIR/etc/slurm.conf"
MSOCK="$DIR/munge/munge.sock"
MPID="$DIR/munge/munged.pid"
CPID="$DIR/run/slurmctld.pid"
DPID="$DIR/run/slurmd-$NODE.pid"
ADDR=127.0.0.1   # controller and node address (the hostname must resolve to it, see check_hostname)

pmix_usable() {  # mpi_pmix_v4.so dlopen()s <libdir>/pmix2/lib/libpmix.so, which ships in libpmix-dev
    local f
    for f in /usr/lib/*/pmix2/lib/libpmix.so /usr/lib/pmix2/lib/libpmix.so; do
        [ -e "$f" ] && return 0
    done
    return 1
}

# --- pid helpers: a pid counts as ours only if alive and its cmdline mentions DIR
pid_of() {  # pidfile -> pid (ours and alive) or empty
    local f=$1 p
    [ -s "$f" ] || return 0
    p=$(tr -dc '0-9' <"$f")
    [ -n "$p" ] && [ -d "/proc/$p" ] || return 0
    case "$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline")" in *"$DIR/"*) echo "$p" ;; esac
    return 0
}
stop_pid() {  # name pid: SIGTERM, wait up to 15 s, then SIGKILL
    local name=$1 p=$2 i
    [ -n "$p" ] || return 0
    kill -TERM "$p" 2>/dev/null || return 0
    for i in $(seq 1 150); do [ -d "/proc/$p" ] || { log "stopped $name (pid $p)"; return 0; }; sleep 0.1; done
    log "$name (pid $p) ignored SIGTERM; sending SIGKILL"
    kill -KILL "$p" 2>/dev/null || true
}
# processes (slurmstepd and job tasks) that carry SLURM_CONF=$CONF in their environment
cluster_pids() {
    local p env
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [ "$p" = "$$" ] && continue
        env=$'\n'$(tr '\0' '\n' 2>/dev/null <"/proc/$p/environ")$'\n' || continue
        case "$env" in *$'\n'"SLURM_CONF=$CONF"$'\n'*) ;; *) continue ;; esac
        # only slurmstepd and processes inside jobs (SLURM_JOB_ID set), never the daemons
        if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = slurmstepd ]; then echo "$p"; continue; fi
        case "$env" in *$'\n'"SLURM_JOB_ID="*) echo "$p" ;; esac
    done
}

need_bins() {
    local b missing=
    for b in munged mungekey munge unmunge slurmctld slurmd sbatch sinfo scontrol squeue scancel srun; do
        command -v "$b" >/dev/null 2>&1 || missing="$missing $b"
    done
    [ -z "$missing" ] || die "missing:$missing  (run: $0 install)"
}

check_hostname() {
    # NoInAddrAny makes slurmd, srun and slurmstepd bind to what `hostname` resolves to.
    # It must be 127.0.0.1: with 127.0.1.1 (Debian's usual /etc/hosts line) srun listens on
    # 127.0.1.1 but slurmstepd calls back the connection's source address 127.0.0.1, so
    # every srun hangs ("connect io: Connection refused" in slurmd's log).
    local h a
    [ "${LOCAL_SLURM_BIND:-loopback}" = any ] && return 0
    h=$(hostname)
    a=$(getent ahostsv4 "$h" 2>/dev/null | awk 'NR==1{print $1}') || true
    [ "$a" = 127.0.0.1 ] && return 0
    die "hostname '$h' resolves to '${a:-nothing}', not 127.0.0.1; with the loopback-only
  binding (CommunicationParameters=NoInAddrAny) slurmctld/srun would fail or hang.
  Fix: make '$h' resolve to 127.0.0.1 first in /etc/hosts, or set LOCAL_SLURM_BIND=any
  (then slurmd/srun/slurmstepd listen on 0.0.0.0)"
}

port_busy() {  # true if something listens on TCP port $1 (needs iproute2's ss)
    command -v ss >/dev/null 2>&1 || return 1
    [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

write_conf() {
    local hw cpus sock cps tpc mem mpi
    hw=$(slurmd -C | head -1)
    cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
    sock=$(sed -n 's/.* SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")
    cps=$(sed -n 's/.* CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")
    tpc=$(sed -n 's/.* ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")
    mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
    if [ -z "$cpus" ] || [ -z "$mem" ]; then die "cannot parse 'slurmd -C': $hw"; fi
    local comm="CommunicationParameters=NoCtldInAddrAny,NoInAddrAny"
    [ "${LOCAL_SLURM_BIND:-loopback}" = any ] && comm="#CommunicationParameters=(bind any: LOCAL_SLURM_BIND=any)"
    mpi=${LOCAL_SLURM_MPI:-auto}
    if [ "$mpi" = auto ]; then
        if pmix_usable; then mpi=pmix; else mpi=none; fi
    fi
    cat >"$CONF.tmp" <<EOF
# generated by local-slurm.sh - single node, localhost only, no accounting
ClusterName=localci
SlurmctldHost=localhost($ADDR)
SlurmctldPort=$PORT
SlurmdPort=$SPORT
# bind daemons, srun and slurmstepd to the hostname's address ($ADDR) instead of 0.0.0.0
$comm
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MSOCK,cred_expire=${LOCAL_SLURM_CRED_EXPIRE:-30}
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
# srun --mpi=pmix puts its per-step directories here (default /tmp: shared by concurrent clusters)
TmpFS=$DIR/tmp
SlurmctldPidFile=$CPID
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups: works in VMs/containers without a delegated cgroup tree
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=${LOCAL_SLURM_SCHED_PARAMS:-sched_interval=2,bf_interval=2}
MpiDefault=$mpi
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
JobRequeue=1
# seconds between SIGTERM and SIGKILL at time limit / scancel / requeue (default 30)
KillWait=5
NodeName=$NODE NodeAddr=$ADDR NodeHostname=$NODE CPUs=$cpus Sockets=${sock:-1} CoresPerSocket=${cps:-$cpus} ThreadsPerCore=${tpc:-1} RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    if [ -n "${LOCAL_SLURM_EXTRA_CONF:-}" ]; then
        printf '%s\n' "$LOCAL_SLURM_EXTRA_CONF" >>"$CONF.tmp"
    fi
    mv -f "$CONF.tmp" "$CONF"
}

node_state() { local s; s=$(sinfo -h -n "$NODE" -o '%T' 2>/dev/null) || true; echo "${s%%$'\n'*}"; }

do_start() {
    local t0 p st i
    t0=$(now)
    need_bins
    [ "$(id -u)" = 0 ] || die "must run as root (SlurmUser=root)"
    check_hostname
    export SLURM_CONF="$CONF"
    mkdir -p "$DIR"/{etc,log,state,spool/$NODE,run,munge,tmp}
    chmod 755 "$DIR" "$DIR/munge"   # munged needs o+x on the socket dir

    # ---- munged
    if [ -z "$(pid_of "$MPID")" ]; then
        if [ ! -s "$DIR/munge/munge.key" ]; then
            mungekey --create --keyfile="$DIR/munge/munge.key" --force 2>/dev/null ||
                dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
        fi
        chmod 600 "$DIR/munge/munge.key"
        rm -f "$MSOCK" "$MSOCK.lock" "$MPID"
        munged --socket="$MSOCK" --key-file="$DIR/munge/munge.key" \
            --log-file="$DIR/log/munged.log" --pid-file="$MPID" \
            --seed-file="$DIR/munge/munged.seed" || die "munged failed; see $DIR/log/munged.log"
    fi
    for i in $(seq 1 $((TIMEOUT * 10))); do
        munge -n -S "$MSOCK" 2>/dev/null | unmunge -S "$MSOCK" >/dev/null 2>&1 && break
        [ "$i" = $((TIMEOUT * 10)) ] && die "munged not answering on $MSOCK"
        sleep 0.1
    done

    # ---- slurm.conf: regenerate only while no slurm daemon of ours is running
    if [ -z "$(pid_of "$CPID")" ] && [ -z "$(pid_of "$DPID")" ]; then
        write_conf
        if [ "${LOCAL_SLURM_FRESH:-0}" = 1 ]; then
            rm -rf "$DIR/state" "$DIR/spool" && mkdir -p "$DIR/state" "$DIR/spool/$NODE"
        fi
        for p in "$PORT" "$SPORT"; do
            port_busy "$p" && die "port $p already in use (set LOCAL_SLURM_PORT)"
        done
    fi

    # ---- slurmctld (daemonizes, writes pid file)
    if [ -z "$(pid_of "$CPID")" ]; then
        rm -f "$CPID"
        slurmctld -f "$CONF" || die "slurmctld failed; see $DIR/log/slurmctld.log"
    fi
    for i in $(seq 1 $((TIMEOUT * 10))); do
        case "$(scontrol ping 2>/dev/null)" in *"is UP"*) break ;; esac
        [ "$i" = $((TIMEOUT * 10)) ] && die "slurmctld not UP; see $DIR/log/slurmctld.log"
        sleep 0.1
    done

    # ---- slurmd (-N: node name independent of the machine's hostname)
    if [ -z "$(pid_of "$DPID")" ]; then
        rm -f "$DPID"
        slurmd -f "$CONF" -N "$NODE" || die "slurmd failed; see $DIR/log/slurmd-$NODE.log"
    fi
    for i in $(seq 1 $((TIMEOUT * 10))); do
        st=$(node_state)
        case "$st" in
            idle | mixed | allocated | completing) break ;;
            drain* | down*)
                scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
        esac
        [ "$i" = $((TIMEOUT * 10)) ] && die "node $NODE not ready (state '$st'); see $DIR/log/"
        sleep 0.1
    done
    echo "$PROG: READY in $(elapsed "$t0")s: node $NODE $st; munged=$(pid_of "$MPID") slurmctld=$(pid_of "$CPID") slurmd=$(pid_of "$DPID"); export SLURM_CONF=$CONF"
}

do_stop() {
    local t0 c d m i left
    t0=$(now)
    export SLURM_CONF="$CONF"
    c=$(pid_of "$CPID"); d=$(pid_of "$DPID"); m=$(pid_of "$MPID")
    # 1. cancel all jobs while the controller is up, so slurmstepd kills their tasks
    if [ -n "$c" ] && [ -n "$d" ]; then
        squeue -h -o '%A' 2>/dev/null | xargs -r scancel 2>/dev/null || true
        for i in $(seq 1 200); do
            [ -z "$(squeue -h -o '%A' 2>/dev/null)" ] && break
            sleep 0.1
        done
    fi
    # 2. daemons, by PID from their pid files
    stop_pid slurmd "$d"
    # 3. anything of this cluster that survived (orphaned slurmstepd / job tasks)
    left=$(cluster_pids)
    if [ -n "$left" ]; then
        log "killing leftover job processes: ${left//$'\n'/ }"
        for i in $left; do kill -KILL "$i" 2>/dev/null || true; done
    fi
    stop_pid slurmctld "$c"
    stop_pid munged "$m"
    rm -f "$CPID" "$DPID" "$MPID"
    echo "$PROG: STOPPED in $(elapsed "$t0")s ($DIR)"
}

do_status() {
    export SLURM_CONF="$CONF"
    local m c d rc=0
    m=$(pid_of "$MPID"); c=$(pid_of "$CPID"); d=$(pid_of "$DPID")
    echo "dir=$DIR munged=${m:-down} slurmctld=${c:-down} slurmd=${d:-down}"
    if [ -n "$c" ]; then sinfo 2>/dev/null; squeue 2>/dev/null; fi
    [ -n "$m" ] && [ -n "$c" ] && [ -n "$d" ] || rc=1
    return $rc
}

do_wait() {  # JOBID
    local job=$1 info states codes st rc=0 c
    export SLURM_CONF="$CONF"
    [ -n "$job" ] || die "usage: $0 wait JOBID [DIR]"
    while [ -n "$(squeue -h -j "$job" -o '%T' 2>/dev/null)" ]; do sleep 0.5; done
    info=$(scontrol -o show job "$job" 2>/dev/null) || die "job $job unknown (purged after MinJobAge=300 s?)"
    states=$(grep -o 'JobState=[A-Z_]*' <<<"$info" | cut -d= -f2 | sort | uniq -c | awk '{printf "%s%s*%s", (NR>1?",":""), $2, $1}')
    codes=$(grep -o ' ExitCode=[0-9]*:[0-9]*' <<<"$info" | cut -d= -f2)
    for c in $codes; do [ "${c%%:*}" -gt "$rc" ] && rc=${c%%:*}; done
    for st in $(grep -o 'JobState=[A-Z_]*' <<<"$info" | cut -d= -f2); do
        [ "$st" = COMPLETED ] || { [ "$rc" -eq 0 ] && rc=1; }
    done
    echo "$PROG: job $job: $states exit=$rc"
    return "$rc"
}

case "$CMD" in
    install)
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        # slurm-wlm would also pull ~35 recommended plugin/-dev packages; these suffice.
        # libpmix-dev provides the unversioned libpmix.so that srun --mpi=pmix dlopen()s.
        apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends slurmctld slurmd slurm-client munge \
            ${LOCAL_SLURM_WITH_MPI:+openmpi-bin libopenmpi-dev libpmix-dev}
        ;;
    start) do_start ;;
    stop) do_stop ;;
    restart) do_stop; do_start ;;
    status) do_status ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    wait)
        JOB=${2:-}; DIR=${3:-${LOCAL_SLURM_DIR:-/tmp/local-slurm}}
        case "$DIR" in /*) ;; *) DIR="$PWD/$DIR" ;; esac
        CONF="${DIR%/}/etc/slurm.conf"
        do_wait "$JOB" ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2 ;;
esac
