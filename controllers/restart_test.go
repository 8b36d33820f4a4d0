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
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// TestRestartWritesNothing: a new manager over converged Plugins reconciles every host and
// Plugin and writes nothing — no status patch, no apply of a child, no pod annotation, no
// event — as the API server itself counts requests (apiserver_request_total); and it acts on
// the next edit. The real manager binary, a real pluginhost per host.
func TestRestartWritesNothing(t *testing.T) {
	needEnv(t)
	const hosts, perHost = 4, 50
	ns := newNamespace(t)
	flags := append(metricsFlags(t), "--watch-namespaces="+ns)
	m := startManagerBinary(t, flags...)
	c := fastClient(t)
	ctx := context.Background()
	for h := range hosts {
		name := fmt.Sprintf("r%d", h)
		create(t, newHost(ns, name, name))
	}
	for h := range hosts {
		name := fmt.Sprintf("r%d", h)
		configMapData(t, ns, name, contains(`"plugins"`))
		startPod(t, ns, name, name+"-0")
	}
	ready := newReadyCounter(t, c, ns)
	defer ready.stop()
	for i := range hosts * perHost {
		name := fmt.Sprintf("r%d", i%hosts)
		if err := c.Create(ctx, newPlugin(ns, fmt.Sprintf("p%03d", i), name, int32(i))); err != nil {
			t.Fatal(err)
		}
	}
	ready.waitFor(t, hosts*perHost, 5*time.Minute, nil)
	idle := &idleProbe{sum: m.metricSum, depth0: map[string]float64{}} // a process of its own: its queues started empty
	testutil.Eventually(t, wait, "the manager to be idle", func() error { return idle.idle(t) })
	m.stop()

	before := readAPIWrites(t)
	start := time.Now()
	m2 := startManagerBinary(t, flags...)
	idle2 := &idleProbe{sum: m2.metricSum, depth0: map[string]float64{}}
	testutil.Eventually(t, wait, "the new manager to be idle", func() error { return idle2.idle(t) })
	idleAfter := time.Since(start)
	// It looked at everything: each host and each Plugin was reconciled.
	if n := m2.metricSum(t, "controller_runtime_reconcile_total", map[string]string{"controller": "pluginhost"}); n < hosts {
		t.Errorf("the new manager reconciled hosts %v times, want at least %d", n, hosts)
	}
	if n := m2.metricSum(t, "controller_runtime_reconcile_total", map[string]string{"controller": "plugin"}); n < hosts*perHost {
		t.Errorf("the new manager reconciled Plugins %v times, want at least %d", n, hosts*perHost)
	}
	writes := readAPIWrites(t).sub(before)
	ours := writes.of(operatorResources)
	if ours.total() != 0 {
		t.Errorf("the restarted manager wrote %.0f times over converged Plugins: %s", ours.total(), ours)
	}
	t.Logf("restart over %d Plugins on %d hosts: idle %v after the start, writes %s (all of the API server's: %s)",
		hosts*perHost, hosts, idleAfter.Round(time.Millisecond), ours, writes)

	// The next edit is acted on.
	p := &v1alpha1.Plugin{}
	if err := get(t, p, ns, "p000"); err != nil {
		t.Fatal(err)
	}
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"options":{"increment":4242}}}`))
	if err := c.Patch(ctx, p, patch); err != nil {
		t.Fatal(err)
	}
	edited := time.Now()
	pluginCondition(t, ns, p.Name, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	configMapData(t, ns, "r0", contains(`"increment": 4242`))
	t.Logf("after the restart, Plugin edit → Ready in %v", time.Since(edited).Round(time.Millisecond))
}
