#!/usr/bin/env bash
# A throwaway one-node SLURM cluster on this machine, for trying lyricgen's SLURM path on a laptop and for
# its tests: `start DIR` writes the config, state and logs under DIR and starts munged, slurmctld and
# slurmd; `stop DIR` stops them and removes DIR. Needs root and Debian's packages:
#   apt-get install slurmctld slurmd slurm-client munge
# After `start`, point the SLURM commands at it: eval "$(bash scripts/local_slurm.sh env DIR)" (docs/speed.md).
set -euo pipefail

usage() { echo "usage: $0 start|stop|env DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
dir=$(realpath -m "$2")

write_config() {
    local host cpus
    host=$(hostname -s)
    cpus=$(nproc)
    local memory_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 ))
    mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/bin"
    cat >"$dir/slurm.conf" <<CONF
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
SlurmctldPort=$((6817 + RANDOM % 1000))
SlurmdPort=$((7817 + RANDOM % 1000))
AuthType=auth/munge
AuthInfo=socket=$(readlink "$dir/munge")/socket,cred_expire=5
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmctldParameters=preempt_send_user_signal
SchedulerParameters=sched_interval=2,bf_interval=1
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=300
NodeName=$host CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
}

# Without accounting, sacct fails and submitit then sees every job as UNKNOWN: this stand-in answers
# submitit's one question (sacct -o JobID,State,NodeList --parsable2 -j ID ...) from squeue, which keeps
# finished jobs for MinJobAge seconds.
write_sacct() {
    cat >"$dir/bin/sacct" <<'SACCT'
#!/usr/bin/env bash
ids=()
while [ $# -gt 0 ]; do
    case $1 in
        -j) ids+=("$2"); shift 2 ;;
        *) shift ;;
    esac
done
echo "JobID|State|NodeList"
[ ${#ids[@]} -gt 0 ] || exit 0
IFS=, squeue --noheader --states=all --jobs="${ids[*]}" --format='%i|%T|%N' 2>/dev/null || true
SACCT
    chmod +x "$dir/bin/sacct"
}

start() {
    command -v slurmctld >/dev/null && command -v munged >/dev/null ||
        { echo "error: Slurm is not installed: apt-get install slurmctld slurmd slurm-client munge" >&2; exit 1; }
    [ "$(id -u)" = 0 ] || { echo "error: starting a cluster needs root (munged, slurmd)" >&2; exit 1; }
    [ ! -e "$dir/slurm.conf" ] || { echo "error: $dir already holds a cluster: stop it first" >&2; exit 1; }
    # munged runs as the munge user and insists on a key and a socket folder only it can write; DIR may
    # sit where that user cannot reach (a private temporary folder), so its folder lives in /tmp, linked
    local munge
    munge=$(mktemp -d /tmp/local-slurm-munge.XXXXXX)
    chown munge: "$munge"
    chmod 700 "$munge"
    mkdir -p "$dir"
    ln -s "$munge" "$dir/munge"
    write_config
    write_sacct
    dd if=/dev/urandom bs=1 count=1024 status=none >"$munge/key"
    chown munge: "$munge/key"
    chmod 400 "$munge/key"
    runuser -u munge -- munged --socket="$munge/socket" --key-file="$munge/key" \
        --pid-file="$munge/pid" --log-file="$munge/log" --seed-file="$munge/seed" --force
    export SLURM_CONF=$dir/slurm.conf
    setsid slurmctld -D -i >"$dir/log/slurmctld.out" 2>&1 </dev/null &
    setsid slurmd -D >"$dir/log/slurmd.out" 2>&1 </dev/null &
    for _ in $(seq 100); do
        if sinfo --noheader --format=%t 2>/dev/null | grep -qx idle; then
            echo "cluster up: eval \"\$(bash $0 env $dir)\" points sbatch, squeue and sacct at it" >&2
            return 0
        fi
        sleep 0.2
    done
    echo "error: the cluster did not come up in 20 s; see $dir/log" >&2
    exit 1
}

stop() {
    [ -e "$dir/slurm.conf" ] || { echo "error: no cluster in $dir" >&2; exit 1; }
    local munge pids=()
    munge=$(readlink "$dir/munge")
    # Jobs first: a job step whose slurmd is gone would outlive the cluster.
    export SLURM_CONF=$dir/slurm.conf
    scancel --full --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 100); do
        [ -z "$(squeue --noheader --states=RUNNING,COMPLETING,PENDING 2>/dev/null)" ] && break
        sleep 0.1
    done
    for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$munge/pid"; do
        [ -s "$pidfile" ] && pids+=("$(cat "$pidfile")")
    done
    kill "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 50); do  # they exit within a second; then the folders can go
        kill -0 "${pids[@]}" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "${pids[@]}" 2>/dev/null || true
    rm -rf "$dir" "$munge"
}

case $action in
    start) start ;;
    stop) stop ;;
    env) echo "export SLURM_CONF=$dir/slurm.conf PATH=$dir/bin:\$PATH" ;;
    *) usage ;;
esac
