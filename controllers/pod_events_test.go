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
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/kubeletsim"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// statusPod is a host pod (through the host's ReplicaSet), running and ready, whose /status
// answers the revision it was last nudged to (its config-revision annotation), as a pod
// whose kubelet projects at once would; reads counts the manager's reads of it, one per
// reconcile of its host.
type statusPod struct {
	pod   *corev1.Pod
	reads atomic.Int64
}

func newStatusPod(t *testing.T, ns, host string) *statusPod {
	t.Helper()
	sp := &statusPod{}
	name := host + "-0"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sp.reads.Add(1)
		pod := &corev1.Pod{}
		rev := ""
		if err := env.Client.Get(r.Context(), client.ObjectKey{Namespace: ns, Name: name}, pod); err == nil {
			rev = pod.Annotations[v1alpha1.ConfigRevisionAnnotation]
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"version":1,"revision":`+strconv.Quote(rev)+`,"ready":true,"types":`+kubeletsim.BuiltinTypesJSON+`}`)
	}))
	t.Cleanup(srv.Close)
	sp.pod = hostPod(t, ns, host, name, int32(srv.Listener.Addr().(*net.TCPAddr).Port))
	if err := kubeletsim.MarkPodRunning(context.Background(), env.Client, sp.pod, true, 0); err != nil {
		t.Fatal(err)
	}
	return sp
}

// rolledOut waits until every running pod of host runs its configuration.
func rolledOut(t *testing.T, ns, host string) *v1alpha1.PluginHost {
	t.Helper()
	h := &v1alpha1.PluginHost{}
	testutil.Eventually(t, wait, "PluginHost "+host+" rolled out", func() error {
		if err := get(t, h, ns, host); err != nil {
			return err
		}
		if h.Status.ConfigRevision == "" || h.Status.AppliedRevision != h.Status.ConfigRevision || len(h.Status.Pods) == 0 {
			return fmt.Errorf("configRevision %q, appliedRevision %q, %d pods", h.Status.ConfigRevision, h.Status.AppliedRevision, len(h.Status.Pods))
		}
		return nil
	})
	return h
}

// fence makes the manager reconcile host through an event of its pod sp (an annotation) and
// waits until that reconcile read the pod. The manager's pod informer hands events to the
// controller in order, so whatever an earlier pod event enqueued is enqueued by then.
func fence(t *testing.T, sp *statusPod, n int) {
	t.Helper()
	before := sp.reads.Load()
	update(t, sp.pod, func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations["test/fence"] = strconv.Itoa(n)
	})
	testutil.Eventually(t, wait, "the fence's reconcile", func() error {
		if sp.reads.Load() == before {
			return errors.New("the host's pod was not read yet")
		}
		return nil
	})
}

// TestPodsOutsideTheOwnerChainCostNothing: a pod that merely carries a host's label (no owner
// chain to the host's Deployment) makes the manager reconcile nothing, however often it
// changes; and the reconcile of a host whose pods all run its configuration writes no status
// when nothing else changed (lastChecked is kept to the second, as the API server stores it).
// It runs the real manager binary, whose metrics say when it is idle and count its PATCHes.
func TestPodsOutsideTheOwnerChainCostNothing(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	mgr := startManagerBinary(t, append(metricsFlags(t), "--watch-namespaces="+ns)...)
	probe := newIdleProbeOf(t, mgr.metricSum)
	create(t, newHost(ns, "oa", "oa"), newHost(ns, "ob", "ob"))
	a, b := newStatusPod(t, ns, "oa"), newStatusPod(t, ns, "ob")
	rolledOut(t, ns, "oa")
	rolledOut(t, ns, "ob")
	testutil.Eventually(t, wait, "the manager to be idle", func() error { return probe.idle(t) })
	// The scrape reads what it should: the rollouts were reconciles and PATCHes (applies).
	if mgr.metricSum(t, "controller_runtime_reconcile_total", map[string]string{"controller": "pluginhost"}) == 0 ||
		mgr.metricSum(t, "rest_client_requests_total", map[string]string{"method": "PATCH"}) == 0 {
		t.Fatal("the manager's metrics count no reconcile or no PATCH")
	}

	// Pods with oa's label that oa's Deployment does not own: created, run, changed.
	reads := a.reads.Load()
	impostor := impostorPod(t, ns, "oa", "oa-impostor", 1, nil)
	if err := kubeletsim.MarkPodRunning(context.Background(), env.Client, impostor, true, 0); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		update(t, impostor, func(p *corev1.Pod) {
			if p.Annotations == nil {
				p.Annotations = map[string]string{}
			}
			p.Annotations["test/change"] = strconv.Itoa(i)
		})
	}
	// A pod event of the other host after them, then nothing left to do.
	fence(t, b, 0)
	testutil.Eventually(t, wait, "the manager to be idle", func() error { return probe.idle(t) })
	if n := a.reads.Load() - reads; n != 0 {
		t.Errorf("the impostor's events made the manager reconcile oa (its pod read %d times)", n)
	}

	// A reconcile of a converged host that changes nothing writes nothing: no status PATCH,
	// not even an empty one (the manager's other PATCHes, pod nudges, have nothing to do
	// here either): its client's requests, as its metrics endpoint counts them. Status
	// writes within one second compare equal, so two fences' reconciles in the same second
	// send at most one PATCH (lastChecked moving to that second). The fences go in pairs,
	// back to back, so that on a loaded machine, where waiting for the manager to be idle
	// takes more than a second, a pair still falls within one second now and then.
	patches := func() float64 {
		return mgr.metricSum(t, "rest_client_requests_total", map[string]string{"method": "PATCH"})
	}
	for i := 1; ; i++ {
		before := patches()
		fence(t, b, 2*i)
		fence(t, b, 2*i+1)
		testutil.Eventually(t, wait, "the manager to be idle", func() error { return probe.idle(t) })
		if patches()-before <= 1 {
			break
		}
		if i == 20 {
			h := &v1alpha1.PluginHost{}
			if err := get(t, h, ns, "ob"); err != nil {
				t.Fatal(err)
			}
			t.Fatalf("each of %d pairs of reconciles of a converged host sent two PATCHes or more (lastChecked %v)", i, h.Status.Pods[0].LastChecked)
		}
	}
}
