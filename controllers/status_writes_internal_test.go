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

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// pluginWithReady is Plugin ns/p at resourceVersion rv whose Ready condition has reason.
func pluginWithReady(uid types.UID, rv, reason string) *v1alpha1.Plugin {
	p := &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: uid, ResourceVersion: rv}}
	meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason})
	return p
}

func readyReason(p *v1alpha1.Plugin) string {
	return meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady).Reason
}

func TestUnseenStatusWrites(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "p"}
	now := time.Unix(1000, 0)
	w := newUnseenStatusWrites()
	w.now = func() time.Time { return now }

	if u, ok := w.lookup(key); ok {
		t.Fatalf("lookup before any write = %+v", u)
	}
	w.wrote(pluginWithReady("u1", "2", "Written"))

	t.Run("the cache lags the write", func(t *testing.T) {
		u, ok := w.lookup(key)
		if !ok {
			t.Fatal("the write is not remembered")
		}
		cached := pluginWithReady("u1", "1", "Stale")
		u.latest(cached)
		if got := readyReason(cached); got != "Written" {
			t.Errorf("a cached Plugin older than the write reads %q, want the status written", got)
		}
		// The status substituted is a copy.
		cached.Status.Conditions[0].Reason = "changed by the reconcile"
		again := pluginWithReady("u1", "1", "Stale")
		u.latest(again)
		if got := readyReason(again); got != "Written" {
			t.Errorf("the remembered status was changed through a reconcile's object: %q", got)
		}
	})
	// What a reconcile reads: the write looked up, then the cached Plugin through it.
	read := func(cached *v1alpha1.Plugin) string {
		u, _ := w.lookup(key)
		u.latest(cached)
		return readyReason(cached)
	}
	if got := read(pluginWithReady("u1", "2", "AsCached")); got != "AsCached" {
		t.Errorf("a cached Plugin at the write's version was replaced: %q", got)
	}
	if got := read(pluginWithReady("u2", "7", "New")); got != "New" {
		t.Errorf("a Plugin recreated under the same name got the status of the one before: %q", got)
	}
	t.Run("seen", func(t *testing.T) {
		w.seen(key, "1")
		if _, ok := w.lookup(key); !ok {
			t.Fatal("an older version's event dropped the write")
		}
		w.seen(key, "2")
		if _, ok := w.lookup(key); ok {
			t.Error("the write's own event did not drop it")
		}
	})
	t.Run("forget", func(t *testing.T) {
		w.wrote(pluginWithReady("u1", "3", "Written"))
		w.forget(key)
		if _, ok := w.lookup(key); ok {
			t.Error("a deleted Plugin's write is still remembered")
		}
	})
	t.Run("the write's event came before the write was recorded", func(t *testing.T) {
		// The writer reads the cache after wrote, as the Plugin reconciler does.
		w.wrote(pluginWithReady("u1", "5", "Written"))
		w.seen(key, "5")
		if _, ok := w.lookup(key); ok {
			t.Error("a write the cache already shows is remembered")
		}
		w.wrote(pluginWithReady("u1", "6", "Written"))
		w.seen(key, "5")
		if _, ok := w.lookup(key); !ok {
			t.Error("a write the cache does not show yet is not remembered")
		}
		w.forget(key)
	})
	t.Run("writes the cache never shows are swept", func(t *testing.T) {
		other := types.NamespacedName{Namespace: "ns", Name: "other"}
		w.wrote(&v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "other", ResourceVersion: "9"}})
		now = now.Add(unseenWriteTTL + time.Second)
		w.wrote(pluginWithReady("u1", "10", "Written"))
		w.mu.Lock()
		_, kept := w.written[other]
		w.mu.Unlock()
		if kept {
			t.Error("a write older than unseenWriteTTL, never looked up again, was kept")
		}
		w.forget(key)
	})
	t.Run("a write the cache never shows expires", func(t *testing.T) {
		w.wrote(pluginWithReady("u1", "4", "Written"))
		now = now.Add(unseenWriteTTL + time.Second)
		if _, ok := w.lookup(key); ok {
			t.Error("a write older than unseenWriteTTL still stands in for the cache")
		}
	})
}
