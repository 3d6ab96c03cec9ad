# imdsmend — `sudo make demo` shows it working, `sudo make test` runs every test; both
# first install the Debian packages they need (.ci/deps).
# sudo's secure_path leaves out Go's usual home, and the tests run `go` themselves.
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin

.PHONY: all deps build lint unit e2e test demo bench bench-go fuzz docs clean package

all: build

# The Debian packages the demo and the tests run (iptables, nft, ip, journalctl, …):
# installed when missing, silent when present. .ci/run calls it too.
deps:
	@.ci/deps

# imdsmend is static (no cgo): it resolves no host names, and a static binary starts without
# the dynamic loader and runs on every distribution the packages target. -s -w drop the symbol
# table and DWARF (a third of the size, issue 10); panics' stack traces stay readable, as Go
# names functions and lines from its own pclntab.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $(BIN)/imdsmend ./cmd/imdsmend
	$(GO) build -o $(BIN)/imdssim ./tests/imdssim

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

# Unit tests: no root, no network.
unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /tests/)

# End-to-end tests: root, network namespaces, real iptables/nftables/journald.
e2e: deps build
	IMDSMEND_BIN=$(CURDIR)/$(BIN)/imdsmend $(GO) test -count=1 -p 1 -timeout 15m ./tests/...

test: deps lint unit e2e

demo: deps build
	$(GO) run ./tests/demo --imdsmend $(BIN)/imdsmend --imdssim $(BIN)/imdssim

# The benchmark table (root, under 5 minutes): every row measured side by side in one run,
# written into docs/bench.md (tests/bench). bench-go runs the Go benchmarks the deeper
# sections of docs/bench.md quote.
bench: build
	$(GO) run ./tests/bench --imdsmend $(BIN)/imdsmend --imdssim $(BIN)/imdssim --out docs/bench.md

bench-go: build
	$(GO) test -run '^$$' -bench . -benchmem $$($(GO) list ./... | grep -v /tests/)
	IMDSMEND_BIN=$(CURDIR)/$(BIN)/imdsmend $(GO) test -run '^$$' -bench . -benchmem ./tests/e2e/

# Every fuzz target for FUZZTIME each (go test -fuzz takes one target at a time).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./... | grep -v /tests/); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# Mutation testing of the safety-critical packages (docs/testing.md). The default is a
# fixed sample of 40 mutants per package (~10 min on 2 cores); MUTATE_ARGS= tests all.
MUTATE_ARGS ?= -max 40 -seed 1
.PHONY: mutate
mutate:
	$(GO) run ./tests/mutate $(MUTATE_ARGS)

docs:
	$(GO) run ./cmd/imdsmend facts --schema > docs/facts.md

# .deb and .rpm in $(DIST) (docs/install.md), built by nfpm (a Go tool in go.mod). Package
# versions must rise with every build for upgrades: a tag vX.Y.Z gives X.Y.Z, otherwise the
# commit count does (0.0.N).
DIST       ?= dist
PKG_VERSION ?= $(shell t=$$(git describe --tags --abbrev=0 --match 'v[0-9]*' 2>/dev/null) && echo $${t\#v} || echo 0.0.$$(git rev-list --count HEAD 2>/dev/null || echo 0))
package: build
	rm -rf $(BIN)/man
	$(GO) test -count=1 -run '^TestManPages$$' ./cmd/imdsmend -args -man $(CURDIR)/$(BIN)/man
	mkdir -p $(DIST)
	for p in deb rpm; do \
	  PKG_VERSION=$(PKG_VERSION) GOARCH=$$($(GO) env GOARCH) \
	    $(GO) tool nfpm package --config packaging/nfpm.yaml --packager $$p --target $(DIST)/ || exit 1; \
	done

clean:
	rm -rf $(BIN) $(DIST)
