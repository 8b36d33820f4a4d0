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
	"maps"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// unseenWriteTTL bounds how long a status write the cache has not shown is remembered. The
// cache shows a write within milliseconds; one it never shows (its watch relisted past it)
// must not stand in for the cache for good.
const unseenWriteTTL = time.Minute

// unseenStatusWrites remembers the Plugin statuses the Plugin reconciler wrote until its
// cache shows them. A reconcile that reads a Plugin from a cache that lags its own last write
// would compute a status, find it equal to the stale one and write nothing, leaving the
// older status in place with no event left to correct it; it reads the status it wrote
// instead (latest). The Plugin reconciler is the only writer of Plugin status, so the last
// status it wrote is the API server's.
type unseenStatusWrites struct {
	mu      sync.Mutex
	written map[types.NamespacedName]unseenWrite
	now     func() time.Time
	// swept is when wrote last dropped the writes older than unseenWriteTTL.
	swept time.Time
}

// unseenWrite is one status write: the object's identity and resourceVersion it returned,
// and the status written.
type unseenWrite struct {
	uid             types.UID
	resourceVersion string
	status          *v1alpha1.PluginStatus
	at              time.Time
}

func newUnseenStatusWrites() *unseenStatusWrites {
	return &unseenStatusWrites{written: map[types.NamespacedName]unseenWrite{}, now: time.Now}
}

// wrote records p as its status write returned it. The write's event can come before it is
// recorded: the writer then reads the cache and calls seen with the version it shows.
func (w *unseenStatusWrites) wrote(p *v1alpha1.Plugin) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	w.written[client.ObjectKeyFromObject(p)] = unseenWrite{uid: p.UID, resourceVersion: p.ResourceVersion, status: p.Status.DeepCopy(), at: now}
	// A write whose event came first and that the cache moved past before the writer read
	// it is never seen: drop such writes once they are stale.
	if now.Sub(w.swept) > unseenWriteTTL {
		w.swept = now
		maps.DeleteFunc(w.written, func(_ types.NamespacedName, u unseenWrite) bool { return now.Sub(u.at) > unseenWriteTTL })
	}
}

// seen is told of every Plugin version the cache shows; the write that returned it is no
// longer unseen.
func (w *unseenStatusWrites) seen(key types.NamespacedName, resourceVersion string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if u, ok := w.written[key]; ok && u.resourceVersion == resourceVersion {
		delete(w.written, key)
	}
}

// forget drops what is remembered of a deleted Plugin.
func (w *unseenStatusWrites) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.written, key)
}

// lookup returns the write remembered for key. A reconcile looks it up before it reads the
// cache: the write's event may land between the two, and then seen has dropped it while the
// object read is still the older one.
func (w *unseenStatusWrites) lookup(key types.NamespacedName) (unseenWrite, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	u, ok := w.written[key]
	if ok && w.now().Sub(u.at) > unseenWriteTTL {
		delete(w.written, key)
		return unseenWrite{}, false
	}
	return u, ok
}

// latest gives cached, a Plugin read from the cache after lookup returned u, the status
// last written when the cache does not show that write yet.
func (u unseenWrite) latest(cached *v1alpha1.Plugin) {
	if u.status == nil || cached.UID != u.uid || cached.ResourceVersion == u.resourceVersion {
		return
	}
	cached.Status = *u.status.DeepCopy()
}
