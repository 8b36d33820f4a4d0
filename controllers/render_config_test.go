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
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

var epoch = time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)

func testHost(name string, age time.Duration, selector *metav1.LabelSelector) v1alpha1.PluginHost {
	return v1alpha1.PluginHost{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-host-" + name), Generation: 1,
			CreationTimestamp: metav1.NewTime(epoch.Add(-age))},
		Spec: v1alpha1.PluginHostSpec{PluginSelector: selector},
	}
}

func matchApp(app string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
}

func TestSelects(t *testing.T) {
	labels := map[string]string{"app": "demo", "tier": "gold"}
	tests := []struct {
		name     string
		selector *metav1.LabelSelector
		want     bool
	}{
		{"nil selects nothing", nil, false},
		{"empty selects everything", &metav1.LabelSelector{}, true},
		{"matchLabels hit", matchApp("demo"), true},
		{"matchLabels miss", matchApp("other"), false},
		{"matchExpressions In", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"gold", "silver"}}}}, true},
		{"matchExpressions DoesNotExist", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "tier", Operator: metav1.LabelSelectorOpDoesNotExist}}}, false},
		{"invalid operator selects nothing", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "tier", Operator: "Near"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := testHost("h", 0, tt.selector)
			if got := selects(&h, labels); got != tt.want {
				t.Errorf("selects = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSelectingHostsOldestFirst(t *testing.T) {
	deleting := testHost("deleting", 10*time.Hour, &metav1.LabelSelector{})
	deleting.DeletionTimestamp = &metav1.Time{Time: epoch}
	deleting.Finalizers = []string{"x"}
	hosts := []v1alpha1.PluginHost{
		testHost("young", time.Minute, &metav1.LabelSelector{}),
		testHost("b-old", time.Hour, matchApp("demo")),
		testHost("a-old", time.Hour, matchApp("demo")), // same age: name breaks the tie
		testHost("other", 2*time.Hour, matchApp("other")),
		deleting,
	}
	var names []string
	for _, h := range selectingHosts(hosts, map[string]string{"app": "demo"}) {
		names = append(names, h.Name)
	}
	if want := []string{"a-old", "b-old", "young"}; !slices.Equal(names, want) {
		t.Errorf("selectingHosts = %v, want %v", names, want)
	}
}

func TestEvaluatePlugins(t *testing.T) {
	host := testHost("main", time.Hour, matchApp("demo"))
	host.Spec.ConfigMapRef = &v1alpha1.ConfigMapKeyReference{Name: "base", Key: "config.json"}
	older := testHost("older", 2*time.Hour, matchApp("shared"))
	user := &pluginconfig.Config{Plugins: []pluginconfig.Plugin{{Name: "from-configmap", Type: "counter"}}}
	pluginconfig.SetDefaults(user)

	shared := testPlugin("shared", func(p *v1alpha1.Plugin) { p.Labels["app"] = "shared" })
	shared.Labels = map[string]string{"app": "shared"}
	sharedHost := host
	sharedHost.Spec.PluginSelector = &metav1.LabelSelector{} // main selects everything here

	marked := metav1.ObjectMeta{Labels: map[string]string{v1alpha1.LabelPluginAuth: "true"}}
	secrets := map[string]*corev1.Secret{
		"tokens":  {ObjectMeta: marked, Data: map[string][]byte{"token": []byte("t0k3n\n"), "api-key": []byte("k3y")}},
		"empties": {ObjectMeta: marked, Data: map[string][]byte{"token": []byte("\n")}},
		// Not marked: even a complete Secret is refused, whatever its keys.
		"db": {ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns", Labels: map[string]string{v1alpha1.LabelPluginAuth: "yes"}},
			Data: map[string][]byte{"token": []byte("db-password")}},
		"plain": {ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: "ns"}, Data: map[string][]byte{}},
	}
	plugins := []v1alpha1.Plugin{
		testPlugin("zeta", withIncrement(2)),
		testPlugin("bearer", withAuth(v1alpha1.AuthMethodBearer, "tokens")),
		testPlugin("apikey", withAuth(v1alpha1.AuthMethodAPIKey, "tokens")),
		testPlugin("from-configmap"),
		testPlugin("no-secret", withAuth(v1alpha1.AuthMethodBearer, "missing")),
		testPlugin("no-key", withAuth(v1alpha1.AuthMethodBasic, "tokens")),
		testPlugin("empty-key", withAuth(v1alpha1.AuthMethodBearer, "empties")),
		testPlugin("unmarked", withAuth(v1alpha1.AuthMethodBearer, "db")),
		testPlugin("unmarked-no-key", withAuth(v1alpha1.AuthMethodBasic, "plain")),
		testPlugin("slow", func(p *v1alpha1.Plugin) { p.Spec.Connection.RequestTimeout = "25h" }),
		shared,
	}
	ev := evaluatePlugins(configInputs{
		Host: &sharedHost, Hosts: []v1alpha1.PluginHost{sharedHost, older}, Plugins: plugins,
		Secrets: secrets, User: user, SecretsDir: "/s", Types: builtinTypes(),
	})

	type verdict struct{ reason, msg string }
	want := map[string]verdict{
		"apikey":         {v1alpha1.ReasonAccepted, ""},
		"bearer":         {v1alpha1.ReasonAccepted, ""},
		"zeta":           {v1alpha1.ReasonAccepted, ""},
		"empty-key":      {v1alpha1.ReasonSecretNotFound, `Secret "empties" has an empty key "token"`},
		"from-configmap": {v1alpha1.ReasonNameConflict, `ConfigMap "base" (key "config.json") of PluginHost "main" already defines a plugin named "from-configmap"`},
		"no-key":         {v1alpha1.ReasonSecretNotFound, `Secret "tokens" has no key "username", which auth method "basic" reads`},
		"no-secret":      {v1alpha1.ReasonSecretNotFound, `Secret "missing" (spec.auth.secretRef) not found in namespace "ns"`},
		"shared":         {v1alpha1.ReasonNameConflict, `PluginHost "older" also selects this Plugin and runs it`},
		"slow":           {v1alpha1.ReasonInvalidSpec, "spec.connection.requestTimeout"},
		"unmarked": {v1alpha1.ReasonSecretNotMarked,
			`Secret "db" (spec.auth.secretRef) is not marked for plugin auth, so its keys are not mounted into the PluginHost's pods; ` +
				`if it is meant for this, label it: kubectl label secret db -n ns plugins.hotreload.io/plugin-auth=true`},
		// Consent is checked before the keys: the message says nothing of the Secret's content.
		"unmarked-no-key": {v1alpha1.ReasonSecretNotMarked, `Secret "plain" (spec.auth.secretRef) is not marked for plugin auth`},
	}
	var names []string
	for _, e := range ev.Plugins {
		names = append(names, e.Name)
		w, ok := want[e.Name]
		if !ok {
			t.Errorf("unexpected entry %q", e.Name)
			continue
		}
		if e.Reason != w.reason || !strings.Contains(e.Message, w.msg) {
			t.Errorf("%s: got %s %q, want %s containing %q", e.Name, e.Reason, e.Message, w.reason, w.msg)
		}
		if string(e.UID) != "uid-"+e.Name || e.Generation != 1 || e.Revision != "" {
			t.Errorf("%s: entry %+v", e.Name, e)
		}
	}
	if !slices.IsSorted(names) || len(names) != len(want) {
		t.Errorf("entries %v: want all %d, sorted", names, len(want))
	}
	var accepted []string
	for _, p := range ev.Accepted {
		accepted = append(accepted, p.Name)
	}
	if w := []string{"apikey", "bearer", "zeta"}; !slices.Equal(accepted, w) {
		t.Errorf("accepted = %v, want %v", accepted, w)
	}
	wantCreds := map[string]string{"apikey.api-key": "k3y", "bearer.token": "t0k3n\n"}
	if len(ev.Credentials) != len(wantCreds) {
		t.Errorf("credentials %v, want keys of %v", ev.Credentials, wantCreds)
	}
	for k, v := range wantCreds {
		if string(ev.Credentials[k]) != v {
			t.Errorf("credentials[%s] = %q, want %q", k, ev.Credentials[k], v)
		}
	}
}

func TestRenderConfigExact(t *testing.T) {
	reg := builtinTypes()
	user, err := parseUserConfig([]byte(`{"plugins":[{"name":"m-user","type":"counter","options":{"increment":5}}]}`), reg)
	if err != nil {
		t.Fatal(err)
	}
	var accepted []pluginconfig.Plugin
	for _, p := range []v1alpha1.Plugin{testPlugin("z-last", withAuth(v1alpha1.AuthMethodBearer, "s")), testPlugin("a-first", withIncrement(3))} {
		pl, errs := convertPlugin(&p, "/var/run/plugins/secrets")
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		accepted = append(accepted, pl)
	}
	got, err := renderConfig(user, accepted, reg)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{
  "plugins": [
    {
      "name": "a-first",
      "type": "counter",
      "transport": "http",
      "enabled": true,
      "auth": {
        "method": "none"
      },
      "connection": {
        "max_connections": 10,
        "max_idle_connections": 5,
        "idle_timeout": "30s",
        "connection_timeout": "10s",
        "request_timeout": "30s",
        "keep_alive": true
      },
      "options": {
        "increment": 3
      }
    },
    {
      "name": "m-user",
      "type": "counter",
      "transport": "http",
      "enabled": true,
      "auth": {
        "method": "none"
      },
      "connection": {
        "max_connections": 10,
        "max_idle_connections": 5,
        "idle_timeout": "30s",
        "connection_timeout": "10s",
        "request_timeout": "30s",
        "keep_alive": true
      },
      "options": {
        "increment": 5
      }
    },
    {
      "name": "z-last",
      "type": "counter",
      "transport": "http",
      "enabled": true,
      "auth": {
        "method": "bearer",
        "token_file": "/var/run/plugins/secrets/z-last.token"
      },
      "connection": {
        "max_connections": 10,
        "max_idle_connections": 5,
        "idle_timeout": "30s",
        "connection_timeout": "10s",
        "request_timeout": "30s",
        "keep_alive": true
      }
    }
  ]
}
`
	if string(got) != want {
		t.Errorf("rendered:\n%s\nwant:\n%s", got, want)
	}
	// What the operator renders, the runtime parses back to the same bytes.
	back, err := pluginconfig.Parse(got, reg)
	if err != nil {
		t.Fatalf("runtime refuses the rendered config: %v", err)
	}
	again, _ := pluginconfig.Encode(back)
	if !bytes.Equal(again, got) {
		t.Errorf("re-encoding the parsed config changes it:\n%s", again)
	}
}

func TestRenderConfigEmpty(t *testing.T) {
	got, err := renderConfig(nil, nil, builtinTypes())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "{\n  \"plugins\": []\n}\n" {
		t.Errorf("empty config = %q", got)
	}
}

// TestRenderDeterministic renders the same Plugins, listed and evaluated in random orders,
// and wants the same bytes and revision every time; a one-field change changes the revision.
func TestRenderDeterministic(t *testing.T) {
	reg := builtinTypes()
	host := testHost("h", time.Hour, matchApp("demo"))
	var plugins []v1alpha1.Plugin
	for i := range 50 {
		plugins = append(plugins, testPlugin(string(rune('a'+i%26))+strings.Repeat("x", i/26)+"-p", withIncrement(int32(i))))
	}
	render := func(ps []v1alpha1.Plugin) []byte {
		ev := evaluatePlugins(configInputs{Host: &host, Hosts: []v1alpha1.PluginHost{host}, Plugins: ps, SecretsDir: "/s", Types: reg})
		b, err := renderConfig(nil, ev.Accepted, reg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first := render(plugins)
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := slices.Clone(plugins)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := render(shuffled); !bytes.Equal(got, first) {
			t.Fatalf("rendering depends on the order of the Plugins")
		}
	}
	changed := slices.Clone(plugins)
	changed[7] = testPlugin(changed[7].Name, withIncrement(1000))
	if pluginconfig.Revision(render(changed)) == pluginconfig.Revision(first) {
		t.Error("changing one Plugin does not change the revision")
	}
	if rev := pluginconfig.Revision(first); !strings.HasPrefix(rev, v1alpha1.ConfigRevisionPrefix) || len(rev) != len("sha256:")+64 {
		t.Errorf("revision %q is not sha256:<64 hex>", rev)
	}
}

func TestRenderConfigRefusesOversize(t *testing.T) {
	reg := builtinTypes()
	var accepted []pluginconfig.Plugin
	for i := range 4000 {
		p := testPlugin(strings.Repeat("n", 40)+string(rune('a'+i%26))+strings.Repeat("z", i/26), withIncrement(1))
		pl, _ := convertPlugin(&p, "/s")
		accepted = append(accepted, pl)
	}
	if _, err := renderConfig(nil, accepted, reg); err == nil || !strings.Contains(err.Error(), "byte limit") {
		t.Errorf("err = %v, want the ConfigMap size limit", err)
	}
}
