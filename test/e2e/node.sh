#!/usr/bin/env bash
# node.sh start|kill|power-loss|status|init-pid NODE: power a testbed node on or off.
#
# Written into the testbed's state directory by test/e2e (Up) and run from there, by the
# testbed itself and by the node's simulated BMC (its chassis on/off commands).
#
# A node is one process tree: `ip netns exec <netns> unshare --pid --mount --uts --fork
# --kill-child --mount-proc node-init.sh NODE`. The PID of that unshare and its start time
# are kept in nodes/NODE/node.pid. Killing it with SIGKILL kills the node's PID 1 (through
# --kill-child), and the kernel then kills every process of the node's PID namespace, however
# they daemonized: that is "power off". The network namespace outlives it, as a NIC does.
# The dying node's kernel still closes its TCP connections, which tells its peers at once;
# power-loss first takes the node's link down (the root end of its veth), so that nothing
# leaves it, as with a real power failure. start brings the link up again.
#
# start refuses to run unless a testbed holds its lock (/run/lock/novaha-e2e.lock) (so a boot scheduled by a BMC of a
# testbed that has since died does not start a node nobody will stop).
set -euo pipefail

DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "node.sh: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: node.sh start|kill|power-loss|status|init-pid NODE"
cmd=$1 name=$2
[[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad node name $name"
n=$DIR/nodes/$name
[ -f "$n/node.env" ] || die "no node $name in $DIR"
# shellcheck source=/dev/null
. "$n/node.env" # NETNS, VETH

# starttime PID: field 22 of /proc/PID/stat (counted after the command name, which may
# contain spaces), so that a recycled PID is never taken for the node.
starttime() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  # shellcheck disable=SC2086
  set -- $s
  [ "$1" != Z ] || return 1
  echo "${20}"
}

# node_pid: the recorded unshare PID if that process still runs.
node_pid() {
  local pid start cur
  [ -f "$n/node.pid" ] || return 1
  read -r pid start <"$n/node.pid" || return 1
  cur=$(starttime "$pid") || return 1
  [ "$cur" = "$start" ] || return 1
  echo "$pid"
}

# init_pid: the node's PID 1, as the root namespace numbers it (unshare's only child).
init_pid() {
  local pid c
  pid=$(node_pid) || return 1
  for _ in $(seq 50); do
    c=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null || true)
    c=${c%% *}
    if [ -n "$c" ]; then echo "$c"; return 0; fi
    sleep 0.1
  done
  return 1
}

case $cmd in
  start)
    if node_pid >/dev/null; then echo "node $name is running"; exit 0; fi
    if flock -n /run/lock/novaha-e2e.lock true; then die "no testbed holds its lock: not starting $name"; fi
    echo "$(date -u +%FT%T.%3NZ) power on" >>"$n/console.log"
    ip link set "$VETH" up
    # A clean environment, as an init system gives: the caller's PATH may put pyenv's
    # python3 first, which cannot run Debian's fence agents.
    setsid env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      LANG=C.UTF-8 HOME=/root PYTHONWARNINGS=ignore NOVAHA_E2E_NODE="$name" \
      ip netns exec "$NETNS" unshare --pid --mount --uts --fork --kill-child --mount-proc \
      /bin/bash "$DIR/node-init.sh" "$name" </dev/null >>"$n/console.log" 2>&1 &
    pid=$!
    start=$(starttime "$pid") || die "node $name exited at once: $(tail -5 "$n/console.log")"
    echo "$pid $start" >"$n/node.pid.tmp"
    mv "$n/node.pid.tmp" "$n/node.pid"
    echo "node $name started (pid $pid)"
    ;;
  kill | power-loss)
    pid=$(node_pid) || { echo "node $name is off"; exit 0; }
    if [ "$cmd" = power-loss ]; then ip link set "$VETH" down; fi
    ns=""
    if init=$(init_pid); then ns=$(readlink "/proc/$init/ns/pid" || true); fi
    echo "$(date -u +%FT%T.%3NZ) power off" >>"$n/console.log"
    kill -KILL "$pid" 2>/dev/null || true
    # Wait for every process of the node's PID namespace to be gone, not just its PID 1.
    for _ in $(seq 100); do
      left=0
      if node_pid >/dev/null; then left=1; fi
      if [ -n "$ns" ] && [ $left -eq 0 ]; then
        # One find for all processes (the BMC does not answer while this runs); zombies
        # count as gone: they wait for the machine's init to reap them.
        pat=${ns//[/\\[}
        pat=${pat//]/\\]}
        for f in $(find /proc -maxdepth 3 -path '/proc/[0-9]*/ns/pid' -lname "$pat" 2>/dev/null); do
          st=$(cat "${f%/ns/pid}/stat" 2>/dev/null) || continue
          st=${st##*) }
          if [ "${st:0:1}" != Z ]; then left=1; break; fi
        done
      fi
      [ $left -eq 1 ] || { echo "node $name killed"; exit 0; }
      sleep 0.1
    done
    die "node $name: processes left 10 s after SIGKILL"
    ;;
  status)
    if pid=$(node_pid); then echo "node $name running (pid $pid)"; else echo "node $name off"; exit 3; fi
    ;;
  init-pid)
    init_pid || die "node $name is off"
    ;;
  *) die "usage: node.sh start|kill|power-loss|status|init-pid NODE" ;;
esac
