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

	"k8s.io/apimachinery/pkg/types"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// TestPriorRolloutOf: what a restarted manager learns from the status it reads.
func TestPriorRolloutOf(t *testing.T) {
	tests := []struct {
		name string
		st   v1alpha1.PluginHostStatus
		want priorRollout
	}{
		{"empty", v1alpha1.PluginHostStatus{}, priorRollout{}},
		{"no pods listed", v1alpha1.PluginHostStatus{ConfigRevision: revB, AppliedRevision: revA},
			priorRollout{Revision: revB, Applied: revA}},
		{"the ready pod runs the previous revision", v1alpha1.PluginHostStatus{ConfigRevision: revB, AppliedRevision: revA,
			Pods: []v1alpha1.PodStatus{{Name: "p0", Ready: true, AppliedRevision: revA}}},
			priorRollout{Revision: revB, Applied: revA}},
		{"every ready pod runs it, an unready one does not", v1alpha1.PluginHostStatus{ConfigRevision: revB, AppliedRevision: revA,
			Pods: []v1alpha1.PodStatus{{Name: "p0", Ready: true, AppliedRevision: revB}, {Name: "p1", AppliedRevision: revA}}},
			priorRollout{Revision: revB, Applied: revA, ReadyApplied: true}},
		{"one of two ready pods runs it", v1alpha1.PluginHostStatus{ConfigRevision: revB, AppliedRevision: revA,
			Pods: []v1alpha1.PodStatus{{Name: "p0", Ready: true, AppliedRevision: revB}, {Name: "p1", Ready: true, AppliedRevision: revA}}},
			priorRollout{Revision: revB, Applied: revA}},
		{"no pod ready", v1alpha1.PluginHostStatus{ConfigRevision: revB, AppliedRevision: revA,
			Pods: []v1alpha1.PodStatus{{Name: "p0", AppliedRevision: revB}}},
			priorRollout{Revision: revB, Applied: revA}},
		{"a refusal", v1alpha1.PluginHostStatus{ConfigRevision: revB, AppliedRevision: revA,
			Pods: []v1alpha1.PodStatus{{Name: "p0", Ready: true, AppliedRevision: revA, LastReloadError: "bad"}}},
			priorRollout{Revision: revB, Applied: revA, RefusalCounted: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := priorRolloutOf(&tt.st); got != tt.want {
				t.Errorf("priorRolloutOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestNewTimer: which revisions are timed, and from when.
func TestNewTimer(t *testing.T) {
	now := time.Date(2026, 11, 26, 18, 0, 30, 0, time.UTC)
	rendered := now.Add(-20 * time.Second)
	inFlight := priorRollout{Revision: revB, Applied: revA}
	tests := []struct {
		name       string
		prior      priorRollout
		renderedAt time.Time
		wantSince  time.Time
		wantDone   bool
	}{
		{"rendered now, the host's first", priorRollout{}, now, now, true},
		{"rendered now, replacing one", priorRollout{Revision: revA, Applied: revA}, now, now, false},
		{"rendered now, the previous one not applied yet", priorRollout{Revision: revA}, now, now, false},
		{"in flight at a restart: from its rendering", inFlight, rendered, rendered, false},
		{"in flight, a pod refused it", priorRollout{Revision: revB, Applied: revA, RefusalCounted: true}, rendered, rendered, false},
		{"applied before the restart", priorRollout{Revision: revB, Applied: revB}, rendered, rendered, true},
		{"every ready pod ran it before the restart", priorRollout{Revision: revB, Applied: revA, ReadyApplied: true}, rendered, rendered, true},
		{"the host's first, found in flight", priorRollout{Revision: revB}, rendered, rendered, true},
		{"no configRevisionTime (an older operator)", inFlight, time.Time{}, now, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newTimer(tt.prior, revB, tt.renderedAt, now)
			if got.revision != revB || !got.since.Equal(tt.wantSince) || got.done != tt.wantDone || got.refused {
				t.Errorf("newTimer = %+v, want revision %s since %v done %v, no refusal", got, revB, tt.wantSince, tt.wantDone)
			}
		})
	}
}

// TestRenderedAt: a revision keeps the time of this manager's first rendering of it.
func TestRenderedAt(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "h"}
	t0 := time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)
	var c rolloutClock
	if got := c.renderedAt(key, revA, t0); !got.Equal(t0) {
		t.Fatalf("no timer: %v, want now %v", got, t0)
	}
	c.observeRollout(key, priorRollout{Revision: revA, Applied: revA}, t0, hostFacts{DesiredRevision: revB}, t0)
	for _, tt := range []struct {
		name string
		rev  string
		now  time.Time
		want time.Time
	}{
		{"the timed revision, rendered again", revB, t0.Add(time.Minute), t0},
		{"another revision", revA, t0.Add(time.Minute), t0.Add(time.Minute)},
	} {
		if got := c.renderedAt(key, tt.rev, tt.now); !got.Equal(tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	c.forgetHost(key)
	if got := c.renderedAt(key, revB, t0.Add(time.Hour)); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("after forgetHost: %v, want now", got)
	}
}
