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
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/projection"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

const samplesNamespace = "samples"

// applySamples applies config/samples with kubectl (again: apply is idempotent and resets
// what an earlier test changed), waits until both sample Plugins are Ready for their current
// generation and returns the process of the sample PluginHost "demo".
func applySamples(t *testing.T) (string, string) {
	t.Helper()
	ns := namespace(t, samplesNamespace)
	out := mustKubectl(t, "", "apply", "-k", "config/samples", "-n", ns)
	for _, want := range []string{"pluginhost.plugins.hotreload.io/demo", "plugin.plugins.hotreload.io/counter-1",
		"plugin.plugins.hotreload.io/counter-2", "secret/counter-2-api-key"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply -k config/samples printed no %s:\n%s", want, out)
		}
	}
	waitPluginReady(t, ns, "counter-1")
	waitPluginReady(t, ns, "counter-2")
	return ns, waitHost(t, ns, "demo").URL
}

// The samples, applied and waited for with the real kubectl: the operator renders the
// config, the node agent runs the pod, the runtime applies it, and the status comes back.
func TestSamplesWithKubectl(t *testing.T) {
	ns, url := applySamples(t)
	mustKubectl(t, "", "wait", "--for=condition=Ready", "plugin/counter-1", "plugin/counter-2", "-n", ns, "--timeout=90s")
	mustKubectl(t, "", "wait", "--for=condition=Available", "pluginhost/demo", "-n", ns, "--timeout=90s")
	out := mustKubectl(t, "", "get", "plugins", "-n", ns)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if f := strings.Fields(line); len(f) < 5 || f[2] != "demo" || f[4] != "True" {
			t.Errorf("kubectl get plugins: want host demo and Ready True:\n%s", out)
		}
	}
	hostCondition(t, ns, "demo", v1alpha1.ConditionProgressing, metav1.ConditionFalse, v1alpha1.ReasonRolledOut)
	hostCondition(t, ns, "demo", v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected)

	// The pod the manager reads is the local process.
	pod := mustKubectl(t, "", "get", "pods", "-n", ns, "-l", v1alpha1.LabelHost+"=demo",
		"-o", `jsonpath={.items[0].status.phase} {.items[0].status.podIP} {.items[0].spec.containers[0].ports[0].containerPort}`)
	if want := "Running 127.0.0.1 " + url[strings.LastIndex(url, ":")+1:]; pod != want {
		t.Errorf("pod phase, IP and port %q, want %q", pod, want)
	}
	// /status is on the operational port only; the API port answers 404 there.
	if resp, err := http.Get(url + "/status"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /status on the API port: %v %v, want 404", err, resp)
	} else {
		resp.Body.Close()
	}
	st, err := hostStatus(waitHost(t, ns, "demo").OpsURL)
	if err != nil {
		t.Fatal(err)
	}
	h := &v1alpha1.PluginHost{}
	if err := cluster.Client.Get(context.Background(), key(ns, "demo"), h); err != nil {
		t.Fatal(err)
	}
	if st.Revision != h.Status.ConfigRevision || len(st.Plugins) != 2 {
		t.Errorf("the host runs revision %s with %d plugins; the PluginHost wants %s with 2", st.Revision, len(st.Plugins), h.Status.ConfigRevision)
	}

	// The config directory has kubelet's layout.
	host, _ := cluster.Host(ns, "demo")
	dir := filepath.Join(host.Dir, "config")
	if l, err := os.Readlink(filepath.Join(dir, "config.json")); err != nil || l != projection.DataDirName+"/config.json" {
		t.Errorf("config.json -> %q (%v), want kubelet's ..data/config.json", l, err)
	}
	if ts, err := os.Readlink(filepath.Join(dir, projection.DataDirName)); err != nil || !strings.HasPrefix(ts, "..20") {
		t.Errorf("..data -> %q (%v), want a timestamped directory", ts, err)
	}
}

// The seed README's walkthrough, through the CRs: increment by 5, edit the Plugin's
// increment from 1 to 10 with kubectl, increment by 1: 15 — and the host process was never
// restarted.
func TestSeedWalkthroughThroughCRs(t *testing.T) {
	ns, url := applySamples(t)
	before, _ := cluster.Host(ns, "demo")
	restarts := podRestarts(t, ns, before.Pod)

	mustCall(t, http.StatusOK, url, http.MethodPost, "counter-1", "reset", "")
	if a := mustCall(t, http.StatusOK, url, http.MethodPost, "counter-1", "increment", `{"value": 5}`); a.Value != 5 {
		t.Fatalf("increment by 5 from 0: %s, want value 5", a.Body)
	}

	mustKubectl(t, "", "patch", "plugin", "counter-1", "-n", ns, "--type=merge", "-p", `{"spec":{"options":{"increment":10}}}`)
	p := waitPluginReady(t, ns, "counter-1")
	mustKubectl(t, "", "wait", "--for=condition=Ready", "plugin/counter-1", "-n", ns, "--timeout=90s")
	if p.Generation < 2 || p.Status.ObservedGeneration != p.Generation {
		t.Errorf("generation %d, observedGeneration %d", p.Generation, p.Status.ObservedGeneration)
	}

	if a := mustCall(t, http.StatusOK, url, http.MethodPost, "counter-1", "increment", `{"value": 1}`); a.Value != 15 {
		t.Fatalf("increment by 1 after the edit: %s, want value 15 (5 + 1 × 10)", a.Body)
	}
	if a := mustCall(t, http.StatusOK, url, http.MethodGet, "counter-1", "get", ""); a.Value != 15 {
		t.Fatalf("get: %s, want 15", a.Body)
	}

	after, _ := cluster.Host(ns, "demo")
	if after.PID != before.PID || after.Pod != before.Pod {
		t.Errorf("host process %d in pod %s became %d in pod %s: the edit restarted it", before.PID, before.Pod, after.PID, after.Pod)
	}
	if got := podRestarts(t, ns, after.Pod); got != restarts {
		t.Errorf("pod restartCount %d, was %d", got, restarts)
	}
	if err := syscall.Kill(before.PID, 0); err != nil {
		t.Errorf("process %d: %v", before.PID, err)
	}
}

// counter-2 of the samples takes an API key from a Secret: the manager copies it into the
// host's credentials Secret, the node agent projects that like kubelet, the runtime reads it.
func TestAPIKeyPluginFromSamples(t *testing.T) {
	ns, url := applySamples(t)
	host, _ := cluster.Host(ns, "demo")
	key := filepath.Join(host.Dir, "secrets", "counter-2.api-key")
	if b, err := os.ReadFile(key); err != nil || strings.TrimSpace(string(b)) != "change-me" {
		t.Errorf("projected credential %s: %q %v", key, b, err)
	}

	if a := call(t, url, http.MethodPost, "counter-2", "increment", `{"value": 1}`); a.Code != http.StatusUnauthorized {
		t.Errorf("without the key: %d %s, want 401", a.Code, a.Body)
	}
	if a := call(t, url, http.MethodPost, "counter-2", "increment", `{"value": 1}`, "X-API-Key", "wrong"); a.Code != http.StatusUnauthorized {
		t.Errorf("with a wrong key: %d %s, want 401", a.Code, a.Body)
	}
	start := mustCall(t, http.StatusOK, url, http.MethodGet, "counter-2", "get", "", "X-API-Key", "change-me").Value
	if a := mustCall(t, http.StatusOK, url, http.MethodPost, "counter-2", "increment", `{"value": 1}`, "X-API-Key", "change-me"); a.Value != start+10 {
		t.Errorf("with the key: %s, want value %d (increment 10)", a.Body, start+10)
	}

	// Rotating the Secret reaches the running host: config.json does not change, the
	// manager nudges the pod for the new credentials, the host re-reads its key file.
	mustKubectl(t, "", "-n", ns, "patch", "secret", "counter-2-api-key", "--type=merge", "-p", `{"stringData":{"api-key":"rotated"}}`)
	testutil.Eventually(t, time.Minute, "rotated key accepted", func() error {
		if a := call(t, url, http.MethodGet, "counter-2", "get", "", "X-API-Key", "rotated"); a.Code != http.StatusOK {
			return fmt.Errorf("rotated key: %d %s", a.Code, a.Body)
		}
		return nil
	})
	if a := call(t, url, http.MethodGet, "counter-2", "get", "", "X-API-Key", "change-me"); a.Code != http.StatusUnauthorized {
		t.Errorf("the rotated-out key still works: %d", a.Code)
	}
}

const hostYAML = `apiVersion: plugins.hotreload.io/v1alpha1
kind: PluginHost
metadata:
  name: host
spec:
  pluginSelector:
    matchLabels:
      test: %[1]s
`

const pluginYAML = `apiVersion: plugins.hotreload.io/v1alpha1
kind: Plugin
metadata:
  name: %[2]s
  labels:
    test: %[1]s
spec:
  type: counter
  options:
    increment: %[3]d
`

// A Plugin added with kubectl is served by the running host; deleted, it is gone (404); the
// process stays the same.
func TestAddAndRemovePlugin(t *testing.T) {
	ns := namespace(t, "add-remove")
	mustKubectl(t, fmt.Sprintf(hostYAML, ns)+"---\n"+fmt.Sprintf(pluginYAML, ns, "first", 1), "apply", "-n", ns, "-f", "-")
	waitPluginReady(t, ns, "first")
	host := waitHost(t, ns, "host")
	mustCall(t, http.StatusNotFound, host.URL, http.MethodGet, "second", "get", "")

	mustKubectl(t, fmt.Sprintf(pluginYAML, ns, "second", 3), "apply", "-n", ns, "-f", "-")
	waitPluginReady(t, ns, "second")
	if a := mustCall(t, http.StatusOK, host.URL, http.MethodPost, "second", "increment", `{"value": 2}`); a.Value != 6 {
		t.Errorf("increment of the added plugin: %s, want 6", a.Body)
	}
	// A Plugin's Ready can land one write before its host's status (controllers/doc.go):
	// wait for the status that counts the added plugin.
	var h *v1alpha1.PluginHost
	testutil.Eventually(t, wait, "the host rolled out with two plugins", func() error {
		h, _ = hostCondition(t, ns, "host", v1alpha1.ConditionProgressing, metav1.ConditionFalse, v1alpha1.ReasonRolledOut)
		if h.Status.PluginCount != 2 {
			return fmt.Errorf("pluginCount %d, want 2", h.Status.PluginCount)
		}
		return nil
	})

	mustKubectl(t, "", "delete", "plugin", "second", "-n", ns)
	testutil.Eventually(t, wait, "the removed plugin answers 404", func() error {
		if a := call(t, host.URL, http.MethodGet, "second", "get", ""); a.Code != http.StatusNotFound {
			return fmt.Errorf("%d %s", a.Code, a.Body)
		}
		return nil
	})
	mustCall(t, http.StatusOK, host.URL, http.MethodGet, "first", "get", "")
	// The pod may serve the new revision before the manager has written the host's status
	// for it (it writes after the ConfigMap and the nudge): wait for the status that counts it.
	testutil.Eventually(t, wait, "the host rolled out with one plugin", func() error {
		h, _ = hostCondition(t, ns, "host", v1alpha1.ConditionProgressing, metav1.ConditionFalse, v1alpha1.ReasonRolledOut)
		if h.Status.PluginCount != 1 {
			return fmt.Errorf("pluginCount %d after the removal, want 1", h.Status.PluginCount)
		}
		return nil
	})
	if now, _ := cluster.Host(ns, "host"); now.PID != host.PID || now.Restarts != 0 {
		t.Errorf("host process %d became %d (restarts %d)", host.PID, now.PID, now.Restarts)
	}
}

// kubectl apply of an invalid Plugin fails at admission, with a message that names the field.
func TestInvalidPluginRefusedAtAdmission(t *testing.T) {
	ns := namespace(t, "admission")
	for _, tc := range []struct {
		name, spec string
		want       []string
	}{
		{"bad-transport", "type: counter\n  transport: ftp", []string{"spec.transport", `Unsupported value: "ftp"`}},
		{"no-secret", "type: counter\n  auth:\n    method: api-key", []string{"spec.auth.secretRef", "required when spec.auth.method is not none"}},
		{"fractional-increment", "type: counter\n  options:\n    increment: 5.5", []string{"spec.options.increment", "integer"}},
		// Any lower-case name is admitted; whether the host carries it is its verdict
		// (UnknownPluginType, controllers' TestPluginsCheckedAgainstAdvertisedTypes).
		{"bad-type-name", "type: Gauge", []string{"spec.type", "should match"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			manifest := fmt.Sprintf("apiVersion: plugins.hotreload.io/v1alpha1\nkind: Plugin\nmetadata:\n  name: %s\nspec:\n  %s\n", tc.name, tc.spec)
			out, errOut, err := kubectl(t, manifest, "apply", "-n", ns, "-f", "-")
			if err == nil {
				t.Fatalf("kubectl apply succeeded:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("kubectl's error does not say %q:\n%s", w, errOut)
				}
			}
			if _, _, err := kubectl(t, "", "get", "plugin", tc.name, "-n", ns); err == nil {
				t.Errorf("plugin %s exists after a refused apply", tc.name)
			}
		})
	}
}

const userConfigYAML = `apiVersion: v1
kind: ConfigMap
metadata:
  name: seed-config
  labels:
    plugins.hotreload.io/plugin-auth: "true"
data:
  config.json: |
%s
`

// indent indents every line of s by four spaces, for a YAML block scalar.
func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ")
}

// A PluginHost that merges a user's seed-format ConfigMap: a broken config.json there makes
// the host Degraded while its pod keeps serving the last good configuration; a fixed one
// recovers — without a restart.
func TestInvalidUserConfigMap(t *testing.T) {
	ns := namespace(t, "user-config")
	good := `{"plugins": [{"name": "seed-counter", "type": "counter", "options": {"increment": 2}}]}`
	host := fmt.Sprintf(hostYAML, ns) + "  configMapRef:\n    name: seed-config\n"
	mustKubectl(t, fmt.Sprintf(userConfigYAML, indent(good))+"---\n"+host, "apply", "-n", ns, "-f", "-")
	h, _ := hostCondition(t, ns, "host", v1alpha1.ConditionProgressing, metav1.ConditionFalse, v1alpha1.ReasonRolledOut)
	hostCondition(t, ns, "host", v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected)
	goodRevision := h.Status.ConfigRevision
	proc := waitHost(t, ns, "host")
	if a := mustCall(t, http.StatusOK, proc.URL, http.MethodPost, "seed-counter", "increment", `{"value": 1}`); a.Value != 2 {
		t.Fatalf("increment: %s, want 2", a.Body)
	}

	// Broken: truncated JSON.
	mustKubectl(t, fmt.Sprintf(userConfigYAML, indent(`{"plugins": [`)), "apply", "-n", ns, "-f", "-")
	mustKubectl(t, "", "wait", "--for=condition=Degraded", "pluginhost/host", "-n", ns, "--timeout=90s")
	h, cond := hostCondition(t, ns, "host", v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonConfigInvalid)
	if !strings.Contains(cond.Message, "seed-config") || !strings.Contains(cond.Message, "config.json") {
		t.Errorf("Degraded message %q: want the ConfigMap and key named", cond.Message)
	}
	if h.Status.ConfigRevision != goodRevision {
		t.Errorf("configRevision moved to %s while the user's config is broken", h.Status.ConfigRevision)
	}
	st, err := hostStatus(proc.OpsURL)
	if err != nil {
		t.Fatal(err)
	}
	if st.Revision != goodRevision {
		t.Errorf("the pod runs %s, want the last good %s", st.Revision, goodRevision)
	}
	if a := mustCall(t, http.StatusOK, proc.URL, http.MethodPost, "seed-counter", "increment", `{"value": 1}`); a.Value != 4 {
		t.Errorf("increment while Degraded: %s, want 4 (the last good increment, 2)", a.Body)
	}

	// Fixed, in the seed README's own style (a // comment), with a new increment.
	fixed := `{"plugins": [{"name": "seed-counter", "type": "counter",
  "options": {"increment": 3 // Changed from 2 to 3
  }}]}`
	mustKubectl(t, fmt.Sprintf(userConfigYAML, indent(fixed)), "apply", "-n", ns, "-f", "-")
	hostCondition(t, ns, "host", v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected)
	hostCondition(t, ns, "host", v1alpha1.ConditionProgressing, metav1.ConditionFalse, v1alpha1.ReasonRolledOut)
	if a := mustCall(t, http.StatusOK, proc.URL, http.MethodPost, "seed-counter", "increment", `{"value": 1}`); a.Value != 7 {
		t.Errorf("increment after the fix: %s, want 7 (4 + 3)", a.Body)
	}
	if now, _ := cluster.Host(ns, "host"); now.PID != proc.PID {
		t.Errorf("host process %d became %d", proc.PID, now.PID)
	}
}

// Counter values survive a restart of the host's container (SIGTERM: the runtime saves its
// state) and a crash (SIGKILL after the last snapshot), with the state on a claim.
func TestStateSurvivesHostRestart(t *testing.T) {
	ns := namespace(t, "state")
	host := fmt.Sprintf(hostYAML, ns) + "  persistence:\n    enabled: true\n    snapshotInterval: 200ms\n"
	mustKubectl(t, host+"---\n"+fmt.Sprintf(pluginYAML, ns, "counter", 1), "apply", "-n", ns, "-f", "-")
	waitPluginReady(t, ns, "counter")
	proc := waitHost(t, ns, "host")
	mustCall(t, http.StatusOK, proc.URL, http.MethodPost, "counter", "increment", `{"value": 7}`)

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	restarted, err := cluster.RestartHost(ctx, ns, "host")
	if err != nil {
		t.Fatal(err)
	}
	if restarted.PID == proc.PID || restarted.Pod != proc.Pod || restarted.URL != proc.URL {
		t.Errorf("after RestartHost: pid %d -> %d, pod %s -> %s, url %s -> %s: want a new process in the same pod",
			proc.PID, restarted.PID, proc.Pod, restarted.Pod, proc.URL, restarted.URL)
	}
	testutil.Eventually(t, wait, "restartCount 1", func() error {
		if n := podRestarts(t, ns, proc.Pod); n != 1 {
			return fmt.Errorf("restartCount %d", n)
		}
		return nil
	})
	if a := mustCall(t, http.StatusOK, proc.URL, http.MethodGet, "counter", "get", ""); a.Value != 7 {
		t.Fatalf("after a restart: %s, want 7", a.Body)
	}

	// A crash: increment, wait for the next snapshot, SIGKILL. The node agent restarts the
	// container, as kubelet would.
	mustCall(t, http.StatusOK, proc.URL, http.MethodPost, "counter", "increment", `{"value": 1}`)
	incremented := time.Now()
	testutil.Eventually(t, wait, "a snapshot after the increment", func() error {
		st, err := hostStatus(proc.OpsURL)
		if err != nil {
			return err
		}
		if st.State == nil || st.State.LastSnapshot == nil || !st.State.LastSnapshot.After(incremented) {
			return fmt.Errorf("state %+v", st.State)
		}
		return nil
	})
	if err := syscall.Kill(restarted.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, wait, "the crashed container restarted", func() error {
		h, ok := cluster.Host(ns, "host")
		if !ok || h.PID == 0 || h.PID == restarted.PID || !h.Ready {
			return fmt.Errorf("host %+v", h)
		}
		return nil
	})
	if a := mustCall(t, http.StatusOK, proc.URL, http.MethodGet, "counter", "get", ""); a.Value != 8 {
		t.Fatalf("after a crash: %s, want 8", a.Body)
	}
	testutil.Eventually(t, wait, "restartCount 2", func() error {
		if n := podRestarts(t, ns, proc.Pod); n != 2 {
			return fmt.Errorf("restartCount %d", n)
		}
		return nil
	})
	waitPluginReady(t, ns, "counter")
}
