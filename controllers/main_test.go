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
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/controllers"
	"github.com/hotreload/plugin-operator/internal/testing/kubeletsim"
	"github.com/hotreload/plugin-operator/internal/testing/testenv"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

var (
	// env is the control plane shared by the package's tests; nil under -short.
	env *testenv.Env
	// pluginhostBin is the runtime binary, built once for the feedback tests.
	pluginhostBin string
	// managerBin is the manager binary, built once for the tests that run it
	// (startManagerBinary).
	managerBin string
)

// logEnv turns on the managers' logs (to stderr) in tests.
const logEnv = "PLUGIN_OPERATOR_TEST_LOG"

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	// A fuzz run (coordinator and workers) needs no control plane.
	if testing.Short() || flag.Lookup("test.fuzz").Value.String() != "" {
		return m.Run()
	}
	var err error
	env, err = testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	bin, err := os.MkdirTemp("", "controllers-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(bin)
	pluginhostBin = filepath.Join(bin, "pluginhost")
	managerBin = filepath.Join(bin, "manager")
	for out, pkg := range map[string]string{pluginhostBin: "./cmd/pluginhost", managerBin: "./cmd/manager"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = env.RepoRoot
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, b)
			return 1
		}
	}
	return m.Run()
}

// needEnv skips a test that needs the API server when only unit tests run (-short).
func needEnv(t testing.TB) {
	t.Helper()
	if env == nil {
		t.Skip("needs the envtest API server; not started under -short")
	}
}

// newNamespace creates a namespace for one test.
func newNamespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ctrl-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

// testOptions are the reconcilers' options in tests: a fast status poll.
func testOptions() controllers.Options {
	o := controllers.DefaultOptions()
	o.StatusPollInterval = 200 * time.Millisecond
	o.DefaultHostImage = "example.com/pluginhost:test"
	return o
}

// startManager runs the reconcilers in-process, with the manager's own cache and client
// settings, watching only namespace ns, until the test ends or stop is called (which
// returns once the manager has stopped).
func startManager(t testing.TB, ns string, opts controllers.Options) (stop func()) {
	t.Helper()
	logger := logr.Discard()
	if os.Getenv(logEnv) != "" {
		logger = zap.New(zap.UseDevMode(true), zap.WriteTo(os.Stderr))
	}
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := controllers.NewManager(ctx, env.Config, controllers.ManagerOptions{
		Logger:                 logger,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WatchNamespaces:        []string{ns},
		Controllers:            opts,
		// Every test runs its own manager in this process.
		SkipNameValidation: true,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("manager: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

const wait = 60 * time.Second

func get(t testing.TB, obj client.Object, ns, name string) error {
	t.Helper()
	return env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj)
}

func create(t testing.TB, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// update re-reads obj, applies mutate and updates it, retrying on conflicts.
func update[T client.Object](t testing.TB, obj T, mutate func(T)) {
	t.Helper()
	testutil.Eventually(t, wait, "update "+obj.GetName(), func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate(obj)
		return env.Client.Update(context.Background(), obj)
	})
}

// condition checks a condition's status and reason, and that it describes generation gen
// (0: any).
func condition(conds []metav1.Condition, typ string, status metav1.ConditionStatus, reason string, gen int64) error {
	c := meta.FindStatusCondition(conds, typ)
	switch {
	case c == nil:
		return fmt.Errorf("no %s condition", typ)
	case c.Status != status || (reason != "" && c.Reason != reason):
		return fmt.Errorf("%s is %s/%s (%q), want %s/%s", typ, c.Status, c.Reason, c.Message, status, reason)
	case gen != 0 && c.ObservedGeneration != gen:
		return fmt.Errorf("%s describes generation %d, want %d", typ, c.ObservedGeneration, gen)
	}
	return nil
}

// pluginCondition waits for a Plugin condition on the Plugin's current generation.
func pluginCondition(t testing.TB, ns, name, typ string, status metav1.ConditionStatus, reason string) *v1alpha1.Plugin {
	t.Helper()
	p := &v1alpha1.Plugin{}
	testutil.Eventually(t, wait, fmt.Sprintf("Plugin %s %s=%s/%s", name, typ, status, reason), func() error {
		if err := get(t, p, ns, name); err != nil {
			return err
		}
		if p.Status.ObservedGeneration != p.Generation {
			return fmt.Errorf("status describes generation %d of %d", p.Status.ObservedGeneration, p.Generation)
		}
		return condition(p.Status.Conditions, typ, status, reason, p.Generation)
	})
	return p
}

// hostCondition waits for a PluginHost condition.
func hostCondition(t testing.TB, ns, name, typ string, status metav1.ConditionStatus, reason string) *v1alpha1.PluginHost {
	t.Helper()
	h := &v1alpha1.PluginHost{}
	testutil.Eventually(t, wait, fmt.Sprintf("PluginHost %s %s=%s/%s", name, typ, status, reason), func() error {
		if err := get(t, h, ns, name); err != nil {
			return err
		}
		return condition(h.Status.Conditions, typ, status, reason, h.Generation)
	})
	return h
}

// configMapData waits for <host>-config and returns its config.json once check accepts it.
func configMapData(t testing.TB, ns, host string, check func(string) error) (*corev1.ConfigMap, string) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	testutil.Eventually(t, wait, "ConfigMap "+host+"-config", func() error {
		if err := get(t, cm, ns, host+"-config"); err != nil {
			return err
		}
		return check(cm.Data["config.json"])
	})
	return cm, cm.Data["config.json"]
}

func contains(subs ...string) func(string) error {
	return func(s string) error {
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				return fmt.Errorf("%q not in %s", sub, s)
			}
		}
		return nil
	}
}

func lacks(subs ...string) func(string) error {
	return func(s string) error {
		for _, sub := range subs {
			if strings.Contains(s, sub) {
				return fmt.Errorf("%q still in %s", sub, s)
			}
		}
		return nil
	}
}

// events returns the events.k8s.io Events of a namespace with this reason.
func events(t testing.TB, ns, reason string) []eventsv1.Event {
	t.Helper()
	list := &eventsv1.EventList{}
	if err := env.Client.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatalf("listing events: %v", err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent waits for an Event with this reason about an object named regarding.
func waitEvent(t testing.TB, ns, reason, regarding, note string) {
	t.Helper()
	testutil.Eventually(t, wait, "event "+reason+" on "+regarding, func() error {
		for _, e := range events(t, ns, reason) {
			if e.Regarding.Name == regarding && strings.Contains(e.Note, note) {
				return nil
			}
		}
		return errors.New("no such event yet")
	})
}

// consentLabels mark a user ConfigMap or Secret as meant for PluginHosts and Plugins.
func consentLabels() map[string]string { return map[string]string{v1alpha1.LabelPluginAuth: "true"} }

// newHost returns a PluginHost selecting app=<app>.
func newHost(ns, name, app string) *v1alpha1.PluginHost {
	return &v1alpha1.PluginHost{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.PluginHostSpec{
			PluginSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
		},
	}
}

// newPlugin returns a counter Plugin labelled app=<app> with options.increment inc.
func newPlugin(ns, name, app string, inc int32) *v1alpha1.Plugin {
	return &v1alpha1.Plugin{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}},
		Spec: v1alpha1.PluginSpec{
			Type:    v1alpha1.PluginTypeCounter,
			Options: &v1alpha1.PluginOptions{Increment: &inc},
		},
	}
}

// advertise stands in for a host pod of the default image (kubeletsim.Advertise).
func advertise(t testing.TB, ns, host string) { advertiseOn(t, env.Client, ns, host) }

// advertiseOn is advertise through c, for a test with a control plane of its own.
func advertiseOn(t testing.TB, c client.Client, ns, host string) {
	kubeletsim.Advertise(t, c, ns, host)
}
