#!/bin/bash
# node-init.sh NODE: PID 1 of a testbed node (see node.sh), inside the node's own network,
# mount, UTS and PID namespaces.
#
# It gives the node its own cluster state by mounting over the machine's directories, in
# this mount namespace only: /etc/corosync, /etc/pacemaker, /var/lib/pacemaker,
# /var/lib/corosync and /var/log are bind mounts of nodes/NODE/root/...; /run and /dev/shm
# are fresh tmpfs (libqb's IPC files live in /dev/shm, named after PIDs, which the nodes'
# PID namespaces repeat). The agents the testbed installs for this node are read-only
# overlays over /usr/sbin and /usr/lib/ocf/resource.d (nodes/NODE/overlays lists them).
# Then it starts corosync and pacemakerd (a controller) or pacemaker-remoted (a compute),
# and reaps orphans until it is killed.
set -euo pipefail

DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
name=$1
n=$DIR/nodes/$name
# shellcheck source=/dev/null
. "$n/node.env" # ROLE, REMOTED
root=$n/root

hostname "$name"
mount --make-rprivate /
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -p /run/lock /run/pacemaker /run/corosync
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
for d in etc/corosync etc/pacemaker var/lib/pacemaker var/lib/corosync var/log; do
  mount --bind "$root/$d" "/$d"
done
if [ -f "$n/overlays" ]; then
  while read -r d; do
    [ -n "$d" ] || continue
    mount -t overlay overlay -o "lowerdir=$root/overlay$d:$d" "$d"
  done <"$n/overlays"
fi

export PCMK_logfile=/var/log/pacemaker/pacemaker.log
echo "$(date -u +%FT%T.%3NZ) $name: booting as $ROLE"
case $ROLE in
  controller)
    corosync -f >>/var/log/corosync/corosync.out 2>&1 &
    for _ in $(seq 100); do
      corosync-cfgtool -s >/dev/null 2>&1 && break
      sleep 0.1
    done
    pacemakerd >>/var/log/pacemaker/pacemakerd.out 2>&1 &
    ;;
  compute)
    "$REMOTED" >>/var/log/pacemaker/pacemaker-remoted.out 2>&1 &
    ;;
  *)
    echo "node-init: unknown role $ROLE" >&2
    exit 1
    ;;
esac

# PID 1 must reap the orphans of its namespace; bash reaps any child on SIGCHLD.
while :; do
  wait || true
  sleep 1
done
