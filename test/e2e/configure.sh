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
# (ipmi-<compute>, through its simulated BMC). This script adds the rest, one function per
# guide step, each idempotent; a step for a new agent is one more function in STEPS.
#
# Environment: NOVA_SANDBOX_DIR (default /var/tmp/novaha-nova: its clouds.yaml, cloud
# novaha-sandbox, reaches the sandbox through the testbed's forwarders).
set -euo pipefail

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

# Step 3: one fence_nova device for every compute, with unfencing. Credentials come
# from clouds.yaml (a file), never from the command line.
nova_device() {
  if has_stonith fence-nova; then say "fence-nova exists"; return 0; fi
  [ -r "$CLOUDS_YAML" ] || die "$CLOUDS_YAML missing: start the Nova sandbox (make nova-start)"
  local hosts
  hosts=$(paste -sd, <<<"$COMPUTES")
  pcs stonith create fence-nova fence_nova cloud="$CLOUD" clouds_yaml="$CLOUDS_YAML" \
    pcmk_host_list="$hosts" meta provides=unfencing
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
    say "level 1 for $c: ipmi-$c,fence-nova"
  done
  pcs stonith level verify
}

# Guide steps 5 (NovaEvacuate) and 6 (NovaCompute) join here once their agents exist.
STEPS=(nova_device topology)

COMPUTES=$(computes)
[ -n "$COMPUTES" ] || die "no remote nodes in the CIB: is this a testbed controller?"
for step in "${STEPS[@]}"; do
  "$step"
done
crm_verify --live-check
say "done: $(wc -w <<<"$COMPUTES") computes"
