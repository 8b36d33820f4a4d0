//go:build tools

// Package tools pins the main packages that hack/install-k8s-binaries.sh builds, so that
// `go mod tidy` in this module keeps their dependencies.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"                     // etcd
	_ "k8s.io/client-go/pkg/version"                  // ldflags -X target for kubectl's client version
	_ "k8s.io/component-base/version"                 // ldflags -X target for the version stamp
	_ "k8s.io/kubernetes/cmd/kube-apiserver"          // kube-apiserver
	_ "k8s.io/kubernetes/cmd/kube-controller-manager" // kube-controller-manager (make cluster)
	_ "k8s.io/kubernetes/cmd/kube-proxy"              // kube-proxy (make cluster)
	_ "k8s.io/kubernetes/cmd/kube-scheduler"          // kube-scheduler (make cluster)
	_ "k8s.io/kubernetes/cmd/kubectl"                 // kubectl
	_ "k8s.io/kubernetes/cmd/kubelet"                 // kubelet (make cluster)
)
