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
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// withBlob gives a Plugin one option of n bytes; anyTypes accepts it, as a host's type with
// free-form options would.
func withBlob(n int) func(*v1alpha1.Plugin) {
	return func(p *v1alpha1.Plugin) {
		p.Spec.Options = &v1alpha1.PluginOptions{Extra: map[string]json.RawMessage{"blob": json.RawMessage(`"` + strings.Repeat("x", n) + `"`)}}
	}
}

func createdAt(d time.Duration) func(*v1alpha1.Plugin) {
	return func(p *v1alpha1.Plugin) { p.CreationTimestamp = metav1.NewTime(epoch.Add(d)) }
}

func entryByName(ev evaluation, name string) v1alpha1.SelectedPluginStatus {
	for _, e := range ev.Plugins {
		if e.Name == name {
			return e
		}
	}
	return v1alpha1.SelectedPluginStatus{}
}

// TestPluginTooLargeRefusedAlone: a Plugin whose entry is over MaxPluginEntryBytes is
// refused alone with PluginTooLarge and a capped message; the others are rendered. After
// an edit, its last accepted entry keeps serving, as for InvalidOptions.
func TestPluginTooLargeRefusedAlone(t *testing.T) {
	host := testHost("demo", time.Hour, matchApp("demo"))
	in := configInputs{Host: &host, Hosts: []v1alpha1.PluginHost{host}, SecretsDir: "/s", Types: anyTypes{},
		Plugins: []v1alpha1.Plugin{testPlugin("big", withBlob(MaxPluginEntryBytes)), testPlugin("small", withBlob(100))}}
	ev := evaluatePlugins(in)
	big, small := entryByName(ev, "big"), entryByName(ev, "small")
	if big.Reason != v1alpha1.ReasonPluginTooLarge || !strings.Contains(big.Message, fmt.Sprint(MaxPluginEntryBytes)) || len(big.Message) > MaxStatusMessageBytes {
		t.Errorf("big: %s (%q), want PluginTooLarge naming the limit", big.Reason, big.Message)
	}
	if small.Reason != v1alpha1.ReasonAccepted || len(ev.Accepted) != 1 || ev.Accepted[0].Name != "small" {
		t.Errorf("small: %s; rendered %d entries, want small alone", small.Reason, len(ev.Accepted))
	}
	if _, err := renderConfig(nil, ev.Accepted, anyTypes{}); err != nil {
		t.Errorf("the others do not render: %v", err)
	}

	// An edit that makes it too large keeps its last entry.
	last := pluginconfig.Plugin{Name: "big", Type: "counter"}
	in.LastGood = func(p *v1alpha1.Plugin) (pluginconfig.Plugin, bool) { return last, p.Name == "big" }
	ev = evaluatePlugins(in)
	if big := entryByName(ev, "big"); big.Reason != v1alpha1.ReasonPluginTooLarge || !strings.Contains(big.Message, "keeps serving") {
		t.Errorf("edited big: %s (%q), want PluginTooLarge, its last entry serving", big.Reason, big.Message)
	}
	if len(ev.Accepted) != 2 || ev.Accepted[0].Name != "big" || ev.Accepted[0].Options != nil {
		t.Errorf("rendered %+v, want big's last entry and small", ev.Accepted)
	}
}

// TestHostFullRefusesTheYoungest: when the Plugins together would make config.json larger
// than a ConfigMap may be, the host admits them oldest first (creationTimestamp, then name)
// and refuses the rest alone with HostFull; what it admits renders within the limit. The
// same inputs in any order give the same verdicts.
func TestHostFullRefusesTheYoungest(t *testing.T) {
	host := testHost("demo", time.Hour, matchApp("demo"))
	var plugins []v1alpha1.Plugin
	// 20 Plugins of 60 KiB: about 16 fit. Names run against creation order, so that the
	// order is visibly by creation; two share a timestamp, so the name decides.
	for i := range 20 {
		plugins = append(plugins, testPlugin(fmt.Sprintf("p%02d", 19-i), withBlob(60<<10), createdAt(time.Duration(i/2*2)*time.Minute)))
	}
	plugins = append(plugins, testPlugin("tiny", createdAt(-time.Hour))) // the oldest
	in := configInputs{Host: &host, Hosts: []v1alpha1.PluginHost{host}, SecretsDir: "/s", Types: anyTypes{}, Plugins: plugins}
	ev := evaluatePlugins(in)
	data, err := renderConfig(nil, ev.Accepted, anyTypes{})
	if err != nil {
		t.Fatalf("admitted Plugins do not render: %v", err)
	}
	if len(data) > pluginconfig.MaxConfigBytes || len(data) < pluginconfig.MaxConfigBytes-(62<<10) {
		t.Errorf("config.json of %d bytes: want at most %d and no room left for one more Plugin", len(data), pluginconfig.MaxConfigBytes)
	}
	if e := entryByName(ev, "tiny"); e.Reason != v1alpha1.ReasonAccepted {
		t.Errorf("the oldest Plugin: %s (%s)", e.Reason, e.Message)
	}
	full := 0
	admittedFrom := -1 // creation index: every Plugin created before it is admitted, none after
	for i := range 20 {
		e := entryByName(ev, fmt.Sprintf("p%02d", 19-i))
		switch e.Reason {
		case v1alpha1.ReasonAccepted:
			if full > 0 {
				t.Errorf("p%02d (created %d-th) admitted after a younger Plugin was refused", 19-i, i)
			}
			admittedFrom = i
		case v1alpha1.ReasonHostFull:
			full++
			if len(e.Message) > MaxStatusMessageBytes || !strings.Contains(e.Message, "oldest first") {
				t.Errorf("HostFull message %q", e.Message)
			}
		default:
			t.Errorf("p%02d: %s (%s)", 19-i, e.Reason, e.Message)
		}
	}
	if full == 0 || admittedFrom < 10 {
		t.Errorf("%d refused, last admitted %d: want some of the 20 refused and most admitted", full, admittedFrom)
	}
	if got := 21 - full; len(ev.Accepted) != got {
		t.Errorf("%d rendered, %d admitted", len(ev.Accepted), got)
	}

	// Deterministic: reversed input, same verdicts.
	rev := configInputs{Host: &host, Hosts: in.Hosts, SecretsDir: "/s", Types: anyTypes{}}
	for i := len(plugins) - 1; i >= 0; i-- {
		rev.Plugins = append(rev.Plugins, plugins[i])
	}
	again := evaluatePlugins(rev)
	for _, e := range ev.Plugins {
		if entryByName(again, e.Name).Reason != e.Reason {
			t.Errorf("%s: %s, then %s from the same Plugins in another order", e.Name, e.Reason, entryByName(again, e.Name).Reason)
		}
	}
}

// TestStatusPluginsBounded: whatever selects a host, status.plugins lists the
// MaxListedPlugins oldest Plugins and counts the others; an unlisted Plugin's own status
// says HostFull; the largest possible list stays under the documented 800 KiB.
func TestStatusPluginsBounded(t *testing.T) {
	host := testHost("demo", time.Hour, matchApp("demo"))
	var plugins []v1alpha1.Plugin
	for i := range MaxListedPlugins + 5 {
		// Created in order p0000, p0001, ...; names shuffled against it by a prefix.
		name := fmt.Sprintf("%c-p%04d", 'z'-rune(i%26), i)
		plugins = append(plugins, testPlugin(name, createdAt(time.Duration(i)*time.Second)))
	}
	ev := evaluatePlugins(configInputs{Host: &host, Hosts: []v1alpha1.PluginHost{host}, SecretsDir: "/s", Types: anyTypes{}, Plugins: plugins})
	if len(ev.Plugins) != MaxListedPlugins || ev.Unlisted != 5 {
		t.Fatalf("%d listed, %d unlisted; want %d and 5", len(ev.Plugins), ev.Unlisted, MaxListedPlugins)
	}
	listed := map[string]bool{}
	for i, e := range ev.Plugins {
		listed[e.Name] = true
		if i > 0 && ev.Plugins[i-1].Name >= e.Name {
			t.Errorf("status.plugins not sorted by name at %d", i)
		}
	}
	for i, p := range plugins {
		if listed[p.Name] != (i < MaxListedPlugins) {
			t.Errorf("Plugin created %d-th listed: %v", i, listed[p.Name])
		}
	}
	if len(ev.Accepted) != MaxListedPlugins {
		t.Errorf("%d rendered, want the %d listed", len(ev.Accepted), MaxListedPlugins)
	}

	host.Status.Plugins, host.Status.UnlistedPlugins = ev.Plugins, int32(ev.Unlisted)
	young := plugins[len(plugins)-1]
	setPluginStatus(&young, []v1alpha1.PluginHost{host})
	if c := meta.FindStatusCondition(young.Status.Conditions, v1alpha1.ConditionAccepted); c == nil || c.Reason != v1alpha1.ReasonHostFull ||
		!strings.Contains(c.Message, "500 oldest") || young.Status.ObservedGeneration != young.Generation {
		t.Errorf("unlisted Plugin: %+v", young.Status)
	}
	if c := meta.FindStatusCondition(young.Status.Conditions, v1alpha1.ConditionStalled); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("unlisted Plugin not Stalled: %+v", c)
	}
	old := host.DeepCopy()
	old.Status.UnlistedPlugins = 4
	if all, _ := pluginsAffected(old, &host); !all {
		t.Error("a change of unlistedPlugins wakes no Plugin")
	}

	// The largest list: 500 entries, names of 253 characters, 1 KiB messages.
	for i := range host.Status.Plugins {
		e := &host.Status.Plugins[i]
		e.Name = fmt.Sprintf("%04d", i) + strings.Repeat("n", 249)
		e.UID, e.Revision, e.Generation, e.AppliedGeneration = "0123456789abcdef0123456789abcdef0123", revA, 1<<62, 1<<62
		e.Reason, e.Message = v1alpha1.ReasonUnknownPluginType, statusMessage(strings.Repeat("m", 5000))
	}
	b, err := json.Marshal(host.Status.Plugins)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 800<<10 {
		t.Errorf("status.plugins at its largest is %d bytes, over the documented 800 KiB", len(b))
	}
}
