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

package controllers_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// startClusterManager starts the manager binary as the chart starts it: without
// --watch-namespaces, so it watches the whole cluster.
func startClusterManager(t testing.TB) *clusterManager { return startManagerBinary(t) }

// memory returns the manager's RSS and its peak RSS (VmHWM) since the last resetPeak.
func (m *clusterManager) memory(t testing.TB) (rss, peak int64) {
	t.Helper()
	rss, peak = procMemory(m.cmd.Process.Pid)
	if rss == 0 || peak == 0 {
		t.Fatalf("cannot read the manager's memory (RSS %d, peak %d)", rss, peak)
	}
	return rss, peak
}

// resetPeak makes VmHWM count from now on.
func (m *clusterManager) resetPeak(t testing.TB) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", m.cmd.Process.Pid), []byte("5"), 0); err != nil {
		t.Fatalf("resetting the manager's peak RSS: %v", err)
	}
}

// markedHost is a PluginHost whose spec.configMapRef names the ConfigMap "marker" and whose
// Plugin's auth names the Secret "marker", neither of which exists yet: it waits on both.
// Creating them (with the consent label) after other ConfigMaps and Secrets is the signal
// that the manager's watches have delivered those: a watch of the whole cluster hands a
// kind's events over in the order they happened.
func markedHost(t testing.TB, ns string) {
	t.Helper()
	host := newHost(ns, "m", "m")
	host.Spec.ConfigMapRef = &v1alpha1.ConfigMapKeyReference{Name: "marker"}
	p := newPlugin(ns, "p", "m", 1)
	p.Spec.Auth = &v1alpha1.PluginAuth{Method: v1alpha1.AuthMethodBearer, SecretRef: &v1alpha1.SecretReference{Name: "marker"}}
	create(t, host, p)
	advertise(t, ns, "m")
	pluginCondition(t, ns, "p", v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
	hostCondition(t, ns, "m", v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonConfigMapNotFound)
}

// createMarkers creates the ConfigMap and Secret markedHost waits on, and waits until the
// manager has seen both.
func createMarkers(t testing.TB, ns string) {
	t.Helper()
	create(t,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "marker", Labels: consentLabels()},
			Data: map[string]string{"config.json": `{"plugins":[{"name":"from-user","type":"counter"}]}`}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "marker", Labels: consentLabels()},
			StringData: map[string]string{"token": "t"}})
	configMapData(t, ns, "m", contains(`"from-user"`, `"p"`, `"token_file"`))
	pluginCondition(t, ns, "p", v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
}

// createUnrelated creates n ConfigMaps and n Secrets in namespace ns, with no label, each with
// one annotation of size bytes (as client-side kubectl apply leaves, under another key so
// that only the server-side selection, not the cache's transform, keeps them out), and
// deletes them when the test ends.
func createUnrelated(t testing.TB, ns string, n, size int) {
	t.Helper()
	c := fastClient(t)
	blob := strings.Repeat("x", size)
	work := make(chan client.Object)
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				if err := c.Create(context.Background(), o); err != nil {
					failed.Store(fmt.Errorf("creating %T %s: %w", o, o.GetName(), err))
				}
			}
		}()
	}
	for i := range n {
		meta := func() metav1.ObjectMeta {
			m := metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("unrelated-%04d", i)}
			if size > 0 {
				m.Annotations = map[string]string{"example.com/blob": blob}
			}
			return m
		}
		work <- &corev1.ConfigMap{ObjectMeta: meta(), Data: map[string]string{"k": "v"}}
		work <- &corev1.Secret{ObjectMeta: meta(), Data: map[string][]byte{"k": []byte("v")}}
	}
	close(work)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, o := range []client.Object{&corev1.ConfigMap{}, &corev1.Secret{}} {
			if err := c.DeleteAllOf(context.Background(), o, client.InNamespace(ns)); err != nil {
				t.Errorf("deleting the unrelated objects: %v", err)
			}
		}
	})
}

// TestUnrelatedObjectsMemory: the real manager, watching the whole cluster as the chart
// installs it, does not hold the ConfigMaps and Secrets of a namespace it has nothing to do
// with. 300 of each, with no label of the operator's and a 250 KiB annotation each, make its
// peak RSS (VmHWM, during and after their creation) grow by at most 20 MiB over its RSS
// before they existed; before the cache selected them on the server side it grew by about
// 200 MiB. The manager still reads what it manages: a host waiting on a marked ConfigMap and
// a Plugin waiting on a marked Secret, both created after the unrelated objects, recover.
func TestUnrelatedObjectsMemory(t *testing.T) {
	needEnv(t)
	mgr := startClusterManager(t)
	app, unrelated := newNamespace(t), newNamespace(t)
	markedHost(t, app)
	before, _ := mgr.memory(t)
	mgr.resetPeak(t)

	createUnrelated(t, unrelated, 300, 250<<10)
	_, during := mgr.memory(t)
	createMarkers(t, app)
	rss, peak := mgr.memory(t)

	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	t.Logf("manager RSS %.1f MiB before, peak %.1f MiB while creating, peak %.1f MiB after (RSS %.1f MiB): growth %.1f MiB",
		mib(before), mib(during), mib(peak), mib(rss), mib(peak-before))
	if peak-before > 20<<20 {
		t.Errorf("the manager's peak RSS grew by %.1f MiB for 600 objects it has nothing to do with; the bound is 20 MiB", mib(peak-before))
	}
}

// BenchmarkUnrelatedObjects measures the real manager's RSS against the number and size of
// ConfigMaps and Secrets it has nothing to do with, for docs/performance.md: n of each, with
// no label of the operator's and one annotation of the given size, exist before the manager
// starts (an install into a busy cluster). idle-MiB is its RSS once its caches have synced and
// a host waiting on a marked ConfigMap and Secret has rendered them; peak-MiB its VmHWM since
// it started. Run it with -benchtime=1x (one manager per case):
//
//	go test -run '^$' -bench BenchmarkUnrelatedObjects -benchtime=1x ./controllers
func BenchmarkUnrelatedObjects(b *testing.B) {
	needEnv(b)
	for _, c := range []struct{ n, size int }{{0, 0}, {1000, 10 << 10}, {3000, 1 << 10}, {300, 250 << 10}} {
		b.Run(fmt.Sprintf("objects=%dx2/annotation=%dKiB", c.n, c.size>>10), func(b *testing.B) {
			for range b.N {
				if c.n > 0 {
					createUnrelated(b, newNamespace(b), c.n, c.size)
				}
				mgr := startClusterManager(b)
				app := newNamespace(b)
				markedHost(b, app)
				createMarkers(b, app)
				rss, peak := mgr.memory(b)
				b.ReportMetric(float64(rss)/(1<<20), "idle-MiB")
				b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
			}
		})
	}
}
