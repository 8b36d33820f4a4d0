//go:build tools

/*
Copyright 2026 The plugin-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

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
