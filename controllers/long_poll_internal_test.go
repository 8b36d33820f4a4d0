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
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// TestLongPollerNoHotLoop: a runtime without the long-poll answers at once with the same
// revision; the pod is asked once, not again at every reconcile before the retry period. A
// runtime answering a new revision sends the host to the reconciler.
func TestLongPollerNoHotLoop(t *testing.T) {
	revA, revB := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	var asked atomic.Int32
	answer := atomic.Value{}
	answer.Store(revA)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		_, _ = fmt.Fprintf(w, `{"version":1,"revision":%q}`, answer.Load())
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := newLongPoller(newStatusReader(time.Second, 2, 1, DefaultMaxStatusBytes), time.Second, time.Hour)
	p.ctx = ctx
	key := types.NamespacedName{Namespace: "ns", Name: "h"}
	pod := awaitedPod{uid: "u1", addr: strings.TrimPrefix(srv.URL, "http://"), after: revA, want: revB}

	if p.sync(key, []awaitedPod{pod}) {
		t.Error("covered by a runtime not known to serve the long-poll")
	}
	testutil.Eventually(t, 10*time.Second, "the long-poll to end", func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if pp := p.hosts[key][pod.uid]; pp == nil || pp.idleSince.IsZero() {
			return fmt.Errorf("in flight (%d asked)", asked.Load())
		}
		return nil
	})
	for range 10 {
		_ = p.sync(key, []awaitedPod{pod})
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("asked %d times, want once", n)
	}
	select {
	case ev := <-p.events:
		t.Errorf("event %v without news", ev.Object.GetName())
	default:
	}

	// The pod reports a new revision: the host is reconciled.
	answer.Store(revB)
	pod.uid = "u2"
	_ = p.sync(key, []awaitedPod{pod})
	ev := <-p.events
	if ev.Object.GetNamespace() != key.Namespace || ev.Object.GetName() != key.Name {
		t.Errorf("event for %s/%s", ev.Object.GetNamespace(), ev.Object.GetName())
	}
	// The reconcile it triggers reads the reply the long-poll received, once, without asking
	// the pod again; a later read asks.
	host, port, _ := net.SplitHostPort(pod.addr)
	portNum, _ := strconv.Atoi(port)
	podObj := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: pod.uid}, Status: corev1.PodStatus{PodIP: host},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "host", Ports: []corev1.ContainerPort{{Name: OpsPortName, ContainerPort: int32(portNum)}}}}}}
	before := asked.Load()
	st, err := p.reader.read(ctx, podObj)
	if err != nil || st.Revision != revB || asked.Load() != before {
		t.Errorf("read after the news: revision %v, err %v, pod asked %d more times; want %s from the kept reply, not asked", st, err, asked.Load()-before, revB)
	}
	if _, err := p.reader.read(ctx, podObj); err != nil || asked.Load() != before+1 {
		t.Errorf("a second read: err %v, pod asked %d more times, want once", err, asked.Load()-before)
	}
	// Not awaited any more: nothing left.
	_ = p.sync(key, nil)
	if len(p.hosts) != 0 {
		t.Errorf("hosts left: %v", p.hosts)
	}
}
