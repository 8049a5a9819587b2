#!/usr/bin/env bash
# Start a real single-node Slurm on this machine, for tests and development.
#
#   tools/slurm/start.sh STATE_DIR     (as root)
#
# Installs slurm-wlm and munge with apt-get when missing, writes
# /etc/slurm/slurm.conf from slurm.conf.in (the only place the job-step plugin
# finds it), starts munged (unless one is running), slurmctld and slurmd, and
# waits until the node is idle. STATE_DIR receives state, spool, logs, pid
# files, the job completion log (jobcomp.log: one line per finished job) and
# `started` ("name pid" of each daemon this script started, also kept as
# /etc/slurm/afterkernel.started), which tools/slurm/stop.sh stops.
#
# Exit status: 0 ready; 77 Slurm cannot be set up here (not root, packages not
# installable, another Slurm already configured or running); 1 set-up failed.
# Ports: AFTERKERNEL_SLURM_PORTS="ctld slurmd" (default "16817 16818").
# Accounting (slurmdbd) is not run: use `--slurm-status-command squeue`.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
STATE=${1:?usage: start.sh STATE_DIR}
MARKER="written by afterkernel tools/slurm/start.sh"
CONF=/etc/slurm/slurm.conf
read -r CTLD_PORT SLURMD_PORT <<<"${AFTERKERNEL_SLURM_PORTS:-16817 16818}"

skip() { echo "start.sh: cannot set up Slurm: $*" >&2; exit 77; }
die() { echo "start.sh: error: $*" >&2; exit 1; }
log() { echo "start.sh: $*" >&2; }

[ "$(id -u)" = 0 ] || skip "needs root (installs packages, writes $CONF, runs the daemons)"
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)

# 1. Packages.
missing=0
for bin in slurmctld slurmd munged mungekey sbatch squeue sinfo scontrol scancel; do
    command -v "$bin" >/dev/null 2>&1 || missing=1
done
if [ "$missing" = 1 ]; then
    command -v apt-get >/dev/null 2>&1 || skip "Slurm is not installed and there is no apt-get"
    log "installing slurm-wlm munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q slurm-wlm munge >"$STATE/apt.log" 2>&1; then
        { apt-get update -q && apt-get install -y -q slurm-wlm munge; } \
            >>"$STATE/apt.log" 2>&1 || skip "apt-get could not install slurm-wlm munge (log: $STATE/apt.log)"
    fi
fi

# 2. Never take over a Slurm that is not ours; clean up after an aborted run of ours.
if [ -f "$CONF" ]; then
    if grep -q "$MARKER" "$CONF"; then
        old_state=$(sed -n 's/^StateSaveLocation=\(.*\)\/ctld$/\1/p' "$CONF")
        if [ -n "$old_state" ]; then
            log "stopping what an earlier start.sh left running ($old_state)"
            "$HERE/stop.sh" "$old_state" || true
        fi
    else
        skip "$CONF exists and was not written by this script (a real Slurm installation?)"
    fi
fi
for daemon in slurmctld slurmd; do
    if pgrep -x "$daemon" >/dev/null 2>&1; then
        skip "a $daemon not started by this script is running"
    fi
done

: >"$STATE/started"
mkdir -p "$STATE/ctld" "$STATE/spool" /etc/slurm
started() {  # name pidfile: record a daemon this script started
    local pid
    for _ in $(seq 100); do [ -s "$2" ] && break; sleep 0.1; done
    pid=$(cat "$2" 2>/dev/null) || die "$1 wrote no pid file $2 (logs in $STATE)"
    echo "$1 $pid" >>"$STATE/started"
    cp "$STATE/started" /etc/slurm/afterkernel.started
}

# 3. munge: the default socket (a custom one breaks authentication elsewhere).
if pgrep -x munged >/dev/null 2>&1; then
    log "using the running munged"
else
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey -c -f -k /etc/munge/munge.key
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 0755 /run/munge
    rm -f /run/munge/munged.pid
    runuser -u munge -- munged --force
    started munged /run/munge/munged.pid
fi
for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.1; done
munge -n </dev/null | unmunge >/dev/null || die "munge does not work"

# 4. slurm.conf: this machine's name and CPUs (at least 2, the workflow's
# two-thread jobs must fit); memory declared generously.
HOST=$(hostname -s)
CPUS=$(( $(nproc) > 2 ? $(nproc) : 2 ))
real_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
MEM_MB=$(( real_mb > 65536 ? real_mb : 65536 ))
sed -e "s|@MARKER@|$MARKER|" -e "s|@STATE@|$STATE|g" -e "s|@HOST@|$HOST|g" \
    -e "s|@CPUS@|$CPUS|" -e "s|@MEM_MB@|$MEM_MB|" \
    -e "s|@CTLD_PORT@|$CTLD_PORT|" -e "s|@SLURMD_PORT@|$SLURMD_PORT|" \
    "$HERE/slurm.conf.in" >"$CONF"
cp "$CONF" "$STATE/slurm.conf"

# 5. Daemons: controller, then node daemon.
slurmctld -c || die "slurmctld did not start (log: $STATE/slurmctld.log)"
started slurmctld "$STATE/slurmctld.pid"
slurmd -N "$HOST" || die "slurmd did not start (log: $STATE/slurmd.log)"
started slurmd "$STATE/slurmd.pid"

# 6. Wait for the node to be idle.
for i in $(seq 120); do
    node_state=$(sinfo -h -N -n "$HOST" -o %T 2>/dev/null | head -1 || true)
    case "$node_state" in
        idle) log "node $HOST idle ($CPUS CPUs) after $((i / 4)) s; state in $STATE"; exit 0 ;;
        down*|drain*|unknown*)
            [ $((i % 8)) = 0 ] && scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.25
done
die "node $HOST not idle after 30 s (state '${node_state:-none}'; logs in $STATE)"
