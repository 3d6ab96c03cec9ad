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

bench: build
	$(GO) test -run '^$$' -bench . -benchmem $$($(GO) list ./... | grep -v /tests/)

docs:
	$(GO) run ./cmd/imdsmend facts --schema > docs/facts.md

clean:
	rm -rf $(BIN)
