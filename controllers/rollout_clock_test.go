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
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
	"github.com/hotreload/plugin-operator/internal/testing/kubeletsim"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

const applyDuration = "plugin_operator_config_apply_duration_seconds"

// revisionServer serves a pod's GET /status on loopback, reporting the revision last stored
// in rev as applied, and returns its port.
func revisionServer(t *testing.T, rev *atomic.Value) int32 {
	t.Helper()
	rev.Store("")
	return loopbackServer(t, func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"version":1,"revision":%q,"ready":true,"types":%s}`, rev.Load().(string), kubeletsim.BuiltinTypesJSON)
	})
}

// runningPod creates a pod of host served by the revisionServer at port, and marks it
// running (ready or not).
func runningPod(t *testing.T, ns, host, name string, port int32, ready bool) {
	t.Helper()
	pod := hostPod(t, ns, host, name, port)
	if err := kubeletsim.MarkPodRunning(context.Background(), env.Client, pod, ready, 0); err != nil {
		t.Fatal(err)
	}
}

// readAgain waits until a reconcile has read every pod listed in h's status after the
// second of the latest lastChecked there, and written the status; it returns that status.
// The reconcile's metrics are recorded before its status write.
func readAgain(t *testing.T, h *v1alpha1.PluginHost) *v1alpha1.PluginHost {
	t.Helper()
	if len(h.Status.Pods) == 0 {
		t.Fatal("no pods in the status")
	}
	var last time.Time
	for _, p := range h.Status.Pods {
		if p.LastChecked.After(last) {
			last = p.LastChecked.Time
		}
	}
	testutil.WaitPastSecond(t, last)
	// A converged host is read again on a change only, and a restarted manager's first look
	// at a host writes nothing when only lastChecked moved (patchStatus): poke until a read
	// is written.
	out := &v1alpha1.PluginHost{}
	var poked time.Time
	testutil.Eventually(t, wait, "another read of the pods of "+h.Name, func() error {
		if time.Since(poked) > 250*time.Millisecond {
			poke(t, h.Namespace, h.Name)
			poked = time.Now()
		}
		if err := get(t, out, h.Namespace, h.Name); err != nil {
			return err
		}
		for _, p := range out.Status.Pods {
			if !p.LastChecked.After(last) {
				return fmt.Errorf("pod %s last read at %v", p.Name, p.LastChecked)
			}
		}
		return nil
	})
	return out
}

// newRevision waits until the host's status carries a configRevision other than old, and
// returns the host.
func newRevision(t *testing.T, ns, name, old string) *v1alpha1.PluginHost {
	t.Helper()
	h := &v1alpha1.PluginHost{}
	testutil.Eventually(t, wait, "a configRevision other than "+old, func() error {
		if err := get(t, h, ns, name); err != nil {
			return err
		}
		if h.Status.ConfigRevision == "" || h.Status.ConfigRevision == old {
			return fmt.Errorf("configRevision %q", h.Status.ConfigRevision)
		}
		return nil
	})
	return h
}

// restart stops a manager and starts another (with a new rolloutClock) once the clock has
// passed the second of the host's last status write, and returns the new manager's stop and
// its first status write of the host.
func restart(t *testing.T, stop func(), ns, name string) (func(), *v1alpha1.PluginHost) {
	t.Helper()
	stop()
	h := &v1alpha1.PluginHost{}
	if err := get(t, h, ns, name); err != nil {
		t.Fatal(err)
	}
	stop = startManager(t, ns, testOptions())
	return stop, readAgain(t, h)
}

func sameTime(a, b *metav1.Time) bool {
	return a != nil && b != nil && a.Equal(b)
}

// TestApplyDurationAcrossRestarts: a revision in flight while the manager restarts is timed
// once, by the next manager, from status.configRevisionTime; a revision applied before a
// restart, or applied by every ready pod while a pod that is not ready holds
// appliedRevision back, is not timed again. configRevisionTime moves with configRevision
// only.
func TestApplyDurationAcrossRestarts(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	stop := startManager(t, ns, testOptions())
	var applied atomic.Value
	port := revisionServer(t, &applied)
	plugin := newPlugin(ns, "c", "clock", 1)
	create(t, newHost(ns, "clock", "clock"), plugin)
	// The pod advertises the host's types: the revision with the Plugin is rendered then.
	runningPod(t, ns, "clock", "clock-0", port, true)
	_, data := configMapData(t, ns, "clock", contains(`"c"`))
	h := &v1alpha1.PluginHost{}
	testutil.Eventually(t, wait, "the revision with the Plugin", func() error {
		if err := get(t, h, ns, "clock"); err != nil {
			return err
		}
		if want := pluginconfig.Revision([]byte(data)); h.Status.ConfigRevision != want {
			return fmt.Errorf("configRevision %q, want %q", h.Status.ConfigRevision, want)
		}
		return nil
	})
	rev1, time1 := h.Status.ConfigRevision, h.Status.ConfigRevisionTime
	if time1 == nil {
		t.Fatalf("configRevision %s without configRevisionTime", rev1)
	}
	applied.Store(rev1)
	h = hostCondition(t, ns, "clock", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRolledOut)

	// The same revision, reconciled again: the time stays.
	h = readAgain(t, h)
	if h.Status.ConfigRevision != rev1 || !sameTime(h.Status.ConfigRevisionTime, time1) {
		t.Fatalf("another reconcile of %s: configRevisionTime %v → %v", rev1, time1, h.Status.ConfigRevisionTime)
	}

	// (1) An edit; the pod has not applied it when the manager stops.
	count0, sum0 := histogram(t, applyDuration)
	testutil.WaitPastSecond(t, time1.Time) // the new time differs at the API's resolution
	update(t, plugin, func(p *v1alpha1.Plugin) { p.Spec.Options.Increment = ptr.To[int32](2) })
	h = newRevision(t, ns, "clock", rev1)
	rev2, time2 := h.Status.ConfigRevision, h.Status.ConfigRevisionTime
	if time2 == nil || !time2.After(time1.Time) {
		t.Fatalf("new revision %s: configRevisionTime %v, want after %v", rev2, time2, time1)
	}
	// The new manager starts a second or more after the rendering, so that a timer started
	// at its first reconcile would be short by at least that.
	testutil.WaitPastSecond(t, time2.Add(time.Second))
	stop, h = restart(t, stop, ns, "clock")
	if h.Status.AppliedRevision != rev1 || !sameTime(h.Status.ConfigRevisionTime, time2) {
		t.Fatalf("after the restart: applied %s, configRevisionTime %v; want %s and %v", h.Status.AppliedRevision, h.Status.ConfigRevisionTime, rev1, time2)
	}
	if count, _ := histogram(t, applyDuration); count != count0 {
		t.Fatalf("%d samples before any pod applied %s, want %d", count, rev2, count0)
	}
	applyFrom := time.Now()
	applied.Store(rev2)
	testutil.Eventually(t, wait, "the new manager to see "+rev2+" applied", func() error {
		if err := get(t, h, ns, "clock"); err != nil {
			return err
		}
		if h.Status.AppliedRevision != rev2 {
			return fmt.Errorf("appliedRevision %s", h.Status.AppliedRevision)
		}
		return nil
	})
	count1, sum1 := histogram(t, applyDuration)
	// The pods applied it at applyFrom at the earliest; the rendering was at time2 at the
	// latest (it is stored to the second, rounded down).
	least := applyFrom.Sub(time2.Time).Seconds()
	t.Logf("the rollout across the restart took %.3fs by the histogram; at least %.3fs since %v", sum1-sum0, least, time2)
	if count1 != count0+1 || sum1-sum0 < least {
		t.Errorf("samples %d → %d, sum %.3f → %.3f: want one more sample of at least %.3fs", count0, count1, sum0, sum1, least)
	}
	h = readAgain(t, h)
	if count, _ := histogram(t, applyDuration); count != count1 {
		t.Errorf("%d samples after another read, want %d", count, count1)
	}

	// (2) A restart after the revision was applied adds no sample; the time stays.
	stop, h = restart(t, stop, ns, "clock")
	if count, _ := histogram(t, applyDuration); count != count1 {
		t.Errorf("%d samples after a restart with %s applied, want %d", count, rev2, count1)
	}
	if h.Status.ConfigRevision != rev2 || !sameTime(h.Status.ConfigRevisionTime, time2) {
		t.Errorf("after the second restart: %s at %v, want %s at %v", h.Status.ConfigRevision, h.Status.ConfigRevisionTime, rev2, time2)
	}

	// A running pod that is not ready and never applies the next revision: every ready pod
	// applies it (timed once), appliedRevision stays behind, and a restart does not time it
	// again.
	var lagging atomic.Value
	lagPort := revisionServer(t, &lagging)
	lagging.Store(rev2)
	runningPod(t, ns, "clock", "clock-1", lagPort, false)
	testutil.Eventually(t, wait, "both pods in the status", func() error {
		if err := get(t, h, ns, "clock"); err != nil {
			return err
		}
		if len(h.Status.Pods) != 2 {
			return fmt.Errorf("%d pods", len(h.Status.Pods))
		}
		return nil
	})
	update(t, plugin, func(p *v1alpha1.Plugin) { p.Spec.Options.Increment = ptr.To[int32](3) })
	h = newRevision(t, ns, "clock", rev2)
	rev3 := h.Status.ConfigRevision
	applied.Store(rev3)
	testutil.Eventually(t, wait, "clock-0 running "+rev3+" in the status", func() error {
		if err := get(t, h, ns, "clock"); err != nil {
			return err
		}
		for _, p := range h.Status.Pods {
			if p.Name == "clock-0" && p.AppliedRevision == rev3 && p.Ready {
				return nil
			}
		}
		return fmt.Errorf("pods %+v", h.Status.Pods)
	})
	count2, _ := histogram(t, applyDuration)
	if count2 != count1+1 || h.Status.AppliedRevision != rev2 {
		t.Fatalf("every ready pod runs %s: %d samples (want %d), appliedRevision %s (want %s, held back by clock-1)",
			rev3, count2, count1+1, h.Status.AppliedRevision, rev2)
	}
	_, h = restart(t, stop, ns, "clock")
	if count, _ := histogram(t, applyDuration); count != count2 {
		t.Errorf("%d samples after a restart with %s applied by every ready pod, want %d", count, rev3, count2)
	}
	if h.Status.AppliedRevision != rev2 {
		t.Errorf("appliedRevision %s, want %s (clock-1 lags)", h.Status.AppliedRevision, rev2)
	}
}
