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

package kubeletsim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/internal/testing/projection"
	"github.com/hotreload/plugin-operator/internal/testing/testenv"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// k8sClient talks to the envtest API server started in TestMain; it can Watch.
var k8sClient client.WithWatch

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		// Every test here projects volumes of objects read from an API server.
		fmt.Println("kubeletsim: no test runs under -short: each needs kube-apiserver and etcd (make test)")
		return 0
	}
	env, err := testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
		}
	}()
	k8sClient, err = client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: client: %v\n", err)
		return 1
	}
	return m.Run()
}

// fileIs is a condition for testutil.Eventually/Consistently: path holds want.
func fileIs(path, want string) func() error {
	return func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if string(b) != want {
			return fmt.Errorf("content %q, want %q", b, want)
		}
		return nil
	}
}

type fixture struct {
	ns, pod, cm, dir string
	syncs            *syncLog
}

type syncLog struct {
	mu      sync.Mutex
	n       int
	lastErr error
}

func (l *syncLog) record(_ bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	l.lastErr = err
}

func (l *syncLog) get() (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, l.lastErr
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	ns := "ks-" + rand.String(6)
	if err := k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	return &fixture{ns: ns, pod: "host-0", cm: "host-config", dir: filepath.Join(t.TempDir(), "plugins"), syncs: &syncLog{}}
}

func (f *fixture) createConfigMap(t *testing.T, content string) {
	t.Helper()
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: f.cm},
		Data:       map[string]string{"config.json": content},
		BinaryData: map[string][]byte{"blob.bin": {0, 1, 2, 0xff}},
	}
	if err := k8sClient.Create(t.Context(), cm); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) updateConfigMap(t *testing.T, content string) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := k8sClient.Get(t.Context(), client.ObjectKey{Namespace: f.ns, Name: f.cm}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["config.json"] = content
	if err := k8sClient.Update(t.Context(), cm); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) createPod(t *testing.T, port int32) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: f.pod, Labels: map[string]string{"app": "host"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:         "pluginhost",
				Image:        "pluginhost:dev",
				Ports:        []corev1.ContainerPort{{Name: HTTPPortName, ContainerPort: port}},
				VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/var/run/plugins"}},
			}},
			Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{
				ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: f.cm}},
			}}},
		},
	}
	if err := k8sClient.Create(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

// bumpAnnotation is what the manager does after changing the ConfigMap.
func (f *fixture) bumpAnnotation(t *testing.T, rev string) {
	t.Helper()
	pod := &corev1.Pod{}
	if err := k8sClient.Get(t.Context(), client.ObjectKey{Namespace: f.ns, Name: f.pod}, pod); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(pod.DeepCopy())
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations["plugins.hotreload.io/config-revision"] = rev
	if err := k8sClient.Patch(t.Context(), pod, patch); err != nil {
		t.Fatal(err)
	}
}

// start runs a Sim until the test ends and returns it.
func (f *fixture) start(t *testing.T, c client.Client, period time.Duration) *Sim {
	t.Helper()
	sim := New(Config{
		Client: c, Namespace: f.ns, PodName: f.pod, ConfigMapName: f.cm, Dir: f.dir,
		SyncPeriod: period, OnSync: f.syncs.record,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return sim
}

func (f *fixture) configPath() string { return filepath.Join(f.dir, "config.json") }

// checkKubeletLayout asserts the projection has kubelet's shape.
func (f *fixture) checkKubeletLayout(t *testing.T) {
	t.Helper()
	ts, err := os.Readlink(filepath.Join(f.dir, projection.DataDirName))
	if err != nil || !strings.HasPrefix(ts, "..20") {
		t.Fatalf("..data -> %q (%v), want a timestamped dir", ts, err)
	}
	for _, key := range []string{"config.json", "blob.bin"} {
		if l, err := os.Readlink(filepath.Join(f.dir, key)); err != nil || l != "..data/"+key {
			t.Fatalf("%s -> %q (%v), want ..data/%s", key, l, err, key)
		}
	}
	if b, err := os.ReadFile(filepath.Join(f.dir, "blob.bin")); err != nil || string(b) != "\x00\x01\x02\xff" {
		t.Fatalf("binaryData key: %q %v", b, err)
	}
}

// The main story: project; a ConfigMap update waits for a pod update (the sync period is
// long); an annotation bump projects promptly; a status-only update does not; a deleted
// ConfigMap leaves the old content in place.
func TestProjectsOnPodUpdateOnly(t *testing.T) {
	f := newFixture(t)
	f.createConfigMap(t, `{"v":1}`)
	f.createPod(t, 18081)
	sim := f.start(t, k8sClient, time.Hour)

	testutil.Eventually(t, 30*time.Second, "first projection", fileIs(f.configPath(), `{"v":1}`))
	f.checkKubeletLayout(t)
	firstTs, _ := os.Readlink(filepath.Join(f.dir, projection.DataDirName))

	f.updateConfigMap(t, `{"v":2}`)
	testutil.Consistently(t, 3*time.Second, "old content until the pod changes", fileIs(f.configPath(), `{"v":1}`))

	f.bumpAnnotation(t, "rev-2")
	testutil.Eventually(t, 30*time.Second, "projection after annotation bump", fileIs(f.configPath(), `{"v":2}`))
	f.checkKubeletLayout(t)
	if ts, _ := os.Readlink(filepath.Join(f.dir, projection.DataDirName)); ts == firstTs {
		t.Fatal("..data did not move to a new timestamped dir")
	}
	if _, err := os.Stat(filepath.Join(f.dir, firstTs)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old timestamped dir still there: %v", err)
	}

	// A status-only update (what kubelet itself writes) is no reason to re-project.
	f.updateConfigMap(t, `{"v":3}`)
	if err := sim.MarkRunning(t.Context(), true, 0); err != nil {
		t.Fatal(err)
	}
	testutil.Consistently(t, 3*time.Second, "old content after a status-only update", fileIs(f.configPath(), `{"v":2}`))
	f.bumpAnnotation(t, "rev-3")
	testutil.Eventually(t, 30*time.Second, "projection after second bump", fileIs(f.configPath(), `{"v":3}`))

	// Deleted ConfigMap: kubelet keeps the old content and reports the error.
	if err := k8sClient.Delete(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: f.cm}}); err != nil {
		t.Fatal(err)
	}
	n0, _ := f.syncs.get()
	f.bumpAnnotation(t, "rev-4")
	testutil.Eventually(t, 30*time.Second, "a failed sync reported", func() error {
		if n, err := f.syncs.get(); n <= n0 || !apierrors.IsNotFound(err) {
			return fmt.Errorf("syncs %d (before %d), last error %v", n, n0, err)
		}
		return nil
	})
	if err := sim.SyncNow(t.Context()); !apierrors.IsNotFound(err) {
		t.Fatalf("SyncNow with the ConfigMap deleted: %v, want NotFound", err)
	}
	testutil.Consistently(t, time.Second, "old content kept", fileIs(f.configPath(), `{"v":3}`))
	f.checkKubeletLayout(t)

	// Re-created: the next pod update projects it again.
	f.createConfigMap(t, `{"v":5}`)
	f.bumpAnnotation(t, "rev-5")
	testutil.Eventually(t, 30*time.Second, "projection of the re-created ConfigMap", fileIs(f.configPath(), `{"v":5}`))
}

// Without pod updates, the periodic re-sync picks the change up.
func TestPeriodicResync(t *testing.T) {
	f := newFixture(t)
	f.createConfigMap(t, `{"v":1}`)
	f.createPod(t, 18082)
	f.start(t, k8sClient, 2*time.Second)
	testutil.Eventually(t, 30*time.Second, "first projection", fileIs(f.configPath(), `{"v":1}`))
	f.updateConfigMap(t, `{"v":2}`)
	testutil.Eventually(t, 60*time.Second, "projection by periodic resync", fileIs(f.configPath(), `{"v":2}`))
	// OnSync runs after the sync has written the files: wait for the counter too.
	testutil.Eventually(t, 30*time.Second, "the periodic sync reported", func() error {
		if n, err := f.syncs.get(); n < 2 || err != nil {
			return fmt.Errorf("syncs %d, last error %v", n, err)
		}
		return nil
	})
}

// noWatch hides the Watch method: the Sim must fall back to polling the Pod. It also
// covers a pod that appears after the Sim starts (nothing is projected before).
func TestPollFallbackAndLatePod(t *testing.T) {
	type plainClient struct{ client.Client }
	f := newFixture(t)
	f.createConfigMap(t, `{"v":1}`)
	sim := New(Config{Client: plainClient{k8sClient}, Namespace: f.ns, PodName: f.pod, ConfigMapName: f.cm, Dir: f.dir,
		SyncPeriod: time.Hour, PodPollInterval: 100 * time.Millisecond, OnSync: f.syncs.record})
	if _, ok := sim.Config().Client.(client.WithWatch); ok {
		t.Fatal("test client still implements WithWatch")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	testutil.Consistently(t, 2*time.Second, "nothing projected before the pod exists", func() error {
		if _, err := os.Lstat(f.configPath()); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("config file: %v", err)
		}
		return nil
	})
	f.createPod(t, 18083)
	testutil.Eventually(t, 30*time.Second, "projection once the pod exists", fileIs(f.configPath(), `{"v":1}`))
	f.updateConfigMap(t, `{"v":2}`)
	testutil.Consistently(t, 2*time.Second, "old content until the pod changes", fileIs(f.configPath(), `{"v":1}`))
	f.bumpAnnotation(t, "rev-2")
	testutil.Eventually(t, 30*time.Second, "projection after annotation bump", fileIs(f.configPath(), `{"v":2}`))
}

// Pod deleted and re-created with the same name (a StatefulSet pod replaced): the new
// pod is a new sighting and is synced.
func TestPodRecreated(t *testing.T) {
	f := newFixture(t)
	f.createConfigMap(t, `{"v":1}`)
	pod := f.createPod(t, 18084)
	f.start(t, k8sClient, time.Hour)
	testutil.Eventually(t, 30*time.Second, "first projection", fileIs(f.configPath(), `{"v":1}`))
	if err := k8sClient.Delete(t.Context(), pod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "pod gone", func() error {
		if err := k8sClient.Get(t.Context(), client.ObjectKeyFromObject(pod), &corev1.Pod{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("get: %v", err)
		}
		return nil
	})
	f.updateConfigMap(t, `{"v":2}`)
	f.createPod(t, 18084)
	testutil.Eventually(t, 30*time.Second, "projection for the new pod", fileIs(f.configPath(), `{"v":2}`))
}

func TestMarkPodRunning(t *testing.T) {
	f := newFixture(t)
	f.createConfigMap(t, `{}`)
	pod := f.createPod(t, 18085)
	if _, err := HTTPAddr(pod); err == nil {
		t.Fatal("HTTPAddr succeeded before the pod has an IP")
	}
	if err := MarkPodRunning(t.Context(), k8sClient, pod, false, 0); err != nil {
		t.Fatal(err)
	}
	got := &corev1.Pod{}
	if err := k8sClient.Get(t.Context(), client.ObjectKeyFromObject(pod), got); err != nil {
		t.Fatal(err)
	}
	check := func(p *corev1.Pod, ready bool, restarts int32) {
		t.Helper()
		if p.Status.Phase != corev1.PodRunning || p.Status.PodIP != PodIP || len(p.Status.PodIPs) != 1 || p.Status.HostIP != PodIP {
			t.Fatalf("status: phase %q podIP %q podIPs %v hostIP %q", p.Status.Phase, p.Status.PodIP, p.Status.PodIPs, p.Status.HostIP)
		}
		want := corev1.ConditionFalse
		if ready {
			want = corev1.ConditionTrue
		}
		conds := map[corev1.PodConditionType]corev1.ConditionStatus{}
		for _, c := range p.Status.Conditions {
			conds[c.Type] = c.Status
		}
		if conds[corev1.PodReady] != want || conds[corev1.ContainersReady] != want || conds[corev1.PodScheduled] != corev1.ConditionTrue || conds[corev1.PodInitialized] != corev1.ConditionTrue {
			t.Fatalf("conditions %v", conds)
		}
		if len(p.Status.ContainerStatuses) != 1 {
			t.Fatalf("containerStatuses %v", p.Status.ContainerStatuses)
		}
		cs := p.Status.ContainerStatuses[0]
		if cs.Name != "pluginhost" || cs.Ready != ready || cs.RestartCount != restarts || cs.State.Running == nil || cs.Started == nil || !*cs.Started {
			t.Fatalf("containerStatus %+v", cs)
		}
		if restarts > 0 && cs.LastTerminationState.Terminated == nil {
			t.Fatalf("no lastState after a restart: %+v", cs)
		}
		if addr, err := HTTPAddr(p); err != nil || addr != "127.0.0.1:18085" {
			t.Fatalf("HTTPAddr = %q, %v", addr, err)
		}
	}
	check(got, false, 0)
	check(pod, false, 0) // pod was updated in place

	readyAt := func(p *corev1.Pod) metav1.Time {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				return c.LastTransitionTime
			}
		}
		return metav1.Time{}
	}
	testutil.WaitPastSecond(t, readyAt(got).Time)
	if err := MarkPodRunning(t.Context(), k8sClient, pod, true, 0); err != nil {
		t.Fatal(err)
	}
	check(pod, true, 0)
	t1 := readyAt(pod)
	if !t1.After(readyAt(got).Time) {
		t.Fatalf("Ready transition time did not move: %v -> %v", readyAt(got), t1)
	}
	// Same status again: no new transition (a new one would now carry a later second).
	testutil.WaitPastSecond(t, t1.Time)
	if err := MarkPodRunning(t.Context(), k8sClient, pod, true, 0); err != nil {
		t.Fatal(err)
	}
	if t2 := readyAt(pod); !t2.Equal(&t1) {
		t.Fatalf("Ready transition time moved without a transition")
	}
	// A restart.
	if err := MarkPodRunning(t.Context(), k8sClient, pod, true, 1); err != nil {
		t.Fatal(err)
	}
	check(pod, true, 1)
}

func TestDefaults(t *testing.T) {
	s := New(Config{})
	if c := s.Config(); c.SyncPeriod != DefaultSyncPeriod || c.Jitter != DefaultJitter || c.PodPollInterval != DefaultPodPollInterval {
		t.Fatalf("defaults: %+v", c)
	}
	s = New(Config{SyncPeriod: time.Second})
	if c := s.Config(); c.Jitter != 0 {
		t.Fatalf("explicit period got jitter %v", c.Jitter)
	}
	s = New(Config{SyncPeriod: 10 * time.Second, Jitter: 0.5})
	for range 1000 {
		if d := s.jittered(10 * time.Second); d < 10*time.Second || d >= 15*time.Second {
			t.Fatalf("jittered %v outside [10s,15s)", d)
		}
	}
	if err := New(Config{}).Run(t.Context()); err == nil {
		t.Fatal("Run without a client succeeded")
	}
}

func TestPodsDifferSemantically(t *testing.T) {
	base := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"a": "1"}, Annotations: map[string]string{"x": "1"}}}
	same := base.DeepCopy()
	same.ResourceVersion = "42"
	same.Status.Phase = corev1.PodRunning
	if podsDifferSemantically(base, same) {
		t.Fatal("status/resourceVersion change counted as an update")
	}
	for name, mutate := range map[string]func(p *corev1.Pod){
		"annotation": func(p *corev1.Pod) { p.Annotations["x"] = "2" },
		"label":      func(p *corev1.Pod) { p.Labels["b"] = "2" },
		"spec":       func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(5)) },
		"deletion":   func(p *corev1.Pod) { now := metav1.Now(); p.DeletionTimestamp = &now },
	} {
		p := base.DeepCopy()
		mutate(p)
		if !podsDifferSemantically(base, p) {
			t.Errorf("%s change not counted as an update", name)
		}
	}
}

// A secret volume: the Secret's data keys, with the volume's defaultMode, re-projected at a
// pod update like a ConfigMap.
func TestProjectsSecret(t *testing.T) {
	f := newFixture(t)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "host-credentials"},
		StringData: map[string]string{"counter-2.api-key": "k1"},
	}
	if err := k8sClient.Create(t.Context(), secret); err != nil {
		t.Fatal(err)
	}
	f.createPod(t, 18086)
	sim := New(Config{Client: k8sClient, Namespace: f.ns, PodName: f.pod, SecretName: secret.Name, DefaultMode: 0o440,
		Dir: f.dir, SyncPeriod: time.Hour, OnSync: f.syncs.record})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	key := filepath.Join(f.dir, "counter-2.api-key")
	testutil.Eventually(t, 30*time.Second, "first projection", fileIs(key, "k1"))
	if l, err := os.Readlink(key); err != nil || l != "..data/counter-2.api-key" {
		t.Fatalf("%s -> %q (%v), want kubelet's link", key, l, err)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o440 {
		t.Fatalf("mode of the projected key: %v %v, want 0440", fi.Mode(), err)
	}

	if err := k8sClient.Get(t.Context(), client.ObjectKeyFromObject(secret), secret); err != nil {
		t.Fatal(err)
	}
	secret.Data = map[string][]byte{"counter-2.api-key": []byte("k2"), "counter-3.token": []byte("t")}
	if err := k8sClient.Update(t.Context(), secret); err != nil {
		t.Fatal(err)
	}
	testutil.Consistently(t, time.Second, "old key until the pod changes", fileIs(key, "k1"))
	f.bumpAnnotation(t, "rev-2")
	testutil.Eventually(t, 30*time.Second, "projection after annotation bump", fileIs(key, "k2"))
	testutil.Eventually(t, 5*time.Second, "added key", fileIs(filepath.Join(f.dir, "counter-3.token"), "t"))
}
