#!/usr/bin/env bash
# Renders config/default with the manager image (and so the default PluginHost image) set to
# IMAGE, on stdout, without editing any tracked file: it writes a throw-away overlay under
# bin/ (kustomize only accepts relative paths to bases) and runs `kubectl kustomize` on it.
# Used by `make deploy`, `make undeploy` and `make build-installer`.
#
# Usage: hack/render-deploy.sh IMAGE [KUBECTL]
#   IMAGE    repo[:tag] or repo@sha256:…, e.g. ghcr.io/me/plugin-operator:v1 or localhost:5000/po
#   KUBECTL  kubectl binary (default: kubectl on PATH); needs kustomize (kubectl ≥ 1.14)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { printf 'render-deploy: %s\n' "$*" >&2; exit 1; }

[[ $# -ge 1 && $# -le 2 ]] || die "usage: hack/render-deploy.sh IMAGE [KUBECTL]"
image="$1"
kubectl="${2:-kubectl}"
[[ -n "${image}" ]] || die "IMAGE is empty"
[[ "${image}" != *[[:space:]]* ]] || die "IMAGE '${image}' contains white space"

# The image the base sets (config/manager/kustomization.yaml, images[0].newName).
base_name="$(awk '$1 == "newName:" { print $2; exit }' "${ROOT}/config/manager/kustomization.yaml")"
[[ -n "${base_name}" ]] || die "no images[].newName in config/manager/kustomization.yaml"

# Split IMAGE into name and tag or digest. A ':' after the last '/' starts a tag; a ':'
# before it belongs to a registry host:port.
name="${image}" tag="" digest=""
if [[ "${name}" == *@* ]]; then
  digest="${name#*@}"
  name="${name%%@*}"
  [[ "${digest}" =~ ^[a-z0-9]+:[a-f0-9]{32,}$ ]] || die "bad digest in IMAGE '${image}'"
fi
last="${name##*/}"
if [[ "${last}" == *:* ]]; then
  tag="${last#*:}"
  name="${name%:*}"
fi
[[ -n "${name}" ]] || die "no image name in IMAGE '${image}'"
# Like docker: no tag and no digest means :latest (not the base's tag).
[[ -n "${tag}" || -n "${digest}" ]] || tag=latest

mkdir -p "${ROOT}/bin"
overlay="$(mktemp -d "${ROOT}/bin/deploy-overlay.XXXXXX")"
trap 'rm -rf "${overlay}"' EXIT
{
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n'
  printf 'resources:\n- ../../config/default\n'
  printf 'images:\n- name: %s\n  newName: %s\n' "${base_name}" "${name}"
  [[ -z "${tag}" ]] || printf '  newTag: "%s"\n' "${tag}"
  [[ -z "${digest}" ]] || printf '  digest: %s\n' "${digest}"
} >"${overlay}/kustomization.yaml"
"${kubectl}" kustomize "${overlay}"
