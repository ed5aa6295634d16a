#!/usr/bin/env bash
# Installs a built novaha .deb, checks that Pacemaker and pcs see its agents, and removes
# it again, so that the machine stays as it was:
#   packaging/check-deb.sh packaging/out/novaha_<version>_amd64.deb
# Refuses to run while any of the package's agents already exists in /usr/sbin (the
# conformance suite puts symlinks there for the duration of its run: installing over
# them would break that run) or while novaha is installed.
set -euo pipefail

deb=$(realpath "$1")
agents=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed -n 's|^\./usr/sbin/||p')
[ -n "$agents" ] || { echo "check-deb: no agents in $deb" >&2; exit 1; }

if dpkg-query -W -f='${Status}' novaha 2>/dev/null | grep -q installed; then
  echo "check-deb: novaha is already installed; remove it first" >&2
  exit 1
fi
for a in $agents; do
  if [ -e "/usr/sbin/$a" ] || [ -L "/usr/sbin/$a" ]; then
    echo "check-deb: /usr/sbin/$a exists (a conformance run in progress?); not installing" >&2
    exit 1
  fi
done

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
removed=0
remove() {
  [ "$removed" -eq 1 ] && return
  $sudo apt-get -o DPkg::Lock::Timeout=900 purge -y -q novaha >/dev/null
  removed=1
}
trap remove EXIT

$sudo apt-get -o DPkg::Lock::Timeout=900 install -y -q "$deb" >/dev/null
rc=0
for a in $agents; do
  if pcs stonith describe "$a" >/dev/null && stonith_admin --metadata -a "$a" >/dev/null \
      && man -w "$a" >/dev/null; then
    echo "check-deb: $a: pcs stonith describe, stonith_admin --metadata, man: ok"
  else
    echo "check-deb: $a: FAILED" >&2
    rc=1
  fi
done
remove
for a in $agents; do
  if [ -e "/usr/sbin/$a" ]; then echo "check-deb: /usr/sbin/$a left behind" >&2; rc=1; fi
done
[ "$rc" -eq 0 ] && echo "check-deb: installed, checked and removed $(basename "$deb")"
exit $rc
