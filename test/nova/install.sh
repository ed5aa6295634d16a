#!/usr/bin/env bash
# Installs what the Nova sandbox (test/nova/sandbox) needs on Debian 12: the OpenStack
# Zed *library* packages (python3-nova, python3-keystone, ...), MariaDB, RabbitMQ and
# uWSGI, but none of the service packages (nova-compute pulls in libvirt and qemu, and
# the service packages ask debconf questions and start daemons). The few files the
# services need from the *-common packages (api-paste.ini and friends) are extracted
# with apt-get download + dpkg-deb -x into $NOVA_INSTALL_DIR, beside console-script entry
# points of our own that run Debian's /usr/bin/python3 (the python3 on PATH may be a
# pyenv build that cannot import Debian's modules).
#
# Idempotent: when every package is present and the extracted files match this script's
# version, it returns in about a second.
set -euo pipefail

INSTALL_DIR=${NOVA_INSTALL_DIR:-/opt/novaha-nova}
# Bump when the extracted files or entry points change, so a second run redoes them.
STAMP_VERSION=2

pkgs=(
  python3-nova python3-keystone python3-placement python3-glance python3-neutron
  python3-openstackclient python3-novaclient python3-pymysql
  mariadb-server mariadb-client rabbitmq-server
  uwsgi-core uwsgi-plugin-python3
  procps
)
# Packages whose configuration templates we need, but which must not be installed.
extract_pkgs=(nova-common glance-common neutron-common)

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

missing=()
for p in "${pkgs[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  # Package scripts must not start services: a policy-rc.d exiting 101 forbids it. Put
  # one in place for the install only if the machine has none.
  cleanup=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 755 /usr/sbin/policy-rc.d
    cleanup=/usr/sbin/policy-rc.d
  fi
  trap '[ -z "$cleanup" ] || $sudo rm -f "$cleanup"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  echo "nova-install: installing ${missing[*]}"
  $sudo apt-get -o DPkg::Lock::Timeout=900 update -q
  $sudo apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
  # The packages' postinst may have started a daemon despite policy-rc.d (mariadb's
  # does not, rabbitmq's epmd may): the sandbox runs its own, on its own ports, so an
  # unrelated one does no harm and is left alone.
else
  echo "nova-install: all ${#pkgs[@]} packages present"
fi

stamp="$INSTALL_DIR/.installed"
want="v$STAMP_VERSION $(dpkg-query -W -f='${Version}' nova-common 2>/dev/null || true) $(dpkg-query -W -f='${Version}' python3-nova)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "nova-install: $INSTALL_DIR up to date"
  exit 0
fi

$sudo mkdir -p "$INSTALL_DIR/pkg" "$INSTALL_DIR/bin" "$INSTALL_DIR/debs"
# apt-get download writes into the current directory, as user _apt when it can.
(
  cd "$INSTALL_DIR/debs"
  rm -f ./*.deb
  # The candidate of each *-common package must match the installed library, or the
  # paste pipelines may name filters the library does not have.
  args=()
  for p in "${extract_pkgs[@]}"; do
    lib=""
    case $p in
      nova-common) lib=python3-nova ;;
      glance-common) lib=python3-glance ;;
      neutron-common) lib=python3-neutron ;;
    esac
    args+=("$p=$(dpkg-query -W -f='${Version}' "$lib")")
  done
  $sudo apt-get -o DPkg::Lock::Timeout=900 download -q "${args[@]}" 2>&1 | grep -v 'unsandboxed' || true
  for d in ./*.deb; do
    $sudo dpkg-deb -x "$d" "$INSTALL_DIR/pkg"
  done
)

# Console-script entry points, run by Debian's Python.
entry() { # name module:function
  local name=$1 mod=${2%%:*} fn=${2##*:}
  $sudo tee "$INSTALL_DIR/bin/$name" >/dev/null <<EOF
#!/usr/bin/python3
# novaha Nova sandbox entry point for $2
import sys
from $mod import $fn
if __name__ == "__main__":
    sys.exit($fn())
EOF
  $sudo chmod 755 "$INSTALL_DIR/bin/$name"
}
entry keystone-manage keystone.cmd.manage:main
entry placement-manage placement.cmd.manage:main
entry glance-manage glance.cmd.manage:main
entry glance-api glance.cmd.api:main
entry neutron-db-manage neutron.db.migration.cli:main
entry neutron-server neutron.cmd.eventlet.server:main
entry nova-manage nova.cmd.manage:main
entry nova-conductor nova.cmd.conductor:main
entry nova-scheduler nova.cmd.scheduler:main
entry nova-compute nova.cmd.compute:main
entry openstack openstackclient.shell:main

# WSGI applications for uwsgi (--wsgi-file): pbr's wsgi_scripts, reduced to the
# `application` object.
wsgi() { # name module:function
  local name=$1 mod=${2%%:*} fn=${2##*:}
  $sudo tee "$INSTALL_DIR/bin/$name" >/dev/null <<EOF
# novaha Nova sandbox WSGI application for $2
from $mod import $fn
application = $fn()
EOF
}
wsgi keystone-wsgi-public.py keystone.server.wsgi:initialize_public_application
wsgi placement-api.py placement.wsgi:init_application
wsgi nova-api.py nova.api.openstack.compute.wsgi:init_application

echo "$want" | $sudo tee "$stamp" >/dev/null
echo "nova-install: files in $INSTALL_DIR"
