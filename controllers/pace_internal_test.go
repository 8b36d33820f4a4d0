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
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

func TestRenderPacerDelay(t *testing.T) {
	p := newRenderPacer(20*time.Millisecond, 2*time.Second)
	now := time.Now()
	h := types.NamespacedName{Namespace: "ns", Name: "h0"}
	if d := p.delay(h, now); d != 0 {
		t.Errorf("a host never reconciled waits %v, want 0", d)
	}
	p.started(h, now)
	if d := p.delay(h, now); d != 20*time.Millisecond {
		t.Errorf("one host active: %v, want the pace (20ms)", d)
	}
	for i := range 99 {
		p.started(types.NamespacedName{Namespace: "ns", Name: "other" + string(rune('a'+i))}, now)
	}
	if d := p.delay(h, now); d != 2*time.Second {
		t.Errorf("100 hosts active: %v, want the most (2s), not 100 × 20ms", d)
	}
	if d := p.delay(h, now.Add(3*time.Second)); d != 0 {
		t.Errorf("after the interval: %v, want 0", d)
	}
}

// TestPacedPriorityQueue: a paced handler over controller-runtime's priority queue keeps it
// one, so that the events of a manager's initial list get their low priority, and paces it.
func TestPacedPriorityQueue(t *testing.T) {
	q := priorityqueue.New[reconcile.Request]("paced-test")
	defer q.ShutDown()
	pacer := newRenderPacer(20*time.Millisecond, 2*time.Second)
	host := types.NamespacedName{Namespace: "ns", Name: "h"}
	h := pacedHandler{inner: handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: host}}
	}), pacer: pacer}
	plugin := &v1alpha1.Plugin{}
	plugin.Namespace, plugin.Name = "ns", "p"

	h.Create(context.Background(), event.CreateEvent{Object: plugin, IsInInitialList: true}, q)
	item, priority, _ := q.GetWithPriority()
	if item.NamespacedName != host || priority != handler.LowPriority {
		t.Fatalf("got %v with priority %d, want %v with the initial list's low priority %d", item, priority, host, handler.LowPriority)
	}
	q.Done(item)

	// Reconciled just now: the next Plugin event of the host waits for the pace.
	pacer.started(host, time.Now())
	h.Create(context.Background(), event.CreateEvent{Object: plugin}, q)
	if n := q.Len(); n != 0 {
		t.Errorf("%d items ready at once, want the request held for the pace", n)
	}
	item, priority, _ = q.GetWithPriority() // once the pace is over
	if item.NamespacedName != host || priority != 0 {
		t.Errorf("got %v with priority %d, want %v with the default priority", item, priority, host)
	}
}
