# novaha: Pacemaker fence and OCF agents for OpenStack instance high availability.
#
#   make deps         install the Debian packages the tests need (root or sudo)
#   make test         deps, lint, unit tests, then the conformance suite on the built agents
#   make demo         a compute host killed and its instances recovered, on real components
#   make bench        benchmarks, side by side with the Python agents
#   make e2e-up       the multi-node testbed (test/e2e): 2 controllers, 3 remote computes
#   make install      DESTDIR-aware install of agents and man pages
#   make dist         source tarball with vendor/, builds offline (packaging/out/)
#   make packages     .deb and .rpm from that tarball (packaging/deps.sh installs the tools)

SHELL     := /bin/bash
GO        ?= go
# The release version (also stamped into the man pages, so it must not change per commit).
VERSION   ?= $(shell cat VERSION)
# EXTRA_LDFLAGS: packaging adds the distribution's hardening (-bindnow) here.
EXTRA_LDFLAGS ?=
LDFLAGS   := -s -w $(EXTRA_LDFLAGS) -X github.com/novaha/novaha/lib/version.Version=$(VERSION)
# libvirt_dlopen: agents load libvirt.so only when they use it, and build without headers.
BUILDFLAGS := -trimpath -tags libvirt_dlopen -ldflags "$(LDFLAGS)"

PREFIX    ?= /usr
SBINDIR   ?= $(PREFIX)/sbin
# Agents' backends (programs an agent replaces itself with for device actions). The agent
# looks in ../libexec/novaha relative to itself, then in /usr/libexec/novaha: keep
# LIBEXECDIR and SBINDIR under one PREFIX.
LIBEXECDIR ?= $(PREFIX)/libexec/novaha
OCFDIR    ?= $(PREFIX)/lib/ocf/resource.d/novaha
MANDIR    ?= $(PREFIX)/share/man
BIN       := bin

# Every main package is an agent: agents/<name>, fence_nova, ocf_novacompute. Agents whose
# name starts with fence_ are fence agents; the others are OCF resource agents.
MAIN_DIRS := $(sort $(wildcard agents/*/) $(wildcard fence_nova/) $(wildcard ocf_novacompute/))
# An agent's backend (lib/fence Agent.Backend) is the main package agents/<name>/backend,
# built as $(BIN)/libexec/<name>-backend, where the agent finds it in a build.
BACKEND_DIRS := $(sort $(wildcard agents/*/backend/))

.PHONY: all build deps test unit conformance lint man check-man bench demo demo-fencing install clean \
	dist packages deb rpm

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build $(BUILDFLAGS) -o $(BIN)/ $(addprefix ./,$(MAIN_DIRS))
	@mkdir -p $(BIN)/libexec
	@set -e; for d in $(BACKEND_DIRS); do \
		n=$$(basename $$(dirname $$d))-backend; \
		echo "$(GO) build -o $(BIN)/libexec/$$n ./$$d"; \
		$(GO) build $(BUILDFLAGS) -o $(BIN)/libexec/$$n ./$$d; \
	done
	@# OCF agents are installed under their resource type name.
	@if [ -f $(BIN)/ocf_novacompute ]; then mv -f $(BIN)/ocf_novacompute $(BIN)/NovaCompute; fi

deps:
	bash test/deps.sh
	$(GO) mod download

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags libvirt_dlopen ./...

# -p 1: the cluster tests take over the machine's corosync.conf, and one of them starts a
# stand-in "foreign" corosync that would make another package's cluster refuse to start.
unit:
	NOVAHA_REQUIRE_BMCSIM=1 NOVAHA_CLUSTER_TESTS=1 $(GO) test -p 1 -tags libvirt_dlopen -count=1 ./...

# The real Pacemaker tools on the built agents: xmllint, pcs, crm_verify, stonith_admin,
# ocf-tester. Installs the agents as symlinks into /usr/sbin and the OCF directory for
# the duration of the run (Pacemaker looks nowhere else), and removes them afterwards.
conformance: build
	NOVAHA_CONFORMANCE=1 NOVAHA_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -v ./test/conformance/ 2>&1 | \
		tee $(BIN)/conformance.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|\s+conformance_test)' ; \
		exit $${PIPESTATUS[0]}

test: deps lint build check-man unit conformance

man: build
	@mkdir -p docs/man
	@for f in $(BIN)/*; do \
		[ -f $$f ] || continue; \
		n=$$(basename $$f); \
		case $$n in \
		fence_*) $$f -o manpage > docs/man/$$n.8 ;; \
		*.log) ;; \
		*) $$f manpage > docs/man/ocf_novaha_$$n.7 ;; \
		esac; \
	done

# The committed man pages must be what the agents generate now.
check-man: man
	@git diff --exit-code --stat -- docs/man || { echo "docs/man is stale: run make man and commit"; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard docs/man); \
	if [ -n "$$untracked" ]; then echo "new man pages to commit: $$untracked"; exit 1; fi

bench: build
	$(GO) test -tags libvirt_dlopen -run '^$$' -bench . -benchmem ./lib/...
	$(GO) run -tags libvirt_dlopen ./test/bench -bin $(CURDIR)/$(BIN)

# The demo installs its own dependencies, so that it works on a fresh machine. make demo:
# the whole chain on real components (test/e2e/cmd/demo: Nova sandbox, multi-node
# cluster, a compute killed and recovered), under the Nova sandbox's lock;
# make demo-fencing: the single-node cluster fencing a hung host through a BMC simulator.
demo: deps e2e-deps build
	flock -w 900 $(NOVA_LOCK) $(GO) run ./test/e2e/cmd/demo -bin $(CURDIR)/$(BIN) $(DEMO_FLAGS)
demo-fencing: deps build
	$(GO) run ./test/demo -bin $(CURDIR)/$(BIN)

install: build man
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(OCFDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man7
	@for f in $(BIN)/*; do \
		[ -f $$f ] || continue; \
		n=$$(basename $$f); \
		case $$n in \
		fence_*) install -m 0755 $$f $(DESTDIR)$(SBINDIR)/$$n ;; \
		*.log) ;; \
		*) install -m 0755 $$f $(DESTDIR)$(OCFDIR)/$$n ;; \
		esac; \
	done
	@for f in $(BIN)/libexec/*; do \
		[ -f $$f ] || continue; \
		install -d $(DESTDIR)$(LIBEXECDIR); \
		install -m 0755 $$f $(DESTDIR)$(LIBEXECDIR)/; \
	done
	@for m in docs/man/*.8; do [ -e "$$m" ] && install -m 0644 $$m $(DESTDIR)$(MANDIR)/man8/ || true; done
	@for m in docs/man/*.7; do [ -e "$$m" ] && install -m 0644 $$m $(DESTDIR)$(MANDIR)/man7/ || true; done

# The source tarball: the committed tree (git archive HEAD: commit first) plus vendor/
# from `go mod vendor`, so that package builds need no network. The modules come from the
# module cache (make deps fills it). Reproducible: fixed order, owners and mtime.
DIST      := novaha-$(VERSION)
DISTDIR   := packaging/out

dist:
	@git diff --quiet HEAD -- || echo "dist: warning: uncommitted changes are not in the tarball (git archive HEAD)"
	rm -rf $(DISTDIR)/$(DIST) $(DISTDIR)/$(DIST).tar.gz && mkdir -p $(DISTDIR)
	git archive --format=tar --prefix=$(DIST)/ HEAD | tar -x -C $(DISTDIR)
	cd $(DISTDIR)/$(DIST) && GOFLAGS=-mod=mod $(GO) mod vendor
	tar -C $(DISTDIR) --sort=name --owner=0 --group=0 --numeric-owner \
		--mtime=@$$(git log -1 --format=%ct) -cf - $(DIST) | gzip -9n > $(DISTDIR)/$(DIST).tar.gz
	rm -rf $(DISTDIR)/$(DIST)
	@echo "$(DISTDIR)/$(DIST).tar.gz"

deb: dist
	GO=$$(command -v $(GO)) bash packaging/build.sh deb $(DISTDIR)/$(DIST).tar.gz $(DISTDIR)

rpm: dist
	GO=$$(command -v $(GO)) bash packaging/build.sh rpm $(DISTDIR)/$(DIST).tar.gz $(DISTDIR)

packages: deb rpm

clean:
	rm -rf $(BIN) $(DISTDIR)

# The real Nova control plane for integration tests (test/nova): Debian's OpenStack Zed
# on 127.0.0.1. Tests that need it run with NOVA_SANDBOX_TESTS=1.
.PHONY: nova-install nova-start nova-stop
nova-install:
	bash test/nova/install.sh
nova-start: nova-install
	test/nova/sandbox start
nova-stop:
	test/nova/sandbox stop

# The tests against the real Nova: the sandbox's own evacuation test, fence_nova's
# off/status/on/list/monitor, NovaEvacuate's and NovaCompute's on a real control plane.
# The sandbox is started first, so the tests share one and it is stopped once, whatever
# they report.
# Under the sandbox's lock (NOVA_LOCK), which make e2e takes too: two users of one
# sandbox see each other's fenced hosts (another user's evacuation controller once
# marked evacuated a host fence_nova's test had just fenced, and its on succeeded).
NOVA_LOCK ?= /tmp/novaha-nova.lock
.PHONY: nova-test
nova-test: nova-install
	flock $(NOVA_LOCK) sh -c 'test/nova/sandbox start && \
		NOVA_SANDBOX_TESTS=1 $(GO) test -p 1 -count=1 -tags libvirt_dlopen ./test/nova ./fence_nova ./agents/NovaEvacuate ./ocf_novacompute; \
		rc=$$?; test/nova/sandbox stop; exit $$rc'

# The multi-node testbed (test/e2e/README.md): controllers and pacemaker_remote computes,
# each in its own network, mount and PID namespaces, a simulated BMC per compute, and
# fence_ipmi devices through them. e2e-up/e2e-down/e2e-status for humans; e2e-test
# runs the testbed's own tests (with NOVA_SANDBOX_TESTS=1 also the Nova one: run that
# under flock /tmp/novaha-nova.lock).
E2E := test/e2e/.bin/testbed
.PHONY: e2e e2e-deps e2e-up e2e-down e2e-status e2e-test $(E2E)
e2e-deps:
	bash test/e2e/deps.sh
$(E2E):
	$(GO) build -o $@ ./test/e2e/cmd/testbed
e2e-up: e2e-deps build $(E2E)
	$(E2E) up -agents $(CURDIR)/$(BIN)
e2e-down: $(E2E)
	$(E2E) down
e2e-status: $(E2E)
	$(E2E) status
# make e2e: issue 6's scenario as assertions (TestEvacuationScenario, test/e2e/README.md):
# the testbed with compute1..3, the Nova sandbox (installed and started when needed, kept
# running), configure.sh, servers over the computes, one compute killed, its recovery
# checked. Under the sandbox's lock; NOVA_SANDBOX_DIR (and NOVA_LOCK) for another sandbox,
# E2E_RUN for other tests (e.g. E2E_RUN=. for all of test/e2e).
E2E_RUN   ?= TestEvacuationScenario
e2e: e2e-deps build
	flock -w 900 $(NOVA_LOCK) env NOVAHA_E2E_TESTS=1 NOVA_SANDBOX_TESTS=1 NOVA_SANDBOX_KEEP=1 \
		NOVAHA_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -v -timeout 60m -run '$(E2E_RUN)' ./test/e2e/
e2e-test: e2e-deps build
	NOVAHA_E2E_TESTS=1 NOVAHA_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -v -timeout 20m ./test/e2e/
