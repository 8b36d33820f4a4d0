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
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// TestUserConfigMapNeedsConsent: a PluginHost's spec.configMapRef is read only if the
// ConfigMap carries the consent label. A ConfigMap that is not config ({"cfg": "\"s3cr3t…\""},
// whose value reached the host's status and events before) gives ConfigMapNotConsented with
// the kubectl command that marks it; once marked it is parsed, and the parse error says where
// and what is wrong without quoting it. Nothing of the value appears in any status or event.
// It runs the real manager binary.
func TestUserConfigMapNeedsConsent(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManagerBinary(t, "--watch-namespaces="+ns)
	const secret = "s3cr3t-Hk29fQ"
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-settings"},
		Data: map[string]string{"cfg": `"` + secret + `"`}}
	host := newHost(ns, "h", "h")
	host.Spec.ConfigMapRef = &v1alpha1.ConfigMapKeyReference{Name: "app-settings", Key: "cfg"}
	create(t, cm, host, newPlugin(ns, "p", "h", 1))
	advertise(t, ns, "h")

	// noSecret fails if the value is anywhere in the host's or the Plugin's status.
	noSecret := func(what string) {
		t.Helper()
		h, p := &v1alpha1.PluginHost{}, &v1alpha1.Plugin{}
		for _, o := range []struct {
			obj  any
			name string
			err  error
		}{{h, "h", get(t, h, ns, "h")}, {p, "p", get(t, p, ns, "p")}} {
			if o.err != nil {
				t.Fatal(o.err)
			}
			b, _ := json.Marshal(o.obj)
			if strings.Contains(string(b), secret[:6]) {
				t.Errorf("%s: the status of %s quotes the ConfigMap: %s", what, o.name, b)
			}
		}
	}

	h := hostCondition(t, ns, "h", v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonConfigMapNotConsented)
	want := "kubectl label configmap app-settings -n " + ns + " " + v1alpha1.LabelPluginAuth + "=true"
	if c := findCondition(h.Status.Conditions, v1alpha1.ConditionDegraded); !strings.Contains(c.Message, want) {
		t.Errorf("Degraded message %q does not give the command that marks the ConfigMap (%q)", c.Message, want)
	}
	if c := findCondition(h.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonConfigMapNotConsented {
		t.Errorf("Ready = %+v, want False/%s", c, v1alpha1.ReasonConfigMapNotConsented)
	}
	if res := computeStatus(t, host, "PluginHost"); !strings.Contains(res.Message, "not marked") {
		t.Errorf("kstatus %s %q, want the refusal", res.Status, res.Message)
	}
	noSecret("unmarked")

	// Marked with the command the message gives: read, and refused as config, without a quote.
	args := append([]string{"--kubeconfig", env.Kubeconfig}, strings.Fields(strings.TrimPrefix(want, "kubectl "))...)
	if out, err := exec.Command(env.Kubectl, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", want, err, out)
	}
	testutil.Eventually(t, wait, "Degraded ConfigInvalid naming the place", func() error {
		if err := get(t, h, ns, "h"); err != nil {
			return err
		}
		if err := condition(h.Status.Conditions, v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonConfigInvalid, 0); err != nil {
			return err
		}
		return contains(`ConfigMap "app-settings" key "cfg"`, "config must be a JSON object")(findCondition(h.Status.Conditions, v1alpha1.ConditionDegraded).Message)
	})
	noSecret("marked, not config")

	// Real config: rendered.
	update(t, cm, func(cm *corev1.ConfigMap) {
		cm.Data["cfg"] = `{"plugins":[{"name":"from-user","type":"counter"}]}`
	})
	configMapData(t, ns, "h", contains(`"from-user"`, `"p"`))
	hostCondition(t, ns, "h", v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected)
	noSecret("fixed")
	// Every event of the namespace, over the whole story.
	list := &eventsv1.EventList{}
	if err := env.Client.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if strings.Contains(e.Note, secret[:6]) {
			t.Errorf("event %s quotes the ConfigMap: %s", e.Reason, e.Note)
		}
	}
}
