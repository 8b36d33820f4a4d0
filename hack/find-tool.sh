#!/usr/bin/env bash
# Prints the path of a usable kubectl or helm: the one on PATH when its version is
# supported, else the pinned one that hack/install-k8s-binaries.sh builds into DIR (built on
# demand with --build). `make install deploy build-installer helm-lint chart-package release`
# use it so that a machine with kubectl and helm on its PATH never waits for the ~10-minute
# source build. KUBECTL=… / HELM=… on make's command line bypass it.
#
# Usage: hack/find-tool.sh [--build] kubectl|helm K8S_VERSION DIR
#
# Supported versions (older ones lack what the manifests or the chart need, or are outside
# the skew Kubernetes supports for the pinned 1.N):
#   kubectl  1.(N-3) or newer (kustomize components, server-side apply)
#   helm     3.17 or newer, 4.x (3.17 added --take-ownership, which upgrading from chart
#            0.1.0 needs; docs/install.md)
# stdout: only the path. stderr: which one and why.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf 'find-tool: %s\n' "$*" >&2; }

build=0
if [[ "${1:-}" == "--build" ]]; then build=1; shift; fi
[[ $# -eq 3 ]] || { log "usage: hack/find-tool.sh [--build] kubectl|helm K8S_VERSION DIR"; exit 2; }
tool="$1" k8s="$2" dir="$3"
[[ "${k8s}" =~ ^1\.([0-9]+)\. ]] || { log "bad K8S_VERSION '${k8s}'"; exit 2; }
k8s_minor="${BASH_REMATCH[1]}"

# version_ok TOOL VERSION: whether VERSION (vX.Y.Z…) of TOOL is supported.
version_ok() {
  [[ "$2" =~ ^v?([0-9]+)\.([0-9]+)\. ]] || return 1
  local major="${BASH_REMATCH[1]}" minor="${BASH_REMATCH[2]}"
  case "$1" in
    kubectl) [[ ${major} -eq 1 && ${minor} -ge $((k8s_minor - 3)) ]] ;;
    helm) [[ (${major} -eq 3 && ${minor} -ge 17) || ${major} -eq 4 ]] ;;
    *) return 1 ;;
  esac
}

# version_of TOOL PATH prints TOOL's client version, or nothing.
version_of() {
  case "$1" in
    kubectl) "$2" version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -1 ;;
    helm) "$2" version --template '{{.Version}}' 2>/dev/null ;;
  esac
}

case "${tool}" in
  kubectl | helm) ;;
  *) log "unknown tool '${tool}' (kubectl or helm)"; exit 2 ;;
esac

pinned="${dir}/${tool}"
if found="$(command -v "${tool}" 2>/dev/null)" && [[ "$(cd "$(dirname "${found}")" && pwd)/${tool}" != "${pinned}" ]]; then
  v="$(version_of "${tool}" "${found}")"
  if version_ok "${tool}" "${v}"; then
    log "using ${tool} ${v} from PATH (${found})"
    printf '%s\n' "${found}"
    exit 0
  fi
  log "${tool} ${v:-of unknown version} on PATH (${found}) is not supported here; using the pinned one"
fi
if [[ ${build} -eq 1 ]]; then
  if [[ "${tool}" == helm ]]; then
    "${ROOT}/hack/install-k8s-binaries.sh" --version "${k8s}" --dest "${dir}" --only-helm >/dev/null
  else
    "${ROOT}/hack/install-k8s-binaries.sh" --version "${k8s}" --dest "${dir}" >/dev/null
  fi
  log "using the pinned ${tool} (${pinned})"
fi
printf '%s\n' "${pinned}"
