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

package controllers

import (
	"strings"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// MaxReportedTextBytes bounds any text a pod sends that the manager copies into a status, a
// condition or an event (a pod's lastError).
const MaxReportedTextBytes = 1024

// trustedPod reports whether pod belongs to deploy through the owner chain the Deployment
// controller makes: the pod's controller is a ReplicaSet (one of replicaSets, by name and
// UID) whose controller is deploy (by UID). The host label alone is not enough: anyone who
// may create pods in the namespace can set it, and the manager would then read that pod's
// /status, report its errors and annotate it. Nor is a pod that names deploy itself as its
// controller: the Deployment controller never makes one (it makes ReplicaSets, which make
// pods), so whoever did is not the operator. The host's workload is always a Deployment
// (renderDeployment); there is no StatefulSet chain to trust.
func trustedPod(pod *corev1.Pod, deploy *appsv1.Deployment, replicaSets map[string]*appsv1.ReplicaSet) bool {
	if deploy == nil || deploy.UID == "" {
		return false
	}
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != "ReplicaSet" || ref.APIVersion != appsv1.SchemeGroupVersion.String() {
		return false
	}
	rs := replicaSets[ref.Name]
	if rs == nil || rs.UID != ref.UID {
		return false
	}
	owner := metav1.GetControllerOf(rs)
	return owner != nil && owner.Kind == "Deployment" && owner.APIVersion == appsv1.SchemeGroupVersion.String() &&
		owner.Name == deploy.Name && owner.UID == deploy.UID
}

// truncateText cuts s to at most n bytes, at a rune boundary, marking the cut.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "… (truncated)"
	cut := max(n-len(mark), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// validRevision reports whether rev is a configuration revision: "sha256:" and 64 lowercase
// hex digits. A pod's report of anything else is not copied into status.
func validRevision(rev string) bool {
	hex := strings.TrimPrefix(rev, pluginconfig.RevisionPrefix)
	if len(hex) != 64 || len(rev) == len(hex) {
		return false
	}
	for _, c := range hex {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
