// Package nova is novaha's client of the OpenStack Compute API (and of Keystone, to
// reach it), shared by the fence agent fence_nova and the evacuation and compute-node
// agents. It is built on gophercloud and adds what a fencing path needs:
//
//   - one clear error line when Keystone or Nova is down or refuses, with no secret in
//     it (errors.go);
//   - retries with backoff of connection errors and 5xx answers, within the caller's
//     deadline (retry.go);
//   - microversion negotiation, 2.53 (service UUIDs) when Nova offers it, with a
//     documented fallback to 2.11 (client.go);
//   - service records and a request builder that can send forced_down=false, which
//     gophercloud's own options cannot (services.go);
//   - the host lifecycle kept in the nova-compute service's disabled_reason: the
//     markers (markers.go) and the transitions fence, unfence and restore
//     (lifecycle.go);
//   - the mapping of cluster node names onto Nova host names, with domains and
//     ambiguity errors (hosts.go);
//   - the calls of the evacuation controller: servers with their flavors' extra
//     specs (servers.go), evacuation migrations (migrations.go), the evacuate action
//     with a body per microversion (evacuate.go), free capacity from Placement
//     (hypervisors.go) and image properties from Glance (images.go), all paginated
//     where Nova pages (pages.go), Placement and Glance found in the catalog
//     (catalog.go).
//
// Every call takes a context; its deadline bounds the call, retries included.
package nova
