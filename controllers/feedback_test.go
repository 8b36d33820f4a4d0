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
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/controllers"
	"github.com/hotreload/plugin-operator/internal/hostapi"
	"github.com/hotreload/plugin-operator/internal/testing/kubeletsim"
	"github.com/hotreload/plugin-operator/internal/testing/projection"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// fakePod is a host pod without kubelet: a Pod object whose status points at a real
// pluginhost process on this machine, its ConfigMap volume projected by kubeletsim.
type fakePod struct {
	pod       *corev1.Pod
	sim       *kubeletsim.Sim
	addr      string
	configDir string
	stateDir  string
	cmd       *exec.Cmd
	logs      *bytes.Buffer
}

func freePort(t testing.TB) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := int32(ln.Addr().(*net.TCPAddr).Port)
	_ = ln.Close()
	return port
}

// startPod creates pod <name> of host, projects <host>-config into a directory as kubelet
// would (re-projecting at every pod change, which the manager's nudge causes), starts a
// pluginhost on it and marks the pod running and ready.
func startPod(t testing.TB, ns, host, name string) *fakePod {
	t.Helper()
	return startPodPolling(t, ns, host, name, 0)
}

// startPodPolling is startPod with the runtime polling its config file every poll (0: as
// the host's pod would, spec.pollInterval).
func startPodPolling(t testing.TB, ns, host, name string, poll time.Duration) *fakePod {
	t.Helper()
	port := freePort(t)
	fp := &fakePod{pod: hostPod(t, ns, host, name, port), addr: fmt.Sprintf("127.0.0.1:%d", port),
		configDir: testutil.ShortTempDir(t), stateDir: testutil.ShortTempDir(t), logs: &bytes.Buffer{}}
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	fp.sim = kubeletsim.New(kubeletsim.Config{Client: wc, Namespace: ns, PodName: name, ConfigMapName: host + "-config",
		Dir: fp.configDir, SyncPeriod: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- fp.sim.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-simDone; err != nil {
			t.Errorf("kubeletsim: %v", err)
		}
	})
	testutil.Eventually(t, wait, "first projection", func() error {
		_, err := os.Stat(filepath.Join(fp.configDir, "config.json"))
		return err
	})

	// The runtime polls as the host's pod would: spec.pollInterval (default 250ms).
	h := &v1alpha1.PluginHost{}
	if err := get(t, h, ns, host); err != nil {
		t.Fatal(err)
	}
	if poll == 0 {
		poll = 250 * time.Millisecond
		if h.Spec.PollInterval != nil {
			poll = h.Spec.PollInterval.Duration
		}
	}
	// The config push token, as the pod's credentials volume holds it: the manager pushes
	// every configuration it renders (config_push.go), as to a real pod.
	creds := &corev1.Secret{}
	if err := get(t, creds, ns, host+"-credentials"); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(testutil.ShortTempDir(t), controllers.PushTokenField)
	if err := os.WriteFile(tokenFile, creds.Data[controllers.PushTokenField], 0o600); err != nil {
		t.Fatal(err)
	}
	fp.cmd = exec.Command(pluginhostBin, "--config="+filepath.Join(fp.configDir, "config.json"), "--listen="+fp.addr,
		"--poll-interval="+poll.String(), "--state-dir="+fp.stateDir, "--log-format=json", "--log-level=debug",
		"--push-token-file="+tokenFile)
	fp.cmd.Stdout, fp.cmd.Stderr = fp.logs, fp.logs
	if err := fp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		fp.stop()
		if t.Failed() {
			t.Logf("pluginhost %s output:\n%s", name, fp.logs)
		}
	})
	testutil.Eventually(t, wait, "pluginhost listening", func() error {
		_, err := fp.status()
		return err
	})
	if err := kubeletsim.MarkPodRunning(context.Background(), env.Client, fp.pod, true, 0); err != nil {
		t.Fatal(err)
	}
	return fp
}

// restart runs the pod's pluginhost again, with the same flags, after stop.
func (fp *fakePod) restart(t testing.TB) {
	t.Helper()
	cmd := exec.Command(fp.cmd.Path, fp.cmd.Args[1:]...)
	cmd.Stdout, cmd.Stderr = fp.logs, fp.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fp.cmd = cmd
	testutil.Eventually(t, wait, "pluginhost listening again", func() error {
		_, err := fp.status()
		return err
	})
}

func (fp *fakePod) stop() {
	if fp.cmd.ProcessState == nil {
		_ = fp.cmd.Process.Signal(os.Interrupt)
		_ = fp.cmd.Wait()
	}
}

func (fp *fakePod) status() (*hostapi.Status, error) {
	resp, err := http.Get("http://" + fp.addr + "/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	st := &hostapi.Status{}
	return st, json.NewDecoder(resp.Body).Decode(st)
}

// call sends a request to a plugin and returns the HTTP status and the counter value.
func (fp *fakePod) call(t testing.TB, method, plugin, op, body, token string) (int, int64) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+fp.addr+"/plugins/"+plugin+"/"+op, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v struct{ Value int64 }
	_ = json.Unmarshal(b, &v)
	return resp.StatusCode, v.Value
}

// TestFeedbackFromRealPluginhost drives the whole loop against a real pluginhost process:
// Plugins become Ready when the pod reports the revision that contains them, a config the
// pod refuses degrades the host with the pod's own error, and fixing it recovers — all
// without restarting the process.
func TestFeedbackFromRealPluginhost(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	secretsDir := testutil.ShortTempDir(t)
	opts := testOptions()
	opts.SecretsMountPath = secretsDir // the runtime runs here, not in a pod
	startManager(t, ns, opts)

	host := newHost(ns, "fb", "fb")
	host.Spec.PollInterval = &metav1.Duration{Duration: 100 * time.Millisecond}
	counterA := newPlugin(ns, "counter-a", "fb", 2)
	create(t, host, counterA)
	// The Plugin is rendered once the pod has advertised its types.
	pod := startPod(t, ns, "fb", "fb-0")
	configMapData(t, ns, "fb", contains(`"counter-a"`))

	// 1. Converge: the Plugin is Ready, the host Available and rolled out.
	p := pluginCondition(t, ns, "counter-a", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	h := hostCondition(t, ns, "fb", v1alpha1.ConditionProgressing, metav1.ConditionFalse, v1alpha1.ReasonRolledOut)
	hostCondition(t, ns, "fb", v1alpha1.ConditionAvailable, metav1.ConditionTrue, v1alpha1.ReasonWorkloadAvailable)
	hostCondition(t, ns, "fb", v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected)
	if len(h.Status.Pods) != 1 || h.Status.Pods[0].AppliedRevision != h.Status.ConfigRevision || !h.Status.Pods[0].Ready ||
		h.Status.AppliedRevision != h.Status.ConfigRevision || p.Status.AppliedRevision != h.Status.ConfigRevision {
		t.Errorf("host status %+v, plugin appliedRevision %s", h.Status, p.Status.AppliedRevision)
	}
	waitEvent(t, ns, v1alpha1.EventRevisionRolledOut, "fb", "")
	if code, v := pod.call(t, http.MethodPost, "counter-a", "increment", `{"value":5}`, ""); code != 200 || v != 10 {
		t.Fatalf("increment: %d value %d, want 200 and 10 (5 × 2)", code, v)
	}

	// 2. An edit reaches the running process: same process, counter kept, new increment.
	update(t, counterA, func(p *v1alpha1.Plugin) { p.Spec.Options.Increment = ptr.To[int32](3) })
	p = pluginCondition(t, ns, "counter-a", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	if p.Status.ObservedGeneration != 2 {
		t.Errorf("observedGeneration %d, want 2", p.Status.ObservedGeneration)
	}
	if code, v := pod.call(t, http.MethodPost, "counter-a", "increment", `{"value":1}`, ""); code != 200 || v != 13 {
		t.Fatalf("increment after the edit: %d value %d, want 200 and 13 (10 + 1 × 3)", code, v)
	}

	// Converged: nothing is requeued, so the host's status stops changing (a poll would
	// rewrite pods[].lastChecked every second). A last event-driven reconcile may still be on
	// its way, so wait for a quiet window rather than checking one.
	hostCondition(t, ns, "fb", v1alpha1.ConditionProgressing, metav1.ConditionFalse, v1alpha1.ReasonRolledOut)
	const quietWindow = 2500 * time.Millisecond
	var lastVersion string
	var changedAt time.Time
	testutil.Eventually(t, 4*quietWindow, "the converged host's status to stop changing", func() error {
		quiet := &v1alpha1.PluginHost{}
		if err := get(t, quiet, ns, "fb"); err != nil {
			return err
		}
		if quiet.ResourceVersion != lastVersion {
			lastVersion, changedAt = quiet.ResourceVersion, time.Now()
			return fmt.Errorf("status changed (resourceVersion %s, pods %+v)", lastVersion, quiet.Status.Pods)
		}
		if quietFor := time.Since(changedAt); quietFor < quietWindow {
			return fmt.Errorf("unchanged for %v of %v", quietFor.Round(time.Millisecond), quietWindow)
		}
		return nil
	})

	// 3. A config the pod refuses: counter-b's token file is not in the pod (the credentials
	// Secret is not projected yet), so the runtime refuses the revision and keeps the last.
	create(t, authSecret(ns, "fb-token", map[string]string{"token": "s3cret"}))
	counterB := newPlugin(ns, "counter-b", "fb", 1)
	counterB.Spec.Auth = &v1alpha1.PluginAuth{Method: v1alpha1.AuthMethodBearer, SecretRef: &v1alpha1.SecretReference{Name: "fb-token"}}
	create(t, counterB)
	h = hostCondition(t, ns, "fb", v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonPodRefusedConfig)
	degraded := findCondition(h.Status.Conditions, v1alpha1.ConditionDegraded)
	st, err := pod.status()
	if err != nil {
		t.Fatal(err)
	}
	if st.LastError == "" || !strings.Contains(degraded.Message, st.LastError) || !strings.Contains(degraded.Message, "fb-0") ||
		!strings.Contains(st.LastError, "counter-b.token") {
		t.Errorf("Degraded %q: want the pod's own error %q about counter-b.token", degraded.Message, st.LastError)
	}
	if h.Status.Pods[0].LastReloadError != st.LastError {
		t.Errorf("pods[0].lastReloadError %q, want %q", h.Status.Pods[0].LastReloadError, st.LastError)
	}
	pluginCondition(t, ns, "counter-b", v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	pluginCondition(t, ns, "counter-b", v1alpha1.ConditionApplied, metav1.ConditionFalse, v1alpha1.ReasonReloadFailed)
	// counter-a's current generation still runs: it stays Ready.
	pluginCondition(t, ns, "counter-a", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	hostCondition(t, ns, "fb", v1alpha1.ConditionProgressing, metav1.ConditionTrue, v1alpha1.ReasonRollingOut)
	waitEvent(t, ns, v1alpha1.EventPodRefusedConfig, "fb", "counter-b.token")

	// 4. Recovery: kubelet projects the credentials Secret; the runtime's retry applies the
	// revision and the operator's poll sees it.
	creds := &corev1.Secret{}
	if err := get(t, creds, ns, "fb-credentials"); err != nil {
		t.Fatal(err)
	}
	if _, err := projection.NewWriter(secretsDir).Write(creds.Data); err != nil {
		t.Fatal(err)
	}
	hostCondition(t, ns, "fb", v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected)
	hostCondition(t, ns, "fb", v1alpha1.ConditionProgressing, metav1.ConditionFalse, v1alpha1.ReasonRolledOut)
	pluginCondition(t, ns, "counter-b", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	if code, _ := pod.call(t, http.MethodGet, "counter-b", "get", "", ""); code != http.StatusUnauthorized {
		t.Errorf("counter-b without a token: %d, want 401", code)
	}
	if code, v := pod.call(t, http.MethodPost, "counter-b", "increment", `{"value":4}`, "s3cret"); code != 200 || v != 4 {
		t.Errorf("counter-b with the token: %d value %d, want 200 and 4", code, v)
	}
	if code, v := pod.call(t, http.MethodGet, "counter-a", "get", "", ""); code != 200 || v != 13 {
		t.Errorf("counter-a after the refusal and recovery: %d value %d, want 13", code, v)
	}

	// 5. Fault injection: garbage in the projected file. The pod refuses it but still runs the
	// desired revision, so the operator blames nothing.
	if _, err := pod.sim.Writer().WriteRaw("config.json", []byte(`{"plugins": [`)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, wait, "pod refuses the garbage", func() error {
		st, err := pod.status()
		if err != nil {
			return err
		}
		if st.LastError == "" {
			return fmt.Errorf("no error yet")
		}
		return nil
	})
	checked := h.Status.Pods[0].LastChecked
	// lastChecked is serialized with one-second resolution: the poked read must fall in a
	// later second to be distinguishable from the last one.
	testutil.WaitPastSecond(t, checked.Time)
	poke(t, ns, "fb") // a reconcile, without changing the configuration
	testutil.Eventually(t, wait, "a fresh read of the pod", func() error {
		if err := get(t, h, ns, "fb"); err != nil {
			return err
		}
		if !h.Status.Pods[0].LastChecked.After(checked.Time) {
			return fmt.Errorf("lastChecked %v", h.Status.Pods[0].LastChecked)
		}
		return nil
	})
	if h.Status.Pods[0].LastReloadError != "" || h.Status.Pods[0].AppliedRevision != h.Status.ConfigRevision {
		t.Errorf("pod report %+v: an error about other bytes is not the desired revision's", h.Status.Pods[0])
	}
	if err := condition(h.Status.Conditions, v1alpha1.ConditionDegraded, metav1.ConditionFalse, "", 0); err != nil {
		t.Error(err)
	}
	if err := pod.sim.SyncNow(context.Background()); err != nil { // kubelet's next sync repairs the file
		t.Fatal(err)
	}

	// 6. The process dies while its pod still says Ready: the operator cannot read it.
	pod.stop()
	poke(t, ns, "fb")
	h = hostCondition(t, ns, "fb", v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonPodsUnreachable)
	if msg := findCondition(h.Status.Conditions, v1alpha1.ConditionDegraded).Message; !strings.Contains(msg, "fb-0") {
		t.Errorf("Degraded %q: want the pod's name", msg)
	}
}

// poke triggers a reconcile of host without changing any input: an annotation on its
// Deployment (an owned object; the operator's apply leaves other managers' fields alone).
func poke(t testing.TB, ns, host string) {
	t.Helper()
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: host}}
	update(t, d, func(d *appsv1.Deployment) {
		if d.Annotations == nil {
			d.Annotations = map[string]string{}
		}
		d.Annotations["test/poke"] = time.Now().Format(time.RFC3339Nano)
	})
}
