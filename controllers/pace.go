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
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// renderPacer spaces the reconciles that Plugin changes bring to a host, so that a burst of
// Plugin changes costs a few renders of the host (each a ConfigMap write, a status write,
// a pod annotation and the pod's reload) rather than one per Plugin. Reconciles of
// one host are spaced by pace × the number of hosts reconciled within the last
// activeWindow, at most maxPace: one host edited alone is reconciled at once (one host
// active: pace, less than a reconcile takes), while a fleet-wide burst, where each render
// waits for the API server anyway, merges a host's changes over up to maxPace. Changes
// within the interval are merged by the work queue into the one reconcile at its end: a
// render holds every Plugin change made before it, so no change is lost, only merged.
// Other events (a pod applied a revision, a child changed) are not paced.
type renderPacer struct {
	pace, maxPace, activeWindow time.Duration

	mu   sync.Mutex
	last map[types.NamespacedName]time.Time
}

// Defaults of renderPacer: measured with BenchmarkScale and BenchmarkReconcileLatency
// (docs/performance.md).
const (
	defaultRenderPace    = 20 * time.Millisecond
	defaultMaxRenderPace = 2 * time.Second
	renderActiveWindow   = 2 * time.Second
)

func newRenderPacer(pace, maxPace time.Duration) *renderPacer {
	return &renderPacer{pace: pace, maxPace: maxPace, activeWindow: renderActiveWindow, last: map[types.NamespacedName]time.Time{}}
}

// started records that a reconcile of host began at now.
func (p *renderPacer) started(host types.NamespacedName, now time.Time) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last[host] = now
}

// forget drops a deleted host.
func (p *renderPacer) forget(host types.NamespacedName) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.last, host)
}

// delay is how long a Plugin change of host waits before its reconcile.
func (p *renderPacer) delay(host types.NamespacedName, now time.Time) time.Duration {
	if p == nil || p.pace <= 0 {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	last, ok := p.last[host]
	if !ok {
		return 0
	}
	active := 0
	for _, t := range p.last {
		if now.Sub(t) < p.activeWindow {
			active++
		}
	}
	interval := min(p.pace*time.Duration(max(active, 1)), p.maxPace)
	return max(last.Add(interval).Sub(now), 0)
}

// pacedHandler is inner with its requests added to the queue after the pacer's delay.
type pacedHandler struct {
	inner handler.EventHandler
	pacer *renderPacer
}

func (h pacedHandler) Create(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.inner.Create(ctx, e, h.paced(q))
}

func (h pacedHandler) Update(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.inner.Update(ctx, e, h.paced(q))
}

func (h pacedHandler) Delete(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.inner.Delete(ctx, e, h.paced(q))
}

func (h pacedHandler) Generic(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.inner.Generic(ctx, e, h.paced(q))
}

// paced wraps q, keeping controller-runtime's priority queue a priority queue: its handlers
// give the events of the initial list (a manager's start) a low priority only through it.
func (h pacedHandler) paced(q workqueue.TypedRateLimitingInterface[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
		return pacedPriorityQueue{pq, h.pacer}
	}
	return pacedQueue{q, h.pacer}
}

// pacedQueue turns Add into AddAfter the pacer's delay. The queue keeps the earliest time of
// an item added twice, and an item already queued once.
type pacedQueue struct {
	workqueue.TypedRateLimitingInterface[reconcile.Request]
	pacer *renderPacer
}

func (q pacedQueue) Add(req reconcile.Request) {
	if d := q.pacer.delay(req.NamespacedName, time.Now()); d > 0 {
		q.AddAfter(req, d)
		return
	}
	q.TypedRateLimitingInterface.Add(req)
}

// pacedPriorityQueue is pacedQueue over a priority queue: AddWithOpts waits at least the
// pacer's delay too.
type pacedPriorityQueue struct {
	priorityqueue.PriorityQueue[reconcile.Request]
	pacer *renderPacer
}

func (q pacedPriorityQueue) Add(req reconcile.Request) {
	q.AddWithOpts(priorityqueue.AddOpts{}, req)
}

func (q pacedPriorityQueue) AddWithOpts(o priorityqueue.AddOpts, reqs ...reconcile.Request) {
	for _, req := range reqs {
		opts := o
		opts.After = max(opts.After, q.pacer.delay(req.NamespacedName, time.Now()))
		q.PriorityQueue.AddWithOpts(opts, req)
	}
}
