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
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// checkReadiness checks Ready, and that Reconciling and Stalled follow it as kstatus reads
// them: the same reason and message, and True for the class wanted (at most one).
func checkReadiness(t *testing.T, conds []metav1.Condition, ready wantCond, class readiness) {
	t.Helper()
	checkCond(t, conds, v1alpha1.ConditionReady, ready)
	r := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
	for typ, on := range map[string]bool{v1alpha1.ConditionReconciling: class == reconciling, v1alpha1.ConditionStalled: class == stalled} {
		c := meta.FindStatusCondition(conds, typ)
		if c == nil || r == nil {
			t.Errorf("%s or Ready missing", typ)
			continue
		}
		want := metav1.ConditionFalse
		if on {
			want = metav1.ConditionTrue
		}
		if c.Status != want || c.Reason != r.Reason || c.Message != r.Message || c.ObservedGeneration != r.ObservedGeneration {
			t.Errorf("%s = %s/%s %q (gen %d), want %s with Ready's reason %s %q (gen %d)",
				typ, c.Status, c.Reason, c.Message, c.ObservedGeneration, want, r.Reason, r.Message, r.ObservedGeneration)
		}
	}
}

func TestSetHostReadiness(t *testing.T) {
	T, F := metav1.ConditionTrue, metav1.ConditionFalse
	readyPod := func(applied string) podFact { return podFact{Name: "p", Ready: true, Applied: applied} }
	tests := []struct {
		name  string
		facts hostFacts
		// pinned is status.pinnedRevision.
		pinned int64
		ready  wantCond
		class  readiness
		// podConds: Available and Progressing are (re)computed.
		podConds bool
	}{{
		name:     "no pod yet (never scheduled)",
		facts:    hostFacts{DesiredRevision: revA, Pods: 1},
		ready:    wantCond{F, v1alpha1.ReasonWorkloadUnavailable, "No pod is ready (1 pods)"},
		class:    reconciling,
		podConds: true,
	}, {
		name:     "deployment available but no pod seen is not Ready",
		facts:    hostFacts{DesiredRevision: revA, DeploymentAvailable: true},
		ready:    wantCond{F, v1alpha1.ReasonWorkloadUnavailable, ""},
		class:    reconciling,
		podConds: true,
	}, {
		name:     "running, not ready",
		facts:    hostFacts{DesiredRevision: revA, Pods: 1, Running: []podFact{{Name: "p", Applied: revA}}},
		ready:    wantCond{F, v1alpha1.ReasonWorkloadUnavailable, ""},
		class:    reconciling,
		podConds: true,
	}, {
		name:     "rolling out",
		facts:    hostFacts{DesiredRevision: revB, Pods: 1, ReadyPods: 1, Running: []podFact{readyPod(revA)}},
		ready:    wantCond{F, v1alpha1.ReasonRollingOut, "0 of 1 running pods run revision sha256:bbbbbbbbbbbb"},
		class:    reconciling,
		podConds: true,
	}, {
		name: "one of two pods behind",
		facts: hostFacts{DesiredRevision: revB, Pods: 2, ReadyPods: 2,
			Running: []podFact{readyPod(revB), {Name: "q", Ready: true, Applied: revA}}},
		ready:    wantCond{F, v1alpha1.ReasonRollingOut, "1 of 2 running pods"},
		class:    reconciling,
		podConds: true,
	}, {
		name:     "rolled out",
		facts:    hostFacts{DesiredRevision: revA, Pods: 1, ReadyPods: 1, Running: []podFact{readyPod(revA)}},
		ready:    wantCond{T, v1alpha1.ReasonRolledOut, "1 of 1 pods ready; all 1 running pods run revision sha256:aaaaaaaaaaaa"},
		class:    settled,
		podConds: true,
	}, {
		name: "pod refused the configuration",
		facts: hostFacts{DesiredRevision: revB, Pods: 1, ReadyPods: 1,
			Running: []podFact{{Name: "p", Ready: true, Applied: revA, Refused: "options.increment: must be positive"}}},
		ready:    wantCond{F, v1alpha1.ReasonPodRefusedConfig, "pod p: options.increment: must be positive"},
		class:    stalled,
		podConds: true,
	}, {
		name:     "pinned revision rolled out",
		facts:    hostFacts{DesiredRevision: revA, Pods: 1, ReadyPods: 1, Running: []podFact{readyPod(revA)}},
		pinned:   3,
		ready:    wantCond{T, v1alpha1.ReasonRolledOut, "run revision sha256:aaaaaaaaaaaa, pinned by spec.pinnedRevision (revision 3)"},
		class:    settled,
		podConds: true,
	}, {
		name: "pod refused the pinned revision",
		facts: hostFacts{DesiredRevision: revB, Pods: 1, ReadyPods: 1,
			Running: []podFact{{Name: "p", Ready: true, Applied: revA, Refused: `plugin "rl": unknown type "ratelimit"`}}},
		pinned:   3,
		ready:    wantCond{F, v1alpha1.ReasonPodRefusedConfig, `Refused the pinned revision 3 (sha256:bbbbbbbbbbbb, spec.pinnedRevision) and kept the previous one: pod p: plugin "rl": unknown type "ratelimit"`},
		class:    stalled,
		podConds: true,
	}, {
		name: "ready pod unreachable",
		facts: hostFacts{DesiredRevision: revA, Pods: 1, ReadyPods: 1,
			Running: []podFact{{Name: "p", Ready: true, Err: errors.New("connection refused")}}},
		ready:    wantCond{F, v1alpha1.ReasonPodsUnreachable, "pod p: connection refused"},
		class:    reconciling,
		podConds: true,
	}, {
		name: "bad selector",
		facts: hostFacts{ConfigReason: v1alpha1.ReasonConfigInvalid, ConfigMessage: `spec.pluginSelector: "Near" is not a valid operator`,
			DesiredRevision: revA, Pods: 1, ReadyPods: 1, Running: []podFact{readyPod(revA)}},
		ready:    wantCond{F, v1alpha1.ReasonConfigInvalid, "spec.pluginSelector"},
		class:    stalled,
		podConds: true,
	}, {
		name:     "user ConfigMap missing",
		facts:    hostFacts{ConfigReason: v1alpha1.ReasonConfigMapNotFound, ConfigMessage: `ConfigMap "u" (spec.configMapRef) not found`},
		ready:    wantCond{F, v1alpha1.ReasonConfigMapNotFound, `ConfigMap "u"`},
		class:    stalled,
		podConds: true,
	}, {
		name:  "child conflict",
		facts: hostFacts{Conflicts: []string{"Service victim exists and is not controlled by this PluginHost"}},
		ready: wantCond{F, v1alpha1.ReasonChildConflict, "Not applying any child: Service victim exists and is not controlled by this PluginHost"},
		class: stalled,
	}, {
		name:  "child refused",
		facts: hostFacts{Refusal: "The API server refused to apply Deployment h (Forbidden): exceeded quota"},
		ready: wantCond{F, v1alpha1.ReasonChildRefused, "The API server refused to apply Deployment h (Forbidden): exceeded quota"},
		class: stalled,
	}, {
		name:  "failed step",
		facts: hostFacts{FailedStep: "applying Deployment h: the server is currently unable to handle the request"},
		ready: wantCond{F, v1alpha1.ReasonReconcileFailed, "applying Deployment h: the server is currently unable to handle the request; retrying"},
		class: reconciling,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := testHost("h", time.Hour, matchApp("demo"))
			host.Generation = 4
			host.Status.PinnedRevision = tt.pinned
			setHostConditions(&host, tt.facts)
			checkReadiness(t, host.Status.Conditions, tt.ready, tt.class)
			for _, typ := range []string{v1alpha1.ConditionAvailable, v1alpha1.ConditionProgressing} {
				if got := meta.FindStatusCondition(host.Status.Conditions, typ) != nil; got != tt.podConds {
					t.Errorf("%s set = %v, want %v (only when the pods were read)", typ, got, tt.podConds)
				}
			}
			for _, c := range host.Status.Conditions {
				if c.ObservedGeneration != 4 {
					t.Errorf("%s observedGeneration %d", c.Type, c.ObservedGeneration)
				}
			}
		})
	}
}

// TestHostStepFailureKeepsPodConditions: a reconcile that stops early (a failed step, a
// conflict, a refused child) knows nothing new about the pods, so it leaves Available and Progressing as the
// last reconcile that read them set them.
func TestHostStepFailureKeepsPodConditions(t *testing.T) {
	host := testHost("h", time.Hour, matchApp("demo"))
	setHostConditions(&host, hostFacts{DesiredRevision: revA, Pods: 1, ReadyPods: 1, Running: []podFact{{Name: "p", Ready: true, Applied: revA}}})
	before := host.DeepCopy()
	setHostConditions(&host, hostFacts{FailedStep: "listing pods: timeout"})
	for _, typ := range []string{v1alpha1.ConditionAvailable, v1alpha1.ConditionProgressing, v1alpha1.ConditionDegraded} {
		if a, b := meta.FindStatusCondition(before.Status.Conditions, typ), meta.FindStatusCondition(host.Status.Conditions, typ); *a != *b {
			t.Errorf("%s changed on a failed step: %+v -> %+v", typ, *a, *b)
		}
	}
	setHostConditions(&host, hostFacts{Conflicts: []string{"ConfigMap h-config exists and is not controlled by this PluginHost"}})
	checkCond(t, host.Status.Conditions, v1alpha1.ConditionDegraded, wantCond{metav1.ConditionTrue, v1alpha1.ReasonChildConflict, "ConfigMap h-config"})
	checkCond(t, host.Status.Conditions, v1alpha1.ConditionAvailable, wantCond{metav1.ConditionTrue, v1alpha1.ReasonWorkloadAvailable, ""})
	setHostConditions(&host, hostFacts{Refusal: "The API server refused to apply Deployment h (Invalid): denied"})
	checkCond(t, host.Status.Conditions, v1alpha1.ConditionDegraded, wantCond{metav1.ConditionTrue, v1alpha1.ReasonChildRefused, "Deployment h"})
	checkCond(t, host.Status.Conditions, v1alpha1.ConditionAvailable, wantCond{metav1.ConditionTrue, v1alpha1.ReasonWorkloadAvailable, ""})
}
