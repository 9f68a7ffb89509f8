#!/usr/bin/env bash
# Bring up a real single-node SLURM cluster on localhost for the tests: munged + slurmctld + slurmd from
# Debian's packages (installed on first use), partitions `debug` (default) and `gpu`, and one schedulable
# fake GPU (GRES gpu:1 backed by /dev/null, so GPU jobs see CUDA_VISIBLE_DEVICES=0 and queue behind each
# other). No accounting database: profiles must use `slurm-status-command: squeue`.
# Idempotent. Root only (daemons are started directly, without systemd). State in $SLURM_TEST_DIR.
set -euo pipefail
DIR=${SLURM_TEST_DIR:-/tmp/sgtr-em-slurm}
WAIT=${SLURM_TEST_WAIT:-60}
NODE=$(hostname -s)
MARK="# written by sgtr-em tools/slurm/start-slurm.sh"
say() { printf '[start-slurm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (starts munged, slurmctld, slurmd)"
mkdir -p "$DIR"/{run,log,ours,state,spool}

# -- packages (postinst scripts must not start daemons through init.d) --
missing=()
for pkg in slurmctld slurmd slurm-client munge; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  blocker=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; blocker=1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$DIR/log/apt.log" 2>&1
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$DIR/log/apt.log" 2>&1 || { tail -20 "$DIR/log/apt.log" >&2; die "apt-get install failed"; }
  [ "$blocker" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

running() { # NAME PIDFILE: the pid in PIDFILE is alive and is NAME
  local pid; pid=$(cat "$2" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}
await() { local i; for i in $(seq 60); do running "$1" "$2" && return 0; sleep 0.25; done; return 1; }

# -- munge --
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
fi
install -d -o munge -g munge -m 0755 /run/munge
if ! (munge -n 2>/dev/null | unmunge >/dev/null 2>&1); then
  runuser -u munge -- /usr/sbin/munged --force
  await munged /run/munge/munged.pid || die "munged did not start"
  cp /run/munge/munged.pid "$DIR/ours/munged.pid"
fi

# -- configuration --
eval "$(slurmd -C | head -1 | tr ' ' '\n' | grep -E '^(CPUs|SocketsPerBoard|CoresPerSocket|ThreadsPerCore|RealMemory)=[0-9]+$')"
MEM=$(( RealMemory - (RealMemory / 10 > 1024 ? RealMemory / 10 : 1024) ))
conf="$MARK
ClusterName=sgtrem
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
# a job without --mem must not take the whole node
DefMemPerCPU=1024
# squeue must still show finished jobs when snakemake polls (>= 3x its interval)
MinJobAge=300
# reject impossible requests at submission instead of pending forever
EnforcePartLimits=ALL
ReturnToService=2
MailProg=/bin/true
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUs Sockets=$SocketsPerBoard CoresPerSocket=$CoresPerSocket ThreadsPerCore=$ThreadsPerCore RealMemory=$MEM Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE MaxTime=INFINITE State=UP"
gres="$MARK
AutoDetect=off
NodeName=$NODE Name=gpu File=/dev/null"
mkdir -p /etc/slurm
changed=0
install_conf() { # FILE CONTENT: keep a foreign file once, write ours when it differs
  if [ -e "$1" ] && ! grep -qF "$MARK" "$1" && [ ! -e "$1.before-sgtr-em" ]; then cp -p "$1" "$1.before-sgtr-em"; fi
  if [ "$(cat "$1" 2>/dev/null)" != "$2" ]; then printf '%s\n' "$2" >"$1"; changed=1; fi
}
install_conf /etc/slurm/slurm.conf "$conf"
install_conf /etc/slurm/gres.conf "$gres"

# -- daemons --
if [ "$changed" = 1 ]; then
  for d in slurmd slurmctld; do
    if running "$d" "$DIR/run/$d.pid"; then kill "$(cat "$DIR/run/$d.pid")"; for _ in $(seq 60); do running "$d" "$DIR/run/$d.pid" || break; sleep 0.25; done; fi
  done
fi
for d in slurmctld slurmd; do
  running "$d" "$DIR/run/$d.pid" && continue
  rm -f "$DIR/run/$d.pid"
  "$d" || die "$d failed to start (see $DIR/log/$d.log)"
  await "$d" "$DIR/run/$d.pid" || die "$d did not come up (see $DIR/log/$d.log)"
  cp "$DIR/run/$d.pid" "$DIR/ours/$d.pid"
done

# -- wait until the node takes jobs --
deadline=$((SECONDS + WAIT))
while :; do
  state=$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -1 || true)
  case "$state" in idle|mixed|allocated) break ;; down*|drain*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;; esac
  ((SECONDS < deadline)) || { tail -5 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true; die "node $NODE is '${state:-?}' after ${WAIT}s"; }
  sleep 0.5
done
say "cluster up: node $NODE ($state), partitions $(sinfo -h -o %P | tr '\n' ' ')"
