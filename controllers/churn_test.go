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
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
	"github.com/hotreload/plugin-operator/pkg/plugins/counter"
)

// heapAfterGC returns the live heap after two garbage collections.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// latencies follows <host>-config and times each Plugin write until the ConfigMap first
// carries it (a later write of the same Plugin supersedes an earlier one).
type latencies struct {
	mu      sync.Mutex
	pending map[string]pendingWrite
	samples []time.Duration
	// seen is the resourceVersion of the last ConfigMap the watch delivered.
	seen string
}

type pendingWrite struct {
	increment string
	at        time.Time
}

func (l *latencies) wrote(name string, increment int, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending[name] = pendingWrite{fmt.Sprint(increment), at}
}

func (l *latencies) deleted(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pending, name)
}

func (l *latencies) follow(ctx context.Context, t testing.TB, c client.WithWatch, ns, host string) {
	w, err := c.Watch(ctx, &corev1.ConfigMapList{}, client.InNamespace(ns),
		client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", host+"-config")})
	if err != nil {
		t.Fatal(err)
	}
	types := testutil.PluginTypes(counter.Factory{})
	go func() {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				now := time.Now()
				cm, isCM := ev.Object.(*corev1.ConfigMap)
				if !isCM {
					continue
				}
				cfg, err := pluginconfig.Parse([]byte(cm.Data["config.json"]), types)
				l.mu.Lock()
				l.seen = cm.ResourceVersion
				if err != nil {
					l.mu.Unlock()
					continue
				}
				for _, p := range cfg.Plugins {
					if pw, ok := l.pending[p.Name]; ok && fmt.Sprint(p.Options["increment"]) == pw.increment {
						l.samples = append(l.samples, now.Sub(pw.at))
						delete(l.pending, p.Name)
					}
				}
				l.mu.Unlock()
			}
		}
	}()
}

// caughtUp reports whether the watch has delivered the ConfigMap at resourceVersion rv and
// every write it waits for is resolved: no sample of what came before can arrive later.
func (l *latencies) caughtUp(rv string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen != rv || len(l.pending) > 0 {
		return fmt.Errorf("watch at resourceVersion %s (ConfigMap at %s), %d writes not seen", l.seen, rv, len(l.pending))
	}
	return nil
}

// managerControllers are the controllers whose queues say whether the manager is idle.
var managerControllers = []string{"pluginhost", "plugin"}

// metricSum adds up the series of a metric of controller-runtime's registry that have these
// labels (a queue's depth has one series per priority).
func metricSum(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	return sumMetrics(gather(t, name), labels)
}

// idleProbe tells when a manager has nothing to do: nothing queued, nothing being
// reconciled, and no reconcile finished since the previous look (an item taken off the
// queue but not yet counted as active shows up as a finished reconcile at the next look).
// For the in-process manager the metrics are process-wide and every test's manager uses the
// same controller names, so queue depths count from what earlier, stopped managers left
// behind.
type idleProbe struct {
	// sum reads a metric of the manager: metricSum, or clusterManager.metricSum.
	sum    func(t testing.TB, name string, labels map[string]string) float64
	depth0 map[string]float64
	last   float64
	looked bool
}

// newIdleProbe watches the in-process manager; it must run before the manager starts.
func newIdleProbe(t testing.TB) *idleProbe {
	t.Helper()
	return newIdleProbeOf(t, metricSum)
}

// newIdleProbeOf watches the manager whose metrics sum reads.
func newIdleProbeOf(t testing.TB, sum func(t testing.TB, name string, labels map[string]string) float64) *idleProbe {
	t.Helper()
	p := &idleProbe{sum: sum, depth0: map[string]float64{}}
	for _, c := range managerControllers {
		p.depth0[c] = sum(t, "workqueue_depth", map[string]string{"controller": c})
	}
	return p
}

func (p *idleProbe) idle(t testing.TB) error {
	t.Helper()
	var queued, active, done float64
	for _, c := range managerControllers {
		labels := map[string]string{"controller": c}
		queued += p.sum(t, "workqueue_depth", labels) - p.depth0[c]
		active += p.sum(t, "controller_runtime_active_workers", labels)
		done += p.sum(t, "controller_runtime_reconcile_total", labels)
	}
	prev, looked := p.last, p.looked
	p.last, p.looked = done, true
	switch {
	case queued != 0 || active != 0:
		return fmt.Errorf("%v queued, %v reconciling", queued, active)
	case !looked || done != prev:
		return fmt.Errorf("%v reconciles finished since the last look", done-prev)
	}
	return nil
}

// settle waits until the ConfigMap watch has caught up with the converged ConfigMap and the
// manager is idle: the reconciles that the last writes caused (no-op applies, Plugin status
// writes) are done, so the goroutines and heap measured next are the resting ones.
func settle(ctx context.Context, t testing.TB, c client.Client, lat *latencies, probe *idleProbe, ns, host string) {
	t.Helper()
	start := time.Now()
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: host + "-config"}, cm); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, wait, "the ConfigMap watch to catch up", func() error { return lat.caughtUp(cm.ResourceVersion) })
	testutil.Eventually(t, wait, "the manager to be idle", func() error { return probe.idle(t) })
	t.Logf("settled in %v", time.Since(start).Round(time.Millisecond))
}

// TestPluginChurn creates, edits and deletes Plugins 1,000 times against a running manager,
// then checks that the manager converges on the remaining Plugins, leaks no goroutines and
// keeps a stable heap. It reports the goroutine and heap figures, the time to converge and
// the Plugin write → ConfigMap latency under churn.
//
//	go test ./controllers/ -run TestPluginChurn -v
func TestPluginChurn(t *testing.T) {
	needEnv(t)
	const ops, names, maxLive = 1000, 120, 80
	ns := newNamespace(t)
	probe := newIdleProbe(t)
	startManager(t, ns, testOptions())
	c := fastClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lat := &latencies{pending: map[string]pendingWrite{}}
	lat.follow(ctx, t, c, ns, "churn")

	rng := rand.New(rand.NewPCG(6, 1000))
	live := map[string]bool{}
	increment := 1
	counts := map[string]int{}
	op := func() {
		var alive, dead []string
		for i := range names {
			n := fmt.Sprintf("p%03d", i)
			if live[n] {
				alive = append(alive, n)
			} else {
				dead = append(dead, n)
			}
		}
		kind := rng.IntN(10)
		switch {
		case len(alive) < 5 || (kind < 4 && len(alive) < maxLive):
			name := dead[rng.IntN(len(dead))]
			increment++
			lat.wrote(name, increment, time.Now())
			if err := c.Create(ctx, newPlugin(ns, name, "churn", int32(increment))); err != nil {
				t.Fatalf("create %s: %v", name, err)
			}
			live[name] = true
			counts["create"]++
		case kind < 8:
			name := alive[rng.IntN(len(alive))]
			increment++
			lat.wrote(name, increment, time.Now())
			patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"options":{"increment":%d}}}`, increment))
			if err := c.Patch(ctx, &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}, patch); err != nil {
				t.Fatalf("edit %s: %v", name, err)
			}
			counts["edit"]++
		default:
			name := alive[rng.IntN(len(alive))]
			lat.deleted(name)
			if err := c.Delete(ctx, &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}); err != nil {
				t.Fatalf("delete %s: %v", name, err)
			}
			delete(live, name)
			counts["delete"]++
		}
	}
	create(t, newHost(ns, "churn", "churn"))
	advertise(t, ns, "churn")

	// Warm-up: every code path once, the caches and connections up.
	for range 100 {
		op()
	}
	testutil.Eventually(t, wait, "convergence after the warm-up", func() error { return converged(ctx, env.Client, ns, "churn") })
	settle(ctx, t, env.Client, lat, probe, ns, "churn")
	goroutinesBefore, heapBefore := runtime.NumGoroutine(), heapAfterGC()
	lat.mu.Lock()
	lat.samples = nil
	lat.mu.Unlock()

	start := time.Now()
	for range ops - 100 {
		op()
	}
	lastOp := time.Now()
	testutil.Eventually(t, 2*wait, "convergence after the churn", func() error { return converged(ctx, env.Client, ns, "churn") })
	convergedIn := time.Since(lastOp)
	settle(ctx, t, env.Client, lat, probe, ns, "churn")

	// Goroutines of finished work (requests, timers) end soon after the manager is idle; a
	// leak never does, and its report carries the count and every stack.
	tolerance := max(20, goroutinesBefore/10)
	var goroutinesAfter int
	testutil.Eventually(t, wait, "no leaked goroutines", func() error {
		if goroutinesAfter = runtime.NumGoroutine(); goroutinesAfter <= goroutinesBefore+tolerance {
			return nil
		}
		return goroutineLeak(fmt.Sprintf("goroutines leaked: %d after the warm-up, %d after %d more operations (tolerance %d)",
			goroutinesBefore, goroutinesAfter, ops-100, tolerance))
	})
	heapAfter := heapAfterGC()

	lat.mu.Lock()
	samples := slices.Clone(lat.samples)
	lat.mu.Unlock()
	slices.Sort(samples)
	var p50, p99, worst time.Duration
	if len(samples) > 0 {
		p50, p99, worst = percentile(samples, 0.50), percentile(samples, 0.99), samples[len(samples)-1]
	}
	const mib = 1 << 20
	t.Logf("%d operations (%v) in %v, %d Plugins left; converged %v after the last; goroutines %d → %d; heap after GC %.1f → %.1f MiB; "+
		"write → ConfigMap over %d writes: p50 %v, p99 %v, max %v",
		ops, counts, lastOp.Sub(start).Round(time.Millisecond), len(live), convergedIn.Round(time.Millisecond),
		goroutinesBefore, goroutinesAfter, float64(heapBefore)/mib, float64(heapAfter)/mib, len(samples), p50, p99, worst)
	fmt.Printf("FAULTS churn ops=%d creates=%d edits=%d deletes=%d remaining=%d goroutines-before=%d goroutines-after=%d heap-before-MiB=%.1f heap-after-MiB=%.1f converge-after-last-op-s=%.2f latency-samples=%d p50-ms=%.1f p99-ms=%.1f max-ms=%.1f\n",
		ops, counts["create"], counts["edit"], counts["delete"], len(live), goroutinesBefore, goroutinesAfter,
		float64(heapBefore)/mib, float64(heapAfter)/mib, convergedIn.Seconds(), len(samples), ms(p50), ms(p99), ms(worst))

	if heapAfter > 2*heapBefore+8*mib {
		t.Errorf("heap after GC grew from %.1f MiB to %.1f MiB (bound: 2× + 8 MiB)", float64(heapBefore)/mib, float64(heapAfter)/mib)
	}
	if counts["create"]+counts["edit"]+counts["delete"] != ops {
		t.Errorf("ran %v, want %d operations", counts, ops)
	}
}

// goroutineLeak is a leak report that dumps every goroutine's stack when it is printed, so
// that waiting for the count to fall costs no stack dump per look.
type goroutineLeak string

func (l goroutineLeak) Error() string {
	buf := make([]byte, 1<<20)
	return string(l) + "\n" + string(buf[:runtime.Stack(buf, true)])
}
