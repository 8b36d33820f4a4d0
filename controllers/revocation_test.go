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

package controllers_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// TestRevocationWhileFrozen: a host that renders nothing new — its user ConfigMap became
// invalid, or its spec.image is refused — still applies a Secret owner's withdrawal of
// consent: removing the label takes the Plugin's entry out of config.json and its keys out of
// <host>-credentials, and the pods are nudged to the new revision. Everything else stays as
// it was rendered last (the host is still Degraded for its own reason). It runs the real
// manager binary.
func TestRevocationWhileFrozen(t *testing.T) {
	needEnv(t)
	for _, tc := range []struct {
		name   string
		reason string
		freeze func(t *testing.T, ns string, host *v1alpha1.PluginHost)
	}{
		{"invalid user ConfigMap", v1alpha1.ReasonConfigInvalid, func(t *testing.T, ns string, _ *v1alpha1.PluginHost) {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "user"}}
			update(t, cm, func(cm *corev1.ConfigMap) { cm.Data["config.json"] = "{" })
		}},
		{"refused image", v1alpha1.ReasonImageNotAllowed, func(t *testing.T, _ string, host *v1alpha1.PluginHost) {
			update(t, host, func(h *v1alpha1.PluginHost) { h.Spec.Image = "evil.example.com/steal:latest" })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t)
			startManagerBinary(t, "--watch-namespaces="+ns, "--allowed-host-images=example.com/team")
			host := newHost(ns, "fz", "fz")
			host.Spec.Image = "example.com/team/host:v1"
			host.Spec.ConfigMapRef = &v1alpha1.ConfigMapKeyReference{Name: "user"}
			tokens := authSecret(ns, "tokens", map[string]string{"token": "s3cret"})
			secured := newPlugin(ns, "secured", "fz", 1)
			secured.Spec.Auth = &v1alpha1.PluginAuth{Method: v1alpha1.AuthMethodBearer, SecretRef: &v1alpha1.SecretReference{Name: "tokens"}}
			create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "user", Labels: consentLabels()}, Data: map[string]string{"config.json": `{"plugins":[]}`}},
				host, tokens, secured, newPlugin(ns, "plain", "fz", 1))
			advertise(t, ns, "fz")
			configMapData(t, ns, "fz", contains(`"secured"`, `"plain"`, "secured.token"))

			tc.freeze(t, ns, host)
			hostCondition(t, ns, "fz", v1alpha1.ConditionDegraded, metav1.ConditionTrue, tc.reason)
			// Frozen: an edit of a Plugin is not rendered.
			plain := &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plain"}}
			update(t, plain, func(p *v1alpha1.Plugin) { p.Spec.Options.Increment = ptr.To[int32](7) })

			// The Secret's owner withdraws consent.
			update(t, tokens, func(s *corev1.Secret) { delete(s.Labels, v1alpha1.LabelPluginAuth) })
			_, data := configMapData(t, ns, "fz", lacks(`"secured"`, "secured.token"))
			if err := contains(`"plain"`, `"increment": 1`)(data); err != nil {
				t.Errorf("the rest of the last configuration changed while frozen: %v", err)
			}
			testutil.Eventually(t, wait, "secured.token gone from fz-credentials", func() error {
				s := &corev1.Secret{}
				if err := get(t, s, ns, "fz-credentials"); err != nil {
					return err
				}
				if _, ok := s.Data["secured.token"]; ok {
					return fmt.Errorf("fz-credentials still holds secured.token")
				}
				return nil
			})
			rev := pluginconfig.Revision([]byte(data))
			podAnnotations(t, ns, "fz-types", func(a map[string]string) error {
				if a[v1alpha1.ConfigRevisionAnnotation] != rev {
					return fmt.Errorf("config revision %q, want %q", a[v1alpha1.ConfigRevisionAnnotation], rev)
				}
				return nil
			})
			testutil.Eventually(t, wait, "status.configRevision of the revoked configuration", func() error {
				h := &v1alpha1.PluginHost{}
				if err := get(t, h, ns, "fz"); err != nil {
					return err
				}
				if h.Status.ConfigRevision != rev {
					return fmt.Errorf("status.configRevision %s, want %s", h.Status.ConfigRevision, rev)
				}
				return condition(h.Status.Conditions, v1alpha1.ConditionDegraded, metav1.ConditionTrue, tc.reason, h.Generation)
			})
		})
	}
}
