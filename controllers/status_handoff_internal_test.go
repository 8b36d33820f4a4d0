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
	"context"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// handoffHost is a cached host at resourceVersion rv whose status lists one Plugin, "a",
// at revision rev.
func handoffHost(rv, rev string) *v1alpha1.PluginHost {
	return &v1alpha1.PluginHost{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "h", ResourceVersion: rv},
		Status: v1alpha1.PluginHostStatus{ConfigRevision: rev, AppliedRevision: rev,
			Plugins: []v1alpha1.SelectedPluginStatus{{Name: "a", Generation: 1, Revision: rev, Reason: v1alpha1.ReasonAccepted}}},
	}
}

// drain returns the names queued in q, in order, and empties it.
func drain(q workqueue.TypedRateLimitingInterface[reconcile.Request]) []string {
	var names []string
	for q.Len() > 0 {
		req, _ := q.Get()
		names = append(names, req.Name)
		q.Done(req)
	}
	return names
}

func startedHandoff(t *testing.T) (*statusHandoff, workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	t.Helper()
	s := newStatusHandoff()
	s.pluginsOf = func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: "selected-by-" + o.GetResourceVersion()}}}
	}
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	t.Cleanup(q.ShutDown)
	if err := s.source(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	return s, q
}

func TestStatusHandoffBeforeThePluginControllerStarts(t *testing.T) {
	s := newStatusHandoff()
	before, after := handoffHost("1", "r1"), handoffHost("1", "r2")
	if h := s.offer(context.Background(), before, after); h != nil {
		t.Fatalf("offer without the Plugin controller's queue = %+v, want nil: its host events do the work", h)
	}
	hosts := []v1alpha1.PluginHost{*before}
	s.overlay(hosts)
	if got := hosts[0].Status.ConfigRevision; got != "r1" {
		t.Errorf("overlay replaced the cached host: revision %s", got)
	}
}

func TestStatusHandoffIsReadUntilItsWriteIsCached(t *testing.T) {
	s, q := startedHandoff(t)
	before := handoffHost("1", "r1")
	after := before.DeepCopy()
	after.Status.ConfigRevision, after.Status.AppliedRevision = "r2", "r2"
	after.Status.Plugins[0].Generation, after.Status.Plugins[0].Revision = 2, "r2"

	h := s.offer(context.Background(), before, after)
	if h == nil {
		t.Fatal("offer of a status that changes Plugin a's entry handed nothing off")
	}
	if got := drain(q); !slices.Equal(got, []string{"a"}) {
		t.Errorf("offer enqueued %v, want the Plugin whose entry changed: [a]", got)
	}
	// The write is under way; the write's response mutates the reconcile's object.
	after.Status.AppliedRevision = "mutated by the response"

	hosts := []v1alpha1.PluginHost{*before}
	s.overlay(hosts)
	if got := hosts[0].Status.AppliedRevision; got != "r2" {
		t.Errorf("overlay over the version the status was computed from: applied revision %q, want r2", got)
	}
	if got := before.Status.AppliedRevision; got != "r1" {
		t.Errorf("overlay changed the cached object: %q", got)
	}

	s.wrote(h, "2")
	written := handoffHost("2", "r2")
	if !s.handedOff(before, written) {
		t.Error("the write's own event was not recognized: its Plugins would be enqueued twice")
	}
	hosts = []v1alpha1.PluginHost{*before}
	s.overlay(hosts)
	if got := hosts[0].Status.AppliedRevision; got != "r1" {
		t.Errorf("overlay after the cache moved on: applied revision %q, want the cache's r1", got)
	}
	if s.handedOff(written, handoffHost("3", "r2")) {
		t.Error("a later event counted as handed off")
	}
}

func TestStatusHandoffGivesWayToTheCache(t *testing.T) {
	ctx := context.Background()
	before := handoffHost("1", "r1")
	after := handoffHost("1", "r2")
	after.Status.Plugins[0].Generation = 2

	t.Run("another write cached first", func(t *testing.T) {
		s, q := startedHandoff(t)
		h := s.offer(ctx, before, after)
		drain(q)
		s.wrote(h, "3")
		// Someone else's write (resourceVersion 2) reaches the cache before ours.
		if s.handedOff(before, handoffHost("2", "r1")) {
			t.Error("another write's event counted as the handoff's")
		}
		hosts := []v1alpha1.PluginHost{*handoffHost("2", "r1")}
		s.overlay(hosts)
		if got := hosts[0].Status.ConfigRevision; got != "r1" {
			t.Errorf("overlay over a newer cached version: %s", got)
		}
		// Our write's event is then an ordinary one.
		if s.handedOff(handoffHost("2", "r1"), handoffHost("3", "r2")) {
			t.Error("a dropped handoff still counted")
		}
	})
	t.Run("event before the write returned", func(t *testing.T) {
		s, q := startedHandoff(t)
		s.offer(ctx, before, after)
		drain(q)
		if s.handedOff(before, handoffHost("2", "r2")) {
			t.Error("an event the handoff cannot tell for its own was skipped: its Plugins must be enqueued")
		}
	})
	t.Run("write failed", func(t *testing.T) {
		s, q := startedHandoff(t)
		h := s.offer(ctx, before, after)
		drain(q)
		s.withdraw(h)
		hosts := []v1alpha1.PluginHost{*before}
		s.overlay(hosts)
		if got := hosts[0].Status.ConfigRevision; got != "r1" {
			t.Errorf("overlay of a withdrawn handoff: %s", got)
		}
	})
	t.Run("host deleted", func(t *testing.T) {
		s, q := startedHandoff(t)
		s.offer(ctx, before, after)
		drain(q)
		s.forget(client.ObjectKeyFromObject(before))
		hosts := []v1alpha1.PluginHost{*before}
		s.overlay(hosts)
		if got := hosts[0].Status.ConfigRevision; got != "r1" {
			t.Errorf("overlay of a forgotten host: %s", got)
		}
	})
}

func TestStatusHandoffWakesWhomTheHostEventWould(t *testing.T) {
	s, q := startedHandoff(t)
	before := handoffHost("1", "r1")
	if h := s.offer(context.Background(), before, handoffHost("1", "r1")); h != nil || q.Len() != 0 {
		t.Errorf("a status no Plugin reads changed: handoff %+v, %d enqueued", h, q.Len())
	}
	// A change every selected Plugin reads (a pod report): the Plugins the old and the new
	// host select, as the host event handler enqueues them.
	after := handoffHost("1", "r1")
	after.Status.Pods = []v1alpha1.PodStatus{{Name: "pod-0", Ready: true, AppliedRevision: "r1"}}
	if h := s.offer(context.Background(), before, after); h == nil {
		t.Fatal("a pod report every Plugin reads handed nothing off")
	}
	// (The queue holds a request once.)
	if got, want := drain(q), []string{"selected-by-1"}; !slices.Equal(got, want) {
		t.Errorf("enqueued %v, want %v", got, want)
	}
}
