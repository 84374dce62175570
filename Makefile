# egress-router — build, test and demo. Every target that needs system packages installs
# them first (scripts/install-deps.sh is idempotent); Go tools are pinned by go.mod's
# tool directives and run with `go tool`, so the Go command fetches and checks them.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
export CGO_ENABLED := 0

VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/egress-router/egress-router/internal/version.Version=$(VERSION)
# netgo: the pure-Go resolver everywhere, so glibc's lenient address parsing never applies.
GOFLAGS_BUILD := -trimpath -tags netgo -ldflags '$(LDFLAGS)'
BINARIES := egress-router egress-http-proxy egress-dns-proxy egress-router-installer egress-router-controller egress-router-agent
FUZZTIME ?= 30s
TEST_TIMEOUT ?= 60m

.PHONY: all build generate test unit lint fuzz bench bench-plugin bench-dns bench-http bench-controller bench-ha demo deps images clean

all: build

build: $(addprefix bin/,$(BINARIES))

bin/egress-router: FORCE
	go build $(GOFLAGS_BUILD) -o $@ ./plugins/egress-router
bin/egress-http-proxy: FORCE
	go build $(GOFLAGS_BUILD) -o $@ ./proxies/egress-http-proxy
bin/egress-dns-proxy: FORCE
	go build $(GOFLAGS_BUILD) -o $@ ./proxies/egress-dns-proxy
bin/egress-router-installer: FORCE
	go build $(GOFLAGS_BUILD) -o $@ ./deploy/installer
bin/egress-router-controller: FORCE
	go build $(GOFLAGS_BUILD) -o $@ ./controllers/egress-router-controller
bin/egress-router-agent: FORCE
	go build $(GOFLAGS_BUILD) -o $@ ./agents/egress-router-agent
# cnitool drives the plugin in the demo, at the version go.mod pins.
bin/cnitool: FORCE
	go build -trimpath -o $@ github.com/containernetworking/cni/cnitool
FORCE:

deps:
	scripts/install-deps.sh

# The EgressRouter API's generated code and manifests, from the +kubebuilder markers of
# api/ and internal/controller: deepcopy functions, the CRD and the controller's ClusterRole.
# controller-gen is pinned by go.mod's tool directive; api/v1's tests fail when the
# committed files differ from what this generates.
generate:
	go tool controller-gen object paths=./api/... \
	  crd paths=./api/... output:crd:artifacts:config=deploy/kubernetes/controller/crd \
	  rbac:roleName=egress-router-controller paths=./internal/controller/... output:rbac:artifacts:config=deploy/kubernetes/controller/rbac

# Every test: unit tests, fuzz seed corpora, namespace and end-to-end suites, and the
# demo (test/demo runs scripts/demo.sh). The namespace suites create network
# namespaces, so this runs as root.
test: deps lint build
	@[ "$$(id -u)" = 0 ] || { echo "make test needs root (it creates network namespaces)"; exit 1; }
	scripts/install-deps.sh images # buildah, podman: the end-to-end run through a container runtime
	go test -count=1 -timeout $(TEST_TIMEOUT) ./...

# Unit tests only: no root, no namespaces.
unit:
	go test -count=1 -short ./...

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	@go mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	go vet ./...
	go tool staticcheck ./...

# Each fuzz target for FUZZTIME.
fuzz:
	@set -e; for pkg in $$(go list ./...); do \
	  for target in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$target"; go test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

bench: build bench-plugin bench-dns bench-http

# The CNI plugin, side by side in one run in the test topology: ADD+DEL against the
# reference macvlan + static plugins (built at a pinned version into a temporary dir),
# ADD with 1,000 lines against 1, and the redirect data path against plain routing.
bench-plugin: build
	@[ "$$(id -u)" = 0 ] || { echo "make bench-plugin needs root (it creates network namespaces)"; exit 1; }
	scripts/install-deps.sh bench
	go test -count=1 -run '^$$' -bench '^BenchmarkPlugin' -benchtime 1x -timeout 10m -v ./test/plugin/

# egress-dns-proxy against Debian's HAProxy (TCP mode) and nginx (stream module), side
# by side in one run in the test topology: new connections, 64-byte request/response
# and bulk at 1, 8, 16, 64 and 256 clients, then memory per held connection; prints one
# table of medians, ratios, targets and the harness's noise (about 7 minutes).
# BENCH_LEVELS="16" BENCH_ROUNDS=1 make bench-dns: a subset, while developing.
# BENCH_CPU_LIMIT=0.3 holds each proxy to 0.3 of a core, as a pod's CPU limit (test/cpulimit).
# BENCH_BASELINE=HEAD runs ours built at HEAD in the twin's place: a change, side by side.
bench-dns: build
	@[ "$$(id -u)" = 0 ] || { echo "make bench-dns needs root (it creates network namespaces)"; exit 1; }
	scripts/install-deps.sh bench
	go test -count=1 -run '^$$' -bench '^BenchmarkDNSProxyVsPeers$$' -benchtime 1x -timeout 20m ./test/dnsproxy/

# egress-http-proxy against Debian's Squid and Smokescreen (built at the version
# test/tools/smokescreen pins), side by side in one run: keep-alive requests/s, p99 and p50
# (wrk) and CONNECT bulk at 1, 16, 64 and 256 clients, then memory per idle tunnel; one
# table as bench-dns's (about 5 minutes). BENCH_LEVELS, BENCH_ROUNDS, BENCH_CPU_LIMIT
# and BENCH_BASELINE as there.
bench-http: build
	@[ "$$(id -u)" = 0 ] || { echo "make bench-http needs root (it creates network namespaces)"; exit 1; }
	scripts/install-deps.sh bench
	go test -count=1 -run '^$$' -bench '^BenchmarkHTTPProxyVsPeers$$' -benchtime 1x -timeout 20m ./test/httpproxy/

# egress-router-controller against a real kube-apiserver (envtest, built once by
# scripts/envtest-assets.sh): create -> all objects applied (p50, p99), and 200
# EgressRouters created -> all reconciled, with the controller's peak memory.
bench-controller: build
	go test -count=1 -run '^$$' -bench '^BenchmarkController' -benchtime 1x -timeout 20m -v ./test/controller/

# Two replicas of an HA router against the test API server, in the namespace topology:
# fault -> first connection through the new leader over 20 graceful handoffs and 20
# crashes (p50, p99), and the API writes per second per router at steady state.
bench-ha: build
	@[ "$$(id -u)" = 0 ] || { echo "make bench-ha needs root (it creates network namespaces)"; exit 1; }
	go test -count=1 -run '^$$' -bench '^BenchmarkHA' -benchtime 1x -timeout 20m -v ./test/ha/

# The node installer and proxy images, from scratch with buildah (offline), listed at
# the end. IMAGE_REPO and IMAGE_TAG name them (default localhost/egress-router, VERSION).
images: build
	scripts/install-deps.sh images
	VERSION=$(VERSION) scripts/images.sh

demo: deps build bin/cnitool
	scripts/demo.sh $(MODE)

clean:
	rm -rf bin
