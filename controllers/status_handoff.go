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
// A handed-off status is read only over the very version of the host it was computed from:
// while the cache still holds that resourceVersion, the handoff is that object with a newer
// status; once the cache moves on (our write's event, or anybody else's), the cache is at
// least as new and the handoff is dropped. A Plugin status computed from a handoff whose
// write then fails still describes what the pods reported; the host's retry writes it.
type statusHandoff struct {
	mu      sync.Mutex
	offered map[types.NamespacedName]*handoff
	// queue is the Plugin controller's, once it has started (see source).
	queue atomic.Pointer[workqueue.TypedRateLimitingInterface[reconcile.Request]]
	// pluginsOf lists the Plugins a host selects or lists (PluginReconciler.pluginsOfHost).
	pluginsOf func(context.Context, client.Object) []reconcile.Request
}

// handoff is one host status on its way to the API server.
type handoff struct {
	key  types.NamespacedName
	host *v1alpha1.PluginHost
	// base is the resourceVersion the status was computed from; written the one its write
	// returned ("" until it has).
	base, written string
}

func newStatusHandoff() *statusHandoff {
	return &statusHandoff{offered: map[types.NamespacedName]*handoff{}}
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
func (s *statusHandoff) offer(ctx context.Context, before, after *v1alpha1.PluginHost) *handoff {
	q := s.queue.Load()
	if q == nil {
		return nil
	}
	all, changed := pluginsAffected(before, after)
	if !all && len(changed) == 0 {
		return nil
	}
	h := &handoff{key: client.ObjectKeyFromObject(after), host: after.DeepCopy(), base: before.ResourceVersion}
	s.mu.Lock()
	s.offered[h.key] = h
	s.mu.Unlock()
	reqs := requestsForNames(after.Namespace, changed)
	if all {
		reqs = append(s.pluginsOf(ctx, before), s.pluginsOf(ctx, after)...)
	}
	for _, req := range reqs {
		(*q).Add(req)
	}
	return h
}

// wrote records the resourceVersion h's write returned.
func (s *statusHandoff) wrote(h *handoff, resourceVersion string) {
	if h == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.offered[h.key] == h {
		h.written = resourceVersion
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
}

// overlay replaces, in hosts read from the cache, each host whose cached version is the
// one a handoff was computed from by the handoff. It never changes the cached objects.
func (s *statusHandoff) overlay(hosts []v1alpha1.PluginHost) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.offered) == 0 {
		return
	}
	for i := range hosts {
		if h := s.offered[client.ObjectKeyFromObject(&hosts[i])]; h != nil && h.base == hosts[i].ResourceVersion {
			hosts[i] = *h.host
		}
	}
}

// handedOff is told of every host update the cache sees. The update moves the cache past
// any handoff computed from oldHost, which is dropped; it reports whether the update is that
// handoff's own write, whose Plugins offer already enqueued.
func (s *statusHandoff) handedOff(oldHost, newHost *v1alpha1.PluginHost) bool {
	key := client.ObjectKeyFromObject(newHost)
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.offered[key]
	if h == nil || h.base != oldHost.ResourceVersion {
		return false
	}
	delete(s.offered, key)
	return h.written != "" && h.written == newHost.ResourceVersion
}
