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
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

func TestSetPluginReadiness(t *testing.T) {
	T, F := metav1.ConditionTrue, metav1.ConditionFalse
	base := testPlugin("c1")
	base.Generation = 3
	base.Status.ObservedGeneration = 2 // the generation before the edit

	entry := func(reason string, gen int64, rev string) *v1alpha1.SelectedPluginStatus {
		return &v1alpha1.SelectedPluginStatus{Name: "c1", UID: base.UID, Generation: gen, Reason: reason, Message: "why: " + reason,
			Revision: rev, AppliedGeneration: gen}
	}
	host := func(e *v1alpha1.SelectedPluginStatus, applied string, ready bool, reloadErr string, conds ...metav1.Condition) v1alpha1.PluginHost {
		h := testHost("h", time.Hour, matchApp("demo"))
		h.Status = v1alpha1.PluginHostStatus{ConfigRevision: revA, AppliedRevision: applied, Conditions: conds,
			Pods: []v1alpha1.PodStatus{{Name: "h-1", AppliedRevision: applied, Ready: ready, LastReloadError: reloadErr}}}
		if e != nil {
			h.Status.Plugins = []v1alpha1.SelectedPluginStatus{*e}
		}
		return h
	}
	stalledBy := func(reason, msg string) metav1.Condition {
		return metav1.Condition{Type: v1alpha1.ConditionStalled, Status: T, Reason: reason, Message: msg, ObservedGeneration: 1}
	}
	tests := []struct {
		name   string
		plugin func(*v1alpha1.Plugin)
		hosts  []v1alpha1.PluginHost
		ready  wantCond
		class  readiness
		// observed is the wanted status.observedGeneration.
		observed int64
	}{{
		name:     "serving",
		hosts:    []v1alpha1.PluginHost{host(entry(v1alpha1.ReasonAccepted, 3, revA), revA, true, "")},
		ready:    wantCond{T, v1alpha1.ReasonServing, "Served at http://h.ns.svc:8080/plugins/c1"},
		class:    settled,
		observed: 3,
	}, {
		name:     "disabled is settled, not in progress",
		plugin:   func(p *v1alpha1.Plugin) { p.Spec.Enabled = ptr.To(false) },
		hosts:    []v1alpha1.PluginHost{host(entry(v1alpha1.ReasonAccepted, 3, revA), revA, true, "")},
		ready:    wantCond{F, v1alpha1.ReasonDisabled, "spec.enabled is false"},
		class:    settled,
		observed: 3,
	}, {
		name:     "pending: the host has not evaluated generation 3",
		hosts:    []v1alpha1.PluginHost{host(entry(v1alpha1.ReasonAccepted, 2, revA), revA, true, "")},
		ready:    wantCond{F, v1alpha1.ReasonPending, "has not evaluated generation 3"},
		class:    reconciling,
		observed: 2,
	}, {
		name: "the host is stalled by a child conflict",
		hosts: []v1alpha1.PluginHost{host(nil, "", false, "",
			stalledBy(v1alpha1.ReasonChildConflict, "Not applying any child: Service h exists and is not controlled by this PluginHost"))},
		ready:    wantCond{F, v1alpha1.ReasonChildConflict, "PluginHost h is stalled (ChildConflict): Not applying any child: Service h"},
		class:    stalled,
		observed: 3,
	}, {
		name: "the host's ConfigMap is refused before it evaluates generation 3",
		hosts: []v1alpha1.PluginHost{host(entry(v1alpha1.ReasonAccepted, 2, revA), revA, true, "",
			stalledBy(v1alpha1.ReasonChildRefused, "The API server refused to apply ConfigMap h-config (Forbidden): exceeded quota"))},
		ready:    wantCond{F, v1alpha1.ReasonChildRefused, "PluginHost h is stalled (ChildRefused): The API server refused to apply ConfigMap h-config"},
		class:    stalled,
		observed: 3,
	}, {
		// Evaluated and rendered, but the host stops before it reads its pods: waiting for
		// them to apply generation 3 would be for ever.
		name: "the host's Deployment is refused after it evaluated generation 3",
		hosts: []v1alpha1.PluginHost{host(&v1alpha1.SelectedPluginStatus{Name: "c1", UID: base.UID, Generation: 3, Reason: v1alpha1.ReasonAccepted, Revision: revB, AppliedGeneration: 2}, revA, true, "",
			stalledBy(v1alpha1.ReasonChildRefused, "The API server refused to apply Deployment h (Invalid): denied"))},
		ready:    wantCond{F, v1alpha1.ReasonChildRefused, "PluginHost h is stalled (ChildRefused): The API server refused to apply Deployment h"},
		class:    stalled,
		observed: 3,
	}, {
		// Applied before the refusal: what runs keeps running and serving.
		name: "applied, then the host's Deployment is refused",
		hosts: []v1alpha1.PluginHost{host(entry(v1alpha1.ReasonAccepted, 3, revA), revA, true, "",
			stalledBy(v1alpha1.ReasonChildRefused, "The API server refused to apply Deployment h (Invalid): denied"))},
		ready:    wantCond{T, v1alpha1.ReasonServing, "Served at"},
		class:    settled,
		observed: 3,
	}, {
		// The host still evaluates Plugins: the edit is on its way, not failed.
		name: "pending on a host stalled by another Plugin's refused change",
		hosts: []v1alpha1.PluginHost{host(entry(v1alpha1.ReasonAccepted, 2, revA), revA, true, "",
			stalledBy(v1alpha1.ReasonPodRefusedConfig, "Refused revision sha256:bbbbbbbbbbbb"))},
		ready:    wantCond{F, v1alpha1.ReasonPending, "has not evaluated generation 3"},
		class:    reconciling,
		observed: 2,
	}, {
		name:     "no host selects it (yet)",
		hosts:    []v1alpha1.PluginHost{},
		ready:    wantCond{F, v1alpha1.ReasonNoHost, ""},
		class:    reconciling,
		observed: 3,
	}, {
		name:     "rolling out",
		hosts:    []v1alpha1.PluginHost{host(&v1alpha1.SelectedPluginStatus{Name: "c1", UID: base.UID, Generation: 3, Reason: v1alpha1.ReasonAccepted, Revision: revA, AppliedGeneration: 2}, revB, true, "")},
		ready:    wantCond{F, v1alpha1.ReasonRollingOut, "Waiting for the pods of PluginHost h to apply generation 3"},
		class:    reconciling,
		observed: 3,
	}, {
		name:     "host pod not ready",
		hosts:    []v1alpha1.PluginHost{host(entry(v1alpha1.ReasonAccepted, 3, revA), revA, false, "")},
		ready:    wantCond{F, v1alpha1.ReasonHostUnavailable, "0 of 1 pods"},
		class:    reconciling,
		observed: 3,
	}, {
		name:     "refused by the runtime",
		hosts:    []v1alpha1.PluginHost{host(&v1alpha1.SelectedPluginStatus{Name: "c1", UID: base.UID, Generation: 3, Reason: v1alpha1.ReasonAccepted, Revision: revA}, revB, true, "options.increment: must be positive")},
		ready:    wantCond{F, v1alpha1.ReasonReloadFailed, "options.increment: must be positive"},
		class:    stalled,
		observed: 3,
	}}
	for _, reason := range []string{v1alpha1.ReasonInvalidSpec, v1alpha1.ReasonNameConflict, v1alpha1.ReasonSecretNotFound} {
		tests = append(tests, struct {
			name     string
			plugin   func(*v1alpha1.Plugin)
			hosts    []v1alpha1.PluginHost
			ready    wantCond
			class    readiness
			observed int64
		}{
			name:     "rejected: " + reason,
			hosts:    []v1alpha1.PluginHost{host(entry(reason, 3, ""), revA, true, "")},
			ready:    wantCond{F, reason, "why: " + reason},
			class:    stalled,
			observed: 3,
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base.DeepCopy()
			if tt.plugin != nil {
				tt.plugin(p)
			}
			setPluginStatus(p, tt.hosts)
			checkReadiness(t, p.Status.Conditions, tt.ready, tt.class)
			if p.Status.ObservedGeneration != tt.observed {
				t.Errorf("observedGeneration %d, want %d", p.Status.ObservedGeneration, tt.observed)
			}
		})
	}
}
