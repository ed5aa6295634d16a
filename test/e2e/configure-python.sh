#!/usr/bin/env bash
# configure-python.sh: the stock Python instance-HA chain on the testbed, for
# TestPythonChain (python_test.go), which measures it against ours (configure.sh). Run it
# inside a controller of a testbed whose nodes have the patched fence_compute and
# fence_evacuate in /usr/sbin (TestPythonChain installs them through the testbed's agent
# overlay):
#
#   test/e2e/.bin/testbed exec ctl1 test/e2e/configure-python.sh
#
# Per compute, one topology level: Debian's fence_ipmilan (ipmitool) through the same
# simulated BMC as the testbed's ipmi-<compute>, then fence_compute, then fence_evacuate.
# Debian 12's fence_compute (fence-agents 4.12) never evacuates: its off forces the host
# down in Nova, disables it and sets the node attribute evacuate=yes, whatever
# record_only says (record_only=2 only turns the agent into a no-op). The evacuation
# itself is fence_evacuate's off: every instance of the host (with an evacuable flavor or
# image, or all when none is tagged) is evacuated, one API call each, without waiting for
# the rebuilds. The stock OCF agent that would clear evacuate=yes afterwards (the
# openstack provider's NovaEvacuate) is not in Debian's resource-agents: the test sets
# evacuate=no itself once every instance is ACTIVE elsewhere. fence_compute's on (lift
# the force-down, enable) does not run in the reboot's on phase: its metadata marks on
# automatic, Pacemaker leaves such a device to unfencing, and pcs adds no
# provides=unfencing for it (that needs on_target too). fence_evacuate's on fails ("not
# supported"), which Pacemaker ignores after a successful off.
#
# The testbed's own ipmi-<compute> devices (fence_ipmi) are removed, so only the Python
# agents fence the computes; the controllers keep their ipmi-ctlN. nova-compute runs in
# every compute node under NovaCompute (process mode, as configure.sh does), which only
# starts and stops it and, on a host fence_compute fenced, holds the start while the
# node's evacuate attribute is yes (the part nova-compute-wait plays in the stock chain).
# Neither NovaEvacuate nor fence_nova is configured.
#
# Each step is idempotent. Environment: NOVA_SANDBOX_DIR (default /var/tmp/novaha-nova:
# its openrc gives the Python agents their credentials, its clouds.yaml NovaCompute's).
set -euo pipefail

# configure.sh's settings and helpers (computes, has_stonith, has_resource,
# create_compute_clone, run_steps).
# shellcheck source=configure.sh
. "$(dirname "${BASH_SOURCE[0]}")/configure.sh"
say() { echo "configure-python: $*" >&2; }

# param DEVICE NAME: an instance attribute of a device, from the CIB.
param() {
  local v
  v=$(cibadmin --query --xpath "//primitive[@id='$1']/instance_attributes/nvpair[@name='$2']" 2>/dev/null |
    grep -o ' value="[^"]*"' | cut -d'"' -f2) || true
  [ -n "$v" ] || return 1
  echo "$v"
}

# The Python agents' Nova credentials: the sandbox's openrc (the agents read no
# clouds.yaml). endpoint_type publicURL, as the sandbox's clients use.
nova_options() {
  [ -r "$NOVA_DIR/openrc" ] || die "$NOVA_DIR/openrc missing: start the Nova sandbox (make nova-start)"
  # shellcheck source=/dev/null
  . "$NOVA_DIR/openrc"
  NOVA_OPTS=(auth_url="$OS_AUTH_URL" username="$OS_USERNAME" password="$OS_PASSWORD"
    tenant_name="$OS_PROJECT_NAME" user_domain="${OS_USER_DOMAIN_NAME:-Default}"
    project_domain="${OS_PROJECT_DOMAIN_NAME:-Default}" endpoint_type=publicURL)
}

# Per compute, fence_ipmilan with the BMC address and account of the testbed's
# ipmi-<compute>, which is then removed.
ipmilan_devices() {
  local c ip port user pass
  for c in $COMPUTES; do
    if has_stonith "ipmilan-$c"; then
      say "ipmilan-$c exists"
    else
      ip=$(param "ipmi-$c" ip) || die "no ipmi-$c device to take the BMC's address from"
      port=$(param "ipmi-$c" ipport) || die "ipmi-$c has no ipport"
      user=$(param "ipmi-$c" username) || die "ipmi-$c has no username"
      pass=$(param "ipmi-$c" password) || die "ipmi-$c has no password"
      pcs stonith create "ipmilan-$c" fence_ipmilan ip="$ip" ipport="$port" username="$user" \
        password="$pass" lanplus=1 cipher=3 pcmk_host_list="$c"
      say "ipmilan-$c created ($ip:$port)"
    fi
    if has_stonith "ipmi-$c"; then
      pcs stonith delete "ipmi-$c"
      say "ipmi-$c (fence_ipmi) removed"
    fi
  done
}

# One fence_compute and one fence_evacuate device for every compute.
nova_devices() {
  local hosts
  hosts=$(paste -sd, <<<"$COMPUTES")
  nova_options
  if has_stonith fence-compute; then
    say "fence-compute exists"
  else
    pcs stonith create fence-compute fence_compute "${NOVA_OPTS[@]}" pcmk_host_list="$hosts"
    say "fence-compute created for $hosts"
  fi
  if has_stonith fence-evacuate; then
    say "fence-evacuate exists"
  else
    # The sandbox's hosts share no storage (Nova's fake driver has no instance files):
    # an evacuation on_shared_storage=True (fence_evacuate's default) would fail.
    pcs stonith create fence-evacuate fence_evacuate "${NOVA_OPTS[@]}" no_shared_storage=1 \
      pcmk_host_list="$hosts"
    say "fence-evacuate created for $hosts"
  fi
}

# Per compute, level 1: power, then Nova's record, then the evacuation.
topology() {
  local levels c
  levels=$(pcs stonith level config 2>/dev/null || true)
  for c in $COMPUTES; do
    if [[ $levels == *"Target: $c"* ]]; then say "level 1 for $c exists"; continue; fi
    pcs stonith level add 1 "$c" "ipmilan-$c" fence-compute fence-evacuate
    say "level 1 for $c: ipmilan-$c fence-compute fence-evacuate"
  done
  pcs stonith level verify
}

# nova-compute in every compute node, as configure.sh's compute_clone, without the order
# after nova-evacuate (there is none here).
compute_clone() {
  if has_resource nova-compute-clone; then say "nova-compute-clone exists"; return 0; fi
  create_compute_clone
  pcs resource enable nova-compute-clone
  say "nova-compute-clone created"
}

for a in fence_ipmilan fence_compute fence_evacuate; do
  [ -x "/usr/sbin/$a" ] || die "/usr/sbin/$a missing"
done
if grep -q 'inspect.getargspec(' /usr/sbin/fence_compute /usr/sbin/fence_evacuate; then
  die "fence_compute or fence_evacuate is Debian's unpatched copy (inspect.getargspec is gone in Python 3.11)"
fi
run_steps ipmilan_devices nova_devices topology compute_clone
