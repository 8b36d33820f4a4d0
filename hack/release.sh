#!/usr/bin/env bash
# Writes the release artefacts of version X.Y.Z into DIST (`make release VERSION=X.Y.Z`):
#
#   install.yaml                    config/default with the image pinned to
#                                   IMAGE_REPO:vX.Y.Z (or @DIGEST), for kubectl apply --server-side
#   plugin-operator-X.Y.Z.tgz       the Helm chart, version X.Y.Z, appVersion vX.Y.Z (its
#                                   image.digest set when --digest is given)
#   crds.yaml                       the CRDs alone (for crds.enabled=false, or kubectl users)
#   SHA256SUMS                      sha256sum of the three, for `sha256sum -c SHA256SUMS`
#
# Nothing tracked is edited: the chart is packaged from a copy with Chart.yaml's version and
# appVersion set. docs/install.md installs from exactly these files.
#
# Usage: hack/release.sh --version X.Y.Z [--kubectl KUBECTL] [--helm HELM] [--dist DIR]
#                        [--image-repo REPO] [--digest sha256:…]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { printf 'release: %s\n' "$*" >&2; exit 1; }

version="" kubectl=kubectl helm=helm dist="${ROOT}/dist" repo="" digest=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --version) version="${2:-}"; shift 2 ;;
    --kubectl) kubectl="${2:-}"; shift 2 ;;
    --helm) helm="${2:-}"; shift 2 ;;
    --dist) dist="${2:-}"; shift 2 ;;
    --image-repo) repo="${2:-}"; shift 2 ;;
    --digest) digest="${2:-}"; shift 2 ;;
    *) die "unknown argument '$1' (see the header of hack/release.sh)" ;;
  esac
done
version="${version#v}"
[[ "${version}" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] ||
  die "VERSION '${version}' is not a semantic version x.y.z (e.g. make release VERSION=0.2.0)"
[[ -z "${digest}" || "${digest}" =~ ^sha256:[a-f0-9]{64}$ ]] || die "--digest '${digest}' is not sha256:<64 hex digits>"
# The published image: config/manager's (= the chart's image.repository) unless overridden.
repo="${repo:-$(awk '$1 == "newName:" { print $2; exit }' "${ROOT}/config/manager/kustomization.yaml")}"
[[ -n "${repo}" ]] || die "no image repository (config/manager/kustomization.yaml images[].newName)"
image="${repo}:v${version}"
[[ -z "${digest}" ]] || image="${repo}@${digest}"

mkdir -p "${dist}"
dist="$(cd "${dist}" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

"${ROOT}/hack/render-deploy.sh" "${image}" "${kubectl}" >"${work}/install.yaml"
grep -q "image: ${image}\$" "${work}/install.yaml" || die "install.yaml does not run ${image}"
"${kubectl}" kustomize "${ROOT}/config/crd" >"${work}/crds.yaml"

cp -R "${ROOT}/charts/plugin-operator" "${work}/chart"
sed -i -e "s/^version: .*/version: ${version}/" -e "s/^appVersion: .*/appVersion: \"v${version}\"/" "${work}/chart/Chart.yaml"
if [[ -n "${digest}" ]]; then
  sed -i -e "s/^  digest: \"\"/  digest: \"${digest}\"/" "${work}/chart/values.yaml"
  grep -q "^  digest: \"${digest}\"" "${work}/chart/values.yaml" || die "could not set image.digest in the chart's values.yaml"
fi
[[ "${repo}" == "$(awk '/^image:/ { f = 1 } f && $1 == "repository:" { print $2; exit }' "${work}/chart/values.yaml")" ]] ||
  sed -i -e "0,/^  repository: .*/s##  repository: ${repo}#" "${work}/chart/values.yaml"
"${helm}" lint --strict "${work}/chart" >/dev/null || die "helm lint --strict failed on the release chart"
"${helm}" package "${work}/chart" --destination "${work}" >/dev/null

chart="plugin-operator-${version}.tgz"
mv -f "${work}/install.yaml" "${work}/crds.yaml" "${work}/${chart}" "${dist}/"
(cd "${dist}" && sha256sum install.yaml "${chart}" crds.yaml >SHA256SUMS)
printf 'release: wrote %s/{install.yaml,%s,crds.yaml,SHA256SUMS} (image %s)\n' "${dist}" "${chart}" "${image}" >&2
