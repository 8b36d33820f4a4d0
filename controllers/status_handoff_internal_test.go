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

// overlaid returns cached as the Plugin reconciler reads it through s.
func overlaid(s *statusHandoff, cached *v1alpha1.PluginHost) v1alpha1.PluginHostStatus {
	hosts := []v1alpha1.PluginHost{*cached}
	s.snapshot().overlay(hosts)
	return hosts[0].Status
}

// offerAndWrite offers after over before, as the host reconciler does, takes the Plugins it
// enqueued off q and records that its write returned resourceVersion.
func offerAndWrite(t *testing.T, s *statusHandoff, q workqueue.TypedRateLimitingInterface[reconcile.Request], before, after *v1alpha1.PluginHost, resourceVersion string) {
	t.Helper()
	h := s.offer(context.Background(), before, after)
	if h == nil {
		t.Fatal("offer handed nothing off")
	}
	drain(q)
	s.wrote(h, resourceVersion)
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
	if got := overlaid(s, before).ConfigRevision; got != "r1" {
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

	if got := overlaid(s, before).AppliedRevision; got != "r2" {
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
	if got := overlaid(s, before).AppliedRevision; got != "r1" {
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
		offerAndWrite(t, s, q, before, after, "3")
		// Someone else's write (resourceVersion 2) reaches the cache before ours.
		if s.handedOff(before, handoffHost("2", "r1")) {
			t.Error("another write's event counted as the handoff's")
		}
		if got := overlaid(s, handoffHost("2", "r1")).ConfigRevision; got != "r1" {
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
		if got := overlaid(s, before).ConfigRevision; got != "r1" {
			t.Errorf("overlay of a withdrawn handoff: %s", got)
		}
	})
	t.Run("host deleted", func(t *testing.T) {
		s, q := startedHandoff(t)
		s.offer(ctx, before, after)
		drain(q)
		s.forget(client.ObjectKeyFromObject(before))
		if got := overlaid(s, before).ConfigRevision; got != "r1" {
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

// withRevision returns host's status moved to revision rev, Plugin a's entry with it.
func withRevision(host *v1alpha1.PluginHost, rev string, generation int64) *v1alpha1.PluginHost {
	h := host.DeepCopy()
	h.Status.ConfigRevision, h.Status.AppliedRevision = rev, rev
	h.Status.Plugins[0].Generation, h.Status.Plugins[0].Revision = generation, rev
	return h
}

func TestStatusHandoffOutlivesItsEventForAReconcileThatListedBefore(t *testing.T) {
	s, q := startedHandoff(t)
	before := handoffHost("1", "r1")
	offerAndWrite(t, s, q, before, withRevision(before, "r2", 2), "2")

	// A Plugin reconcile takes its snapshot and lists the cache, which still holds "1";
	// then the write's event lands, counted as handed off, so it wakes nobody.
	snap := s.snapshot()
	listed := []v1alpha1.PluginHost{*before}
	if !s.handedOff(before, handoffHost("2", "r2")) {
		t.Fatal("the write's own event was not recognized")
	}
	snap.overlay(listed)
	if got := listed[0].Status.AppliedRevision; got != "r2" {
		t.Errorf("a reconcile that listed before the write's event read applied revision %q, want the handoff's r2: nothing would wake it again", got)
	}
	if got := overlaid(s, before).AppliedRevision; got != "r1" {
		t.Errorf("a reconcile that snapshots after the event read %q over the old version, want the cache's r1", got)
	}
}

func TestStatusHandoffTakesOverAWriteTheCacheHasNotShown(t *testing.T) {
	ctx := context.Background()
	s, q := startedHandoff(t)
	before := handoffHost("1", "r1")
	offerAndWrite(t, s, q, before, withRevision(before, "r2", 2), "2")

	// The host reconciler runs again before the cache shows its write: it reads "1" and
	// writes a newer status over the same base.
	second := s.offer(ctx, before, withRevision(before, "r3", 3))
	if second == nil {
		t.Fatal("a newer status over the same base handed nothing off")
	}
	if got := drain(q); !slices.Equal(got, []string{"a"}) {
		t.Errorf("the second offer enqueued %v, want [a]", got)
	}
	for _, rv := range []string{"1", "2"} {
		if got := overlaid(s, handoffHost(rv, "r?")).AppliedRevision; got != "r3" {
			t.Errorf("overlay over cached version %s: applied revision %q, want the newest handoff's r3", rv, got)
		}
	}
	// The first write's event must neither drop the second handoff (the Plugins would read
	// the first write, an older status, and nothing would wake them again) nor wake anybody.
	if !s.handedOff(before, handoffHost("2", "r2")) {
		t.Error("the first write's event, taken over, was not counted as handed off")
	}
	if got := overlaid(s, handoffHost("2", "r2")).AppliedRevision; got != "r3" {
		t.Errorf("after the first write's event: applied revision %q, want r3", got)
	}
	s.wrote(second, "3")
	if !s.handedOff(handoffHost("2", "r2"), handoffHost("3", "r3")) {
		t.Error("the second write's own event was not recognized")
	}
	if got := overlaid(s, handoffHost("2", "r2")).AppliedRevision; got != "r2" {
		t.Errorf("the handoff outlived its own write's event: %q", got)
	}
}

func TestStatusHandoffTakingOverWakesWhomTheEarlierHandoffChanged(t *testing.T) {
	ctx := context.Background()
	s, q := startedHandoff(t)
	before := handoffHost("1", "r1")
	offerAndWrite(t, s, q, before, withRevision(before, "r2", 2), "2")
	// The next status says what the cached base says: nothing changed from "1", but Plugin
	// a read the first handoff's r2 and must be told.
	if second := s.offer(ctx, before, before.DeepCopy()); second == nil {
		t.Fatal("a status that undoes the first handoff handed nothing off")
	}
	if got := drain(q); !slices.Equal(got, []string{"a"}) {
		t.Errorf("enqueued %v, want [a]", got)
	}
	if got := overlaid(s, handoffHost("2", "r2")).AppliedRevision; got != "r1" {
		t.Errorf("over the first write: applied revision %q, want the second handoff's r1", got)
	}
}

// The host reconciler read its cache before its previous write was there, and the cache
// showed that write before the new status was offered: a Plugin reconcile lists the earlier
// write, which the new handoff must cover, or the Plugin reads the older status and the new
// write's event, counted as handed off, wakes nobody (TestEndToEndLatency's lost Ready).
func TestStatusHandoffTakesOverASettledWrite(t *testing.T) {
	ctx := context.Background()
	before := handoffHost("1", "r1")
	for _, order := range []string{"write returned first", "event first"} {
		t.Run(order, func(t *testing.T) {
			s, q := startedHandoff(t)
			first := s.offer(ctx, before, withRevision(before, "r2", 2))
			drain(q)
			if order == "write returned first" {
				s.wrote(first, "2")
				if !s.handedOff(before, handoffHost("2", "r2")) {
					t.Fatal("the first write's own event was not recognized")
				}
			} else {
				if s.handedOff(before, handoffHost("2", "r2")) {
					t.Fatal("an event the handoff cannot yet tell for its own was skipped")
				}
				s.wrote(first, "2")
			}

			second := s.offer(ctx, before, withRevision(before, "r3", 3))
			if second == nil {
				t.Fatal("a newer status over the stale base handed nothing off")
			}
			drain(q)
			if got := overlaid(s, handoffHost("2", "r2")).AppliedRevision; got != "r3" {
				t.Errorf("a Plugin that lists the first write reads applied revision %q, want the second handoff's r3", got)
			}
			s.wrote(second, "3")
			if !s.handedOff(handoffHost("2", "r2"), handoffHost("3", "r3")) {
				t.Error("the second write's own event, over a version it covers, was not recognized")
			}
		})
	}
}

// An update from a version the handoff does not cover means a Plugin reconcile may have read
// that version instead of the handoff: the handoff's own write then wakes the Plugins.
func TestStatusHandoffOwnWriteAfterAnUncoveredVersion(t *testing.T) {
	s, q := startedHandoff(t)
	offerAndWrite(t, s, q, handoffHost("1", "r1"), withRevision(handoffHost("1", "r1"), "r3", 3), "6")
	// The cache was at 5, a version written after the one the status was computed from.
	if s.handedOff(handoffHost("5", "r2"), handoffHost("6", "r3")) {
		t.Error("the write's event over an uncovered version was skipped: a Plugin that read version 5 would stay there")
	}
	if got := overlaid(s, handoffHost("1", "r1")).AppliedRevision; got != "r1" {
		t.Errorf("the handoff outlived its write's event: %q", got)
	}
}

func TestStatusHandoffSettledWriteIsDroppedOnceTheCacheMovesPast(t *testing.T) {
	s, q := startedHandoff(t)
	before := handoffHost("1", "r1")
	offerAndWrite(t, s, q, before, withRevision(before, "r2", 2), "2")
	s.handedOff(before, handoffHost("2", "r2"))
	s.handedOff(handoffHost("2", "r2"), handoffHost("3", "r2"))
	s.mu.Lock()
	settled := len(s.settled)
	s.mu.Unlock()
	if settled != 0 {
		t.Errorf("%d settled handoffs kept after the cache moved past their write", settled)
	}
}

// An early handoff (the pods' news before the revision is recorded) is read at once; the
// status written at the end replaces it and wakes only the Plugins that read it differently,
// and its write's event is recognized as handed off.
func TestStatusHandoffRevisedByTheWrittenStatus(t *testing.T) {
	ctx := context.Background()
	s, q := startedHandoff(t)
	before := handoffHost("1", "r1")
	before.Status.Plugins = append(before.Status.Plugins, v1alpha1.SelectedPluginStatus{Name: "b", Generation: 1, Revision: "r1", Reason: v1alpha1.ReasonAccepted})
	preview := before.DeepCopy()
	preview.Status.ConfigRevision, preview.Status.AppliedRevision = "r2", "r2"
	preview.Status.Plugins[0].Generation, preview.Status.Plugins[0].Revision = 2, "r2"

	early := s.offer(ctx, before, preview)
	// b's entry is now at an older revision than the host's: its view changed too.
	if got := drain(q); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("early offer enqueued %v, want [a b]", got)
	}
	if got := overlaid(s, before).AppliedRevision; got != "r2" {
		t.Fatalf("overlay of the early handoff: applied revision %q, want r2", got)
	}

	// The revision is recorded: the final status differs in what no Plugin reads.
	final := preview.DeepCopy()
	final.Status.Revision = 7
	h := s.revise(ctx, early, before, final)
	if got := drain(q); len(got) != 0 {
		t.Errorf("revise with what no Plugin reads enqueued %v, want none", got)
	}
	if got := overlaid(s, before).Revision; got != 7 {
		t.Errorf("overlay after revise: revision number %d, want the final status's 7", got)
	}
	// A reconcile step after the early offer changed Plugin b's entry.
	final2 := final.DeepCopy()
	final2.Status.Plugins[1].Reason, final2.Status.Plugins[1].Message = v1alpha1.ReasonSecretNotFound, "gone"
	h = s.revise(ctx, h, before, final2)
	if got := drain(q); !slices.Equal(got, []string{"b"}) {
		t.Errorf("revise that changed Plugin b's entry enqueued %v, want [b]", got)
	}

	s.wrote(h, "2")
	written := final2.DeepCopy()
	written.ResourceVersion = "2"
	if !s.handedOff(before, written) {
		t.Error("the revised handoff's write was not recognized as handed off")
	}
}

// offerEarly offers, as earlyHandoff does, host "h" with Plugin "a" at generation 2 and
// revision r2 over its cached version at r1, and takes what it enqueued off q.
func offerEarly(t *testing.T, s *statusHandoff, q workqueue.TypedRateLimitingInterface[reconcile.Request]) (before, preview *v1alpha1.PluginHost, early *handoff) {
	t.Helper()
	before = handoffHost("1", "r1")
	preview = handoffHost("1", "r2")
	preview.Status.Plugins[0].Generation = 2
	if early = s.offer(context.Background(), before, preview); early == nil {
		t.Fatal("the early offer handed nothing off")
	}
	drain(q)
	return before, preview, early
}

// A handoff dropped by the cache before the final write: the final status is offered anew.
func TestStatusHandoffRevisedAfterTheCacheDroppedIt(t *testing.T) {
	ctx := context.Background()
	s, q := startedHandoff(t)
	before, preview, early := offerEarly(t, s, q)
	// Somebody else's write reaches the cache first.
	if s.handedOff(before, handoffHost("5", "r1")) {
		t.Fatal("another writer's update counted as handed off")
	}
	h := s.revise(ctx, early, before, preview)
	if h == nil || h == early {
		t.Fatalf("revise of a dropped handoff = %p (early %p), want a new offer", h, early)
	}
	if got := drain(q); !slices.Equal(got, []string{"a"}) {
		t.Errorf("the new offer enqueued %v, want [a]", got)
	}
}

// When no status is written after all, the early handoff is withdrawn and the Plugins that
// read it are woken to read the cache again.
func TestStatusHandoffRetracted(t *testing.T) {
	ctx := context.Background()
	s, q := startedHandoff(t)
	before, _, early := offerEarly(t, s, q)
	s.retract(ctx, early, before)
	if got := drain(q); !slices.Equal(got, []string{"a"}) {
		t.Errorf("retract enqueued %v, want [a]", got)
	}
	if got := overlaid(s, before).ConfigRevision; got != "r1" {
		t.Errorf("overlay after retract: revision %q, want the cache's r1", got)
	}
	s.retract(ctx, nil, before) // nothing offered early: nothing to do
	if got := drain(q); len(got) != 0 {
		t.Errorf("retract of nothing enqueued %v", got)
	}
}
