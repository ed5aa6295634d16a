#!/usr/bin/python3
"""API-side helper of the Nova sandbox (test/nova/sandbox): Keystone setup, waits, seeding,
and the host-failure steps done by hand. Runs with Debian's Python (keystoneauth1 comes
with python3-keystone); talks REST directly, one process per command, so each step costs
one interpreter start and not one openstack CLI start per call.

Credentials come from the environment the sandbox script exports (OS_* from its openrc,
SANDBOX_* for the service setup). Everything is on 127.0.0.1.
"""

import argparse
import json
import os
import sys
import time
from urllib.parse import quote, urlencode

from keystoneauth1 import exceptions as ksa_exc
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

COMPUTE = {"service_type": "compute", "interface": "public"}
IMAGE = {"service_type": "image", "interface": "public"}
IDENTITY = {"service_type": "identity", "interface": "public"}


def log(msg):
    print("sandbox.py: " + msg, file=sys.stderr, flush=True)


def admin_session():
    auth = v3.Password(
        auth_url=os.environ["OS_AUTH_URL"],
        username=os.environ["OS_USERNAME"],
        password=os.environ["OS_PASSWORD"],
        project_name=os.environ["OS_PROJECT_NAME"],
        user_domain_name=os.environ.get("OS_USER_DOMAIN_NAME", "Default"),
        project_domain_name=os.environ.get("OS_PROJECT_DOMAIN_NAME", "Default"),
    )
    return ksa_session.Session(auth=auth)


def mv(version):
    return {"OpenStack-API-Version": "compute " + version, "X-OpenStack-Nova-API-Version": version}


def call(sess, method, path, filt, body=None, version=None, ok=(200, 201, 202, 204)):
    headers = mv(version) if version else {}
    r = sess.request(path, method, endpoint_filter=filt, json=body, headers=headers,
                     raise_exc=False)
    if r.status_code not in ok:
        raise RuntimeError("%s %s: %d %s" % (method, path, r.status_code, r.text[:500]))
    if r.status_code == 204 or not r.content:
        return None
    return r.json()


# ---------------------------------------------------------------- identity


def cmd_identity(args):
    """Projects, roles, service users and the catalog; idempotent."""
    sess = admin_session()
    ks = IDENTITY

    def find(path, key, **query):
        items = call(sess, "GET", "%s?%s" % (path, urlencode(query)), ks)[key]
        return items[0] if items else None

    def ensure(path, key, singular, body, **query):
        item = find(path, key, **query)
        if item is None:
            item = call(sess, "POST", path, ks, {singular: body})[singular]
            log("created %s %s" % (singular, body.get("name") or body.get("url")))
        return item

    domain = find("domains", "domains", name="Default")
    service_project = ensure("projects", "projects", "project",
                             {"name": "service", "domain_id": domain["id"],
                              "description": "Service users"},
                             name="service", domain_id=domain["id"])
    roles = {}
    for name in ("admin", "member", "reader", "service"):
        roles[name] = ensure("roles", "roles", "role", {"name": name}, name=name)

    password = os.environ["SANDBOX_SERVICE_PASSWORD"]
    for name in ("nova", "placement", "glance", "neutron"):
        user = find("users", "users", name=name, domain_id=domain["id"])
        if user is None:
            user = call(sess, "POST", "users", ks,
                        {"user": {"name": name, "domain_id": domain["id"],
                                  "password": password}})["user"]
            log("created user " + name)
        for role in ("admin", "service"):
            call(sess, "PUT", "projects/%s/users/%s/roles/%s"
                 % (service_project["id"], user["id"], roles[role]["id"]), ks)

    catalog = [
        ("nova", "compute", os.environ["SANDBOX_NOVA_URL"] + "/v2.1"),
        ("placement", "placement", os.environ["SANDBOX_PLACEMENT_URL"]),
        ("glance", "image", os.environ["SANDBOX_GLANCE_URL"]),
        ("neutron", "network", os.environ["SANDBOX_NEUTRON_URL"]),
    ]
    for name, stype, url in catalog:
        svc = ensure("services", "services", "service", {"name": name, "type": stype},
                     type=stype)
        for iface in ("public", "internal", "admin"):
            ep = find("endpoints", "endpoints", service_id=svc["id"], interface=iface)
            if ep is not None and ep["url"] != url:
                call(sess, "PATCH", "endpoints/" + ep["id"], ks, {"endpoint": {"url": url}})
            elif ep is None:
                call(sess, "POST", "endpoints", ks,
                     {"endpoint": {"service_id": svc["id"], "interface": iface, "url": url,
                                   "region_id": "RegionOne"}})
                log("created endpoint %s %s" % (stype, iface))


# ---------------------------------------------------------------- waits


def retrying(fn, timeout, what):
    """Calls fn until it returns a true value; connection errors count as not yet."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except (ksa_exc.ConnectFailure, ksa_exc.DiscoveryFailure, ksa_exc.Unauthorized,
                ksa_exc.ServiceUnavailable, ksa_exc.EndpointNotFound, RuntimeError) as e:
            last = e
        if time.monotonic() > deadline:
            raise SystemExit("sandbox.py: timed out after %ds waiting for %s (last error: %s)"
                             % (timeout, what, last))
        time.sleep(1)


def forced_down_hosts(sess):
    svcs = call(sess, "GET", "/os-services?binary=nova-compute", COMPUTE, version="2.53")["services"]
    return {s["host"] for s in svcs if s.get("forced_down")}


def cmd_wait_hypervisors(args):
    sess = admin_session()
    want = set(args.hosts)

    def ready():
        hv = call(sess, "GET", "/os-hypervisors/detail", COMPUTE, version="2.53")["hypervisors"]
        forced = forced_down_hosts(sess)
        have = {h["service"]["host"] for h in hv if h.get("state") == "up" or h["service"]["host"] in forced}
        return want <= have
    retrying(ready, args.timeout, "hypervisors of " + ",".join(sorted(want)))


def cmd_wait_services(args):
    sess = admin_session()
    want = set(args.services)  # binary@host

    def ready():
        svcs = call(sess, "GET", "/os-services", COMPUTE, version="2.53")["services"]
        # A host a test (or a failed run) left forced down reads down whatever runs:
        # its nova-compute started is all start can do; the test's restore lifts it.
        up = {"%s@%s" % (s["binary"], s["host"]) for s in svcs if s["state"] == "up" or s.get("forced_down")}
        return want <= up
    retrying(ready, args.timeout, "services " + ",".join(sorted(want)))


def cmd_neutron_ready(args):
    """Neutron Zed answers GET /v2.0/ports with a 500 ("type object 'Port' has no
    attribute 'port_forwardings'") until some query has made SQLAlchemy configure its
    mappers: a network list does that. Nova lists ports for every server listing and
    evacuation, so warm it up here, then check that ports answer."""
    sess = admin_session()
    net = {"service_type": "network", "interface": "public"}

    def ready():
        call(sess, "GET", "/v2.0/networks?limit=1", net)
        call(sess, "GET", "/v2.0/ports?limit=1", net)
        return True
    retrying(ready, args.timeout, "neutron to list ports")


# ---------------------------------------------------------------- seeding


FLAVORS = [
    # name, vcpus, ram MiB, disk GiB, extra specs
    ("novaha.evacuable", 1, 64, 1, {"evacuable": "true"}),
    ("novaha.plain", 1, 64, 1, {}),
]
IMAGE_NAME = "novaha-tiny"


def ensure_flavors(sess):
    flavors = {f["name"]: f for f in call(sess, "GET", "/flavors/detail?is_public=None",
                                          COMPUTE, version="2.61")["flavors"]}
    out = {}
    for name, vcpus, ram, disk, specs in FLAVORS:
        f = flavors.get(name)
        if f is None:
            f = call(sess, "POST", "/flavors", COMPUTE,
                     {"flavor": {"name": name, "vcpus": vcpus, "ram": ram, "disk": disk}},
                     version="2.61")["flavor"]
            log("created flavor " + name)
        if specs and f.get("extra_specs") != specs:
            call(sess, "POST", "/flavors/%s/os-extra_specs" % f["id"], COMPUTE,
                 {"extra_specs": specs}, version="2.61")
        out[name] = f["id"]
    return out


def ensure_image(sess):
    imgs = call(sess, "GET", "/v2/images?name=" + quote(IMAGE_NAME), IMAGE)["images"]
    active = [i for i in imgs if i["status"] == "active"]
    if active:
        return active[0]["id"]
    for i in imgs:  # a half-made one from an interrupted run
        call(sess, "DELETE", "/v2/images/" + i["id"], IMAGE)
    img = call(sess, "POST", "/v2/images", IMAGE,
               {"name": IMAGE_NAME, "disk_format": "raw", "container_format": "bare",
                "visibility": "public"})
    data = b"novaha sandbox image\n" + b"\0" * 4075
    r = sess.put("/v2/images/%s/file" % img["id"], endpoint_filter=IMAGE, data=data,
                 headers={"Content-Type": "application/octet-stream"}, raise_exc=False)
    if r.status_code not in (200, 201, 204):
        raise RuntimeError("image upload: %d %s" % (r.status_code, r.text[:300]))
    log("created image " + IMAGE_NAME)
    return img["id"]


def list_servers(sess, **query):
    query.setdefault("all_tenants", "1")
    q = urlencode(query)
    out = []
    marker = None
    while True:
        page = "/servers/detail?%s&limit=1000" % q + ("&marker=" + marker if marker else "")
        servers = call(sess, "GET", page, COMPUTE, version="2.74")["servers"]
        out.extend(servers)
        if len(servers) < 1000:
            return out
        marker = servers[-1]["id"]


def host_of(server):
    return server.get("OS-EXT-SRV-ATTR:host")


def cmd_seed(args):
    sess = admin_session()
    flavors = ensure_flavors(sess)
    image = ensure_image(sess)
    if args.servers <= 0:
        return
    hosts = args.hosts.split(",") if args.hosts else os.environ["SANDBOX_COMPUTES"].split()
    existing = {s["name"]: s for s in list_servers(sess, name="^%s-" % args.prefix)}
    names = ["%s-%d" % (args.prefix, i) for i in range(1, args.servers + 1)]
    start = time.monotonic()
    created = 0
    for i, name in enumerate(names):
        if name in existing and existing[name]["status"] != "ERROR":
            continue
        if name in existing:
            call(sess, "DELETE", "/servers/" + existing[name]["id"], COMPUTE, version="2.74")
        body = {"server": {"name": name, "imageRef": image, "networks": "none",
                           "flavorRef": flavors["novaha." + args.flavor],
                           "host": hosts[i % len(hosts)]}}
        call(sess, "POST", "/servers", COMPUTE, body, version="2.74")
        created += 1
    if created:
        log("booting %d servers on %s" % (created, ",".join(hosts)))

    def all_active():
        servers = {s["name"]: s for s in list_servers(sess, name="^%s-" % args.prefix)}
        bad = [n for n in names if servers.get(n, {}).get("status") == "ERROR"]
        if bad:
            raise SystemExit("sandbox.py: servers in ERROR: " + ", ".join(bad))
        if all(servers.get(n, {}).get("status") == "ACTIVE" for n in names):
            return servers
        return None
    servers = retrying(all_active, args.timeout, "%d servers ACTIVE" % len(names))
    if created:
        log("%d servers ACTIVE after %.1fs" % (created, time.monotonic() - start))
    for n in names:
        s = servers[n]
        print("%s %s %s %s" % (n, s["id"], host_of(s), s["status"]))


def cmd_unseed(args):
    sess = admin_session()
    servers = list_servers(sess, name="^%s-" % args.prefix)
    for s in servers:
        call(sess, "DELETE", "/servers/" + s["id"], COMPUTE, version="2.74", ok=(204, 404))

    def gone():
        return not list_servers(sess, name="^%s-" % args.prefix)
    if servers:
        retrying(gone, args.timeout, "servers %s-* deleted" % args.prefix)
        log("deleted %d servers" % len(servers))


# ---------------------------------------------------------------- host failure by hand


def compute_service(sess, host):
    svcs = call(sess, "GET", "/os-services?binary=nova-compute&host=" + quote(host), COMPUTE,
                version="2.53")["services"]
    if not svcs:
        raise SystemExit("sandbox.py: no nova-compute service on " + host)
    return svcs[0]


def cmd_service(args):
    sess = admin_session()
    svc = compute_service(sess, args.host)
    # Force-down first, then disable: since Train, disabling a compute waits for it
    # unless it is forced down. Lifting goes the other way round.
    if args.force_down is True:
        call(sess, "PUT", "/os-services/" + svc["id"], COMPUTE, {"forced_down": True},
             version="2.53")
    if args.disable is not None:
        call(sess, "PUT", "/os-services/" + svc["id"], COMPUTE,
             {"status": "disabled", "disabled_reason": args.disable}, version="2.53")
    if args.enable:
        call(sess, "PUT", "/os-services/" + svc["id"], COMPUTE, {"status": "enabled"},
             version="2.53")
    if args.force_down is False:
        # Nova refuses (400) while `done` evacuation migrations remain on the host: the
        # restarted nova-compute marks them `completed` during its start-up. So start the
        # compute first, then lift forced_down; this waits for that.
        def lifted():
            r = sess.put("/os-services/" + svc["id"], endpoint_filter=COMPUTE,
                         json={"forced_down": False}, headers=mv("2.53"), raise_exc=False)
            if r.status_code == 200:
                return True
            if r.status_code == 400 and "evacuation migration" in r.text:
                return False
            raise SystemExit("sandbox.py: PUT forced_down=false: %d %s"
                             % (r.status_code, r.text[:300]))
        retrying(lifted, args.timeout, "Nova to accept forced_down=false on " + args.host)
    svc = compute_service(sess, args.host)
    print(json.dumps({k: svc[k] for k in ("id", "host", "status", "state", "forced_down",
                                          "disabled_reason")}))


def cmd_evacuate(args):
    """Evacuates every server of a host that is down (and, to skip the 60 s wait, forced
    down), at 2.29 without onSharedStorage, and waits until each is ACTIVE elsewhere, as
    told by /os-migrations (one call per poll, not one per server)."""
    sess = admin_session()
    servers = list_servers(sess, host=args.host)
    if not servers:
        log("no servers on " + args.host)
        return
    t0 = time.monotonic()
    for s in servers:
        call(sess, "POST", "/servers/%s/action" % s["id"], COMPUTE, {"evacuate": {}},
             version="2.29")
    ids = {s["id"] for s in servers}

    def done():
        migs = call(sess, "GET", "/os-migrations?migration_type=evacuation&source_compute="
                    + quote(args.host), COMPUTE, version="2.59")["migrations"]
        latest = {}
        for m in migs:
            if m["instance_uuid"] in ids:
                prev = latest.get(m["instance_uuid"])
                if prev is None or m["created_at"] > prev["created_at"]:
                    latest[m["instance_uuid"]] = m
        failed = [u for u, m in latest.items() if m["status"] in ("error", "failed")]
        if failed:
            raise SystemExit("sandbox.py: evacuation failed for " + ", ".join(failed))
        return len(latest) == len(ids) and all(
            m["status"] in ("done", "completed") for m in latest.values())
    retrying(done, args.timeout, "evacuations from " + args.host)
    moved = {s["id"]: s for s in list_servers(sess) if s["id"] in ids}
    for u in sorted(ids):
        s = moved[u]
        print("%s %s %s %s" % (s["name"], u, host_of(s), s["status"]))
    log("evacuated %d servers from %s in %.1fs" % (len(ids), args.host, time.monotonic() - t0))


def main():
    p = argparse.ArgumentParser(prog="sandbox.py")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("identity").set_defaults(fn=cmd_identity)
    w = sub.add_parser("wait-hypervisors")
    w.add_argument("--timeout", type=int, default=180)
    w.add_argument("hosts", nargs="+")
    w.set_defaults(fn=cmd_wait_hypervisors)
    w = sub.add_parser("wait-services")
    w.add_argument("--timeout", type=int, default=180)
    w.add_argument("services", nargs="+", help="binary@host")
    w.set_defaults(fn=cmd_wait_services)
    w = sub.add_parser("neutron-ready")
    w.add_argument("--timeout", type=int, default=120)
    w.set_defaults(fn=cmd_neutron_ready)
    s = sub.add_parser("seed")
    s.add_argument("--servers", type=int, default=0)
    s.add_argument("--hosts", default="", help="comma-separated; default all computes")
    s.add_argument("--prefix", default="novaha-seed")
    s.add_argument("--flavor", choices=("evacuable", "plain"), default="evacuable")
    s.add_argument("--timeout", type=int, default=900)
    s.set_defaults(fn=cmd_seed)
    s = sub.add_parser("unseed")
    s.add_argument("--prefix", default="novaha-seed")
    s.add_argument("--timeout", type=int, default=300)
    s.set_defaults(fn=cmd_unseed)
    s = sub.add_parser("service")
    s.add_argument("host")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--force-down", dest="force_down", action="store_true", default=None)
    g.add_argument("--no-force-down", dest="force_down", action="store_false")
    g2 = s.add_mutually_exclusive_group()
    g2.add_argument("--disable", metavar="REASON")
    g2.add_argument("--enable", action="store_true")
    s.add_argument("--timeout", type=int, default=120)
    s.set_defaults(fn=cmd_service)
    e = sub.add_parser("evacuate")
    e.add_argument("host")
    e.add_argument("--timeout", type=int, default=600)
    e.set_defaults(fn=cmd_evacuate)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
