# Sortie's two commands for a fresh machine are `make demo` and `make test`.
GO        ?= go
BIN       := $(CURDIR)/bin
LOCALKUBE := $(BIN)/localkube
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: all build test test-short kube-bin cluster-up cluster-down demo demo-down vet fmt clean image image-push image-test charts FORCE

# What the image is called, and so the image `sortie agent manifest` names
# by default: IMAGE_REPO:VERSION (REGISTRY/sortie when REGISTRY is given).
IMAGE_REPO ?= $(if $(REGISTRY),$(REGISTRY)/sortie,ghcr.io/sortie-cd/sortie)
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION   := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE_URL := https://github.com/sortie-cd/sortie
CREATED    := $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
IMAGE_DIR  := $(BIN)/image
LDFLAGS    := -s -w -X github.com/sortie-cd/sortie/cli.Version=$(VERSION) -X github.com/sortie-cd/sortie/cli.ImageRepository=$(IMAGE_REPO)
PRODUCT_GO := $(shell find . -name '*.go' -not -name '*_test.go' -not -path './tools/*' 2>/dev/null)

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
test: kube-bin proto-tools vet staticcheck image-test
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
# memory idle and with 50 workloads; engine transitions per second with
# the SQLite store; and the scale benchmark (1,000 pipelines in flight, 100
# simulated agents: one server on SQLite, one on PostgreSQL and three
# replicas on PostgreSQL). A few minutes more.
.PHONY: bench bench-scale
bench: kube-bin
	$(GO) run ./bench

# The scale benchmark alone (no cluster): SCALE_PIPELINES=10000 for the
# issue's upper end.
SCALE_PIPELINES ?= 1000
bench-scale:
	$(GO) run ./bench -only scale -scale-pipelines $(SCALE_PIPELINES)

vet:
	$(GO) vet ./...

# The container image: both platforms cross-compiled (static, with Go's
# time zone data), then put into an OCI image layout at bin/image/oci by
# tools/image (go-containerregistry; no Docker daemon). Rebuilt only when a
# source, the version or the revision changed.
image: $(IMAGE_DIR)/oci/index.json
	@echo "make image: $$(cat $(IMAGE_DIR)/oci/image-name) (linux/amd64, linux/arm64) in $(IMAGE_DIR)/oci"

$(IMAGE_DIR)/stamp: FORCE
	@mkdir -p $(@D)
	@echo "$(VERSION) $(REVISION) $(IMAGE_REPO) $(CREATED)" | cmp -s - $@ || echo "$(VERSION) $(REVISION) $(IMAGE_REPO) $(CREATED)" > $@

$(IMAGE_DIR)/linux-%/sortie: $(PRODUCT_GO) go.mod go.sum $(IMAGE_DIR)/stamp
	CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build -trimpath -tags timetzdata -ldflags "$(LDFLAGS)" -o $@ ./cmd/sortie

$(IMAGE_DIR)/oci/index.json: $(IMAGE_DIR)/linux-amd64/sortie $(IMAGE_DIR)/linux-arm64/sortie $(wildcard tools/image/*.go) tools/image/go.mod tools/image/go.sum
	cd tools/image && $(GO) run . build --layout $(IMAGE_DIR)/oci \
	  --binary linux/amd64=$(IMAGE_DIR)/linux-amd64/sortie --binary linux/arm64=$(IMAGE_DIR)/linux-arm64/sortie \
	  --ca-certs /etc/ssl/certs/ca-certificates.crt --repository $(IMAGE_REPO) --version $(VERSION) \
	  --revision $(REVISION) --source $(SOURCE_URL) --created $(CREATED)

# Reads the layout back: config, labels, both platforms, SBOMs, and runs the
# amd64 binary taken out of the layers.
image-test: image
	cd tools/image && SORTIE_IMAGE_LAYOUT=$(IMAGE_DIR)/oci SORTIE_IMAGE_VERSION=$(VERSION) SORTIE_IMAGE_REVISION=$(REVISION) $(GO) test -count=1 ./...

# The Helm charts as packages in bin/charts, their appVersion (the image
# tag they install when image.tag is empty) set to the version `make image`
# builds, so a chart and its image are released together. The chart in the
# repository says "dev": install it with --set image.tag=... or use these.
charts: $(LOCALKUBE)
	@mkdir -p $(BIN)/charts
	@helm=$$($(LOCALKUBE) helm) && for c in charts/sortie charts/sortie-agent; do \
	  HELM_CACHE_HOME=$(BIN)/.helm/cache HELM_CONFIG_HOME=$(BIN)/.helm/config HELM_DATA_HOME=$(BIN)/.helm/data \
	  $$helm package $$c --app-version $(VERSION) -d $(BIN)/charts || exit 1; done

# Pushes the image (both platforms) and its SBOMs: make image-push
# REGISTRY=registry.example.com/team builds it as REGISTRY/sortie:VERSION
# (the binaries then name that image) and pushes it with the Docker
# config's credentials. Not run by the tests (no registry here).
image-push: image
	@test -n "$(REGISTRY)" || { echo "make image-push: give REGISTRY=host[/path]"; exit 2; }
	cd tools/image && $(GO) run . push --layout $(IMAGE_DIR)/oci --to $(IMAGE_REPO):$(VERSION)

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
