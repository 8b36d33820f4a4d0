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
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/controllers"
	"github.com/hotreload/plugin-operator/internal/testing/kubeletsim"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// loopbackServer serves handler on 127.0.0.1 until the test ends and returns its port.
func loopbackServer(t *testing.T, handler http.HandlerFunc) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// TestHostilePodMemory runs the real manager binary against a host pod that turns hostile:
// it answers GET /status with an endless body, a redirect, or a well-formed reply whose
// lastError is 200 KiB, in turn. The manager's peak RSS over dozens of such replies stays
// within 20 MiB of its RSS before, it never follows the redirect, it never reads a pod that
// carries the host's labels without being owned by the host's Deployment, and what it copies
// into status and events is at most 1 KiB.
func TestHostilePodMemory(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	mgr := exec.Command(managerBin, "--kubeconfig="+env.Kubeconfig, "--watch-namespaces="+ns,
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--zap-log-level=error",
		"--status-poll-interval=100ms", "--default-host-image=example.com/pluginhost:test")
	mgr.Stderr = os.Stderr
	if err := mgr.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mgr.Process.Signal(os.Interrupt); _ = mgr.Wait() })

	// A pod with the host's labels only, and the target of the redirect: neither may be read.
	var forbiddenHits atomic.Int32
	forbiddenPort := loopbackServer(t, func(w http.ResponseWriter, _ *http.Request) {
		forbiddenHits.Add(1)
		fmt.Fprint(w, `{"revision":""}`)
	})

	var hostile atomic.Bool
	var desired atomic.Value // the host's configRevision, once rendered
	desired.Store("")
	var replies [3]atomic.Int32 // hostile replies served, by kind
	var endlessBytes atomic.Int64
	otherRev := "sha256:" + strings.Repeat("0", 64)
	hugeError := strings.Repeat("E", 200<<10)
	var n atomic.Int32
	port := loopbackServer(t, func(w http.ResponseWriter, r *http.Request) {
		rev := desired.Load().(string)
		if !hostile.Load() {
			fmt.Fprintf(w, `{"revision":%q,"ready":true}`, rev)
			return
		}
		kind := int(n.Add(1)) % 3
		defer replies[kind].Add(1)
		switch kind {
		case 0: // endless: 64 MiB was enough to take the manager to 163 MiB before
			fmt.Fprint(w, `{"revision":"`)
			chunk := []byte(strings.Repeat("x", 64<<10))
			for r.Context().Err() == nil {
				k, err := w.Write(chunk)
				endlessBytes.Add(int64(k))
				if err != nil {
					return
				}
			}
		case 1:
			http.Redirect(w, r, "http://127.0.0.1:"+strconv.Itoa(int(forbiddenPort))+"/status", http.StatusFound)
		case 2: // within the size bound: the error text is what must be bounded
			fmt.Fprintf(w, `{"revision":%q,"ready":true,"lastError":%q,"lastErrorRevision":%q}`, otherRev, hugeError, rev)
		}
	})

	create(t, newHost(ns, "h", "h"), newPlugin(ns, "p", "h", 1))
	advertise(t, ns, "h")
	configMapData(t, ns, "h", contains(`"p"`))
	// The recorded types outlive the pod that advertised them; it goes, so that h-0 is the
	// host's only running pod.
	if err := env.Client.Delete(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "h-types"}}); err != nil {
		t.Fatal(err)
	}
	h := &v1alpha1.PluginHost{}
	testutil.Eventually(t, wait, "configRevision", func() error {
		if err := get(t, h, ns, "h"); err != nil {
			return err
		}
		if h.Status.ConfigRevision == "" {
			return fmt.Errorf("no configRevision yet")
		}
		return nil
	})
	desired.Store(h.Status.ConfigRevision)
	pod := hostPod(t, ns, "h", "h-0", port)
	impostor := impostorPod(t, ns, "h", "h-impostor", forbiddenPort, nil)
	for _, p := range []*corev1.Pod{pod, impostor} {
		if err := kubeletsim.MarkPodRunning(context.Background(), env.Client, p, true, 0); err != nil {
			t.Fatal(err)
		}
	}
	hostCondition(t, ns, "h", v1alpha1.ConditionProgressing, metav1.ConditionFalse, v1alpha1.ReasonRolledOut)
	baseRSS, _ := procMemory(mgr.Process.Pid)
	// VmHWM from here on: the peak while the pod is hostile.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", mgr.Process.Pid), []byte("5"), 0); err != nil {
		t.Fatalf("resetting the manager's peak RSS: %v", err)
	}

	hostile.Store(true)
	// A converged host's pods are read on changes only: a pod update makes one, and from
	// then on the pod's answers keep the host unconverged, read every poll interval.
	update(t, pod, func(p *corev1.Pod) { metav1.SetMetaDataAnnotation(&p.ObjectMeta, "test.hotreload.io/poke", "1") })
	testutil.Eventually(t, wait, "hostile replies", func() error {
		if a, b, c := replies[0].Load(), replies[1].Load(), replies[2].Load(); a < 20 || b < 20 || c < 20 {
			return fmt.Errorf("served %d endless, %d redirects, %d huge errors", a, b, c)
		}
		return nil
	})
	h = hostCondition(t, ns, "h", v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonPodRefusedConfig)
	rss, peak := procMemory(mgr.Process.Pid)
	t.Logf("manager RSS %.1f MiB before, %.1f MiB after, peak %.1f MiB; the pod wrote %.1f MiB of endless bodies",
		float64(baseRSS)/(1<<20), float64(rss)/(1<<20), float64(peak)/(1<<20), float64(endlessBytes.Load())/(1<<20))
	if baseRSS == 0 || peak == 0 {
		t.Fatalf("cannot read the manager's memory (RSS %d, peak %d)", baseRSS, peak)
	}
	if peak-baseRSS > 20<<20 {
		t.Errorf("the manager's peak RSS grew by %.1f MiB reading a hostile pod; the bound is 20 MiB", float64(peak-baseRSS)/(1<<20))
	}
	if n := forbiddenHits.Load(); n != 0 {
		t.Errorf("the manager read the impostor pod or followed the redirect %d times", n)
	}

	if len(h.Status.Pods) != 1 || h.Status.Pods[0].Name != "h-0" {
		t.Fatalf("status.pods %+v: want h-0 only", h.Status.Pods)
	}
	if e := h.Status.Pods[0].LastReloadError; e == "" || len(e) > controllers.MaxReportedTextBytes {
		t.Errorf("lastReloadError of %d bytes copied into status; want 1..%d", len(e), controllers.MaxReportedTextBytes)
	}
	for _, c := range h.Status.Conditions {
		if len(c.Message) > 2*controllers.MaxReportedTextBytes {
			t.Errorf("condition %s message of %d bytes", c.Type, len(c.Message))
		}
	}
	waitEvent(t, ns, v1alpha1.EventPodRefusedConfig, "h", "truncated")
	for _, e := range events(t, ns, v1alpha1.EventPodRefusedConfig) {
		if len(e.Note) > controllers.MaxReportedTextBytes {
			t.Errorf("event note of %d bytes", len(e.Note))
		}
	}
}

// TestPodOfTheDeploymentItselfNotTrusted: a pod whose controller is the host's Deployment
// itself, with the host's labels and the Deployment's UID, is not trusted. The Deployment
// controller never makes such a pod (it makes ReplicaSets, which make pods), so anyone who
// may create pods in the namespace made it: the manager never reads its /status, never
// reports it, never annotates it. Only pod → ReplicaSet → Deployment, each the controller
// of the next with matching UIDs, is the host's.
func TestPodOfTheDeploymentItselfNotTrusted(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManagerBinary(t, "--watch-namespaces="+ns)
	create(t, newHost(ns, "h", "h"), newPlugin(ns, "p", "h", 1))
	advertise(t, ns, "h")
	configMapData(t, ns, "h", contains(`"p"`))
	h := &v1alpha1.PluginHost{}
	testutil.Eventually(t, wait, "configRevision", func() error {
		if err := get(t, h, ns, "h"); err != nil {
			return err
		}
		if h.Status.ConfigRevision == "" {
			return fmt.Errorf("no configRevision yet")
		}
		return nil
	})
	rev := h.Status.ConfigRevision

	var directHits atomic.Int32
	directRev := "sha256:" + strings.Repeat("1", 64)
	directPort := loopbackServer(t, func(w http.ResponseWriter, _ *http.Request) {
		directHits.Add(1)
		fmt.Fprintf(w, `{"revision":%q,"ready":true}`, directRev)
	})
	port := loopbackServer(t, func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"revision":%q,"ready":true}`, rev)
	})
	deploy := &appsv1.Deployment{}
	if err := get(t, deploy, ns, "h"); err != nil {
		t.Fatal(err)
	}
	// Running before the host's own pod exists: the reconcile that reports that pod saw it.
	direct := impostorPod(t, ns, "h", "h-direct", directPort, metav1.NewControllerRef(deploy, appsv1.SchemeGroupVersion.WithKind("Deployment")))
	if err := kubeletsim.MarkPodRunning(context.Background(), env.Client, direct, true, 0); err != nil {
		t.Fatal(err)
	}
	pod := hostPod(t, ns, "h", "h-0", port)
	if err := kubeletsim.MarkPodRunning(context.Background(), env.Client, pod, true, 0); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, wait, "h-0 reported with its revision", func() error {
		if err := get(t, h, ns, "h"); err != nil {
			return err
		}
		for _, p := range h.Status.Pods {
			if p.Name == "h-0" && p.AppliedRevision == rev {
				return nil
			}
		}
		return fmt.Errorf("status.pods %+v", h.Status.Pods)
	})
	if n := directHits.Load(); n != 0 {
		t.Errorf("the manager read the /status of a pod the Deployment controls directly %d times", n)
	}
	for _, p := range h.Status.Pods {
		if p.Name == direct.Name || p.AppliedRevision == directRev {
			t.Errorf("status.pods reports the pod the Deployment controls directly: %+v", p)
		}
	}
	if err := get(t, direct, ns, direct.Name); err != nil {
		t.Fatal(err)
	}
	if v, ok := direct.Annotations[v1alpha1.ConfigRevisionAnnotation]; ok {
		t.Errorf("the pod the Deployment controls directly was annotated %q", v)
	}
}
