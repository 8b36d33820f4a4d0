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
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// TestConsentRefusals: only the value "true" consents; the operator's own ConfigMap and
// Secret carry the label's key (so that the cache selects them) and consent to nothing, and
// their refusal suggests no label, which the next apply would undo; an unmarked object's
// refusal gives the exact command, with --overwrite when the label has another value.
func TestConsentRefusals(t *testing.T) {
	host := &v1alpha1.PluginHost{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "h", UID: "u"}}
	own := renderCredentials(host, nil)
	if msg := secretRefusal(own); !strings.Contains(msg, "own credentials") || strings.Contains(msg, "kubectl") {
		t.Errorf("the host's own credentials: %q", msg)
	}
	rendered := renderConfigMap(host, []byte("{}"), "sha256:0", 1)
	cm := &corev1.ConfigMap{ObjectMeta: rendered.ObjectMeta}
	if msg := configMapRefusal(cm); !strings.Contains(msg, "own rendered configuration") || strings.Contains(msg, "kubectl") {
		t.Errorf("the host's own ConfigMap: %q", msg)
	}
	for _, tt := range []struct {
		labels map[string]string
		want   string
	}{
		{nil, "kubectl label configmap user -n ns plugins.hotreload.io/plugin-auth=true"},
		{map[string]string{v1alpha1.LabelPluginAuth: "yes"}, "kubectl label configmap user -n ns plugins.hotreload.io/plugin-auth=true --overwrite"},
		{map[string]string{v1alpha1.LabelPluginAuth: "true"}, ""},
	} {
		msg := configMapRefusal(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "user", Labels: tt.labels}})
		if (tt.want == "") != (msg == "") || !strings.HasSuffix(msg, tt.want) {
			t.Errorf("labels %v: %q, want it to end with %q", tt.labels, msg, tt.want)
		}
	}
}
