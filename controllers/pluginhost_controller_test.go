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
	"fmt"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/controllers"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
	"github.com/hotreload/plugin-operator/internal/testing/kubeletsim"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// entry is one plugin of a rendered config.json with every default spelled out.
func entry(name, auth, options string) string {
	s := `    {
      "name": "` + name + `",
      "type": "counter",
      "transport": "http",
      "enabled": true,
      "auth": ` + auth + `,
      "connection": {
        "max_connections": 10,
        "max_idle_connections": 5,
        "idle_timeout": "30s",
        "connection_timeout": "10s",
        "request_timeout": "30s",
        "keep_alive": true
      }`
	if options != "" {
		s += `,
      "options": ` + options
	}
	return s + "\n    }"
}

func configJSON(entries ...string) string {
	return "{\n  \"plugins\": [\n" + strings.Join(entries, ",\n") + "\n  ]\n}\n"
}

const noAuth = `{
        "method": "none"
      }`

func TestConfigMapContentAndChildren(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManager(t, ns, testOptions())

	host := newHost(ns, "demo", "demo")
	create(t, host,
		authSecret(ns, "tokens", map[string]string{"token": "s3cret"}),
		newPlugin(ns, "counter-2", "demo", 10),
		newPlugin(ns, "counter-1", "demo", 1),
		newPlugin(ns, "unselected", "other", 1),
	)
	bearer := newPlugin(ns, "secured", "demo", 3)
	bearer.Spec.Auth = &v1alpha1.PluginAuth{Method: v1alpha1.AuthMethodBearer, SecretRef: &v1alpha1.SecretReference{Name: "tokens"}}
	create(t, bearer)
	advertise(t, ns, "demo")

	want := configJSON(
		entry("counter-1", noAuth, `{
        "increment": 1
      }`),
		entry("counter-2", noAuth, `{
        "increment": 10
      }`),
		entry("secured", `{
        "method": "bearer",
        "token_file": "/var/run/plugins/secrets/secured.token"
      }`, `{
        "increment": 3
      }`),
	)
	cm, data := configMapData(t, ns, "demo", func(s string) error {
		if s != want {
			return fmt.Errorf("config.json is\n%s\nwant\n%s", s, want)
		}
		return nil
	})
	// config.json and its delivery sequence, which the annotation repeats, with the revision.
	seq, err := strconv.ParseUint(cm.Data[controllers.ConfigSequenceKey], 10, 64)
	if len(cm.Data) != 2 || err != nil || seq == 0 || cm.Annotations[controllers.ConfigSequenceAnnotation] != cm.Data[controllers.ConfigSequenceKey] ||
		cm.Annotations[v1alpha1.ConfigRevisionAnnotation] != pluginconfig.Revision([]byte(data)) {
		t.Errorf("ConfigMap keys %v annotations %v, want config.json and a positive %s, repeated in %s with %s", cm.Data, cm.Annotations,
			controllers.ConfigSequenceKey, controllers.ConfigSequenceAnnotation, v1alpha1.ConfigRevisionAnnotation)
	}

	h := &v1alpha1.PluginHost{}
	testutil.Eventually(t, wait, "host status", func() error {
		if err := get(t, h, ns, "demo"); err != nil {
			return err
		}
		if h.Status.ConfigRevision != pluginconfig.Revision([]byte(data)) || h.Status.PluginCount != 3 ||
			len(h.Status.Plugins) != 3 || h.Status.ObservedGeneration != h.Generation {
			return fmt.Errorf("status %+v", h.Status)
		}
		return nil
	})
	if h.Status.URL != "http://demo."+ns+".svc:8080" {
		t.Errorf("url %q", h.Status.URL)
	}

	creds := &corev1.Secret{}
	if err := get(t, creds, ns, "demo-credentials"); err != nil {
		t.Fatal(err)
	}
	// The credentials, the key of their revision (TestCredentialsRevisionIsKeyed) and the
	// config push token derived from it (64 hex digits).
	if len(creds.Data) != 3 || string(creds.Data["secured.token"]) != "s3cret" || len(creds.Data[controllers.RevisionKeyField]) != 32 || len(creds.Data[controllers.PushTokenField]) != 64 {
		t.Errorf("credentials %v, want secured.token=s3cret, %s and %s only", creds.Data, controllers.RevisionKeyField, controllers.PushTokenField)
	}

	// Every child: a controller owner reference to the host, the host label, our field owner.
	deploy, svc := &appsv1.Deployment{}, &corev1.Service{}
	for name, obj := range map[string]client.Object{"demo-config": &corev1.ConfigMap{}, "demo-credentials": &corev1.Secret{}, "demo": deploy} {
		if err := get(t, obj, ns, name); err != nil {
			t.Fatal(err)
		}
		checkChild(t, h, obj)
	}
	testutil.Eventually(t, wait, "Service", func() error { return get(t, svc, ns, "demo") })
	checkChild(t, h, svc)
	if p := svc.Spec.Ports[0]; p.Port != 8080 || p.TargetPort.StrVal != "http" || svc.Spec.Selector[v1alpha1.LabelHost] != "demo" {
		t.Errorf("service %+v", svc.Spec)
	}
	if c := deploy.Spec.Template.Spec.Containers[0]; c.Image != "example.com/pluginhost:test" {
		t.Errorf("image %q, want the default host image", c.Image)
	}

	// No pod is ready (no kubelet; the advertising one is not): the host waits, without
	// being degraded.
	hostCondition(t, ns, "demo", v1alpha1.ConditionProgressing, metav1.ConditionTrue, v1alpha1.ReasonRollingOut)
	hostCondition(t, ns, "demo", v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected)
	hostCondition(t, ns, "demo", v1alpha1.ConditionAvailable, metav1.ConditionFalse, v1alpha1.ReasonWorkloadUnavailable)

	pluginCondition(t, ns, "counter-1", v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	p := pluginCondition(t, ns, "counter-1", v1alpha1.ConditionApplied, metav1.ConditionFalse, v1alpha1.ReasonRollingOut)
	if p.Status.Host != "demo" || p.Status.URL != "http://demo."+ns+".svc:8080/plugins/counter-1" {
		t.Errorf("plugin host %q url %q", p.Status.Host, p.Status.URL)
	}
	pluginCondition(t, ns, "unselected", v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonNoHost)
}

func checkChild(t *testing.T, host *v1alpha1.PluginHost, obj client.Object) {
	t.Helper()
	refs := obj.GetOwnerReferences()
	if len(refs) != 1 || refs[0].UID != host.UID || refs[0].Kind != "PluginHost" || !ptr.Deref(refs[0].Controller, false) {
		t.Errorf("%T %s owner references %+v, want the PluginHost as controller", obj, obj.GetName(), refs)
	}
	if obj.GetLabels()[v1alpha1.LabelHost] != host.Name {
		t.Errorf("%T %s labels %v", obj, obj.GetName(), obj.GetLabels())
	}
	for _, mf := range obj.GetManagedFields() {
		if mf.Manager != v1alpha1.FieldOwner && mf.Operation == metav1.ManagedFieldsOperationApply {
			t.Errorf("%T %s applied by %q", obj, obj.GetName(), mf.Manager)
		}
	}
}

// TestConfigChangesKeepPodTemplate edits a Plugin, adds one with credentials, deletes one
// and edits the user ConfigMap: the ConfigMap and revision change every time, the
// Deployment's pod template never does.
func TestConfigChangesKeepPodTemplate(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManager(t, ns, testOptions())

	user := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "base", Labels: consentLabels()},
		Data: map[string]string{"config.json": `{"plugins":[{"name":"from-user","type":"counter"}]}`}}
	host := newHost(ns, "tpl", "tpl")
	host.Spec.ConfigMapRef = &v1alpha1.ConfigMapKeyReference{Name: "base"}
	c1, c2 := newPlugin(ns, "c1", "tpl", 1), newPlugin(ns, "c2", "tpl", 1)
	create(t, user, host, c1, c2)
	advertise(t, ns, "tpl")

	_, data := configMapData(t, ns, "tpl", contains(`"c1"`, `"c2"`, `"from-user"`))
	deploy := &appsv1.Deployment{}
	testutil.Eventually(t, wait, "Deployment", func() error { return get(t, deploy, ns, "tpl") })
	template, deployGen := deploy.Spec.Template.DeepCopy(), deploy.Generation

	revisions := map[string]bool{pluginconfig.Revision([]byte(data)): true}
	step := func(what string, change func(), check func(string) error) {
		t.Helper()
		change()
		_, data := configMapData(t, ns, "tpl", check)
		rev := pluginconfig.Revision([]byte(data))
		if revisions[rev] {
			t.Errorf("%s: revision %s seen before", what, rev)
		}
		revisions[rev] = true
		testutil.Eventually(t, wait, what+": host status revision", func() error {
			h := &v1alpha1.PluginHost{}
			if err := get(t, h, ns, "tpl"); err != nil {
				return err
			}
			if h.Status.ConfigRevision != rev {
				return fmt.Errorf("configRevision %s, want %s", h.Status.ConfigRevision, rev)
			}
			return nil
		})
		if err := get(t, deploy, ns, "tpl"); err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(template, &deploy.Spec.Template) || deploy.Generation != deployGen {
			t.Errorf("%s changed the pod template (generation %d -> %d):\nbefore %+v\nafter  %+v",
				what, deployGen, deploy.Generation, template, deploy.Spec.Template)
		}
	}

	step("editing a Plugin", func() {
		update(t, c1, func(p *v1alpha1.Plugin) { p.Spec.Options.Increment = ptr.To[int32](42) })
	}, contains(`"increment": 42`))
	pluginCondition(t, ns, "c1", v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted)

	step("adding a Plugin with credentials", func() {
		create(t, authSecret(ns, "k", map[string]string{"api-key": "abc"}))
		p := newPlugin(ns, "keyed", "tpl", 1)
		p.Spec.Auth = &v1alpha1.PluginAuth{Method: v1alpha1.AuthMethodAPIKey, SecretRef: &v1alpha1.SecretReference{Name: "k"}}
		create(t, p)
	}, contains(`"api_key_file": "/var/run/plugins/secrets/keyed.api-key"`))

	step("rotating a credential", func() {
		// The config is unchanged: only the credentials Secret changes, so add a plugin too
		// and check both.
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "k"}}
		update(t, s, func(s *corev1.Secret) { s.Data = map[string][]byte{"api-key": []byte("rotated")} })
		create(t, newPlugin(ns, "c3", "tpl", 1))
	}, contains(`"c3"`))
	testutil.Eventually(t, wait, "rotated credential", func() error {
		s := &corev1.Secret{}
		if err := get(t, s, ns, "tpl-credentials"); err != nil {
			return err
		}
		if string(s.Data["keyed.api-key"]) != "rotated" {
			return fmt.Errorf("credentials %v", s.Data)
		}
		return nil
	})

	step("deleting a Plugin", func() {
		if err := env.Client.Delete(context.Background(), c2); err != nil {
			t.Fatal(err)
		}
	}, lacks(`"c2"`))
	testutil.Eventually(t, wait, "c2 gone from status.plugins", func() error {
		h := &v1alpha1.PluginHost{}
		if err := get(t, h, ns, "tpl"); err != nil {
			return err
		}
		for _, e := range h.Status.Plugins {
			if e.Name == "c2" {
				return fmt.Errorf("still listed: %+v", e)
			}
		}
		return nil
	})

	step("relabelling a Plugin away", func() {
		update(t, c1, func(p *v1alpha1.Plugin) { p.Labels["app"] = "elsewhere" })
	}, lacks(`"c1"`))
	pluginCondition(t, ns, "c1", v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonNoHost)

	step("editing the user ConfigMap", func() {
		update(t, user, func(cm *corev1.ConfigMap) {
			cm.Data["config.json"] = `{"plugins":[{"name":"from-user","type":"counter","options":{"increment":9}}]}`
		})
	}, contains(`"increment": 9`))
}

// TestRejectedPlugins: invalid and conflicting Plugins are left out with a precise reason,
// and the others still roll out.
func TestRejectedPlugins(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManager(t, ns, testOptions())

	user := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "base", Labels: consentLabels()},
		Data: map[string]string{"config.json": `{"plugins":[{"name":"taken","type":"counter"}]}`}}
	host := newHost(ns, "main", "rej")
	host.Spec.ConfigMapRef = &v1alpha1.ConfigMapKeyReference{Name: "base"}
	create(t, user, host)
	advertise(t, ns, "main")

	slow := newPlugin(ns, "slow", "rej", 1)
	slow.Spec.Connection = &v1alpha1.ConnectionSpec{RequestTimeout: "48h"} // admission allows it, the runtime does not
	odd := newPlugin(ns, "odd-option", "rej", 1)
	odd.Spec.Options.Extra = map[string]json.RawMessage{"step": json.RawMessage("2")}
	nosecret := newPlugin(ns, "no-secret", "rej", 1)
	nosecret.Spec.Auth = &v1alpha1.PluginAuth{Method: v1alpha1.AuthMethodBearer, SecretRef: &v1alpha1.SecretReference{Name: "later"}}
	create(t, newPlugin(ns, "good", "rej", 1), slow, odd, nosecret, newPlugin(ns, "taken", "rej", 1))

	configMapData(t, ns, "main", func(s string) error {
		if err := contains(`"good"`, `"taken"`)(s); err != nil {
			return err
		}
		return lacks(`"slow"`, `"odd-option"`, `"no-secret"`)(s)
	})
	for name, want := range map[string]struct{ reason, msg string }{
		"slow":       {v1alpha1.ReasonInvalidSpec, "spec.connection.requestTimeout"},
		"odd-option": {v1alpha1.ReasonInvalidOptions, "spec.options.step"},
		"no-secret":  {v1alpha1.ReasonSecretNotFound, `Secret "later"`},
		"taken":      {v1alpha1.ReasonNameConflict, `ConfigMap "base"`},
	} {
		p := pluginCondition(t, ns, name, v1alpha1.ConditionAccepted, metav1.ConditionFalse, want.reason)
		c := findCondition(p.Status.Conditions, v1alpha1.ConditionAccepted)
		if !strings.Contains(c.Message, want.msg) {
			t.Errorf("%s: Accepted message %q does not contain %q", name, c.Message, want.msg)
		}
		pluginCondition(t, ns, name, v1alpha1.ConditionReady, metav1.ConditionFalse, want.reason)
		waitEvent(t, ns, v1alpha1.EventPluginRejected, name, want.reason)
	}
	pluginCondition(t, ns, "good", v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	// The user's plugin counts, the rejected ones do not.
	testutil.Eventually(t, wait, "pluginCount", func() error {
		h := &v1alpha1.PluginHost{}
		if err := get(t, h, ns, "main"); err != nil {
			return err
		}
		if h.Status.PluginCount != 2 {
			return fmt.Errorf("pluginCount %d, want 2", h.Status.PluginCount)
		}
		return nil
	})

	// The Secret appears, not marked for plugin auth: still left out, with how to mark it,
	// and none of its keys reach the host's credentials.
	later := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "later"}, StringData: map[string]string{"token": "t"}}
	create(t, later)
	np := pluginCondition(t, ns, "no-secret", v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonSecretNotMarked)
	want := "kubectl label secret later -n " + ns + " " + v1alpha1.LabelPluginAuth + "=true"
	if c := findCondition(np.Status.Conditions, v1alpha1.ConditionAccepted); !strings.Contains(c.Message, want) {
		t.Errorf("Accepted message %q does not say how to mark the Secret (%q)", c.Message, want)
	}
	waitEvent(t, ns, v1alpha1.EventPluginRejected, "no-secret", v1alpha1.ReasonSecretNotMarked)
	creds := &corev1.Secret{}
	if err := get(t, creds, ns, "main-credentials"); err != nil {
		t.Fatal(err)
	}
	// Nothing but the key of the credentials revision (TestCredentialsRevisionIsKeyed) and
	// the push token.
	_, key := creds.Data[controllers.RevisionKeyField]
	if _, token := creds.Data[controllers.PushTokenField]; len(creds.Data) != 2 || !key || !token {
		t.Errorf("credentials hold %d keys of an unmarked Secret", len(creds.Data)-2)
	}
	// Marked: the Plugin is accepted and rolls out, without touching the Plugin.
	update(t, later, func(s *corev1.Secret) { s.Labels = map[string]string{v1alpha1.LabelPluginAuth: "true"} })
	configMapData(t, ns, "main", contains(`"no-secret"`, `"token_file": "/var/run/plugins/secrets/no-secret.token"`))
	pluginCondition(t, ns, "no-secret", v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted)

	// The spec is fixed: accepted.
	update(t, slow, func(p *v1alpha1.Plugin) { p.Spec.Connection.RequestTimeout = "30s" })
	configMapData(t, ns, "main", contains(`"slow"`))
	pluginCondition(t, ns, "slow", v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted)

	// A second, younger host that also selects "good": the older host keeps running it.
	young := newHost(ns, "young", "rej")
	create(t, young)
	advertise(t, ns, "young")
	testutil.Eventually(t, wait, "young host's verdict", func() error {
		h := &v1alpha1.PluginHost{}
		if err := get(t, h, ns, "young"); err != nil {
			return err
		}
		for _, e := range h.Status.Plugins {
			if e.Name == "good" && e.Reason == v1alpha1.ReasonNameConflict && strings.Contains(e.Message, `PluginHost "main"`) {
				return nil
			}
		}
		return fmt.Errorf("status.plugins %+v", h.Status.Plugins)
	})
	configMapData(t, ns, "young", lacks(`"good"`))
	configMapData(t, ns, "main", contains(`"good"`))
	waitEvent(t, ns, v1alpha1.EventPluginRejected, "good", "young")
	p := pluginCondition(t, ns, "good", v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	if c := findCondition(p.Status.Conditions, v1alpha1.ConditionAccepted); !strings.Contains(c.Message, "also selected by PluginHost young, which leaves it out") || p.Status.Host != "main" {
		t.Errorf("Accepted %q host %q: want main, naming young", c.Message, p.Status.Host)
	}

	// The older host goes away: the younger one takes the Plugin over.
	if err := env.Client.Delete(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	configMapData(t, ns, "young", contains(`"good"`))
	testutil.Eventually(t, wait, "good moves to young", func() error {
		p := &v1alpha1.Plugin{}
		if err := get(t, p, ns, "good"); err != nil {
			return err
		}
		if p.Status.Host != "young" {
			return fmt.Errorf("host %q", p.Status.Host)
		}
		return nil
	})
}

func findCondition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return &metav1.Condition{}
}

// TestInvalidUserConfigKeepsLastConfig: a broken or missing user ConfigMap degrades the host
// and rolls out nothing new; fixing it resumes.
func TestInvalidUserConfigKeepsLastConfig(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManager(t, ns, testOptions())

	user := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "base", Labels: consentLabels()},
		Data: map[string]string{"seed.json": `{"plugins":[{"name":"from-user","type":"counter"}]}`}}
	host := newHost(ns, "keep", "keep")
	host.Spec.ConfigMapRef = &v1alpha1.ConfigMapKeyReference{Name: "base", Key: "seed.json"}
	plugin := newPlugin(ns, "p", "keep", 1)
	create(t, user, host, plugin)
	advertise(t, ns, "keep")
	good, _ := configMapData(t, ns, "keep", contains(`"from-user"`, `"p"`))
	hostCondition(t, ns, "keep", v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected)
	before := &v1alpha1.PluginHost{}
	if err := get(t, before, ns, "keep"); err != nil {
		t.Fatal(err)
	}

	unchanged := func(what string) {
		t.Helper()
		cm := &corev1.ConfigMap{}
		if err := get(t, cm, ns, "keep-config"); err != nil {
			t.Fatal(err)
		}
		if cm.ResourceVersion != good.ResourceVersion || cm.Data["config.json"] != good.Data["config.json"] {
			t.Errorf("%s: the rendered ConfigMap changed", what)
		}
		h := &v1alpha1.PluginHost{}
		if err := get(t, h, ns, "keep"); err != nil {
			t.Fatal(err)
		}
		if h.Status.ConfigRevision != before.Status.ConfigRevision {
			t.Errorf("%s: configRevision changed", what)
		}
	}

	update(t, user, func(cm *corev1.ConfigMap) { cm.Data["seed.json"] = `{"plugins": [ {"name": "from-user", ` })
	h := hostCondition(t, ns, "keep", v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonConfigInvalid)
	if c := findCondition(h.Status.Conditions, v1alpha1.ConditionDegraded); !strings.Contains(c.Message, "invalid JSON") || !strings.Contains(c.Message, `"base"`) {
		t.Errorf("Degraded message %q: want the parser's error and the ConfigMap's name", c.Message)
	}
	// A Plugin edit now cannot roll out.
	update(t, plugin, func(p *v1alpha1.Plugin) { p.Spec.Options.Increment = ptr.To[int32](5) })
	pluginCondition(t, ns, "p", v1alpha1.ConditionApplied, metav1.ConditionFalse, v1alpha1.ReasonConfigInvalid)
	unchanged("invalid JSON")

	update(t, user, func(cm *corev1.ConfigMap) { cm.Data["seed.json"] = `{"plugins":[{"name":"from-user","type":"gauge"}]}` })
	testutil.Eventually(t, wait, "Degraded names the field at fault", func() error {
		if err := get(t, h, ns, "keep"); err != nil {
			return err
		}
		if err := condition(h.Status.Conditions, v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonConfigInvalid, 0); err != nil {
			return err
		}
		// The field and the schema's supported values, not the ConfigMap's value.
		msg := findCondition(h.Status.Conditions, v1alpha1.ConditionDegraded).Message
		if err := contains(`plugins[0].type: Unsupported value`, `"counter"`)(msg); err != nil {
			return err
		}
		return lacks(`gauge`)(msg)
	})
	unchanged("invalid content")

	if err := env.Client.Delete(context.Background(), user); err != nil {
		t.Fatal(err)
	}
	hostCondition(t, ns, "keep", v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonConfigMapNotFound)
	unchanged("missing ConfigMap")

	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "base", Labels: consentLabels()},
		Data: map[string]string{"seed.json": `{"plugins":[{"name":"from-user","type":"counter"}]}`}})
	hostCondition(t, ns, "keep", v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected)
	configMapData(t, ns, "keep", contains(`"increment": 5`))
	pluginCondition(t, ns, "p", v1alpha1.ConditionApplied, metav1.ConditionFalse, v1alpha1.ReasonRollingOut)
}

// TestPodNudge: the host's pods get the revision annotation on every change, and not at all
// with --pod-nudge=false.
func TestPodNudge(t *testing.T) {
	needEnv(t)
	for _, nudge := range []bool{true, false} {
		t.Run(fmt.Sprintf("pod-nudge=%v", nudge), func(t *testing.T) {
			ns := newNamespace(t)
			opts := testOptions()
			opts.PodNudge = nudge
			startManager(t, ns, opts)
			p := newPlugin(ns, "p", "nudge", 1)
			create(t, newHost(ns, "n", "nudge"), p)
			advertise(t, ns, "n")
			configMapData(t, ns, "n", contains(`"p"`))
			pod := hostPod(t, ns, "n", "n-0", 8080)
			impostor := impostorPod(t, ns, "n", "n-impostor", 8080, nil)
			other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unrelated"},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}
			create(t, other)

			for _, inc := range []int32{2, 3} {
				update(t, p, func(p *v1alpha1.Plugin) { p.Spec.Options.Increment = &inc })
				_, data := configMapData(t, ns, "n", contains(fmt.Sprintf(`"increment": %d`, inc)))
				rev := pluginconfig.Revision([]byte(data))
				if nudge {
					testutil.Eventually(t, wait, "annotation", func() error {
						if err := get(t, pod, ns, pod.Name); err != nil {
							return err
						}
						if got := pod.Annotations[v1alpha1.ConfigRevisionAnnotation]; got != rev {
							return fmt.Errorf("annotation %q, want %q", got, rev)
						}
						return nil
					})
					continue
				}
				// The reconcile that would nudge is the one that records the revision.
				testutil.Eventually(t, wait, "revision recorded", func() error {
					h := &v1alpha1.PluginHost{}
					if err := get(t, h, ns, "n"); err != nil {
						return err
					}
					if h.Status.ConfigRevision != rev {
						return fmt.Errorf("configRevision %s", h.Status.ConfigRevision)
					}
					return nil
				})
				if err := get(t, pod, ns, pod.Name); err != nil {
					t.Fatal(err)
				}
				if v, ok := pod.Annotations[v1alpha1.ConfigRevisionAnnotation]; ok {
					t.Errorf("pod annotated %q with --pod-nudge=false", v)
				}
			}
			if err := get(t, other, ns, "unrelated"); err != nil {
				t.Fatal(err)
			}
			if _, ok := other.Annotations[v1alpha1.ConfigRevisionAnnotation]; ok {
				t.Error("a pod of no host was annotated")
			}
			// The pod the host owns was annotated (or its revision recorded) after this one
			// existed: a reconcile saw it and left it alone.
			if err := get(t, impostor, ns, impostor.Name); err != nil {
				t.Fatal(err)
			}
			if v, ok := impostor.Annotations[v1alpha1.ConfigRevisionAnnotation]; ok {
				t.Errorf("a pod with the host's labels that its Deployment does not own was annotated %q", v)
			}
		})
	}
}

// hostPod creates a pod of host as the Deployment controller would: through the
// Deployment's ReplicaSet of its current template (kubeletsim.EnsureReplicaSet), with the
// runtime's ports (API and operational) set to port: the test runtimes serve both on one
// listener. Nothing runs it: the caller marks it running if it needs to.
func hostPod(t testing.TB, ns, host, name string, port int32) *corev1.Pod {
	t.Helper()
	deploy := &appsv1.Deployment{}
	testutil.Eventually(t, wait, "Deployment "+host, func() error { return get(t, deploy, ns, host) })
	rs, err := kubeletsim.EnsureReplicaSet(context.Background(), env.Client, deploy, 1)
	if err != nil {
		t.Fatal(err)
	}
	pod := kubeletsim.NewPod(rs, name)
	for i := range pod.Spec.Containers[0].Ports {
		pod.Spec.Containers[0].Ports[i].ContainerPort = port
	}
	create(t, pod)
	return pod
}

// authSecret is a Secret marked for Plugins' auth.
func authSecret(ns, name string, data map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{v1alpha1.LabelPluginAuth: "true"}},
		StringData: data}
}

// impostorPod creates a pod from host's pod template, with the runtime's ports set to port,
// controlled by owner (nil: none). With an owner other than the host's ReplicaSet, it is what
// anyone allowed to create pods in the namespace can make: the host's labels on a pod the
// host's Deployment does not own.
func impostorPod(t testing.TB, ns, host, name string, port int32, owner *metav1.OwnerReference) *corev1.Pod {
	t.Helper()
	deploy := &appsv1.Deployment{}
	testutil.Eventually(t, wait, "Deployment "+host, func() error { return get(t, deploy, ns, host) })
	tmpl := deploy.Spec.Template.DeepCopy()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: tmpl.Labels, Annotations: tmpl.Annotations},
		Spec: tmpl.Spec}
	if owner != nil {
		pod.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	for i := range pod.Spec.Containers[0].Ports {
		pod.Spec.Containers[0].Ports[i].ContainerPort = port
	}
	create(t, pod)
	return pod
}

func TestPersistence(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManager(t, ns, testOptions())
	host := newHost(ns, "stateful", "s")
	host.Spec.Persistence = &v1alpha1.PersistenceSpec{Enabled: true, Size: ptr.To(resource.MustParse("2Gi")), StorageClassName: ptr.To("fast")}
	host.Spec.Service = &v1alpha1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Port: 9000}
	create(t, host)

	pvc, deploy, svc := &corev1.PersistentVolumeClaim{}, &appsv1.Deployment{}, &corev1.Service{}
	testutil.Eventually(t, wait, "children", func() error {
		for name, o := range map[string]client.Object{"stateful-state": pvc, "stateful": deploy} {
			if err := get(t, o, ns, name); err != nil {
				return err
			}
		}
		return get(t, svc, ns, "stateful")
	})
	h := &v1alpha1.PluginHost{}
	if err := get(t, h, ns, "stateful"); err != nil {
		t.Fatal(err)
	}
	checkChild(t, h, pvc)
	if pvc.Spec.Resources.Requests.Storage().String() != "2Gi" || ptr.Deref(pvc.Spec.StorageClassName, "") != "fast" {
		t.Errorf("pvc %+v", pvc.Spec)
	}
	for _, v := range deploy.Spec.Template.Spec.Volumes {
		if v.Name == "state" && (v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "stateful-state") {
			t.Errorf("state volume %+v", v)
		}
	}
	if svc.Spec.Type != corev1.ServiceTypeNodePort || svc.Spec.Ports[0].Port != 9000 {
		t.Errorf("service %+v", svc.Spec)
	}
	testutil.Eventually(t, wait, "url", func() error {
		if err := get(t, h, ns, "stateful"); err != nil {
			return err
		}
		if h.Status.URL != "http://stateful."+ns+".svc:9000" {
			return fmt.Errorf("url %q", h.Status.URL)
		}
		return nil
	})
}

// TestInvalidSelector: a selector that admission lets through but that cannot be parsed
// degrades the host, naming the field.
func TestInvalidSelector(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManager(t, ns, testOptions())
	host := newHost(ns, "odd", "odd")
	host.Spec.PluginSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}}
	create(t, host)
	h := hostCondition(t, ns, "odd", v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonConfigInvalid)
	if msg := findCondition(h.Status.Conditions, v1alpha1.ConditionDegraded).Message; !strings.Contains(msg, "spec.pluginSelector") {
		t.Errorf("Degraded %q: want the field", msg)
	}
}
