#!/usr/bin/env bash
# configure.sh: the instance-HA configuration of the testbed, made with pcs the way
# docs/admin-guide.md ("Setting up instance HA with pcs") tells operators, on the cluster
# that `testbed up` built. Run it inside a controller:
#
#   test/e2e/.bin/testbed exec ctl1 test/e2e/configure.sh
#
# What `testbed up` did already: guide step 1, the computes as remote nodes (with
# `pcs resource create <node> ocf:pacemaker:remote ... --force`: there is no pcsd for
# `pcs cluster node add-remote`), and step 2, one fence_ipmi device per compute
# (ipmi-<compute>, through its simulated BMC; the controllers have theirs too, ipmi-ctlN,
# which fence-nova's unfencing needs). This script adds the rest, one function per guide
# step, each idempotent: step 3 fence-nova, step 4 the topology, step 5 NovaEvacuate on
# the controllers, step 6 NovaCompute as a clone on the computes, in process mode running
# test/e2e/nova-compute (the sandbox's nova-compute for the node's host name, inside the
# node). The sandbox's own nova-compute of each compute must be stopped first
# (test/nova/sandbox compute stop HOST): two copies would fight over one service record.
#
# Environment: NOVA_SANDBOX_DIR (default /var/tmp/novaha-nova: its clouds.yaml, cloud
# novaha-sandbox, reaches the sandbox through the testbed's forwarders). Sourced, it only
# defines its functions (configure-python.sh uses them).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NOVA_DIR=${NOVA_SANDBOX_DIR:-/var/tmp/novaha-nova}
CLOUDS_YAML=$NOVA_DIR/clouds.yaml
CLOUD=novaha-sandbox

say() { echo "configure: $*" >&2; }
die() { say "error: $*"; exit 1; }

# The remote nodes the cluster knows (step 1's result), from the CIB.
computes() {
  local xml
  xml=$(cibadmin --query --scope resources)
  grep -o '<primitive [^>]*type="remote"[^>]*>' <<<"$xml" | grep -o ' id="[^"]*"' | cut -d'"' -f2
}

has_stonith() { pcs stonith config "$1" >/dev/null 2>&1; }

# Step 3: one fence_nova device for every compute. Credentials come from clouds.yaml
# (a file), never from the command line. No `meta provides=unfencing`: NovaCompute
# (step 6) returns the host to Nova itself, and with unfencing the return deadlocked
# here: Pacemaker runs nothing on a fenced node before it is unfenced, fence_nova's on
# waits for Nova to lift the force-down, and Nova refuses until the host's nova-compute
# has restarted, which NovaCompute does only once the node is unfenced.
nova_device() {
  if has_stonith fence-nova; then say "fence-nova exists"; return 0; fi
  [ -r "$CLOUDS_YAML" ] || die "$CLOUDS_YAML missing: start the Nova sandbox (make nova-start)"
  local hosts
  hosts=$(paste -sd, <<<"$COMPUTES")
  pcs stonith create fence-nova fence_nova cloud="$CLOUD" clouds_yaml="$CLOUDS_YAML" \
    pcmk_host_list="$hosts"
  say "fence-nova created for $hosts"
}

# Step 4: per compute, one level: the power device first, then Nova.
topology() {
  local levels c
  levels=$(pcs stonith level config 2>/dev/null || true)
  for c in $COMPUTES; do
    has_stonith "ipmi-$c" || die "no power device ipmi-$c (testbed up -no-fencing?)"
    if [[ $levels == *"Target: $c"* ]]; then say "level 1 for $c exists"; continue; fi
    pcs stonith level add 1 "$c" "ipmi-$c" fence-nova
    say "level 1 for $c: ipmi-$c fence-nova"
  done
  pcs stonith level verify
}

has_resource() { pcs resource config "$1" >/dev/null 2>&1; }

# Step 5: the evacuation controller, one instance in the cluster, never on a compute.
# Created disabled: an enabled resource is placed at once, before its constraint exists
# (the testbed saw nova-evacuate started on compute1 that way).
evacuate_resource() {
  if has_resource nova-evacuate; then say "nova-evacuate exists"; return 0; fi
  pcs resource create nova-evacuate ocf:novaha:NovaEvacuate cloud="$CLOUD" \
    clouds_yaml="$CLOUDS_YAML" op monitor interval=10s timeout=20s --disabled
  pcs constraint location nova-evacuate rule score=-INFINITY '#kind' eq remote
  pcs resource enable nova-evacuate
  say "nova-evacuate created"
}

# Step 6: nova-compute under Pacemaker on every compute, never on a controller. Process
# mode, as the testbed's nodes have no systemd; its log is the node's own /var/log.
# The order after nova-evacuate is Optional: a Mandatory one restarts nova-compute on
# every compute whenever nova-evacuate restarts or moves (see compute_order).
compute_clone() {
  if has_resource nova-compute-clone; then say "nova-compute-clone exists"; return 0; fi
  create_compute_clone
  compute_order
  pcs resource enable nova-compute-clone
  say "nova-compute-clone created"
}

# create_compute_clone creates nova-compute-clone, disabled, with its location rule.
create_compute_clone() {
  pcs resource create nova-compute ocf:novaha:NovaCompute cloud="$CLOUD" \
    clouds_yaml="$CLOUDS_YAML" service_manager=process command="$HERE/nova-compute" \
    args="--sandbox $NOVA_DIR" log_file=/var/log/nova-compute.log \
    op start timeout=600 op monitor interval=10 timeout=20 \
    op monitor interval=60 timeout=30 OCF_CHECK_LEVEL=10 \
    clone interleave=true --disabled
  pcs constraint location nova-compute-clone rule score=-INFINITY '#kind' ne remote
}

# nova-compute-clone starts after nova-evacuate when both start together (a fenced
# host's start waits for its evacuation, which needs the controller), and no more: with
# the default Mandatory kind, Pacemaker restarts every nova-compute when nova-evacuate
# restarts or moves ("Restart nova-compute:N ... due to required nova-evacuate start"),
# which the end-to-end test saw when the controller running NovaEvacuate died
# mid-evacuation: the destinations' nova-compute were stopped under their rebuilds and
# NovaEvacuate's own start waited for those stops. Replaces a Mandatory order of an
# earlier configuration.
compute_order() {
  local orders
  orders=$(cibadmin --query --scope constraints)
  orders=$(grep -o '<rsc_order [^>]*first="nova-evacuate"[^>]*then="nova-compute-clone"[^>]*>' <<<"$orders" || true)
  if [[ $orders == *'kind="Optional"'* ]]; then say "order nova-evacuate then nova-compute-clone (Optional) exists"; return 0; fi
  if [ -n "$orders" ]; then
    pcs constraint order remove nova-evacuate nova-compute-clone
    say "removed the Mandatory order nova-evacuate then nova-compute-clone"
  fi
  pcs constraint order start nova-evacuate then nova-compute-clone kind=Optional
  say "order nova-evacuate then nova-compute-clone: Optional"
}

# run_steps runs each step on the cluster's computes, then checks the configuration.
run_steps() {
  COMPUTES=$(computes)
  [ -n "$COMPUTES" ] || die "no remote nodes in the CIB: is this a testbed controller?"
  local step
  for step in "$@"; do
    "$step"
  done
  crm_verify --live-check
  say "done: $(wc -w <<<"$COMPUTES") computes"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  run_steps nova_device topology evacuate_resource compute_clone compute_order
fi
