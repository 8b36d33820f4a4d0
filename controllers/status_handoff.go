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
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// statusHandoff hands a PluginHost's new status to the Plugin reconciler while it is being
// written, rather than after the write and its watch event: a Plugin's Ready then costs one
// status write after the pod applied its revision, not two in a row (the host's, then the
// Plugin's). On the real node that sequence was most of Ready − served (make bench-cluster).
//
// A handoff covers versions of the host: the one its status was computed from and, when the
// host reconciler read its cache before an earlier handoff's write was there, that write and
// what the earlier handoff covered. A Plugin reconcile that lists a covered version reads the
// handoff instead. A host update the cache shows is skipped by the Plugin controller only
// when it goes from a covered version to a covered one or to the handoff's own write: every
// Plugin reconcile since the offer then read the handoff or its write. Any other update drops
// the handoff when it reaches the handoff's versions (a reconcile may have read the uncovered
// one before it), and wakes the Plugins it affects like any host update. A Plugin status
// computed from a handoff whose write then fails still describes what the pods reported; the
// host's retry writes it.
type statusHandoff struct {
	mu sync.Mutex
	// offered are the handoffs not yet in the cache; settled, by host, the last handoff whose
	// write the cache showed (a later handoff computed from a stale read takes it over).
	offered, settled handoffs
	// queue is the Plugin controller's, once it has started (see source).
	queue atomic.Pointer[workqueue.TypedRateLimitingInterface[reconcile.Request]]
	// pluginsOf lists the Plugins a host selects or lists (PluginReconciler.pluginsOfHost).
	pluginsOf func(context.Context, client.Object) []reconcile.Request
}

// handoffs are handoffs by host.
type handoffs map[types.NamespacedName]*handoff

// handoff is one host status on its way to the API server. Only written changes once it is
// offered.
type handoff struct {
	key  types.NamespacedName
	host *v1alpha1.PluginHost
	// covers are the resourceVersions over which the handoff is read: covers[0] is the one
	// the status was computed from, the rest what an earlier handoff it took over covered
	// and that handoff's write.
	covers []string
	// written is the resourceVersion the write returned ("" until it has).
	written string
	// passedBy is the version of the update that dropped the handoff before its write
	// returned: when that is the write's, the handoff settles all the same.
	passedBy string
}

func (h *handoff) covered(resourceVersion string) bool {
	return slices.Contains(h.covers, resourceVersion)
}

func newStatusHandoff() *statusHandoff {
	return &statusHandoff{offered: handoffs{}, settled: handoffs{}}
}

// source captures the Plugin controller's queue when the controller starts.
func (s *statusHandoff) source(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	s.queue.Store(&q)
	return nil
}

// offer hands after, the status the host reconciler is about to write over before (the
// cached host it read), to the Plugins whose status it changes, and enqueues them. It
// returns nil when there is nothing to hand off: no Plugin's status reads what changed, or
// the Plugin controller has not started (its host events then do the work).
//
// When before is a version the previous handoff covered, the previous handoff's write may
// be in the cache or on its way there, newer than before: the new handoff takes it over,
// covering that write too, and also wakes the Plugins whose status differs between the two.
func (s *statusHandoff) offer(ctx context.Context, before, after *v1alpha1.PluginHost) *handoff {
	q := s.queue.Load()
	if q == nil {
		return nil
	}
	key := client.ObjectKeyFromObject(after)
	s.mu.Lock()
	prev := s.offered[key]
	if prev == nil {
		prev = s.settled[key]
	}
	if prev != nil && (prev.written == "" || !prev.covered(before.ResourceVersion)) {
		prev = nil
	}
	s.mu.Unlock()
	all, changed := pluginsAffected(before, after)
	if prev != nil {
		prevAll, prevChanged := pluginsAffected(prev.host, after)
		all = all || prevAll
		changed = append(changed, prevChanged...)
	}
	if !all && len(changed) == 0 {
		return nil // (and a previous handoff taken over says the same to every Plugin)
	}
	h := &handoff{key: key, host: after.DeepCopy(), covers: []string{before.ResourceVersion}}
	if prev != nil {
		h.covers = append(h.covers, prev.covers...)
		h.covers = append(h.covers, prev.written)
	}
	s.mu.Lock()
	s.offered[key] = h
	delete(s.settled, key)
	s.mu.Unlock()
	s.enqueue(ctx, before, after, all, changed)
	return h
}

// revise replaces h, offered early (earlyHandoff: before the status was final), by after,
// the status now written over before, and wakes the Plugins that read the two differently.
// When h is no longer offered (an update the cache showed dropped it), after is offered
// anew.
func (s *statusHandoff) revise(ctx context.Context, h *handoff, before, after *v1alpha1.PluginHost) *handoff {
	if h == nil {
		return s.offer(ctx, before, after)
	}
	s.mu.Lock()
	if s.offered[h.key] != h {
		s.mu.Unlock()
		return s.offer(ctx, before, after)
	}
	// A new handoff, not h changed: Plugin reconciles that took h in their snapshot read it
	// without the lock.
	revised := &handoff{key: h.key, host: after.DeepCopy(), covers: h.covers}
	s.offered[h.key] = revised
	s.mu.Unlock()
	s.wake(ctx, h.host, after)
	return revised
}

// retract withdraws h, offered early, when no status is written after all, and wakes the
// Plugins that read it differently from before, the status that stays.
func (s *statusHandoff) retract(ctx context.Context, h *handoff, before *v1alpha1.PluginHost) {
	if h == nil {
		return
	}
	s.withdraw(h)
	s.wake(ctx, h.host, before)
}

// wake enqueues the Plugins whose status reads host a differently from host b.
func (s *statusHandoff) wake(ctx context.Context, a, b *v1alpha1.PluginHost) {
	all, changed := pluginsAffected(a, b)
	s.enqueue(ctx, a, b, all, changed)
}

// enqueue adds the Plugins named in changed, or, when all, every Plugin of host a or b, to
// the Plugin controller's queue.
func (s *statusHandoff) enqueue(ctx context.Context, a, b *v1alpha1.PluginHost, all bool, changed []string) {
	q := s.queue.Load()
	if q == nil {
		return
	}
	reqs := requestsForNames(b.Namespace, changed)
	if all {
		reqs = append(s.pluginsOf(ctx, a), s.pluginsOf(ctx, b)...)
	}
	for _, req := range reqs {
		(*q).Add(req)
	}
}

// wrote records the resourceVersion h's write returned.
func (s *statusHandoff) wrote(h *handoff, resourceVersion string) {
	if h == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.offered[h.key] == h:
		h.written = resourceVersion
	case h.passedBy == resourceVersion && s.offered[h.key] == nil:
		h.written = resourceVersion
		s.settled[h.key] = h
	}
}

// withdraw drops h, whose write failed.
func (s *statusHandoff) withdraw(h *handoff) {
	if h == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.offered[h.key] == h {
		delete(s.offered, h.key)
	}
}

// forget drops what was offered for a deleted host.
func (s *statusHandoff) forget(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.offered, key)
	delete(s.settled, key)
}

// snapshot returns the handoffs offered now. A Plugin reconcile takes it before it lists
// the cached hosts: a handoff whose write's event arrives between the list and the overlay
// is still applied to the version it covers, and the event, counted as handed off, wakes
// nobody to correct it.
func (s *statusHandoff) snapshot() handoffs {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.offered) == 0 {
		return nil
	}
	return maps.Clone(s.offered)
}

// overlay replaces, in hosts read from the cache, each host whose cached version a handoff
// covers by the handoff. It never changes the cached objects.
func (hs handoffs) overlay(hosts []v1alpha1.PluginHost) {
	if len(hs) == 0 {
		return
	}
	for i := range hosts {
		if h := hs[client.ObjectKeyFromObject(&hosts[i])]; h != nil && h.covered(hosts[i].ResourceVersion) {
			hosts[i] = *h.host
		}
	}
}

// handedOff is told of every host update the cache sees and reports whether the Plugins it
// affects were already enqueued by a handoff that they read instead (see statusHandoff).
func (s *statusHandoff) handedOff(oldHost, newHost *v1alpha1.PluginHost) bool {
	key := client.ObjectKeyFromObject(newHost)
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.settled[key]; st != nil && st.written == oldHost.ResourceVersion {
		// The cache moved past the settled write: host reconciles from now on read a later
		// version. One that read an older version before would not take the settled write
		// over; its handoff then covers only its own base, which costs latency (its write's
		// event wakes the Plugins), not a lost Ready.
		delete(s.settled, key)
	}
	h := s.offered[key]
	if h == nil {
		return false
	}
	toCovered := h.covered(newHost.ResourceVersion)
	toOwnWrite := h.written != "" && h.written == newHost.ResourceVersion
	switch {
	case !h.covered(oldHost.ResourceVersion):
		// The cache held a version the handoff does not cover, which a Plugin reconcile
		// may have read instead of it.
		if toCovered || toOwnWrite {
			delete(s.offered, key)
		}
		return false
	case toCovered:
		return true
	case toOwnWrite:
		delete(s.offered, key)
		s.settled[key] = h
		return true
	}
	// Somebody else's write, or ours before it returned: the cache is at least as new.
	delete(s.offered, key)
	h.passedBy = newHost.ResourceVersion
	return false
}
