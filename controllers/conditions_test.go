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
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

const (
	revA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	revB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

type wantCond struct {
	status metav1.ConditionStatus
	reason string
	msg    string // substring
}

func checkCond(t *testing.T, conds []metav1.Condition, typ string, w wantCond) {
	t.Helper()
	c := meta.FindStatusCondition(conds, typ)
	if c == nil {
		t.Errorf("%s missing", typ)
		return
	}
	if c.Status != w.status || c.Reason != w.reason || !strings.Contains(c.Message, w.msg) {
		t.Errorf("%s = %s/%s %q, want %s/%s containing %q", typ, c.Status, c.Reason, c.Message, w.status, w.reason, w.msg)
	}
}

func TestSetHostConditions(t *testing.T) {
	T, F := metav1.ConditionTrue, metav1.ConditionFalse
	tests := []struct {
		name                             string
		facts                            hostFacts
		available, progressing, degraded wantCond
		converged                        bool
	}{{
		name:        "no pod yet",
		facts:       hostFacts{DesiredRevision: revA},
		available:   wantCond{F, v1alpha1.ReasonWorkloadUnavailable, "0 of 0 pods ready"},
		progressing: wantCond{T, v1alpha1.ReasonRollingOut, "Waiting for a running pod"},
		degraded:    wantCond{F, v1alpha1.ReasonAsExpected, ""},
		converged:   true, // pod events, not polling, bring the next reconcile
	}, {
		name: "rolled out",
		facts: hostFacts{DesiredRevision: revA, Pods: 1, ReadyPods: 1,
			Running: []podFact{{Name: "p", Ready: true, Applied: revA}}},
		available:   wantCond{T, v1alpha1.ReasonWorkloadAvailable, "1 of 1 pods ready"},
		progressing: wantCond{F, v1alpha1.ReasonRolledOut, "All 1 running pods run revision sha256:aaaaaaaaaaaa"},
		degraded:    wantCond{F, v1alpha1.ReasonAsExpected, ""},
		converged:   true,
	}, {
		name: "rolling out",
		facts: hostFacts{DesiredRevision: revB, Pods: 1, ReadyPods: 1,
			Running: []podFact{{Name: "p", Ready: true, Applied: revA}}},
		available:   wantCond{T, v1alpha1.ReasonWorkloadAvailable, ""},
		progressing: wantCond{T, v1alpha1.ReasonRollingOut, "0 of 1 running pods run revision sha256:bbbbbbbbbbbb"},
		degraded:    wantCond{F, v1alpha1.ReasonAsExpected, ""},
	}, {
		name: "pod refused the desired revision",
		facts: hostFacts{DesiredRevision: revB, Pods: 1, ReadyPods: 1,
			Running: []podFact{{Name: "p", Ready: true, Applied: revA, Refused: "token_file: open /x: no such file"}}},
		available:   wantCond{T, v1alpha1.ReasonWorkloadAvailable, ""},
		progressing: wantCond{T, v1alpha1.ReasonRollingOut, ""},
		degraded:    wantCond{T, v1alpha1.ReasonPodRefusedConfig, "pod p: token_file: open /x: no such file"},
	}, {
		name: "ready pod unreachable",
		facts: hostFacts{DesiredRevision: revA, Pods: 1, ReadyPods: 1,
			Running: []podFact{{Name: "p", Ready: true, Err: errors.New("connection refused")}}},
		available:   wantCond{T, v1alpha1.ReasonWorkloadAvailable, ""},
		progressing: wantCond{T, v1alpha1.ReasonRollingOut, ""},
		degraded:    wantCond{T, v1alpha1.ReasonPodsUnreachable, "pod p: connection refused"},
	}, {
		name: "starting pod unreachable is not degraded",
		facts: hostFacts{DesiredRevision: revA, Pods: 1,
			Running: []podFact{{Name: "p", Err: errors.New("connection refused")}}},
		available:   wantCond{F, v1alpha1.ReasonWorkloadUnavailable, ""},
		progressing: wantCond{T, v1alpha1.ReasonRollingOut, ""},
		degraded:    wantCond{F, v1alpha1.ReasonAsExpected, ""},
	}, {
		name: "user config invalid wins",
		facts: hostFacts{ConfigReason: v1alpha1.ReasonConfigInvalid, ConfigMessage: "invalid JSON at line 1",
			DesiredRevision: revA, Pods: 1, ReadyPods: 1, Running: []podFact{{Name: "p", Ready: true, Applied: revA, Refused: "x"}}},
		available:   wantCond{T, v1alpha1.ReasonWorkloadAvailable, ""},
		progressing: wantCond{F, v1alpha1.ReasonRolledOut, ""},
		degraded:    wantCond{T, v1alpha1.ReasonConfigInvalid, "invalid JSON at line 1"},
		converged:   true,
	}, {
		name:        "deployment available with no pod seen",
		facts:       hostFacts{DesiredRevision: revA, DeploymentAvailable: true},
		available:   wantCond{T, v1alpha1.ReasonWorkloadAvailable, ""},
		progressing: wantCond{T, v1alpha1.ReasonRollingOut, ""},
		degraded:    wantCond{F, v1alpha1.ReasonAsExpected, ""},
		converged:   true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := testHost("h", time.Hour, matchApp("demo"))
			host.Generation = 3
			setHostConditions(&host, tt.facts)
			checkCond(t, host.Status.Conditions, v1alpha1.ConditionAvailable, tt.available)
			checkCond(t, host.Status.Conditions, v1alpha1.ConditionProgressing, tt.progressing)
			checkCond(t, host.Status.Conditions, v1alpha1.ConditionDegraded, tt.degraded)
			for _, c := range host.Status.Conditions {
				if c.ObservedGeneration != 3 {
					t.Errorf("%s observedGeneration %d", c.Type, c.ObservedGeneration)
				}
			}
			if got := tt.facts.converged(); got != tt.converged {
				t.Errorf("converged = %v, want %v", got, tt.converged)
			}
		})
	}
}

func TestSetHostConditionsKeepsTransitionTime(t *testing.T) {
	host := testHost("h", time.Hour, matchApp("demo"))
	f := hostFacts{DesiredRevision: revA, Pods: 1, ReadyPods: 1, Running: []podFact{{Name: "p", Ready: true, Applied: revA}}}
	setHostConditions(&host, f)
	past := metav1.NewTime(epoch)
	for i := range host.Status.Conditions {
		host.Status.Conditions[i].LastTransitionTime = past
	}
	setHostConditions(&host, f)
	for _, c := range host.Status.Conditions {
		if !c.LastTransitionTime.Equal(&past) {
			t.Errorf("%s transition time moved without a transition", c.Type)
		}
	}
}

func TestSetPluginStatus(t *testing.T) {
	T, F, U := metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown
	p := testPlugin("c1")
	p.Generation = 2

	// host builds the PluginHost that runs c1, with its entry and pods.
	host := func(name string, age time.Duration, entry *v1alpha1.SelectedPluginStatus, st v1alpha1.PluginHostStatus) v1alpha1.PluginHost {
		h := testHost(name, age, matchApp("demo"))
		h.Spec.Service = &v1alpha1.ServiceSpec{Port: 8080}
		if entry != nil {
			st.Plugins = []v1alpha1.SelectedPluginStatus{*entry}
		}
		h.Status = st
		return h
	}
	accepted := func(gen, applied int64, rev string) *v1alpha1.SelectedPluginStatus {
		return &v1alpha1.SelectedPluginStatus{Name: "c1", UID: p.UID, Generation: gen, Reason: v1alpha1.ReasonAccepted, Revision: rev, AppliedGeneration: applied}
	}
	pods := func(applied string, ready bool, reloadErr string) []v1alpha1.PodStatus {
		return []v1alpha1.PodStatus{{Name: "h-1", AppliedRevision: applied, Ready: ready, LastReloadError: reloadErr}}
	}
	converged := v1alpha1.PluginHostStatus{ConfigRevision: revA, AppliedRevision: revA, Pods: pods(revA, true, "")}

	tests := []struct {
		name                     string
		plugin                   v1alpha1.Plugin
		hosts                    []v1alpha1.PluginHost
		accepted, applied, ready wantCond
		host, url, appliedRev    string
		// pending: the host has not evaluated the Plugin's generation, so
		// status.observedGeneration stays where it was.
		pending bool
	}{{
		name:     "no host",
		plugin:   p,
		hosts:    []v1alpha1.PluginHost{testHost("other", time.Hour, matchApp("other"))},
		accepted: wantCond{F, v1alpha1.ReasonNoHost, "No PluginHost"},
		applied:  wantCond{F, v1alpha1.ReasonNoHost, ""},
		ready:    wantCond{F, v1alpha1.ReasonNoHost, ""},
	}, {
		name:     "host has not seen this generation",
		plugin:   p,
		hosts:    []v1alpha1.PluginHost{host("h", time.Hour, accepted(1, 1, revA), converged)},
		accepted: wantCond{U, v1alpha1.ReasonPending, "has not evaluated generation 2"},
		applied:  wantCond{F, v1alpha1.ReasonPending, ""},
		ready:    wantCond{F, v1alpha1.ReasonPending, ""},
		host:     "h", url: "http://h.ns.svc:8080/plugins/c1", pending: true,
	}, {
		name:     "a Plugin recreated under the same name is not the old one",
		plugin:   p,
		hosts:    []v1alpha1.PluginHost{host("h", time.Hour, &v1alpha1.SelectedPluginStatus{Name: "c1", UID: "old", Generation: 2, Reason: v1alpha1.ReasonAccepted, Revision: revA, AppliedGeneration: 2}, converged)},
		accepted: wantCond{U, v1alpha1.ReasonPending, ""},
		applied:  wantCond{F, v1alpha1.ReasonPending, ""},
		ready:    wantCond{F, v1alpha1.ReasonPending, ""},
		host:     "h", url: "http://h.ns.svc:8080/plugins/c1", pending: true,
	}, {
		name:   "rejected",
		plugin: p,
		hosts: []v1alpha1.PluginHost{host("h", time.Hour, &v1alpha1.SelectedPluginStatus{Name: "c1", UID: p.UID, Generation: 2,
			Reason: v1alpha1.ReasonSecretNotFound, Message: `Secret "s" not found`}, converged)},
		accepted: wantCond{F, v1alpha1.ReasonSecretNotFound, `Secret "s" not found`},
		applied:  wantCond{F, v1alpha1.ReasonSecretNotFound, ""},
		ready:    wantCond{F, v1alpha1.ReasonSecretNotFound, ""},
		host:     "h", url: "http://h.ns.svc:8080/plugins/c1",
	}, {
		name:     "applied and served",
		plugin:   p,
		hosts:    []v1alpha1.PluginHost{host("h", time.Hour, accepted(2, 2, revA), converged)},
		accepted: wantCond{T, v1alpha1.ReasonAccepted, "Runs on PluginHost h"},
		applied:  wantCond{T, v1alpha1.ReasonApplied, "Every pod of PluginHost h runs generation 2 (since revision sha256:aaaaaaaaaaaa)"},
		ready:    wantCond{T, v1alpha1.ReasonServing, "http://h.ns.svc:8080/plugins/c1"},
		host:     "h", url: "http://h.ns.svc:8080/plugins/c1", appliedRev: revA,
	}, {
		name:     "applied but disabled",
		plugin:   testPlugin("c1", func(p *v1alpha1.Plugin) { p.Generation = 2; p.Spec.Enabled = ptr.To(false) }),
		hosts:    []v1alpha1.PluginHost{host("h", time.Hour, accepted(2, 2, revA), converged)},
		accepted: wantCond{T, v1alpha1.ReasonAccepted, ""},
		applied:  wantCond{T, v1alpha1.ReasonApplied, ""},
		ready:    wantCond{F, v1alpha1.ReasonDisabled, "spec.enabled is false"},
		host:     "h", url: "http://h.ns.svc:8080/plugins/c1", appliedRev: revA,
	}, {
		name:   "applied, pod not ready",
		plugin: p,
		hosts: []v1alpha1.PluginHost{host("h", time.Hour, accepted(2, 2, revA),
			v1alpha1.PluginHostStatus{ConfigRevision: revA, AppliedRevision: revA, Pods: pods(revA, false, "")})},
		accepted: wantCond{T, v1alpha1.ReasonAccepted, ""},
		applied:  wantCond{T, v1alpha1.ReasonApplied, ""},
		ready:    wantCond{F, v1alpha1.ReasonHostUnavailable, "0 of 1 pods"},
		host:     "h", url: "http://h.ns.svc:8080/plugins/c1", appliedRev: revA,
	}, {
		name:   "rolling out the new generation",
		plugin: p,
		hosts: []v1alpha1.PluginHost{host("h", time.Hour, accepted(2, 1, revB),
			v1alpha1.PluginHostStatus{ConfigRevision: revB, AppliedRevision: revA, Pods: pods(revA, true, "")})},
		accepted: wantCond{T, v1alpha1.ReasonAccepted, ""},
		applied:  wantCond{F, v1alpha1.ReasonRollingOut, "Waiting for the pods of PluginHost h to apply generation 2"},
		ready:    wantCond{F, v1alpha1.ReasonRollingOut, ""},
		host:     "h", url: "http://h.ns.svc:8080/plugins/c1",
	}, {
		name:   "the revision with the new generation was refused",
		plugin: p,
		hosts: []v1alpha1.PluginHost{host("h", time.Hour, accepted(2, 1, revB),
			v1alpha1.PluginHostStatus{ConfigRevision: revB, AppliedRevision: revA, Pods: pods(revA, true, "token_file: no such file")})},
		accepted: wantCond{T, v1alpha1.ReasonAccepted, ""},
		applied:  wantCond{F, v1alpha1.ReasonReloadFailed, "pod h-1: token_file: no such file"},
		ready:    wantCond{F, v1alpha1.ReasonReloadFailed, ""},
		host:     "h", url: "http://h.ns.svc:8080/plugins/c1",
	}, {
		name:   "another Plugin's revision was refused: this generation still runs",
		plugin: p,
		hosts: []v1alpha1.PluginHost{host("h", time.Hour, accepted(2, 2, revB),
			v1alpha1.PluginHostStatus{ConfigRevision: revB, AppliedRevision: revA, Pods: pods(revA, true, "other plugin's error")})},
		accepted: wantCond{T, v1alpha1.ReasonAccepted, ""},
		applied:  wantCond{T, v1alpha1.ReasonApplied, ""},
		ready:    wantCond{T, v1alpha1.ReasonServing, ""},
		host:     "h", url: "http://h.ns.svc:8080/plugins/c1", appliedRev: revA,
	}, {
		name:   "host config invalid: the new generation cannot roll out",
		plugin: p,
		hosts: []v1alpha1.PluginHost{host("h", time.Hour, accepted(2, 1, ""),
			v1alpha1.PluginHostStatus{ConfigRevision: revA, AppliedRevision: revA, Pods: pods(revA, true, "")})},
		accepted: wantCond{T, v1alpha1.ReasonAccepted, ""},
		applied:  wantCond{F, v1alpha1.ReasonConfigInvalid, "cannot render"},
		ready:    wantCond{F, v1alpha1.ReasonConfigInvalid, ""},
		host:     "h", url: "http://h.ns.svc:8080/plugins/c1",
	}, {
		name:     "no running pod",
		plugin:   p,
		hosts:    []v1alpha1.PluginHost{host("h", time.Hour, accepted(2, 0, revA), v1alpha1.PluginHostStatus{ConfigRevision: revA})},
		accepted: wantCond{T, v1alpha1.ReasonAccepted, ""},
		applied:  wantCond{F, v1alpha1.ReasonRollingOut, "No running pod"},
		ready:    wantCond{F, v1alpha1.ReasonRollingOut, ""},
		host:     "h", url: "http://h.ns.svc:8080/plugins/c1",
	}, {
		name:   "two hosts: the oldest runs it, the Plugin says who ignores it",
		plugin: p,
		hosts: []v1alpha1.PluginHost{
			host("young", time.Minute, &v1alpha1.SelectedPluginStatus{Name: "c1", UID: p.UID, Generation: 2, Reason: v1alpha1.ReasonNameConflict}, converged),
			host("old", time.Hour, accepted(2, 2, revA), converged),
		},
		accepted: wantCond{T, v1alpha1.ReasonAccepted, "Runs on PluginHost old; also selected by PluginHost young, which leaves it out"},
		applied:  wantCond{T, v1alpha1.ReasonApplied, ""},
		ready:    wantCond{T, v1alpha1.ReasonServing, ""},
		host:     "old", url: "http://old.ns.svc:8080/plugins/c1", appliedRev: revA,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl := tt.plugin.DeepCopy()
			setPluginStatus(pl, tt.hosts)
			// Computing again from the result changes nothing.
			again := pl.DeepCopy()
			setPluginStatus(again, tt.hosts)
			if !equality.Semantic.DeepEqual(again.Status, pl.Status) {
				t.Errorf("not idempotent:\n%+v\n%+v", pl.Status, again.Status)
			}
			st := pl.Status
			checkCond(t, st.Conditions, v1alpha1.ConditionAccepted, tt.accepted)
			checkCond(t, st.Conditions, v1alpha1.ConditionApplied, tt.applied)
			checkCond(t, st.Conditions, v1alpha1.ConditionReady, tt.ready)
			wantObserved := pl.Generation
			if tt.pending {
				wantObserved = tt.plugin.Status.ObservedGeneration
			}
			if st.Host != tt.host || st.URL != tt.url || st.AppliedRevision != tt.appliedRev || st.ObservedGeneration != wantObserved {
				t.Errorf("host %q url %q appliedRevision %q observedGeneration %d; want %q %q %q %d",
					st.Host, st.URL, st.AppliedRevision, st.ObservedGeneration, tt.host, tt.url, tt.appliedRev, wantObserved)
			}
		})
	}
}

// TestAppliedRevisionStaysPut: once a generation is applied, a later revision that changes
// only other plugins does not rewrite the Plugin's status; a new generation does.
func TestAppliedRevisionStaysPut(t *testing.T) {
	p := testPlugin("c1")
	h := testHost("h", time.Hour, matchApp("demo"))
	h.Status = v1alpha1.PluginHostStatus{ConfigRevision: revA, AppliedRevision: revA,
		Pods:    []v1alpha1.PodStatus{{Name: "h-1", AppliedRevision: revA, Ready: true}},
		Plugins: []v1alpha1.SelectedPluginStatus{{Name: "c1", UID: p.UID, Generation: 1, Reason: v1alpha1.ReasonAccepted, Revision: revA, AppliedGeneration: 1}}}
	setPluginStatus(&p, []v1alpha1.PluginHost{h})
	before := p.Status.DeepCopy()
	if before.AppliedRevision != revA {
		t.Fatalf("appliedRevision %q", before.AppliedRevision)
	}

	// Another plugin changed: revision B rolls out with generation 1 of c1 unchanged.
	h.Status.ConfigRevision, h.Status.AppliedRevision = revB, revB
	h.Status.Pods[0].AppliedRevision = revB
	h.Status.Plugins[0].Revision = revB
	setPluginStatus(&p, []v1alpha1.PluginHost{h})
	if !equality.Semantic.DeepEqual(before, &p.Status) {
		t.Errorf("status changed with another plugin's revision:\n%+v\n%+v", before, p.Status)
	}

	// c1 itself changes and rolls out in revision B: appliedRevision follows.
	p.Generation = 2
	h.Status.Plugins[0].Generation, h.Status.Plugins[0].AppliedGeneration = 2, 2
	setPluginStatus(&p, []v1alpha1.PluginHost{h})
	if p.Status.AppliedRevision != revB {
		t.Errorf("appliedRevision %q, want %q for the new generation", p.Status.AppliedRevision, revB)
	}
}

func TestPluginsAffected(t *testing.T) {
	base := testHost("h", time.Hour, matchApp("demo"))
	base.Status = v1alpha1.PluginHostStatus{ConfigRevision: revA, AppliedRevision: revA,
		Pods: []v1alpha1.PodStatus{{Name: "h-1", AppliedRevision: revA, Ready: true, LastChecked: metav1.NewTime(epoch)}},
		Plugins: []v1alpha1.SelectedPluginStatus{
			{Name: "a", Generation: 1, Reason: v1alpha1.ReasonAccepted, Revision: revA, AppliedGeneration: 1},
			{Name: "b", Generation: 1, Reason: v1alpha1.ReasonAccepted, Revision: revA, AppliedGeneration: 1},
		}}
	tests := []struct {
		name    string
		mutate  func(*v1alpha1.PluginHost)
		all     bool
		changed []string
	}{
		{name: "a poll: only lastChecked moves", mutate: func(h *v1alpha1.PluginHost) { h.Status.Pods[0].LastChecked = metav1.NewTime(epoch.Add(time.Second)) }},
		{name: "one entry changes", mutate: func(h *v1alpha1.PluginHost) { h.Status.Plugins[1].Generation = 2 }, changed: []string{"b"}},
		{name: "an entry appears", mutate: func(h *v1alpha1.PluginHost) {
			h.Status.Plugins = append(h.Status.Plugins, v1alpha1.SelectedPluginStatus{Name: "c", Reason: v1alpha1.ReasonInvalidSpec})
		}, changed: []string{"c"}},
		{name: "an entry goes", mutate: func(h *v1alpha1.PluginHost) { h.Status.Plugins = h.Status.Plugins[:1] }, changed: []string{"b"}},
		// The entries still name the previous revision: not yet in the desired one.
		{name: "new desired revision", mutate: func(h *v1alpha1.PluginHost) { h.Status.ConfigRevision = revB }, changed: []string{"a", "b"}},
		{name: "a revision that changes one Plugin, rolled out", mutate: func(h *v1alpha1.PluginHost) {
			h.Status.ConfigRevision, h.Status.AppliedRevision, h.Status.Pods[0].AppliedRevision = revB, revB, revB
			for i := range h.Status.Plugins {
				h.Status.Plugins[i].Revision = revB
			}
			h.Status.Plugins[1].Generation, h.Status.Plugins[1].AppliedGeneration = 2, 2
		}, changed: []string{"b"}},
		{name: "rolled out", mutate: func(h *v1alpha1.PluginHost) { h.Status.AppliedRevision = revB }, all: true},
		{name: "pod readiness", mutate: func(h *v1alpha1.PluginHost) { h.Status.Pods[0].Ready = false }, all: true},
		{name: "pod refused", mutate: func(h *v1alpha1.PluginHost) { h.Status.Pods[0].LastReloadError = "x" }, all: true},
		{name: "pod gone", mutate: func(h *v1alpha1.PluginHost) { h.Status.Pods = nil }, all: true},
		{name: "selector", mutate: func(h *v1alpha1.PluginHost) { h.Spec.PluginSelector = matchApp("other") }, all: true},
		{name: "service port (URLs)", mutate: func(h *v1alpha1.PluginHost) { h.Spec.Service = &v1alpha1.ServiceSpec{Port: 1} }, all: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := base.DeepCopy()
			tt.mutate(next)
			all, changed := pluginsAffected(&base, next)
			if all != tt.all || strings.Join(changed, ",") != strings.Join(tt.changed, ",") {
				t.Errorf("pluginsAffected = %v %v, want %v %v", all, changed, tt.all, tt.changed)
			}
		})
	}
}

func TestInProgress(t *testing.T) {
	p := testPlugin("c1")
	entry := []v1alpha1.SelectedPluginStatus{{Name: "c1", UID: p.UID, Generation: 1, Reason: v1alpha1.ReasonAccepted, Revision: revB}}
	withPods := testHost("h", time.Hour, matchApp("demo"))
	withPods.Status = v1alpha1.PluginHostStatus{ConfigRevision: revB, AppliedRevision: revA, Plugins: entry,
		Pods: []v1alpha1.PodStatus{{Name: "h-1", AppliedRevision: revA, Ready: true}}}
	noPods := withPods
	noPods.Status.Pods = nil
	rejected := withPods
	rejected.Status.Plugins = []v1alpha1.SelectedPluginStatus{{Name: "c1", UID: p.UID, Generation: 1, Reason: v1alpha1.ReasonInvalidSpec}}
	unevaluated := withPods
	unevaluated.Status.Plugins = nil
	applied := withPods
	applied.Status.AppliedRevision, applied.Status.Pods = revB, []v1alpha1.PodStatus{{Name: "h-1", AppliedRevision: revB, Ready: true}}
	applied.Status.Plugins = []v1alpha1.SelectedPluginStatus{{Name: "c1", UID: p.UID, Generation: 1, Reason: v1alpha1.ReasonAccepted, Revision: revB, AppliedGeneration: 1}}

	for _, tt := range []struct {
		name string
		host v1alpha1.PluginHost
		want bool
	}{
		{"rolling out to a running pod: wait", withPods, true},
		{"host has not evaluated it: wait", unevaluated, true},
		{"no running pod: nothing to wait for", noPods, false},
		{"rejected: say so now", rejected, false},
		{"applied: say so now", applied, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pl := p.DeepCopy()
			hosts := []v1alpha1.PluginHost{tt.host}
			setPluginStatus(pl, hosts)
			if got := inProgress(pl, hosts); got != tt.want {
				t.Errorf("inProgress = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStatusPollInterval(t *testing.T) {
	r := &PluginHostReconciler{Options: Options{StatusPollInterval: time.Second}}
	host := &v1alpha1.PluginHost{Spec: v1alpha1.PluginHostSpec{PollInterval: &metav1.Duration{Duration: 250 * time.Millisecond}}}
	const want = "sha256:new"
	tests := []struct {
		name    string
		running []podFact
		expect  time.Duration
	}{
		{"change in flight", []podFact{{Name: "a", Applied: "sha256:old"}}, 250 * time.Millisecond},
		{"one pod applied, one in flight", []podFact{{Name: "a", Applied: want}, {Name: "b", Applied: "sha256:old"}}, 250 * time.Millisecond},
		{"unreachable pod", []podFact{{Name: "a", Err: errors.New("refused")}}, time.Second},
		{"refused config", []podFact{{Name: "a", Applied: "sha256:old", Refused: "bad"}}, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.statusPollInterval(host, hostFacts{DesiredRevision: want, Running: tt.running}, false); got != tt.expect {
				t.Errorf("got %v, want %v", got, tt.expect)
			}
		})
	}
	slow := host.DeepCopy()
	slow.Spec.PollInterval.Duration = 5 * time.Second
	if got := r.statusPollInterval(slow, hostFacts{DesiredRevision: want, Running: []podFact{{Name: "a"}}}, false); got != time.Second {
		t.Errorf("a host polling slower than --status-poll-interval: %v", got)
	}
	// Every awaited pod long-polled: the long-poll tells of the apply, the poll is the fallback.
	if got := r.statusPollInterval(host, hostFacts{DesiredRevision: want, Running: []podFact{{Name: "a", Applied: "sha256:old"}}}, true); got != time.Second {
		t.Errorf("a change in flight, long-polled: %v, want the normal pace", got)
	}
}

// TestStatusMessagesCapped: every condition the manager writes, a host's and a Plugin's, and
// every status.plugins message, is at most MaxStatusMessageBytes and valid UTF-8, however
// long the text it quotes (here a pod's refusal, a host stall and an entry's message built
// from thousands of option keys).
func TestStatusMessagesCapped(t *testing.T) {
	long := strings.Repeat("clé-inconnue, ", 20000) // multi-byte runes: the cut is on a boundary
	check := func(what, msg string) {
		t.Helper()
		if len(msg) > MaxStatusMessageBytes || !utf8.ValidString(msg) {
			t.Errorf("%s: message of %d bytes (valid UTF-8: %v), want at most %d", what, len(msg), utf8.ValidString(msg), MaxStatusMessageBytes)
		}
		if len(msg) == MaxStatusMessageBytes && !strings.HasSuffix(msg, "… (truncated)") {
			t.Errorf("%s: cut without the mark", what)
		}
	}

	host := testHost("demo", time.Hour, matchApp("demo"))
	setHostConditions(&host, hostFacts{DesiredRevision: revA, Pods: 1, ReadyPods: 1,
		Running: []podFact{{Name: "p", Ready: true, Applied: revB, Refused: long}}})
	setHostConditions(&host, hostFacts{Refusal: long})
	for _, c := range host.Status.Conditions {
		check("PluginHost "+c.Type, c.Message)
	}

	p := testPlugin("c")
	host.Status.Plugins = []v1alpha1.SelectedPluginStatus{{Name: "c", UID: p.UID, Generation: p.Generation,
		Reason: v1alpha1.ReasonInvalidOptions, Message: long}}
	setPluginStatus(&p, []v1alpha1.PluginHost{host})
	for _, c := range p.Status.Conditions {
		check("Plugin "+c.Type, c.Message)
	}

	// A Plugin with 3,000 unknown option keys: its status.plugins message, which lists them,
	// is capped where it is made.
	bad := testPlugin("u", withType("counter", `{}`))
	bad.Spec.Options.Extra = map[string]json.RawMessage{}
	for i := range 3000 { // 3,000 keys, under MaxPluginEntryBytes
		bad.Spec.Options.Extra[fmt.Sprintf("k%04d", i)] = json.RawMessage(`"é"`)
	}
	known := advertisedSet(t)
	ev := evaluatePlugins(configInputs{Host: &host, Hosts: []v1alpha1.PluginHost{host}, Plugins: []v1alpha1.Plugin{bad},
		SecretsDir: "/s", Types: known.Set, HostTypes: known})
	if len(ev.Plugins) != 1 || ev.Plugins[0].Reason != v1alpha1.ReasonInvalidOptions {
		t.Fatalf("entries %+v, want one InvalidOptions", ev.Plugins)
	}
	check("status.plugins[u]", ev.Plugins[0].Message)
}
