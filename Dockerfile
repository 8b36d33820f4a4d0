# syntax=docker/dockerfile:1
#
# One image, two entry points:
#   /manager     the operator (the image's ENTRYPOINT)
#   /pluginhost  the plugin runtime the operator runs in every PluginHost pod (the operator's
#                Deployment sets `command: ["/pluginhost"]`)
#
# Why one image and not two: the manager renders exactly the config.json that the runtime
# parses, with the same code (internal/pluginconfig), and reads the runtime's /status types
# (internal/hostapi). Shipping both programs from one build guarantees they come from the same
# commit; there is one image to build, scan, sign, mirror and pull-secret, and the manager's
# --default-host-image is simply its own image (config/manager and the Helm chart wire that
# up). The runtime adds ~10 MB to an image that is pulled once per node.
#
# Why CGO_ENABLED=0: Argus pulls in github.com/mattn/go-sqlite3 (cgo) only for its SQLite
# audit trail. The runtime does not use it (it writes its own hash-chained trail, in the
# state dir; docs/pluginhost.md "Audit" has the measured cost of SQLite), so a cgo build
# would buy nothing and cost a libc dependency. With CGO_ENABLED=0 both binaries are static and run on distroless/static: no
# shell, no package manager, no libc to patch.
#
# Reproducibility: -trimpath (no build paths), -buildvcs=false (the .git directory is not in
# the build context), GOTOOLCHAIN=local (the Go of the builder image, never a download),
# -ldflags "-s -w" (no symbol table or DWARF). Pin the base images by digest in release
# builds: --build-arg GO_IMAGE=golang:1.26@sha256:… --build-arg BASE_IMAGE=…@sha256:….
#
# Build: make docker-build IMG=… (needs BuildKit, for the cache mounts; Docker ≥ 23 uses it
# by default). Multi-arch: make docker-buildx IMG=… PLATFORMS=linux/amd64,linux/arm64; the
# builder stage runs on the build platform and cross-compiles.

ARG GO_IMAGE=golang:1.26
ARG BASE_IMAGE=gcr.io/distroless/static:nonroot

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS builder
# Set by BuildKit from --platform (default: the build host's platform).
ARG TARGETOS
ARG TARGETARCH
WORKDIR /workspace
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

# Sources: .dockerignore keeps only go.mod, go.sum and non-test .go files.
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/manager ./cmd/pluginhost

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="plugin-operator" \
      org.opencontainers.image.description="Kubernetes operator for hot-reloaded plugin instances: /manager (operator) and /pluginhost (runtime)" \
      org.opencontainers.image.source="https://github.com/hotreload/plugin-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /
COPY --from=builder /out/manager /manager
COPY --from=builder /out/pluginhost /pluginhost
# distroless "nonroot": uid/gid 65532. Numeric, so that runAsNonRoot can verify it.
USER 65532:65532
ENTRYPOINT ["/manager"]
