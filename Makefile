# plugin-operator Makefile. Targets follow kubebuilder conventions; tools are pinned and
# built from the Go module proxy into ./bin (git-ignored).

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

# Image used by `make docker-build deploy` and as the default PluginHost image.
IMG ?= ghcr.io/hotreload/plugin-operator:dev
# The example plugin host (examples/featureflags, its own Go module) and its image, which
# holds only /pluginhost: `make example-image`, docs/plugins.md.
EXAMPLE_DIR := examples/featureflags
EXAMPLE_IMG ?= localhost/plugin-operator/featureflags:dev

GOOS   ?= $(shell go env GOOS)
GOARCH ?= $(shell go env GOARCH)

LOCALBIN := $(CURDIR)/bin
$(LOCALBIN):
	mkdir -p $(LOCALBIN)

# Kubernetes version of the envtest control plane follows go.mod's k8s.io/api (v0.37.2 -> 1.37.2).
K8S_VERSION ?= $(shell go list -m -f '{{.Version}}' k8s.io/api | sed -e 's/^v0\./1./')
K8S_BIN_DIR ?= $(LOCALBIN)/k8s/$(K8S_VERSION)-$(GOOS)-$(GOARCH)
# kubectl and helm: KUBECTL=… / HELM=… when given; else the ones on PATH when their version is
# supported (hack/find-tool.sh says which and why); else the pinned source build in
# K8S_BIN_DIR, built on first use (kubectl-tool, helm-tool).
ifeq ($(origin KUBECTL),undefined)
KUBECTL := $(shell hack/find-tool.sh kubectl $(K8S_VERSION) $(K8S_BIN_DIR) 2>/dev/null)
endif
ifeq ($(origin HELM),undefined)
HELM := $(shell hack/find-tool.sh helm $(K8S_VERSION) $(K8S_BIN_DIR) 2>/dev/null)
endif

CONTROLLER_TOOLS_VERSION ?= v0.23.0
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
# setup-envtest fetches envtest's binaries in seconds where it can download them
# (hack/envtest-assets.sh falls back to the source build where it cannot).
SETUP_ENVTEST_VERSION ?= v0.25.1
SETUP_ENVTEST ?= $(LOCALBIN)/setup-envtest-$(SETUP_ENVTEST_VERSION)
# promtool runs the alerts' unit tests (test/manifests), built without service discovery
# (remove_all_sd: rule tests need none, and the cloud SDKs would take most of the build);
# helm-docs writes the chart's README.
PROMETHEUS_VERSION ?= v0.316.0
PROMTOOL ?= $(LOCALBIN)/promtool-$(PROMETHEUS_VERSION)
HELM_DOCS_VERSION ?= v1.14.2
HELM_DOCS ?= $(LOCALBIN)/helm-docs-$(HELM_DOCS_VERSION)

# Short fuzz run inside `make test`; `make fuzz` runs longer.
FUZZTIME ?= 5s

.PHONY: all
all: build

##@ General

# `make print-PROMTOOL` prints a variable (tests use it to find the pinned tools).
print-%:
	@echo '$($*)'

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and RBAC from kubebuilder markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/..." paths="./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run gofmt.
	gofmt -s -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: golangci-lint ## Run golangci-lint (the e2e suite's tagged files included).
	$(GOLANGCI_LINT) run --build-tags e2e ./...

.PHONY: verify
verify: manifests generate chart fmt ## Fail when generated or formatted files are stale (the chart's README included).
	@if [ -n "$$(git status --porcelain)" ]; then echo "Generated files are stale:"; git status --porcelain; git --no-pager diff; exit 1; fi

##@ Test

.PHONY: k8s-binaries
k8s-binaries: ## Build kube-apiserver, etcd and kubectl from the Go module proxy into bin/k8s (cached).
	hack/install-k8s-binaries.sh --version $(K8S_VERSION) --dest $(K8S_BIN_DIR) --with-helm >/dev/null

.PHONY: envtest-assets
envtest-assets: setup-envtest ## Print the KUBEBUILDER_ASSETS dir: setup-envtest's download, else the source build (hack/envtest-assets.sh).
	@hack/envtest-assets.sh $(K8S_VERSION) $(K8S_BIN_DIR) $(SETUP_ENVTEST)

.PHONY: test
test: setup-envtest promtool ## Unit, envtest integration and local end-to-end tests (no cluster, no Docker).
	assets="$$(hack/envtest-assets.sh $(K8S_VERSION) $(K8S_BIN_DIR) $(SETUP_ENVTEST))"; \
	  KUBEBUILDER_ASSETS="$$assets" PROMTOOL=$(PROMTOOL) go test -race -count=1 -timeout 30m ./...
	$(MAKE) --no-print-directory test-example
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)

.PHONY: test-example
test-example: ## Test the example plugin module (examples/featureflags; its own go.mod, so not in ./...).
	cd $(EXAMPLE_DIR) && go vet ./... && go test -race -count=1 -timeout 10m ./...

.PHONY: test-unit
test-unit: ## Unit tests only (no control plane).
	go test -count=1 -short ./...

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 5s in make test; try FUZZTIME=2m).
	hack/fuzz.sh $(FUZZTIME)

.PHONY: bench
bench: build setup-envtest ## Run benchmarks and load measurements; writes docs/performance.md.
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh $(K8S_VERSION) $(K8S_BIN_DIR) $(SETUP_ENVTEST))" hack/bench.sh

.PHONY: bench-scale
bench-scale: setup-envtest ## Scale benchmark (tens of minutes): the real manager with 1k/10, 5k/50, 10k/100, 20k/200 Plugins/hosts (SCALE_SIZES=10000/100 for one) on envtest, with the API server's floor; writes its section of docs/performance.md.
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh $(K8S_VERSION) $(K8S_BIN_DIR) $(SETUP_ENVTEST))" go run ./hack/benchreport -only scale

##@ Demo

.PHONY: demo
demo: setup-envtest build ## Run the whole system on this machine (control plane, manager, host, samples) until Ctrl-C.
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh $(K8S_VERSION) $(K8S_BIN_DIR) $(SETUP_ENVTEST))" go run ./hack/demo --pluginhost=$(LOCALBIN)/pluginhost

##@ Build

.PHONY: build
build: ## Build manager and pluginhost binaries into bin/.
	CGO_ENABLED=0 go build -trimpath -o $(LOCALBIN)/pluginhost ./cmd/pluginhost
	CGO_ENABLED=0 go build -trimpath -o $(LOCALBIN)/manager ./cmd/manager

.PHONY: run
run: ## Run the manager against the cluster in ~/.kube/config.
	go run ./cmd/manager

##@ Tools

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)
$(CONTROLLER_GEN): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $(CONTROLLER_GEN)

.PHONY: setup-envtest
setup-envtest: $(SETUP_ENVTEST)
$(SETUP_ENVTEST): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-runtime/tools/setup-envtest@$(SETUP_ENVTEST_VERSION)
	mv $(LOCALBIN)/setup-envtest $(SETUP_ENVTEST)

.PHONY: promtool
promtool: $(PROMTOOL) ## Build the pinned promtool into bin/ (for the alerts' tests; once).
$(PROMTOOL): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION)
	mv $(LOCALBIN)/promtool $(PROMTOOL)

.PHONY: helm-docs
helm-docs: $(HELM_DOCS)
$(HELM_DOCS): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install github.com/norwoodj/helm-docs/cmd/helm-docs@$(HELM_DOCS_VERSION)
	mv $(LOCALBIN)/helm-docs $(HELM_DOCS)

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT)
$(GOLANGCI_LINT): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(LOCALBIN)/golangci-lint $(GOLANGCI_LINT)

##@ Deployment

# Image tool for docker-build and docker-push; the Dockerfile needs BuildKit (Docker ≥ 23
# uses it by default). Platforms of docker-buildx.
CONTAINER_TOOL ?= docker
PLATFORMS ?= linux/amd64,linux/arm64
# kind for test-e2e: from PATH, else the pinned one `make kind` builds into bin/.
KIND_VERSION ?= v0.33.0
KIND ?= $(or $(shell command -v kind 2>/dev/null),$(LOCALBIN)/kind-$(KIND_VERSION))
KIND_CLUSTER ?= plugin-operator-e2e
CHART_DIR := charts/plugin-operator
# `make undeploy ignore-not-found=false` fails on objects that are already gone.
ignore-not-found ?= true

# require-docker: fail with a clear message when there is no Docker daemon to talk to.
define require-docker
	@$(CONTAINER_TOOL) info >/dev/null 2>&1 || { \
	  echo "error: $@ needs a running Docker daemon, and '$(CONTAINER_TOOL) info' failed." >&2; \
	  echo "       Start Docker (or set CONTAINER_TOOL to a Docker-compatible CLI with BuildKit) and retry." >&2; \
	  exit 1; }
endef

.PHONY: docker-build
docker-build: ## Build the image IMG (both /manager and /pluginhost) with Docker BuildKit.
	$(require-docker)
	DOCKER_BUILDKIT=1 $(CONTAINER_TOOL) build -t $(IMG) .

.PHONY: image
image: ## Build the image IMG as bin/image.tar (docker-archive) without Docker, with go-containerregistry.
	CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w" -o $(LOCALBIN)/image-bin/ ./cmd/manager ./cmd/pluginhost
	go run ./hack/image --manager $(LOCALBIN)/image-bin/manager --pluginhost $(LOCALBIN)/image-bin/pluginhost --tag $(IMG) --out $(LOCALBIN)/image.tar

.PHONY: example-image
example-image: ## Build the example plugin host (examples/featureflags) as bin/example-image.tar: an image EXAMPLE_IMG with only /pluginhost, without Docker.
	cd $(EXAMPLE_DIR) && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w" -o $(LOCALBIN)/example-bin/pluginhost .
	go run ./hack/image --pluginhost $(LOCALBIN)/example-bin/pluginhost --tag $(EXAMPLE_IMG) --out $(LOCALBIN)/example-image.tar

.PHONY: docker-push
docker-push: ## Push the image IMG.
	$(require-docker)
	$(CONTAINER_TOOL) push $(IMG)

.PHONY: docker-buildx
docker-buildx: ## Build and push IMG for PLATFORMS (cross-compiled; needs a buildx builder).
	$(require-docker)
	$(CONTAINER_TOOL) buildx build --platform=$(PLATFORMS) --tag $(IMG) --push .

# kubectl-tool, helm-tool: build the pinned tool when KUBECTL/HELM point at it, else check
# that the given one runs; either way say which one is used.
.PHONY: kubectl-tool
kubectl-tool:
	@if [ "$(KUBECTL)" = "$(K8S_BIN_DIR)/kubectl" ]; then hack/find-tool.sh --build kubectl $(K8S_VERSION) $(K8S_BIN_DIR) >/dev/null; \
	elif ! command -v "$(KUBECTL)" >/dev/null; then echo "error: KUBECTL=$(KUBECTL) not found" >&2; exit 1; \
	else echo "using kubectl $(KUBECTL)" >&2; fi

.PHONY: helm-tool
helm-tool:
	@if [ "$(HELM)" = "$(K8S_BIN_DIR)/helm" ]; then hack/find-tool.sh --build helm $(K8S_VERSION) $(K8S_BIN_DIR) >/dev/null; \
	elif ! command -v "$(HELM)" >/dev/null; then echo "error: HELM=$(HELM) not found" >&2; exit 1; \
	else echo "using helm $(HELM)" >&2; fi

.PHONY: install
install: kubectl-tool ## Install the CRDs into the cluster of ~/.kube/config.
	$(KUBECTL) kustomize config/crd | $(KUBECTL) apply --server-side --force-conflicts -f -

.PHONY: uninstall
uninstall: kubectl-tool ## Delete the CRDs, and with them every Plugin and PluginHost.
	$(KUBECTL) kustomize config/crd | $(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f -

.PHONY: deploy
deploy: kubectl-tool ## Deploy CRDs, RBAC and the manager (config/default) with image IMG.
	hack/render-deploy.sh "$(IMG)" "$(KUBECTL)" | $(KUBECTL) apply --server-side --force-conflicts -f -

.PHONY: undeploy
undeploy: kubectl-tool ## Delete what deploy created, CRDs (so every Plugin and PluginHost) included.
	hack/render-deploy.sh "$(IMG)" "$(KUBECTL)" | $(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f -

.PHONY: build-installer
build-installer: kubectl-tool ## Write dist/install.yaml: config/default with image IMG, for kubectl apply.
	mkdir -p dist
	hack/render-deploy.sh "$(IMG)" "$(KUBECTL)" > dist/install.yaml

.PHONY: chart
chart: helm-docs ## Sync the Helm chart with config/ (CRD templates, manager ClusterRole, alerts) and write its README.
	go run ./hack/chartgen
	$(HELM_DOCS) --chart-search-root $(CHART_DIR) --template-files README.md.gotmpl --log-level warning

.PHONY: helm-crds
helm-crds: chart ## Alias of chart.

.PHONY: helm-lint
helm-lint: helm-tool ## helm lint --strict the chart.
	$(HELM) lint --strict $(CHART_DIR)

.PHONY: chart-package
chart-package: helm-tool chart ## Package the chart into dist/.
	$(HELM) package $(CHART_DIR) --destination dist

.PHONY: release
release: kubectl-tool helm-tool ## Write dist/ for VERSION=x.y.z: install.yaml (image pinned), the chart package, crds.yaml, SHA256SUMS.
	@test -n "$(VERSION)" || { echo "error: make release needs VERSION=x.y.z" >&2; exit 1; }
	hack/release.sh --version "$(VERSION)" --kubectl "$(KUBECTL)" --helm "$(HELM)" --dist dist $(if $(IMAGE_REPO),--image-repo "$(IMAGE_REPO)") $(if $(IMAGE_DIGEST),--digest "$(IMAGE_DIGEST)")

.PHONY: kind
kind: ## Build the pinned kind into bin/ (for test-e2e).
	@test -x $(LOCALBIN)/kind-$(KIND_VERSION) || { GOBIN=$(LOCALBIN) go install sigs.k8s.io/kind@$(KIND_VERSION) && mv $(LOCALBIN)/kind $(LOCALBIN)/kind-$(KIND_VERSION); }

# The e2e suite's cluster: kind where a Docker daemon answers, else the local node (root).
E2E_CLUSTER ?= $(shell $(CONTAINER_TOOL) info >/dev/null 2>&1 && echo kind || echo local)
E2E_IMAGE ?= example.com/plugin-operator:e2e
# The example plugin host's image in the suite: e2e.ExampleImage, allowed in
# test/e2e/testdata/e2e-values.yaml (fixed, so the three agree).
E2E_EXAMPLE_IMAGE := localhost/plugin-operator/featureflags:e2e
# Plugin edits the e2e suite times with the pod nudge (empty: the suite's 30); E2E_RUN: a
# regular expression of the suite's steps to run (to iterate on one; not with E2E_REPORT).
E2E_EDITS ?=
# Edits with the nudge made 1.1 s apart, past kubelet's relist (empty: the suite's 10).
E2E_EDITS_SPACED ?=
E2E_RUN ?=

.PHONY: test-e2e
test-e2e: k8s-binaries ## End-to-end suite on kind (Docker) or, without Docker, on the local node (root; see make cluster).
	@if [ "$(E2E_CLUSTER)" = local ]; then $(MAKE) --no-print-directory cluster-binaries pause-image image IMG=$(E2E_IMAGE); fi
	$(MAKE) --no-print-directory example-image EXAMPLE_IMG=$(E2E_EXAMPLE_IMAGE)
	E2E_CLUSTER="$(E2E_CLUSTER)" E2E_IMAGE="$(E2E_IMAGE)" E2E_IMAGE_TAR="$(LOCALBIN)/image.tar" E2E_REPORT="$(E2E_REPORT)" \
	  E2E_EDITS="$(E2E_EDITS)" E2E_EDITS_SPACED="$(E2E_EDITS_SPACED)" E2E_RUN="$(E2E_RUN)" \
	  E2E_EXAMPLE_IMAGE_TAR="$(LOCALBIN)/example-image.tar" \
	  K8S_BIN_DIR="$(K8S_BIN_DIR)" PAUSE_IMAGE_TAR="$(LOCALBIN)/pause.tar" \
	  KIND="$(KIND)" KIND_CLUSTER="$(KIND_CLUSTER)" KUBECTL="$(KUBECTL)" HELM="$(HELM)" CONTAINER_TOOL="$(CONTAINER_TOOL)" \
	  go test -tags e2e -count=1 -timeout 60m -v -run TestE2E ./test/e2e/

# bench-cluster's edits: enough for a p99 that is not the maximum.
BENCH_CLUSTER_EDITS ?= 100

.PHONY: bench-cluster
bench-cluster: ## Run the e2e suite on the local node with BENCH_CLUSTER_EDITS (100) edits back to back and as many spaced, and write its measurements to docs/performance-real-node.md.
	$(MAKE) --no-print-directory test-e2e E2E_CLUSTER=local E2E_EDITS=$(BENCH_CLUSTER_EDITS) E2E_EDITS_SPACED=$(BENCH_CLUSTER_EDITS) E2E_REPORT=$(CURDIR)/docs/performance-real-node.md

##@ Local node (a real single-node cluster on this machine, no Docker; root)

.PHONY: cluster-binaries
cluster-binaries: ## Build kubelet, kube-controller-manager, kube-scheduler, kube-proxy (and the envtest binaries) into bin/k8s (cached).
	hack/install-k8s-binaries.sh --version $(K8S_VERSION) --dest $(K8S_BIN_DIR) --with-helm --with-node >/dev/null

.PHONY: pause-image
pause-image: ## Build the pod sandbox image bin/pause.tar (no registry is reachable for registry.k8s.io/pause).
	CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o $(LOCALBIN)/pause ./hack/pause
	go run ./hack/image --pause $(LOCALBIN)/pause --tag localhost/plugin-operator/pause:1 --out $(LOCALBIN)/pause.tar

.PHONY: cluster
cluster: cluster-binaries pause-image ## Start the local single-node cluster (hack/cluster.sh up); prints the kubeconfig.
	K8S_BIN_DIR="$(K8S_BIN_DIR)" PAUSE_IMAGE_TAR="$(LOCALBIN)/pause.tar" hack/cluster.sh up

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and restore the machine (sysctls, nftables, mounts, cgroups, links, paths).
	hack/cluster.sh down

.PHONY: cluster-load
cluster-load: image ## Import the image IMG (bin/image.tar) into the local cluster's containerd.
	hack/cluster.sh load $(LOCALBIN)/image.tar

.PHONY: cluster-load-example
cluster-load-example: example-image ## Import the example host image EXAMPLE_IMG (bin/example-image.tar) into the local cluster's containerd.
	hack/cluster.sh load $(LOCALBIN)/example-image.tar
