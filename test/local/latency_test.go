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

package local

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/controllers"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// latencyReportEnv names a file that the latency tests append their report to, besides
// the test log and a file in the test's temporary directory.
const latencyReportEnv = "PLUGIN_OPERATOR_LATENCY_REPORT"

// TestEndToEndLatency measures, with the manager's pod nudge on (the default), the time
// from a Plugin edit (the API server accepting the patch) to the host process serving the
// new increment, and to the Plugin's Ready condition for the new generation, over 50 edits.
// It asserts only that every edit is served; the numbers are printed (target p99 ≤ 1 s).
func TestEndToEndLatency(t *testing.T) {
	ns := namespace(t, "latency")
	served, ready, pid := measureEdits(t, ns, 50)
	report(t, fmt.Sprintf("nudge on, kubelet sync period %s (kubelet's default), PluginHost pollInterval 250ms (default)",
		"60s+jitter"), served, ready)
	if now, _ := cluster.Host(ns, "host"); now.PID != pid {
		t.Errorf("host process %d became %d during the edits", pid, now.PID)
	}
}

// TestEndToEndLatencyWithoutNudge is the same with the manager's --pod-nudge=false: the
// change reaches the pod only at kubelet's periodic volume re-sync, here shortened to 2 s
// (jittered to 2–3 s) in this namespace; kubelet's default is 60 s (60–90 s).
func TestEndToEndLatencyWithoutNudge(t *testing.T) {
	ns := namespace(t, nudgeOffNamespace)
	opts := controllers.DefaultOptions()
	// The volume path alone: without the push (TestConfigPushWithoutNudge), which serves
	// an edit without kubelet.
	opts.PodNudge, opts.ConfigPush = false, false
	if err := cluster.RestartManager(opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cluster.RestartManager(controllers.DefaultOptions()); err != nil {
			t.Errorf("restarting the manager with its defaults: %v", err)
		}
	})
	served, ready, _ := measureEdits(t, ns, 15)
	report(t, fmt.Sprintf("nudge off, kubelet sync period %s+jitter (shortened; kubelet's default is 60s), PluginHost pollInterval 250ms",
		nudgeOffSyncPeriod), served, ready)
}

// TestConfigPushWithoutNudge: with the pod nudge off and kubelet's default sync period
// (60–90 s), every edit is served through the manager's config push (PUT /config), which
// the host's metrics count, and kubelet's projection, when it comes, changes nothing.
func TestConfigPushWithoutNudge(t *testing.T) {
	ns := namespace(t, "push")
	opts := controllers.DefaultOptions()
	opts.PodNudge = false
	if err := cluster.RestartManager(opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cluster.RestartManager(controllers.DefaultOptions()); err != nil {
			t.Errorf("restarting the manager with its defaults: %v", err)
		}
	})
	const edits = 10
	served, ready, pid := measureEdits(t, ns, edits)
	proc, _ := cluster.Host(ns, "host")
	if proc.PID != pid {
		t.Errorf("host process %d became %d during the edits", pid, proc.PID)
	}
	if pushed := pushedChanges(t, proc.OpsURL); pushed < edits {
		t.Errorf("the host applied %v changes by push, want the %d edits' (kubelet's sync period is 60 s: none came through the volume)", pushed, edits)
	}
	st, err := hostStatus(proc.OpsURL)
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{}
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "host-config"}, cm); err != nil {
		t.Fatal(err)
	}
	if want := cm.Data[controllers.ConfigSequenceKey]; fmt.Sprint(st.Sequence) != want || st.Revision != cm.Annotations[v1alpha1.ConfigRevisionAnnotation] {
		t.Errorf("the host applied sequence %d revision %s; the ConfigMap holds %s, %s", st.Sequence, st.Revision, want, cm.Annotations[v1alpha1.ConfigRevisionAnnotation])
	}
	report(t, "nudge off, config push on, kubelet sync period 60s+jitter (kubelet's default), PluginHost pollInterval 250ms", served, ready)
}

// pushedChanges reads the host's count of config changes applied by push.
func pushedChanges(t *testing.T, opsURL string) float64 {
	t.Helper()
	resp, err := http.Get(opsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, `pluginhost_config_changes_applied_total{noticed_by="push"} `); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no push count in the host's metrics:\n%s", b)
	return 0
}

// measureEdits creates a host and a Plugin in ns, then edits the Plugin's increment n
// times, one edit at a time, and returns for each edit the time until the host serves the
// new increment and until the Plugin is Ready for the new generation.
func measureEdits(t *testing.T, ns string, n int) (served, ready []time.Duration, pid int) {
	t.Helper()
	mustKubectl(t, fmt.Sprintf(hostYAML, ns)+"---\n"+fmt.Sprintf(pluginYAML, ns, "counter", 1), "apply", "-n", ns, "-f", "-")
	waitPluginReady(t, ns, "counter")
	proc := waitHost(t, ns, "host")

	ctx := context.Background()
	p := &v1alpha1.Plugin{}
	for i := range n {
		increment := i + 2
		start := time.Now()
		patch := fmt.Appendf(nil, `{"spec":{"options":{"increment":%d}}}`, increment)
		p.Namespace, p.Name = ns, "counter"
		if err := cluster.Client.Patch(ctx, p, client.RawPatch("application/merge-patch+json", patch)); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, wait, fmt.Sprintf("edit %d (increment %d) served", i+1, increment), func() error {
			st, err := hostStatus(proc.OpsURL)
			if err != nil {
				return err
			}
			for _, pl := range st.Plugins {
				if pl.Name == "counter" && fmt.Sprint(pl.Options["increment"]) == fmt.Sprint(increment) {
					return nil
				}
			}
			return fmt.Errorf("host runs revision %s", st.Revision)
		})
		served = append(served, time.Since(start))
		testutil.Eventually(t, wait, fmt.Sprintf("edit %d Ready", i+1), func() error { return pluginReady(ns, "counter", p) })
		ready = append(ready, time.Since(start))
	}
	// The last increment is the one served.
	mustCall(t, 200, proc.URL, "POST", "counter", "reset", "")
	if a := mustCall(t, 200, proc.URL, "POST", "counter", "increment", `{"value": 1}`); a.Value != int64(n+1) {
		t.Errorf("increment after the last edit: %s, want %d", a.Body, n+1)
	}
	return served, ready, proc.PID
}

// report prints the distribution of served and ready to the test log, to latency.txt in the
// test's temporary directory and, if set, to the file named by PLUGIN_OPERATOR_LATENCY_REPORT.
func report(t *testing.T, setup string, served, ready []time.Duration) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "End-to-end latency, Plugin edit -> host (%d edits; %s):\n", len(served), setup)
	fmt.Fprintf(&b, "  host serves the new increment:  %s\n", distribution(served))
	fmt.Fprintf(&b, "  Plugin Ready for the generation: %s\n", distribution(ready))
	t.Log(b.String())
	path := filepath.Join(t.TempDir(), "latency.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Error(err)
	}
	if out := os.Getenv(latencyReportEnv); out != "" {
		f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := fmt.Fprintf(f, "%s: %s\n", t.Name(), b.String()); err != nil {
			t.Error(err)
		}
	}
}

// distribution formats min, p50, p90, p99 (nearest rank) and max.
func distribution(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	return fmt.Sprintf("min %s  p50 %s  p90 %s  p99 %s  max %s", ms(s[0]), ms(rank(0.5)), ms(rank(0.9)), ms(rank(0.99)), ms(s[len(s)-1]))
}
