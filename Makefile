# Sortie's two commands for a fresh machine are `make demo` and `make test`.
GO        ?= go
BIN       := $(CURDIR)/bin
LOCALKUBE := $(BIN)/localkube
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: all build test test-short kube-bin cluster-up cluster-down demo demo-down vet fmt clean

all: build

build:
	$(GO) build -o $(BIN)/sortie ./cmd/sortie

$(LOCALKUBE): $(shell find localkube cmd/localkube -name '*.go' 2>/dev/null) go.mod go.sum
	$(GO) build -o $(LOCALKUBE) ./cmd/localkube

# Builds the local Kubernetes control plane from the Go module proxy into
# ~/.cache/sortie/kube/ the first time (several minutes); later runs reuse it.
kube-bin: $(LOCALKUBE)
	@$(LOCALKUBE) build >/dev/null

# Every test, the real-cluster ones included. The tests over the Armory users'
# corpus (not in the repository) run when $$SORTIE_ARMORY_EXAMPLES or
# ../shared/armory-examples is present, and are skipped, said here, when not.
ARMORY_EXAMPLES ?= $(or $(SORTIE_ARMORY_EXAMPLES),$(abspath $(CURDIR)/../shared/armory-examples))
test: kube-bin proto-tools vet staticcheck
	@if [ -d "$(ARMORY_EXAMPLES)" ]; then echo "make test: the Armory users' corpus is at $(ARMORY_EXAMPLES); its tests run"; \
	  else echo "make test: *** the Armory users' corpus is NOT here ($(ARMORY_EXAMPLES)); its tests are SKIPPED ***"; fi
	SORTIE_ARMORY_EXAMPLES=$(ARMORY_EXAMPLES) $(GO) test -timeout 30m -count=1 ./...

# Only the tests that need no cluster.
test-short:
	$(GO) test -short ./...

# Benchmarks, each printed beside a baseline measured in the same run, on the
# local cluster: a 3-step canary through server + agent processes and through
# the in-process executor beside kubectl apply + rollout status; a rollback
# until the old version is Ready beside kubectl rollout undo; the agent's
# memory idle and with 50 workloads; and engine transitions per second with
# the SQLite store. A few minutes.
.PHONY: bench
bench: kube-bin
	$(GO) run ./bench

vet:
	$(GO) vet ./...

# staticcheck, pinned, built from the module proxy (cached by the build
# cache); part of make test, so dead code and deprecated calls fail it.
STATICCHECK_VERSION := v0.8.2
.PHONY: staticcheck
staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

cluster-up: $(LOCALKUBE)
	@$(LOCALKUBE) up

cluster-down: $(LOCALKUBE)
	@$(LOCALKUBE) down

# A local cluster, `sortie dev` against it, and the sample application
# deployed twice (v1, then v2 through a canary that waits for you).
demo: build $(LOCALKUBE)
	@scripts/demo.sh

demo-down: $(LOCALKUBE)
	@pid=$${XDG_CACHE_HOME:-$$HOME/.cache}/sortie/demo/server.pid; \
	  if [ -f $$pid ] && kill $$(cat $$pid) 2>/dev/null; then echo "demo: stopped sortie dev"; fi; rm -f $$pid
	@$(LOCALKUBE) down

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)

# Regenerates the agent protocol's Go code (committed). Needs protoc (Debian:
# protobuf-compiler) and the two plugins at the versions pinned here.
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
.PHONY: proto proto-tools
proto-tools:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

proto: proto-tools
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc --proto_path=agent/agentpb \
		--go_out=agent/agentpb --go_opt=paths=source_relative \
		--go-grpc_out=agent/agentpb --go-grpc_opt=paths=source_relative \
		agent/agentpb/agent.proto
