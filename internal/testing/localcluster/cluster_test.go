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

package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

const wait = 90 * time.Second

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func increment(t *testing.T, url string, n int) int64 {
	t.Helper()
	resp, err := http.Post(url+"/plugins/counter/increment", "application/json", strings.NewReader(fmt.Sprintf(`{"value":%d}`, n)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v struct{ Value int64 }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &v) != nil {
		t.Fatalf("increment: %d %s", resp.StatusCode, b)
	}
	return v.Value
}

// waitServed waits until the host at url serves the plugin "counter": a host turns ready
// with whatever config its volume held at start, which may predate the Plugin.
func waitServed(t *testing.T, url string) {
	t.Helper()
	testutil.Eventually(t, wait, "the counter plugin served at "+url, func() error {
		resp, err := http.Get(url + "/plugins/counter/get")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("%d %s", resp.StatusCode, b)
		}
		return nil
	})
}

// The node agent's lifecycle against the real manager: it runs a Deployment's pod, reports
// the Deployment available, replaces a deleted pod (a new pod: emptyDir state is gone),
// recreates the pod when the template changes, stops the process and deletes the pod when
// the PluginHost is deleted (standing in for the garbage collector), and Stop leaves no
// process behind.
func TestNodeAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane; not run under -short")
	}
	var mu sync.Mutex
	var readyPIDs []int
	c, err := Start(context.Background(), Options{OnHostReady: func(h Host) {
		mu.Lock()
		readyPIDs = append(readyPIDs, h.PID)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			if err := c.Stop(); err != nil {
				t.Error(err)
			}
		}
	}()
	defer func() {
		if t.Failed() {
			for _, f := range []string{c.AgentLog, c.ManagerLog} {
				b, _ := os.ReadFile(f)
				t.Logf("%s:\n%s", f, b)
			}
		}
	}()
	ctx := context.Background()
	ns := "agent"
	if err := c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	host := &v1alpha1.PluginHost{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "h"},
		Spec:       v1alpha1.PluginHostSpec{PluginSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"host": "h"}}},
	}
	plugin := &v1alpha1.Plugin{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "counter", Labels: map[string]string{"host": "h"}},
		Spec:       v1alpha1.PluginSpec{Type: "counter"},
	}
	for _, o := range []client.Object{host, plugin} {
		if err := c.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	first, err := c.WaitForHost(waitCtx, ns, "h")
	if err != nil {
		t.Fatal(err)
	}
	if url, err := c.HostURL(ns, "h"); err != nil || url != first.URL {
		t.Errorf("HostURL = %q, %v; want %q", url, err, first.URL)
	}
	if _, err := c.HostURL(ns, "nope"); err == nil {
		t.Error("HostURL of a missing host succeeded")
	}

	// The Deployment controller's part: status.
	testutil.Eventually(t, wait, "Deployment available", func() error {
		d := &appsv1.Deployment{}
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "h"}, d); err != nil {
			return err
		}
		for _, cond := range d.Status.Conditions {
			if cond.Type == appsv1.DeploymentAvailable && cond.Status == corev1.ConditionTrue && d.Status.ReadyReplicas == 1 &&
				d.Status.ObservedGeneration == d.Generation {
				return nil
			}
		}
		return fmt.Errorf("status %+v", d.Status)
	})
	waitServed(t, first.URL)
	if got := increment(t, first.URL, 4); got != 4 {
		t.Fatalf("increment: %d", got)
	}

	// A deleted pod (graceful, as kubectl does): the agent stops the process, confirms the
	// deletion and the Deployment gets a new pod, whose emptyDir state starts empty.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: first.Pod}}
	if err := c.Client.Delete(ctx, pod); err != nil {
		t.Fatal(err)
	}
	var second Host
	testutil.Eventually(t, wait, "a new pod", func() error {
		h, ok := c.Host(ns, "h")
		if !ok || h.Pod == first.Pod || !h.Ready {
			return fmt.Errorf("host %+v", h)
		}
		second = h
		return nil
	})
	testutil.Eventually(t, wait, "the old pod gone", func() error {
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod); !apierrors.IsNotFound(err) {
			return fmt.Errorf("get: %v", err)
		}
		return nil
	})
	if alive(first.PID) {
		t.Errorf("the deleted pod's process %d still runs", first.PID)
	}
	waitServed(t, second.URL)
	if got := increment(t, second.URL, 1); got != 1 {
		t.Errorf("a new pod's counter: %d, want 1 (emptyDir state starts empty)", got)
	}

	// A template change (pollInterval is a container argument): Recreate.
	if err := c.Client.Patch(ctx, host, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"pollInterval":"100ms"}}`))); err != nil {
		t.Fatal(err)
	}
	var third Host
	testutil.Eventually(t, wait, "a pod of the new template", func() error {
		h, ok := c.Host(ns, "h")
		if !ok || h.Pod == second.Pod || !h.Ready {
			return fmt.Errorf("host %+v", h)
		}
		third = h
		return nil
	})
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", third.PID)); err != nil || !strings.Contains(string(cmdline), "--poll-interval=100ms") {
		t.Errorf("the new process's command line %q (%v): want --poll-interval=100ms", cmdline, err)
	}
	if alive(second.PID) {
		t.Errorf("the replaced pod's process %d still runs", second.PID)
	}
	pods := &corev1.PodList{}
	if err := c.Client.List(ctx, pods, client.InNamespace(ns)); err != nil || len(pods.Items) != 1 || pods.Items[0].Name != third.Pod {
		t.Errorf("pods %v (%v), want only %s", podNames(pods), err, third.Pod)
	}
	// The Deployment controller's owner chain: the pod's controller is the ReplicaSet of the
	// current template, which the Deployment controls; the earlier template's ReplicaSet is
	// scaled to zero.
	deploy := &appsv1.Deployment{}
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "h"}, deploy); err != nil {
		t.Fatal(err)
	}
	sets := &appsv1.ReplicaSetList{}
	if err := c.Client.List(ctx, sets, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var current types.UID
	if len(pods.Items) == 1 {
		p := &pods.Items[0]
		ref := metav1.GetControllerOf(p)
		if ref != nil {
			current = ref.UID
		}
		var rs *appsv1.ReplicaSet
		for i := range sets.Items {
			if ref != nil && ref.Kind == "ReplicaSet" && sets.Items[i].UID == ref.UID {
				rs = &sets.Items[i]
			}
		}
		if rs == nil || !metav1.IsControlledBy(rs, deploy) || ptr.Deref(rs.Spec.Replicas, -1) != 1 ||
			rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey] == "" || p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey] {
			t.Errorf("pod %s: controller %+v, ReplicaSet %+v; want a ReplicaSet of one replica that Deployment h controls, with the pod's pod-template-hash", p.Name, ref, rs)
		}
	}
	if len(sets.Items) != 2 {
		t.Errorf("%d ReplicaSets, want 2 (one per template)", len(sets.Items))
	}
	for _, rs := range sets.Items {
		if !metav1.IsControlledBy(&rs, deploy) {
			t.Errorf("ReplicaSet %s is not controlled by Deployment h", rs.Name)
		}
		if rs.UID != current && ptr.Deref(rs.Spec.Replicas, -1) != 0 {
			t.Errorf("the earlier template's ReplicaSet %s has %d replicas, want 0", rs.Name, ptr.Deref(rs.Spec.Replicas, -1))
		}
	}
	mu.Lock()
	if len(readyPIDs) < 3 {
		t.Errorf("OnHostReady saw %v, want at least 3 processes", readyPIDs)
	}
	mu.Unlock()

	// The PluginHost deleted: its children are collected, the process stops, the pod goes.
	if err := c.Client.Delete(ctx, host); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, wait, "the host's children collected", func() error {
		for _, o := range []client.Object{&appsv1.Deployment{}, &corev1.ConfigMap{}, &corev1.Secret{}, &corev1.Service{}} {
			name := "h"
			switch o.(type) {
			case *corev1.ConfigMap:
				name = "h-config"
			case *corev1.Secret:
				name = "h-credentials"
			}
			if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, o); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%T %s: %v", o, name, err)
			}
		}
		if err := c.Client.List(ctx, pods, client.InNamespace(ns)); err != nil || len(pods.Items) > 0 {
			return fmt.Errorf("pods %v (%v)", podNames(pods), err)
		}
		if err := c.Client.List(ctx, sets, client.InNamespace(ns)); err != nil || len(sets.Items) > 0 {
			return fmt.Errorf("%d ReplicaSets left (%v)", len(sets.Items), err)
		}
		if _, ok := c.Host(ns, "h"); ok || alive(third.PID) {
			return errors.New("the process still runs")
		}
		return nil
	})

	// Stop: no process left, the work directory removed.
	host = &v1alpha1.PluginHost{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "last"},
		Spec:       v1alpha1.PluginHostSpec{PluginSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"host": "h"}}},
	}
	if err := c.Client.Create(ctx, host); err != nil {
		t.Fatal(err)
	}
	last, err := c.WaitForHost(waitCtx, ns, "last")
	if err != nil {
		t.Fatal(err)
	}
	stopped = true
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if alive(last.PID) {
		t.Errorf("process %d still runs after Stop", last.PID)
	}
	if _, err := os.Stat(c.WorkDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("work dir %s after Stop: %v", c.WorkDir, err)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func podNames(l *corev1.PodList) []string {
	var names []string
	for _, p := range l.Items {
		names = append(names, p.Name)
	}
	return names
}
