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
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/controllers"
	"github.com/hotreload/plugin-operator/internal/hostapi"
	"github.com/hotreload/plugin-operator/internal/testing/kubeletsim"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// One bad Plugin stalls nothing else of a shared host (issue 20): a Plugin that cannot be
// rendered as it is is refused alone, with a capped message, and the host's other Plugins
// keep rolling out.

// checkMessagesCapped fails for a condition of p, or a status.plugins message of h, over
// controllers.MaxStatusMessageBytes.
func checkMessagesCapped(t *testing.T, p *v1alpha1.Plugin, h *v1alpha1.PluginHost) {
	t.Helper()
	if p != nil {
		for _, c := range p.Status.Conditions {
			if len(c.Message) > controllers.MaxStatusMessageBytes {
				t.Errorf("Plugin %s: %s message of %d bytes, over %d", p.Name, c.Type, len(c.Message), controllers.MaxStatusMessageBytes)
			}
		}
	}
	if h != nil {
		for _, c := range h.Status.Conditions {
			if len(c.Message) > controllers.MaxStatusMessageBytes {
				t.Errorf("PluginHost %s: %s message of %d bytes, over %d", h.Name, c.Type, len(c.Message), controllers.MaxStatusMessageBytes)
			}
		}
		for _, e := range h.Status.Plugins {
			if len(e.Message) > controllers.MaxStatusMessageBytes {
				t.Errorf("PluginHost %s: status.plugins[%s].message of %d bytes, over %d", h.Name, e.Name, len(e.Message), controllers.MaxStatusMessageBytes)
			}
		}
	}
}

// hostEntry waits until host's status.plugins has plugin's entry for generation gen with
// reason, and returns the host.
func hostEntry(t *testing.T, ns, host, plugin string, gen int64, reason string) *v1alpha1.PluginHost {
	t.Helper()
	h := &v1alpha1.PluginHost{}
	testutil.Eventually(t, wait, fmt.Sprintf("PluginHost %s lists %s generation %d as %s", host, plugin, gen, reason), func() error {
		if err := get(t, h, ns, host); err != nil {
			return err
		}
		for _, e := range h.Status.Plugins {
			if e.Name == plugin {
				if e.Generation != gen || e.Reason != reason {
					return fmt.Errorf("entry %+v", e)
				}
				if reason == v1alpha1.ReasonAccepted && e.Revision != h.Status.ConfigRevision {
					return fmt.Errorf("generation %d in revision %s, the host's is %s", gen, e.Revision, h.Status.ConfigRevision)
				}
				return nil
			}
		}
		return fmt.Errorf("no entry for %s in %d", plugin, len(h.Status.Plugins))
	})
	return h
}

// TestLongPluginNameServesAlone: a Plugin whose name is 249 characters, with api-key auth on
// a consenting Secret, is rendered with a credentials key bounded to a Secret key's limit
// and served by a real pluginhost with its key; the host is not stalled (no ChildRefused of
// its credentials Secret) and another Plugin's edit reaches the running process.
func TestLongPluginNameServesAlone(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	secretsDir := testutil.ShortTempDir(t)
	opts := testOptions()
	opts.SecretsMountPath = secretsDir // the runtime runs here, not in a pod
	startManager(t, ns, opts)

	host := newHost(ns, "lng", "lng")
	host.Spec.PollInterval = &metav1.Duration{Duration: 100 * time.Millisecond}
	other := newPlugin(ns, "other", "lng", 1)
	longName := strings.Repeat("a", 120) + "." + strings.Repeat("b", 128)
	if len(longName) != 249 {
		t.Fatalf("name of %d characters", len(longName))
	}
	long := newPlugin(ns, longName, "lng", 2)
	long.Spec.Auth = &v1alpha1.PluginAuth{Method: v1alpha1.AuthMethodAPIKey, SecretRef: &v1alpha1.SecretReference{Name: "lng-key"}}
	create(t, authSecret(ns, "lng-key", map[string]string{v1alpha1.SecretKeyAPIKey: "k3y"}), host, other, long)
	pod := startPod(t, ns, "lng", "lng-0")

	// The credentials Secret, projected as kubelet projects the pod's secret volume.
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	sim := kubeletsim.New(kubeletsim.Config{Client: wc, Namespace: ns, PodName: "lng-0", SecretName: "lng-credentials",
		Dir: secretsDir, SyncPeriod: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-simDone; err != nil {
			t.Errorf("kubeletsim: %v", err)
		}
	})

	pluginCondition(t, ns, longName, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	pluginCondition(t, ns, "other", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	apiKey := func(key string) int {
		req, err := http.NewRequest(http.MethodGet, "http://"+pod.addr+"/plugins/"+longName+"/get", nil)
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := apiKey("k3y"); code != http.StatusOK {
		t.Errorf("GET with the key: %d, want 200", code)
	}
	if code := apiKey(""); code != http.StatusUnauthorized {
		t.Errorf("GET without the key: %d, want 401", code)
	}

	// The other Plugin's edit rolls out to the running process.
	update(t, other, func(p *v1alpha1.Plugin) { p.Spec.Options.Increment = ptr.To[int32](3) })
	p := pluginCondition(t, ns, "other", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	if p.Status.ObservedGeneration != 2 {
		t.Errorf("other: observedGeneration %d, want 2", p.Status.ObservedGeneration)
	}
	if code, v := pod.call(t, http.MethodPost, "other", "increment", `{"value":1}`, ""); code != 200 || v != 3 {
		t.Errorf("other after its edit: %d value %d, want 200 and 3", code, v)
	}
	h := hostCondition(t, ns, "lng", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRolledOut)
	checkMessagesCapped(t, nil, h)
}

// TestThousandsOfUnknownOptionKeysStallAlone: a Plugin with 3,000 option keys its type does
// not declare is Stalled alone (InvalidOptions) with every message capped, the PluginHost's
// status stays small, and another Plugin's edit is rendered.
func TestThousandsOfUnknownOptionKeysStallAlone(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManagerBinary(t, "--watch-namespaces="+ns)
	create(t, newHost(ns, "keys", "keys"))
	advertise(t, ns, "keys")

	other := newPlugin(ns, "other", "keys", 1)
	noisy := newPlugin(ns, "noisy", "keys", 1)
	noisy.Spec.Options.Extra = map[string]json.RawMessage{}
	for i := range 3000 {
		noisy.Spec.Options.Extra[fmt.Sprintf("unknown-%04d", i)] = json.RawMessage(`1`)
	}
	create(t, other, noisy)

	p := pluginCondition(t, ns, "noisy", v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInvalidOptions)
	configMapData(t, ns, "keys", contains(`"other"`))
	update(t, other, func(p *v1alpha1.Plugin) { p.Spec.Options.Increment = ptr.To[int32](7) })
	configMapData(t, ns, "keys", contains(`"increment": 7`))
	h := hostEntry(t, ns, "keys", "other", 2, v1alpha1.ReasonAccepted)
	checkMessagesCapped(t, p, h)
	if c := findCondition(p.Status.Conditions, v1alpha1.ConditionStalled); !strings.Contains(c.Message, "spec.options.unknown-") ||
		!strings.HasSuffix(c.Message, "… (truncated)") {
		t.Errorf("Stalled message %q: want the option keys named, cut", c.Message)
	}
	status, err := json.Marshal(h.Status)
	if err != nil {
		t.Fatal(err)
	}
	if len(status) > 16<<10 {
		t.Errorf("PluginHost status of %d bytes for two Plugins: the option keys leaked into it", len(status))
	}
	if _, data := configMapData(t, ns, "keys", contains(`"other"`)); lacks(`"noisy"`)(data) != nil {
		err := lacks(`"noisy"`)(data)
		t.Errorf("rendered config: %v", err)
	}
}

// blobTypes are the built-in types and "blob", a type whose options are free-form, as a
// host's own plugin type may declare them.
func blobTypes(t *testing.T) string {
	t.Helper()
	var types []hostapi.TypeInfo
	if err := json.Unmarshal([]byte(kubeletsim.BuiltinTypesJSON), &types); err != nil {
		t.Fatal(err)
	}
	types = append(types, hostapi.TypeInfo{Name: "blob", Operations: []hostapi.Operation{{Name: "get", Method: "GET"}},
		OptionsSchema: json.RawMessage(`{"type": "object"}`)})
	b, err := json.Marshal(types)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOversizedPluginRefusedAlone: a Plugin of a free-form type whose options alone are
// larger than a ConfigMap may be (1.1 MiB: valid for its type) is refused alone with
// PluginTooLarge and a capped message; the host is not ConfigInvalid and another Plugin's
// edit is rendered.
func TestOversizedPluginRefusedAlone(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManagerBinary(t, "--watch-namespaces="+ns)
	create(t, newHost(ns, "big", "big"))
	kubeletsim.AdvertiseTypes(t, env.Client, ns, "big", blobTypes(t))

	other := newPlugin(ns, "other", "big", 1)
	create(t, other)
	configMapData(t, ns, "big", contains(`"other"`))
	huge := withOptions(t, newPlugin(ns, "huge", "big", 1), "blob", `{"data": "`+strings.Repeat("x", 1100<<10)+`"}`)
	create(t, huge)
	p := pluginCondition(t, ns, "huge", v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonPluginTooLarge)
	if c := findCondition(p.Status.Conditions, v1alpha1.ConditionStalled); !strings.Contains(c.Message, fmt.Sprint(controllers.MaxPluginEntryBytes)) {
		t.Errorf("PluginTooLarge message %q does not give the limit", c.Message)
	}

	update(t, other, func(p *v1alpha1.Plugin) { p.Spec.Options.Increment = ptr.To[int32](7) })
	configMapData(t, ns, "big", contains(`"increment": 7`))
	h := hostEntry(t, ns, "big", "other", 2, v1alpha1.ReasonAccepted)
	checkMessagesCapped(t, p, h)
	for _, c := range h.Status.Conditions {
		if c.Reason == v1alpha1.ReasonConfigInvalid {
			t.Errorf("PluginHost %s is %s: %s", c.Type, c.Reason, c.Message)
		}
	}
	if _, data := configMapData(t, ns, "big", contains(`"other"`)); lacks(`"huge"`)(data) != nil {
		err := lacks(`"huge"`)(data)
		t.Errorf("rendered config: %v", err)
	}
}

// TestHostFullRefusesTheYoungestAlone: Plugins of a free-form type, each within the limit of
// one Plugin, that together would make config.json larger than a ConfigMap may be: the host
// renders the oldest that fit and refuses the youngest alone (HostFull), instead of freezing
// (ConfigInvalid); another Plugin's edit is rendered.
func TestHostFullRefusesTheYoungestAlone(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManagerBinary(t, "--watch-namespaces="+ns)
	create(t, newHost(ns, "full", "full"))
	kubeletsim.AdvertiseTypes(t, env.Client, ns, "full", blobTypes(t))

	other := newPlugin(ns, "other", "full", 1)
	create(t, other)
	configMapData(t, ns, "full", contains(`"other"`))
	// 18 Plugins of 60 KiB: about 16 fit in 1 MiB with "other".
	const n = 18
	for i := range n {
		create(t, withOptions(t, newPlugin(ns, fmt.Sprintf("blob-%02d", i), "full", 1), "blob",
			`{"data": "`+strings.Repeat("x", 60<<10)+`"}`))
	}
	// The youngest is refused; creationTimestamp has a resolution of a second, so the name
	// orders Plugins created within one.
	p := pluginCondition(t, ns, fmt.Sprintf("blob-%02d", n-1), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonHostFull)
	update(t, other, func(p *v1alpha1.Plugin) { p.Spec.Options.Increment = ptr.To[int32](7) })
	_, data := configMapData(t, ns, "full", contains(`"increment": 7`, `"blob-00"`))
	h := hostEntry(t, ns, "full", "other", 2, v1alpha1.ReasonAccepted)
	checkMessagesCapped(t, p, h)
	if len(data) > 1<<20 {
		t.Errorf("config.json of %d bytes, over 1 MiB", len(data))
	}
	full := 0
	for i := range n {
		name := fmt.Sprintf("blob-%02d", i)
		var e *v1alpha1.SelectedPluginStatus
		for j := range h.Status.Plugins {
			if h.Status.Plugins[j].Name == name {
				e = &h.Status.Plugins[j]
			}
		}
		switch {
		case e == nil:
			t.Errorf("%s not listed", name)
		case e.Reason == v1alpha1.ReasonHostFull:
			full++
			if strings.Contains(data, `"`+name+`"`) {
				t.Errorf("%s is HostFull and rendered", name)
			}
		case e.Reason == v1alpha1.ReasonAccepted:
			if !strings.Contains(data, `"`+name+`"`) {
				t.Errorf("%s accepted, not rendered", name)
			}
		default:
			t.Errorf("%s: %s (%s)", name, e.Reason, e.Message)
		}
	}
	if full == 0 || full > 4 {
		t.Errorf("%d of %d HostFull, want the few that do not fit", full, n)
	}
	for _, c := range h.Status.Conditions {
		if c.Reason == v1alpha1.ReasonConfigInvalid {
			t.Errorf("PluginHost %s is %s: %s", c.Type, c.Reason, c.Message)
		}
	}
}

// TestStatusPluginsListBounded: a host that 503 Plugins select lists the 500 oldest in
// status.plugins (the API server's maxItems) and counts the 3 youngest in
// status.unlistedPlugins; those are HostFull in their own status and not rendered. Deleting
// 3 old Plugins makes room: the 3 are listed, accepted and rendered.
func TestStatusPluginsListBounded(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManagerBinary(t, "--watch-namespaces="+ns)
	create(t, newHost(ns, "many", "many"))
	advertise(t, ns, "many")

	const n = controllers.MaxListedPlugins + 3
	// Created in name order: within a second of creationTimestamp the name decides.
	for i := range n {
		create(t, newPlugin(ns, fmt.Sprintf("p-%03d", i), "many", 1))
	}
	young := []string{fmt.Sprintf("p-%03d", n-3), fmt.Sprintf("p-%03d", n-2), fmt.Sprintf("p-%03d", n-1)}
	for _, name := range young {
		p := pluginCondition(t, ns, name, v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonHostFull)
		checkMessagesCapped(t, p, nil)
	}
	h := &v1alpha1.PluginHost{}
	testutil.Eventually(t, wait, "PluginHost many lists 500 Plugins and counts 3", func() error {
		if err := get(t, h, ns, "many"); err != nil {
			return err
		}
		if len(h.Status.Plugins) != controllers.MaxListedPlugins || h.Status.UnlistedPlugins != 3 {
			return fmt.Errorf("%d listed, %d unlisted", len(h.Status.Plugins), h.Status.UnlistedPlugins)
		}
		return nil
	})
	_, data := configMapData(t, ns, "many", contains(`"p-000"`, fmt.Sprintf(`"p-%03d"`, n-4)))
	if err := lacks(`"`+young[0]+`"`, `"`+young[2]+`"`)(data); err != nil {
		t.Errorf("rendered config: %v", err)
	}

	for i := range 3 {
		if err := env.Client.Delete(context.Background(), newPlugin(ns, fmt.Sprintf("p-%03d", i), "many", 1)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range young {
		pluginCondition(t, ns, name, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	}
	configMapData(t, ns, "many", contains(`"`+young[0]+`"`, `"`+young[2]+`"`))
	testutil.Eventually(t, wait, "PluginHost many lists 500 Plugins and counts none", func() error {
		if err := get(t, h, ns, "many"); err != nil {
			return err
		}
		if len(h.Status.Plugins) != controllers.MaxListedPlugins || h.Status.UnlistedPlugins != 0 {
			return fmt.Errorf("%d listed, %d unlisted", len(h.Status.Plugins), h.Status.UnlistedPlugins)
		}
		return nil
	})
}
