# imdsmend — `sudo make demo` shows it working, `sudo make test` runs every test.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin

.PHONY: all build lint unit e2e test demo bench fuzz docs clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/imdsmend ./cmd/imdsmend
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
e2e: build
	IMDSMEND_BIN=$(CURDIR)/$(BIN)/imdsmend $(GO) test -count=1 -p 1 -timeout 15m ./tests/...

test: lint unit e2e

demo: build
	$(GO) run ./tests/demo --imdsmend $(BIN)/imdsmend --imdssim $(BIN)/imdssim

# In-process benchmarks, then (as root) the whole-process ones in network namespaces.
bench: build
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

clean:
	rm -rf $(BIN)
