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
# Agents with a backend (/usr/libexec/novaha/<agent>-backend) must find it where the
# package put it: a device action reaches the backend (whatever it then says about the
# missing options) instead of failing for want of it.
for b in $(dpkg-deb -c "$deb" | awk '{print $6}' | sed -n 's|^\./usr/libexec/novaha/\(.*\)-backend$|\1|p'); do
  out=$("/usr/sbin/$b" -o monitor 2>&1 || true)
  if [[ $out == *"is not installed"* ]]; then
    echo "check-deb: $b does not find its backend: $out" >&2
    rc=1
  else
    echo "check-deb: $b: finds /usr/libexec/novaha/$b-backend"
  fi
done
# fence_libvirt end to end on libvirt's in-process test driver (libvirt0 installed).
if [ -x /usr/sbin/fence_libvirt ] && ldconfig -p | grep -q 'libvirt\.so\.0 '; then
  out=$(/usr/sbin/fence_libvirt -o status --uri test:///default -n test 2>&1 || true)
  if [ "$out" = "Status: ON" ]; then
    echo "check-deb: fence_libvirt -o status on test:///default: ok"
  else
    echo "check-deb: fence_libvirt -o status on test:///default: $out" >&2
    rc=1
  fi
fi
remove
for a in $agents; do
  if [ -e "/usr/sbin/$a" ]; then echo "check-deb: /usr/sbin/$a left behind" >&2; rc=1; fi
done
[ "$rc" -eq 0 ] && echo "check-deb: installed, checked and removed $(basename "$deb")"
exit $rc
