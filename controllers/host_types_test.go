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
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/hostapi"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// advertised are types as a host advertises them: a counter and a rate limiter, literals so
// that these tests need no plugin code.
var advertised = []hostapi.TypeInfo{
	{Name: "counter", Operations: []hostapi.Operation{{Name: "increment", Method: "POST", Mutating: true}, {Name: "get", Method: "GET"}},
		OptionsSchema: json.RawMessage(`{"type": "object", "properties": {"increment": {"type": "integer", "minimum": -2147483648, "maximum": 2147483647}}, "additionalProperties": false}`)},
	{Name: "ratelimit", Operations: []hostapi.Operation{{Name: "take", Method: "POST", Mutating: true}},
		OptionsSchema: json.RawMessage(`{"type": "object", "properties": {"rate": {"type": "number", "exclusiveMinimum": 0}, "burst": {"type": "integer", "minimum": 1}}, "required": ["rate"], "additionalProperties": false}`)},
}

func advertisedSet(t *testing.T) hostTypes {
	t.Helper()
	var c typesCache
	set, err := c.compile(advertised)
	if err != nil {
		t.Fatal(err)
	}
	return hostTypes{Set: set, Image: "example.com/host:v2"}
}

func withType(typ string, options string) func(*v1alpha1.Plugin) {
	return func(p *v1alpha1.Plugin) {
		p.Spec.Type = v1alpha1.PluginType(typ)
		p.Spec.Options = nil
		if options != "" {
			p.Spec.Options = &v1alpha1.PluginOptions{}
			if err := json.Unmarshal([]byte(options), p.Spec.Options); err != nil {
				panic(err)
			}
		}
	}
}

// TestEvaluateAgainstAdvertisedTypes: each Plugin is checked against its host's advertised
// types alone; a bad one is left out with its own reason and the others are accepted.
func TestEvaluateAgainstAdvertisedTypes(t *testing.T) {
	known := advertisedSet(t)
	awaiting := hostTypes{Image: "example.com/host:v2", Reason: v1alpha1.ReasonAwaitingHostTypes, Message: "waiting for image example.com/host:v2"}
	invalid := hostTypes{Image: "example.com/host:v2", Reason: v1alpha1.ReasonHostTypesInvalid, Message: "refused"}
	for _, tc := range []struct {
		name       string
		types      hostTypes
		plugin     v1alpha1.Plugin
		wantReason string
		wantInMsg  []string
	}{
		{"counter", known, testPlugin("c", withIncrement(3)), v1alpha1.ReasonAccepted, nil},
		{"ratelimit", known, testPlugin("r", withType("ratelimit", `{"rate": 5, "burst": 10}`)), v1alpha1.ReasonAccepted, nil},
		{"unknown type", known, testPlugin("g", withType("gauge", "")), v1alpha1.ReasonUnknownPluginType,
			[]string{"spec.type", `"gauge"`, "counter, ratelimit", "example.com/host:v2"}},
		{"invalid option", known, testPlugin("r", withType("ratelimit", `{"rate": -1}`)), v1alpha1.ReasonInvalidOptions,
			[]string{"spec.options.rate", "must be greater than 0", `"ratelimit"`}},
		{"missing option", known, testPlugin("r", withType("ratelimit", `{"burst": 2}`)), v1alpha1.ReasonInvalidOptions,
			[]string{"spec.options.rate", "Required"}},
		{"option of another type", known, testPlugin("r", withType("ratelimit", `{"rate": 1, "increment": 2}`)), v1alpha1.ReasonInvalidOptions,
			[]string{"spec.options.increment"}},
		{"bad option and bad connection", known, testPlugin("r", withType("ratelimit", `{"rate": -1}`), func(p *v1alpha1.Plugin) {
			p.Spec.Connection.RequestTimeout = "0s"
		}), v1alpha1.ReasonInvalidSpec, []string{"spec.options.rate", "spec.connection.requestTimeout"}},
		{"awaiting types", awaiting, testPlugin("g", withType("gauge", `{"x": 1}`)), v1alpha1.ReasonAwaitingHostTypes, []string{"example.com/host:v2"}},
		{"awaiting types, other field wrong", awaiting, testPlugin("c", func(p *v1alpha1.Plugin) { p.Spec.Connection.RequestTimeout = "0s" }),
			v1alpha1.ReasonInvalidSpec, []string{"spec.connection.requestTimeout"}},
		{"types refused", invalid, testPlugin("c"), v1alpha1.ReasonHostTypesInvalid, []string{"refused"}},
		{"long option error capped", known, testPlugin("r", withType("ratelimit", `{"rate": "`+strings.Repeat("x", 3000)+`"}`)), v1alpha1.ReasonInvalidOptions,
			[]string{"spec.options.rate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := testHost("demo", time.Hour, matchApp("demo"))
			in := configInputs{Host: &host, Plugins: []v1alpha1.Plugin{tc.plugin, testPlugin("zz-good", withIncrement(1))}, SecretsDir: "/s", HostTypes: tc.types}
			in.Hosts = []v1alpha1.PluginHost{*in.Host}
			in.Types = anyTypes{}
			if tc.types.Set != nil {
				in.Types = tc.types.Set
			}
			ev := evaluatePlugins(in)
			if len(ev.Plugins) != 2 {
				t.Fatalf("%d entries, want 2", len(ev.Plugins))
			}
			got := ev.Plugins[0]
			if got.Reason != tc.wantReason {
				t.Fatalf("reason %s (%s), want %s", got.Reason, got.Message, tc.wantReason)
			}
			for _, s := range tc.wantInMsg {
				if !strings.Contains(got.Message, s) {
					t.Errorf("message %q lacks %q", got.Message, s)
				}
			}
			if len(got.Message) > MaxReportedTextBytes {
				t.Errorf("message is %d bytes, over %d", len(got.Message), MaxReportedTextBytes)
			}
			// The other Plugin is judged on its own.
			wantOther := v1alpha1.ReasonAccepted
			if tc.types.Reason != "" {
				wantOther = tc.types.Reason
			}
			if other := ev.Plugins[1]; other.Reason != wantOther {
				t.Errorf("the other Plugin: %s (%s), want %s", other.Reason, other.Message, wantOther)
			}
			accepted := 0
			for _, e := range ev.Plugins {
				if e.Reason == v1alpha1.ReasonAccepted {
					accepted++
				}
			}
			if len(ev.Accepted) != accepted {
				t.Errorf("%d rendered, %d accepted", len(ev.Accepted), accepted)
			}
		})
	}
}

func typesPod(name, image string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "pluginhost", Image: image}}}}
}

// TestFindAdvertisement: types count only from a pod of the rendered image that answered
// with a version; version 0 is a pre-SDK image.
func TestFindAdvertisement(t *testing.T) {
	v1 := &hostapi.Status{Version: 1, Types: advertised}
	v0 := &hostapi.Status{}
	for _, tc := range []struct {
		name       string
		pods       []*corev1.Pod
		results    []probeResult
		wantPod    string
		wantPreSDK string
	}{
		{"none", nil, nil, "", ""},
		{"the image's pod", []*corev1.Pod{typesPod("a", "img:2")}, []probeResult{{status: v1}}, "a", ""},
		{"another image's pod", []*corev1.Pod{typesPod("a", "img:1")}, []probeResult{{status: v1}}, "", ""},
		{"unreadable, then readable", []*corev1.Pod{typesPod("a", "img:2"), typesPod("b", "img:2")},
			[]probeResult{{err: errors.New("refused")}, {status: v1}}, "b", ""},
		{"pre-SDK", []*corev1.Pod{typesPod("a", "img:2")}, []probeResult{{status: v0}}, "", "a"},
		{"old image first", []*corev1.Pod{typesPod("a", "img:1"), typesPod("b", "img:2")}, []probeResult{{status: v1}, {status: v1}}, "b", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			adv, preSDK := findAdvertisement("img:2", tc.pods, tc.results)
			got := ""
			if adv != nil {
				got = adv.Pod
			}
			if got != tc.wantPod || strings.Join(preSDK, ",") != tc.wantPreSDK {
				t.Errorf("advertised by %q, pre-SDK %v; want %q, %q", got, preSDK, tc.wantPod, tc.wantPreSDK)
			}
		})
	}
	if msg := awaitingTypesMessage("demo", "img:2", []string{"a"}); !strings.Contains(msg, "without a version") || !strings.Contains(msg, "pkg/pluginhost") {
		t.Errorf("pre-SDK message %q says neither what nor how to fix", msg)
	}
	if msg := awaitingTypesMessage("demo", "img:2", nil); !strings.Contains(msg, "img:2") {
		t.Errorf("awaiting message %q does not name the image", msg)
	}
}

// TestTypesStatusRoundTrip: status.types holds canonical schemas, so a status written from
// an advertisement compares equal to what the API server returns (no patch at every
// reconcile), and converts back to the same set.
func TestTypesStatusRoundTrip(t *testing.T) {
	st := typesToStatus(advertised)
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back []v1alpha1.PluginTypeStatus
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !sameTypes(st, back) {
		t.Errorf("status.types differ after a round trip:\n%s", b)
	}
	if got := string(st[1].OptionsSchema.Raw); !strings.HasPrefix(got, `{"additionalProperties":false,"properties":`) {
		t.Errorf("schema not canonical: %s", got)
	}
	var c typesCache
	set, err := c.compile(typesFromStatus(back))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(set.TypeNames(), ",") != "counter,ratelimit" {
		t.Errorf("types %v", set.TypeNames())
	}
	changed := typesToStatus(advertised[:1])
	if sameTypes(st, changed) {
		t.Error("a changed advertisement compares equal")
	}
}

// TestAwaitingTypesConditions: a host and its Plugins waiting for the host's types are
// Reconciling, not Stalled; refused types stall both.
func TestAwaitingTypesConditions(t *testing.T) {
	for _, tc := range []struct {
		reason      string
		reconciling bool
	}{{v1alpha1.ReasonAwaitingHostTypes, true}, {v1alpha1.ReasonHostTypesInvalid, false}} {
		hv := testHost("demo", time.Hour, matchApp("demo"))
		host := &hv
		setHostConditions(host, hostFacts{TypesReason: tc.reason, TypesMessage: "m", Pods: 1, ReadyPods: 1})
		if c := meta.FindStatusCondition(host.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != tc.reason {
			t.Fatalf("%s: host Ready %+v", tc.reason, c)
		}
		if got := meta.IsStatusConditionTrue(host.Status.Conditions, v1alpha1.ConditionReconciling); got != tc.reconciling {
			t.Errorf("%s: host Reconciling %v", tc.reason, got)
		}
		if got := meta.IsStatusConditionTrue(host.Status.Conditions, v1alpha1.ConditionStalled); got == tc.reconciling {
			t.Errorf("%s: host Stalled %v", tc.reason, got)
		}
		if got := meta.IsStatusConditionTrue(host.Status.Conditions, v1alpha1.ConditionDegraded); got == tc.reconciling {
			t.Errorf("%s: host Degraded %v", tc.reason, got)
		}

		p := testPlugin("c")
		host.Status.Plugins = []v1alpha1.SelectedPluginStatus{{Name: "c", UID: p.UID, Generation: p.Generation, Reason: tc.reason, Message: "m"}}
		setPluginStatus(&p, []v1alpha1.PluginHost{*host})
		accepted := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionAccepted)
		wantAccepted := metav1.ConditionFalse
		if tc.reconciling {
			wantAccepted = metav1.ConditionUnknown
		}
		if accepted.Status != wantAccepted || accepted.Reason != tc.reason {
			t.Errorf("%s: Plugin Accepted %s/%s, want %s", tc.reason, accepted.Status, accepted.Reason, wantAccepted)
		}
		if got := meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReconciling); got != tc.reconciling {
			t.Errorf("%s: Plugin Reconciling %v", tc.reason, got)
		}
	}
}

var _ pluginconfig.Types = anyTypes{}

// TestUserConfigCheckedAgainstKnownTypes: before the host's types are known, the user's
// config.json is checked for everything but its types and options; after, for those too.
func TestUserConfigCheckedAgainstKnownTypes(t *testing.T) {
	data := []byte(`{"plugins":[{"name":"x","type":"gauge","options":{"unit":"ms"}}]}`)
	if _, err := parseUserConfig(data, anyTypes{}); err != nil {
		t.Errorf("types unknown: %v", err)
	}
	if _, err := parseUserConfig([]byte(`{"plugins":[{"name":"x","type":"gauge","transport":"ftp"}]}`), anyTypes{}); err == nil ||
		!strings.Contains(err.Error(), "transport") {
		t.Errorf("types unknown, bad transport: %v", err)
	}
	if _, err := parseUserConfig(data, advertisedSet(t).Set); err == nil || !strings.Contains(err.Error(), "plugins[0].type") {
		t.Errorf("types known, unknown type: %v", err)
	}
	if _, err := parseUserConfig([]byte(`{"plugins":[{"name":"x","type":"ratelimit","options":{"rate":-1}}]}`), advertisedSet(t).Set); err == nil ||
		!strings.Contains(err.Error(), "plugins[0].options.rate") {
		t.Errorf("types known, bad option: %v", err)
	}
}

// A Plugin whose new generation the host's types refuse keeps its last entry of the
// rendered configuration (with the current auth): one bad edit stops nothing that serves.
// A refusal of another kind, or a Plugin with no last entry, is left out as before.
func TestRefusedEditKeepsTheLastGoodEntry(t *testing.T) {
	known := advertisedSet(t)
	host := testHost("demo", time.Hour, matchApp("demo"))
	last := pluginconfig.Plugin{Name: "r", Type: "ratelimit", Transport: "http", Options: map[string]any{"rate": 5}}
	lastGood := func(p *v1alpha1.Plugin) (pluginconfig.Plugin, bool) { return last, p.Name == "r" }
	for _, tc := range []struct {
		name       string
		plugin     v1alpha1.Plugin
		lastGood   func(*v1alpha1.Plugin) (pluginconfig.Plugin, bool)
		wantReason string
		wantKept   bool
	}{
		{"invalid option kept", testPlugin("r", withType("ratelimit", `{"rate": -1}`)), lastGood, v1alpha1.ReasonInvalidOptions, true},
		{"unknown type kept", testPlugin("r", withType("gauge", "")), lastGood, v1alpha1.ReasonUnknownPluginType, true},
		{"no last entry", testPlugin("r", withType("ratelimit", `{"rate": -1}`)), nil, v1alpha1.ReasonInvalidOptions, false},
		{"another field wrong", testPlugin("r", withType("ratelimit", `{"rate": -1}`), func(p *v1alpha1.Plugin) {
			p.Spec.Connection.RequestTimeout = "0s"
		}), lastGood, v1alpha1.ReasonInvalidSpec, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := configInputs{Host: &host, Hosts: []v1alpha1.PluginHost{host}, Plugins: []v1alpha1.Plugin{tc.plugin}, SecretsDir: "/s",
				HostTypes: known, Types: known.Set, LastGood: tc.lastGood}
			ev := evaluatePlugins(in)
			got := ev.Plugins[0]
			if got.Reason != tc.wantReason {
				t.Fatalf("reason %s (%s), want %s", got.Reason, got.Message, tc.wantReason)
			}
			kept := len(ev.Accepted) == 1 && ev.Accepted[0].Options["rate"] == 5
			if kept != tc.wantKept || kept != strings.Contains(got.Message, "last accepted configuration of this Plugin keeps serving") {
				t.Fatalf("kept %v (accepted %+v, message %q), want %v", kept, ev.Accepted, got.Message, tc.wantKept)
			}
		})
	}
}
