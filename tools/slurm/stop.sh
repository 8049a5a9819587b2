#!/usr/bin/env bash
# Stop the single-node Slurm started by tools/slurm/start.sh STATE_DIR:
#
#   tools/slurm/stop.sh STATE_DIR
#
# Cancels the jobs still queued, stops exactly the daemons start.sh recorded
# (STATE_DIR/started, or /etc/slurm/afterkernel.started when STATE_DIR is
# gone), newest first, and removes /etc/slurm/slurm.conf if start.sh wrote it
# for this STATE_DIR. Safe to run twice.
set -uo pipefail

STATE=$(realpath -m "${1:?usage: stop.sh STATE_DIR}")
MARKER="written by afterkernel tools/slurm/start.sh"
CONF=/etc/slurm/slurm.conf
RECORD=/etc/slurm/afterkernel.started
ours_conf() { [ -f "$CONF" ] && grep -q "$MARKER" "$CONF" && grep -qxF "StateSaveLocation=$STATE/ctld" "$CONF"; }

started=""
if [ -f "$STATE/started" ]; then
    started=$STATE/started
elif ours_conf && [ -f "$RECORD" ]; then
    started=$RECORD
fi

# Jobs first, while the controller still runs (only this cluster's jobs exist).
if ours_conf && [ -n "$started" ] && grep -q '^slurmctld ' "$started"; then
    jobs=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
    if [ -n "$jobs" ]; then
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs 2>/dev/null || true
        for _ in $(seq 40); do
            [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] && break
            sleep 0.25
        done
    fi
fi

stop_daemon() {  # name pid
    local name=$1 pid=$2
    # Only a live process of the recorded name: a stale pid may have been reused.
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 40); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.25
    done
    echo "stop.sh: $name ($pid) ignored SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

if [ -n "$started" ]; then
    tac "$started" | while read -r name pid; do
        [ -n "$name" ] && stop_daemon "$name" "$pid"
    done
fi
rm -f "$STATE/started"
if ours_conf; then
    rm -f "$CONF" "$RECORD"
fi
exit 0
