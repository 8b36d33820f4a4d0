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
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/controllers"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
	"github.com/hotreload/plugin-operator/pkg/plugins/counter"
)

// apiserverStopTimeout bounds kube-apiserver's graceful shutdown (SIGTERM), which can take
// 20 s and more with watches open; after it the process is killed (SIGKILL).
const apiserverStopTimeout = 3 * time.Second

// ownControlPlane starts a control plane for one test, apart from the package's shared one,
// so that the test may stop its API server. The API server's certificate directory is
// fixed, so that a restarted API server serves the same certificates on the same port and
// clients made before the restart reconnect.
func ownControlPlane(t *testing.T) (*envtest.Environment, *rest.Config) {
	t.Helper()
	certDir := testutil.ShortTempDir(t)
	e := &envtest.Environment{
		Scheme:                   env.Scheme,
		CRDDirectoryPaths:        []string{filepath.Join(env.RepoRoot, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		BinaryAssetsDirectory:    os.Getenv("KUBEBUILDER_ASSETS"),
		ControlPlane:             envtest.ControlPlane{APIServer: &envtest.APIServer{CertDir: certDir}},
		ControlPlaneStopTimeout:  apiserverStopTimeout,
		ControlPlaneStartTimeout: time.Minute,
	}
	cfg, err := e.Start()
	if err != nil {
		_ = e.Stop()
		t.Fatalf("starting a second control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil && !isStopTimeout(err) {
			t.Errorf("stopping the second control plane: %v", err)
		}
	})
	return e, cfg
}

// isStopTimeout reports a control-plane process that did not stop within
// apiserverStopTimeout and was killed.
func isStopTimeout(err error) bool {
	return strings.Contains(err.Error(), "timeout waiting for process")
}

// runManager runs the reconcilers in-process against cfg, watching namespace ns, and returns
// a channel closed if the manager stops before the test ends.
func runManager(t testing.TB, cfg *rest.Config, ns string, opts controllers.Options) <-chan struct{} {
	t.Helper()
	logger := logr.Discard()
	if os.Getenv(logEnv) != "" {
		logger = zap.New(zap.UseDevMode(true), zap.WriteTo(os.Stderr))
	}
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := controllers.NewManager(ctx, cfg, controllers.ManagerOptions{
		Logger:                 logger,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WatchNamespaces:        []string{ns},
		Controllers:            opts,
		SkipNameValidation:     true,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	var runErr error
	go func() { runErr = mgr.Start(ctx); close(stopped) }()
	t.Cleanup(func() {
		cancel()
		<-stopped
		if runErr != nil {
			t.Errorf("manager: %v", runErr)
		}
	})
	return stopped
}

// converged checks, against c, that host's ConfigMap holds exactly the Plugins of its
// namespace with their current spec (options.increment), that the host's status describes
// that revision and every Plugin's current generation, and that every Plugin's status
// describes its current generation and is Accepted.
func converged(ctx context.Context, c client.Client, ns, host string) error {
	plugins := &v1alpha1.PluginList{}
	if err := c.List(ctx, plugins, client.InNamespace(ns)); err != nil {
		return err
	}
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: host + "-config"}, cm); err != nil {
		return err
	}
	data := cm.Data["config.json"]
	cfg, err := pluginconfig.Parse([]byte(data), testutil.PluginTypes(counter.Factory{}))
	if err != nil {
		return fmt.Errorf("config.json does not parse: %w", err)
	}
	inConfig := map[string]string{}
	for _, p := range cfg.Plugins {
		inConfig[p.Name] = fmt.Sprint(p.Options["increment"])
	}
	want := map[string]string{}
	for _, p := range plugins.Items {
		if p.DeletionTimestamp.IsZero() {
			want[p.Name] = "<nil>"
			if p.Spec.Options != nil && p.Spec.Options.Increment != nil {
				want[p.Name] = fmt.Sprint(*p.Spec.Options.Increment)
			}
		}
	}
	if len(inConfig) != len(want) {
		return fmt.Errorf("config.json has %d plugins, the namespace %d", len(inConfig), len(want))
	}
	for name, inc := range want {
		if inConfig[name] != inc {
			return fmt.Errorf("config.json has %s with increment %q, the Plugin says %s", name, inConfig[name], inc)
		}
	}

	h := &v1alpha1.PluginHost{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: host}, h); err != nil {
		return err
	}
	if rev := pluginconfig.Revision([]byte(data)); h.Status.ConfigRevision != rev {
		return fmt.Errorf("host status describes revision %s, the ConfigMap holds %s", h.Status.ConfigRevision, rev)
	}
	gens := map[string]int64{}
	for _, e := range h.Status.Plugins {
		if e.Reason != v1alpha1.ReasonAccepted {
			return fmt.Errorf("host status: %s is %s: %s", e.Name, e.Reason, e.Message)
		}
		gens[e.Name] = e.Generation
	}
	if len(gens) != len(want) {
		return fmt.Errorf("host status lists %d plugins, the namespace has %d", len(gens), len(want))
	}
	for _, p := range plugins.Items {
		if !p.DeletionTimestamp.IsZero() {
			continue
		}
		if gens[p.Name] != p.Generation {
			return fmt.Errorf("host status has %s at generation %d, the Plugin is at %d", p.Name, gens[p.Name], p.Generation)
		}
		if p.Status.ObservedGeneration != p.Generation {
			return fmt.Errorf("Plugin %s status describes generation %d of %d", p.Name, p.Status.ObservedGeneration, p.Generation)
		}
		if err := condition(p.Status.Conditions, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, p.Generation); err != nil {
			return fmt.Errorf("Plugin %s: %w", p.Name, err)
		}
	}
	return nil
}

// TestAPIServerRestartDuringReconciles edits Plugins while the API server is stopped for a
// few seconds and started again (same port, same certificates, etcd keeps the data). The
// manager, never restarted, must converge: the ConfigMap holds the last edits, the host's
// and the Plugins' statuses describe the last generations.
//
//	go test ./controllers/ -run TestAPIServerRestartDuringReconciles -v
func TestAPIServerRestartDuringReconciles(t *testing.T) {
	needEnv(t)
	const plugins, downtime = 20, 5 * time.Second
	cp, cfg := ownControlPlane(t)
	fast := rest.CopyConfig(cfg)
	fast.QPS, fast.Burst = -1, 0
	c, err := client.New(fast, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "faults"}}
	if err := c.Create(ctx, nsObj); err != nil {
		t.Fatal(err)
	}
	ns := nsObj.Name
	stopped := runManager(t, cfg, ns, testOptions())

	if err := c.Create(ctx, newHost(ns, "h", "h")); err != nil {
		t.Fatal(err)
	}
	advertiseOn(t, c, ns, "h")
	for i := range plugins {
		if err := c.Create(ctx, newPlugin(ns, fmt.Sprintf("p%02d", i), "h", 1)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, wait, "first convergence", func() error { return converged(ctx, c, ns, "h") })
	t.Log("converged; editing, then stopping the API server")

	// An editor patches the Plugins' increments round-robin, as fast as the API server lets
	// it, before, during (failing) and after the outage.
	var edits, failed atomic.Int64
	editCtx, stopEditing := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; editCtx.Err() == nil; i++ {
			p := &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("p%02d", i%plugins)}}
			patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"options":{"increment":%d}}}`, i+2))
			rctx, cancel := context.WithTimeout(editCtx, time.Second)
			err := c.Patch(rctx, p, patch)
			cancel()
			if err != nil {
				failed.Add(1)
				time.Sleep(50 * time.Millisecond)
				continue
			}
			edits.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	})
	// Reconciles in flight before the outage: the editor's patches are landing.
	testutil.Eventually(t, wait, "edits before the outage", func() error {
		if n := edits.Load(); n < 20 {
			return fmt.Errorf("%d edits", n)
		}
		return nil
	})
	apiserver := cp.ControlPlane.GetAPIServer()
	port := apiserver.Port
	stopping := time.Now()
	if err := apiserver.Stop(); err != nil && !isStopTimeout(err) {
		stopEditing()
		wg.Wait()
		t.Fatalf("stopping the API server: %v", err)
	}
	beforeOutage := edits.Load()
	t.Logf("API server stopped in %v (SIGTERM, then SIGKILL after %v) after %d edits",
		time.Since(stopping).Round(time.Millisecond), apiserverStopTimeout, beforeOutage)
	time.Sleep(downtime) // the outage itself: how long the API server stays down
	duringOutage := edits.Load() - beforeOutage
	if err := apiserver.Start(); err != nil {
		stopEditing()
		wg.Wait()
		t.Fatalf("restarting the API server: %v", err)
	}
	back := time.Now()
	t.Log("API server restarted")
	if apiserver.Port != port {
		t.Errorf("the API server came back on port %s, not %s", apiserver.Port, port)
	}
	// Edits after the restart, then a Plugin deleted and one created: the manager's watches
	// must have come back, not only its writes.
	afterRestart := edits.Load()
	testutil.Eventually(t, wait, "edits after the restart", func() error {
		if n := edits.Load() - afterRestart; n < 20 {
			return fmt.Errorf("%d edits since the restart", n)
		}
		return nil
	})
	stopEditing()
	wg.Wait()
	testutil.Eventually(t, wait, "delete p00", func() error {
		return client.IgnoreNotFound(c.Delete(ctx, &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p00"}}))
	})
	testutil.Eventually(t, wait, "create late", func() error { return c.Create(ctx, newPlugin(ns, "late", "h", 42)) })
	lastWrite := time.Now()
	t.Log("last writes done; waiting for convergence")

	// What is still missing, every 2 s: shows whether the wait is the manager's watches
	// reconnecting (stale content) or its writes.
	var lastLog time.Time
	testutil.Eventually(t, 2*wait, "convergence after the API server's restart", func() error {
		err := converged(ctx, c, ns, "h")
		if err != nil && time.Since(lastLog) > 2*time.Second {
			t.Logf("%v after the restart: %v", time.Since(back).Round(100*time.Millisecond), err)
			lastLog = time.Now()
		}
		return err
	})
	convergedAt := time.Now()
	select {
	case <-stopped:
		t.Fatal("the manager stopped")
	default:
	}
	if duringOutage != 0 {
		t.Errorf("%d edits succeeded while the API server was down", duringOutage)
	}
	t.Logf("API server down %v; %d edits succeeded (%d failed); converged %v after the API server returned (%v after the last write)",
		downtime, edits.Load(), failed.Load(), convergedAt.Sub(back).Round(time.Millisecond), convergedAt.Sub(lastWrite).Round(time.Millisecond))
	fmt.Printf("FAULTS apiserver-restart down-s=%.1f edits=%d failed-edits=%d converge-after-restart-s=%.2f converge-after-last-write-s=%.2f\n",
		downtime.Seconds(), edits.Load(), failed.Load(), convergedAt.Sub(back).Seconds(), convergedAt.Sub(lastWrite).Seconds())

	names := []string{}
	list := &v1alpha1.PluginList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		names = append(names, p.Name)
	}
	if slices.Contains(names, "p00") || !slices.Contains(names, "late") {
		t.Errorf("Plugins after the run: %v", names)
	}
}
