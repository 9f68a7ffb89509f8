#!/usr/bin/env bash
# Stop what start-slurm.sh started (pid files in $SLURM_TEST_DIR/ours): cancel jobs first, then slurmd,
# slurmctld and munged, and the config files it wrote. Daemons that were running before start-slurm.sh are
# left alone.
set -uo pipefail
DIR=${SLURM_TEST_DIR:-/tmp/sgtr-em-slurm}
say() { printf '[stop-slurm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
running() { local pid; pid=$(cat "$2" 2>/dev/null) || return 1; [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]; }
if running slurmctld "$DIR/ours/slurmctld.pid"; then
  jobs=$(squeue -h -o %A 2>/dev/null || true)
  if [ -n "$jobs" ]; then
    say "cancelling jobs $(echo $jobs)"; scancel $jobs 2>/dev/null || true
    for _ in $(seq 30); do [ -z "$(squeue -h -t R,CG -o %A 2>/dev/null)" ] && break; sleep 0.5; done
  fi
fi
for d in slurmd slurmctld munged; do
  f="$DIR/ours/$d.pid"; [ -f "$f" ] || continue
  if running "$d" "$f"; then
    kill -TERM "$(cat "$f")"
    for _ in $(seq 80); do running "$d" "$f" || break; sleep 0.25; done
    running "$d" "$f" && { say "$d ignored SIGTERM: SIGKILL"; kill -KILL "$(cat "$f")" || true; }
    say "stopped $d"
  fi
  rm -f "$f"
done
# Our config files go too (a foreign one is put back): with a slurm.conf whose controller is down, every
# `scontrol show config` (which the SLURM executor plugin runs at each snakemake start) waits ~10 s.
MARK="# written by sgtr-em tools/slurm/start-slurm.sh"
if ! running slurmctld "$DIR/run/slurmctld.pid"; then
  for f in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
    grep -qF "$MARK" "$f" 2>/dev/null || continue
    if [ -e "$f.before-sgtr-em" ]; then mv "$f.before-sgtr-em" "$f"; else rm -f "$f"; fi
    say "removed $f"
  done
fi
exit 0
