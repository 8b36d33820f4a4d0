//go:build tools

// Package tools pins helm's main package for hack/install-k8s-binaries.sh --with-helm.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm" // helm
)
