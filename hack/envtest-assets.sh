#!/usr/bin/env bash
# Prints a directory to use as KUBEBUILDER_ASSETS for `make test`: kube-apiserver, etcd and
# kubectl for Kubernetes K8S_VERSION, and helm (test/manifests runs it). Fastest source first:
#
#   1. binaries setup-envtest downloaded before (`setup-envtest use -i`, no network);
#   2. the source build of hack/install-k8s-binaries.sh, when already complete;
#   3. setup-envtest downloading the release binaries (seconds where it can reach them; it
#      gives up after ENVTEST_DOWNLOAD_TIMEOUT, default 30s, where it cannot);
#   4. the source build (about 10 minutes on 2 cores, once; the only way without internet).
#
# With 1 or 3, helm comes from PATH when supported (hack/find-tool.sh), else it alone is
# built from source (~2.5 min, once). The chosen binaries are linked into
# bin/envtest-assets/<version>/ so one directory holds all four.
#
# Usage: hack/envtest-assets.sh K8S_VERSION SOURCE_BUILD_DIR SETUP_ENVTEST
# stdout: only the directory. stderr: which path was taken, and how long it took.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf 'envtest-assets: %s\n' "$*" >&2; }

[[ $# -eq 3 ]] || { log "usage: hack/envtest-assets.sh K8S_VERSION SOURCE_BUILD_DIR SETUP_ENVTEST"; exit 2; }
version="$1" srcdir="$2" setup_envtest="$3"
timeout_s="${ENVTEST_DOWNLOAD_TIMEOUT:-30}"
envtest_dir="${ROOT}/bin/envtest"
start=${SECONDS}

complete() { [[ -x "$1/kube-apiserver" && -x "$1/etcd" && -x "$1/kubectl" ]]; }

# with_helm DIR: links DIR's binaries and a helm into bin/envtest-assets/<version>, prints it.
with_helm() {
  local out="${ROOT}/bin/envtest-assets/${version}" helm
  helm="$("${ROOT}/hack/find-tool.sh" --build helm "${version}" "${srcdir}")"
  mkdir -p "${out}"
  for b in kube-apiserver etcd kubectl; do ln -sfn "$1/${b}" "${out}/${b}"; done
  ln -sfn "${helm}" "${out}/helm"
  printf '%s\n' "${out}"
}

if [[ -x "${setup_envtest}" ]] && dir="$("${setup_envtest}" use "${version}" -i --bin-dir "${envtest_dir}" -p path 2>/dev/null)" && complete "${dir}"; then
  log "using kube-apiserver, etcd and kubectl ${version} that setup-envtest downloaded before (${dir})"
  with_helm "${dir}"
  exit 0
fi
if "${ROOT}/hack/install-k8s-binaries.sh" --version "${version}" --dest "${srcdir}" --with-helm --check >/dev/null 2>&1; then
  log "using the source build in ${srcdir} (up to date)"
  printf '%s\n' "${srcdir}"
  exit 0
fi
if [[ -x "${setup_envtest}" ]]; then
  log "setup-envtest: downloading kube-apiserver, etcd and kubectl ${version} (giving up after ${timeout_s}s)…"
  if dir="$(timeout "${timeout_s}" "${setup_envtest}" use "${version}" --bin-dir "${envtest_dir}" -p path 2>/tmp/envtest-assets.$$)" && complete "${dir}"; then
    rm -f /tmp/envtest-assets.$$
    log "setup-envtest downloaded them in $((SECONDS - start))s (${dir})"
    with_helm "${dir}"
    exit 0
  fi
  log "setup-envtest could not download them after $((SECONDS - start))s ($(tail -1 /tmp/envtest-assets.$$ 2>/dev/null || echo timed out)); building from the Go module proxy instead"
  rm -f /tmp/envtest-assets.$$
else
  log "no setup-envtest at ${setup_envtest}; building from the Go module proxy"
fi
"${ROOT}/hack/install-k8s-binaries.sh" --version "${version}" --dest "${srcdir}" --with-helm
log "source build ready after $((SECONDS - start))s"
