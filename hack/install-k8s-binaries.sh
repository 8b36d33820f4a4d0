#!/usr/bin/env bash
# Builds the pinned control-plane binaries (kube-apiserver, etcd, kubectl; helm with
# --with-helm; kubelet, kube-controller-manager, kube-scheduler and kube-proxy with
# --with-node, for `make cluster`) from the Go module proxy and caches them under bin/k8s/<version>-<os>-<arch>/.
# `setup-envtest` cannot download release tarballs here, so this is how envtest gets its
# binaries. The versions are pinned by the tools modules in hack/tools (see its README.md).
#
# Usage: hack/install-k8s-binaries.sh [--version 1.37.2] [--dest DIR] [--with-helm] [--with-node] [--only-helm] [--check]
#
# stdout: only the absolute directory to use as KUBEBUILDER_ASSETS, so that
#   export KUBEBUILDER_ASSETS="$(hack/install-k8s-binaries.sh)"
# works. Everything else goes to stderr.
#
# Each binary has a stamp file (.stamp-<name>) recording what it was built from (version,
# platform, Go version, hash of the tools module's go.mod/go.sum, ldflags). A binary whose
# stamp matches is not rebuilt, so a second run takes about a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${ROOT}/hack/tools"
HELM_TOOLS="${TOOLS}/helm"

log() { printf '%s\n' "$*" >&2; }
die() { log "install-k8s-binaries: $*"; exit 1; }

usage() {
  cat >&2 <<'EOF'
Usage: hack/install-k8s-binaries.sh [--version X.Y.Z] [--dest DIR] [--with-helm] [--with-node] [--only-helm] [--check]

Builds kube-apiserver, etcd and kubectl (and helm with --with-helm) from the Go module
proxy into DIR (default bin/k8s/<version>-<goos>-<goarch>) and prints DIR's absolute path
on stdout, for KUBEBUILDER_ASSETS. Already-built binaries with a matching stamp are kept.

  --version X.Y.Z  Kubernetes version (default: from k8s.io/api in the root go.mod,
                   v0.37.2 -> 1.37.2). Must equal the k8s.io/kubernetes pin in
                   hack/tools/go.mod; to change it, bump that module (hack/tools/README.md).
  --dest DIR       output directory
  --with-helm      also build helm (version pinned in hack/tools/helm/go.mod) into DIR
  --with-node      also build kubelet, kube-controller-manager, kube-scheduler and
                   kube-proxy (the real single-node cluster of `make cluster`)
  --only-helm      build helm alone (when setup-envtest provided the rest)
  --check          build nothing; exit 0 when every binary asked for is up to date, else 1
EOF
}

# module_version FILE MODULE: the version of MODULE required in go.mod FILE.
module_version() {
  awk -v m="$2" '
    $1 == "require" && $2 == m { print $3; exit }
    $1 == m && $2 ~ /^v/ { print $2; exit }
  ' "$1"
}

version=""
dest=""
with_helm=0
with_node=0
only_helm=0
check=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --version) [[ $# -ge 2 ]] || die "--version needs a value"; version="$2"; shift 2 ;;
    --version=*) version="${1#*=}"; shift ;;
    --dest) [[ $# -ge 2 ]] || die "--dest needs a value"; dest="$2"; shift 2 ;;
    --dest=*) dest="${1#*=}"; shift ;;
    --with-helm) with_helm=1; shift ;;
    --with-node) with_node=1; shift ;;
    --only-helm) only_helm=1; with_helm=1; shift ;;
    --check) check=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage; die "unknown argument: $1" ;;
  esac
done

command -v go >/dev/null || die "go is not on PATH"

if [[ -z "${version}" ]]; then
  api="$(module_version "${ROOT}/go.mod" k8s.io/api)"
  [[ "${api}" =~ ^v0\.([0-9]+)\.([0-9]+)$ ]] ||
    die "cannot derive the Kubernetes version from k8s.io/api '${api}' in go.mod; pass --version"
  version="1.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
fi
version="${version#v}"
[[ "${version}" =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || die "bad --version '${version}' (want X.Y.Z)"
major="${BASH_REMATCH[1]}"
minor="${BASH_REMATCH[2]}"
patch="${BASH_REMATCH[3]}"

pinned="$(module_version "${TOOLS}/go.mod" k8s.io/kubernetes)"
[[ "${pinned}" == "v${version}" ]] ||
  die "hack/tools/go.mod pins k8s.io/kubernetes ${pinned:-<none>}, not v${version}: bump hack/tools (see hack/tools/README.md) or pass --version ${pinned#v}"
staging="$(awk '$1 == "k8s.io/component-base" && $2 == "=>" { print $4; exit }' "${TOOLS}/go.mod")"
[[ "${staging}" == "v0.${minor}.${patch}" ]] ||
  die "hack/tools/go.mod replaces the staging modules with ${staging:-<none>}, want v0.${minor}.${patch}"
etcd_version="$(module_version "${TOOLS}/go.mod" go.etcd.io/etcd/server/v3)"
[[ -n "${etcd_version}" ]] || die "hack/tools/go.mod does not require go.etcd.io/etcd/server/v3"

# Never let a go.work elsewhere in the tree or the caller's GOFLAGS pick other modules.
export GOWORK=off CGO_ENABLED=0
goos="$(go env GOOS)"
goarch="$(go env GOARCH)"
gover="$(go env GOVERSION)"

dest="${dest:-${ROOT}/bin/k8s/${version}-${goos}-${goarch}}"
mkdir -p "${dest}"
dest="$(cd "${dest}" && pwd)"

# One build at a time per directory (parallel `make` targets may both call this).
if command -v flock >/dev/null; then
  exec 9>"${dest}/.lock"
  flock 9
fi

sum_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
tools_sum="$(sum_of "${TOOLS}/go.mod" "${TOOLS}/go.sum")"

# The version stamp: without it the server reports v0.0.0-master+$Format:%H$, which kubectl,
# helm and discovery-based clients cannot parse. Same variables as kubernetes' own
# hack/lib/version.sh sets, for both version packages.
kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X ${pkg}.gitVersion=v${version} -X ${pkg}.gitMajor=${major}"
  kube_ldflags+=" -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean"
done

# build NAME PACKAGE MODULE_DIR MODULE_SUM VERSION LDFLAGS ESTIMATE
build() {
  local name="$1" pkg="$2" moddir="$3" modsum="$4" ver="$5" ldflags="$6" estimate="$7"
  local out="${dest}/${name}" stamp="${dest}/.stamp-${name}"
  local want
  want="$(printf 'name=%s\nversion=%s\npackage=%s\nplatform=%s/%s\ngo=%s\nmodule_sum=%s\nldflags=%s\n' \
    "${name}" "${ver}" "${pkg}" "${goos}" "${goarch}" "${gover}" "${modsum}" "${ldflags}")"
  if [[ -x "${out}" && -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
    log "${name} ${ver}: up to date in ${dest}"
    return 0
  fi
  [[ ${check} -eq 0 ]] || { log "${name} ${ver}: missing or stale in ${dest}"; exit 1; }
  log "building ${name} ${ver} (takes ${estimate} on 2 cores, first time only)…"
  local start=${SECONDS}
  rm -f "${stamp}"
  go build -C "${moddir}" -buildvcs=false -trimpath -ldflags "${ldflags}" -o "${out}.tmp" "${pkg}" ||
    { rm -f "${out}.tmp"; die "building ${name} failed"; }
  mv -f "${out}.tmp" "${out}"
  printf '%s\n' "${want}" >"${stamp}"
  log "built ${name} ${ver} in $((SECONDS - start))s ($(du -h "${out}" | cut -f1))"
}

if [[ ${only_helm} -eq 0 ]]; then
  build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "${TOOLS}" "${tools_sum}" \
    "v${version}" "${kube_ldflags}" "~7 min"
  build etcd go.etcd.io/etcd/server/v3 "${TOOLS}" "${tools_sum}" \
    "${etcd_version}" "-s -w" "~1 min"
  build kubectl k8s.io/kubernetes/cmd/kubectl "${TOOLS}" "${tools_sum}" \
    "v${version}" "${kube_ldflags}" "~3 min"
fi

if [[ ${with_node} -eq 1 ]]; then
  for name in kube-scheduler kube-proxy kube-controller-manager kubelet; do
    build "${name}" "k8s.io/kubernetes/cmd/${name}" "${TOOLS}" "${tools_sum}" \
      "v${version}" "${kube_ldflags}" "1-6 min"
  done
fi

if [[ ${with_helm} -eq 1 ]]; then
  helm_version="$(module_version "${HELM_TOOLS}/go.mod" helm.sh/helm/v3)"
  [[ -n "${helm_version}" ]] || die "hack/tools/helm/go.mod does not require helm.sh/helm/v3"
  # Like helm's own Makefile: its version, and the Kubernetes version it assumes when
  # rendering without a cluster (.Capabilities.KubeVersion), from its client-go (v0.X -> 1.X).
  helm_k8s="$(module_version "${HELM_TOOLS}/go.mod" k8s.io/client-go)"
  [[ "${helm_k8s}" =~ ^v0\.([0-9]+)\. ]] || die "cannot read k8s.io/client-go from hack/tools/helm/go.mod"
  helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${helm_version}"
  helm_ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    helm_ldflags+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${BASH_REMATCH[1]}"
  done
  build helm helm.sh/helm/v3/cmd/helm "${HELM_TOOLS}" \
    "$(sum_of "${HELM_TOOLS}/go.mod" "${HELM_TOOLS}/go.sum")" "${helm_version}" "${helm_ldflags}" "~3 min"
fi

printf '%s\n' "${dest}"
