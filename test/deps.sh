#!/usr/bin/env bash
# Installs the Debian packages that the build, the tests and the conformance suite need.
# Idempotent: packages already present are skipped, so a second run takes a second.
set -euo pipefail

pkgs=(
  # the real Pacemaker tools the conformance suite drives
  pacemaker pacemaker-cli-utils corosync pcs
  # the Python agents we replace and compare against, and ocf-tester / the OCF DTD
  fence-agents resource-agents
  # the BMC simulator and the reference IPMI client
  openipmi ipmitool
  # xmllint for metadata validation against the RelaxNG schema and the OCF DTD
  libxml2-utils
  # GNU time: the bench reads each agent's own peak RSS from it
  time
  # syslog socket for the logging tests, procps for pgrep/pkill in test scripts
  procps
  # fence_libvirt: libvirt.so.0 (dlopened); libvirtd with the QEMU driver for a real guest
  # in the component tests (libvirt-daemon-system creates the libvirt-qemu user that the
  # QEMU driver needs); virsh for fence_virsh; SASL plugins and saslpasswd2 for the SASL
  # login test; sshd and ssh for qemu+ssh and the fence_virsh comparison
  libvirt0 libvirt-daemon libvirt-daemon-driver-qemu libvirt-daemon-system libvirt-clients qemu-system-x86
  libsasl2-modules sasl2-bin
  openssh-server openssh-client
  # lib/systemd's tests run a private bus with a fake systemd manager on it
  dbus-daemon
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#pkgs[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# Package scripts must not start cluster daemons on a build machine: a policy-rc.d that
# exits 101 forbids it. Put one in place for the install only if the machine has none.
cleanup=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod 755 /usr/sbin/policy-rc.d
  cleanup="/usr/sbin/policy-rc.d"
fi
trap '[ -z "$cleanup" ] || $sudo rm -f "$cleanup"' EXIT

export DEBIAN_FRONTEND=noninteractive
echo "deps: installing ${missing[*]}"
$sudo apt-get -o DPkg::Lock::Timeout=900 update -q
$sudo apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
