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
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// withOptions returns p with spec.type typ and spec.options decoded from options (JSON).
func withOptions(t testing.TB, p *v1alpha1.Plugin, typ, options string) *v1alpha1.Plugin {
	t.Helper()
	p.Spec.Type = v1alpha1.PluginType(typ)
	p.Spec.Options = nil
	if options != "" {
		p.Spec.Options = &v1alpha1.PluginOptions{}
		if err := p.Spec.Options.UnmarshalJSON([]byte(options)); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// TestPluginsCheckedAgainstAdvertisedTypes runs a real pluginhost: before it advertises, the
// host's Plugins wait (kstatus InProgress, AwaitingHostTypes); once it does, its types are
// recorded in the host's status, the good Plugins become Ready and are served, a Plugin of a
// type the host does not carry and one with an option its type's schema refuses are Stalled
// alone with the field named, and fixing the option makes that Plugin Ready.
func TestPluginsCheckedAgainstAdvertisedTypes(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	opts := testOptions()
	startManager(t, ns, opts)

	host := newHost(ns, "types", "types")
	host.Spec.PollInterval = &metav1.Duration{Duration: 100 * time.Millisecond}
	good := newPlugin(ns, "good", "types", 2)
	gauge := withOptions(t, newPlugin(ns, "gauge", "types", 1), "gauge", `{"unit": "ms"}`)
	odd := withOptions(t, newPlugin(ns, "odd", "types", 1), "counter", `{"increment": 1, "step": 2}`)
	limiter := withOptions(t, newPlugin(ns, "limiter", "types", 1), "ratelimit", `{"rate": -1}`)
	create(t, host, good, gauge, odd, limiter)

	// (d) No pod has advertised: every Plugin waits, Reconciling, and nothing is rendered.
	for _, p := range []*v1alpha1.Plugin{good, gauge, odd, limiter} {
		res := waitKstatus(t, p, "Plugin", kstatus.InProgressStatus)
		got := pluginCondition(t, ns, p.Name, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonAwaitingHostTypes)
		c := findCondition(got.Status.Conditions, v1alpha1.ConditionReady)
		if !strings.Contains(c.Message, opts.DefaultHostImage) {
			t.Errorf("Plugin %s: %q does not name the image it waits for (%s); kstatus: %s", p.Name, c.Message, opts.DefaultHostImage, res.Message)
		}
	}
	hostCondition(t, ns, "types", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonWorkloadUnavailable)
	configMapData(t, ns, "types", lacks(`"good"`, `"gauge"`, `"odd"`, `"limiter"`))

	// (a) The pod advertises: its types are recorded and the good Plugin is served.
	pod := startPod(t, ns, "types", "types-0")
	pluginCondition(t, ns, "good", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	// The Plugin's Ready may be written before its host's status (the status handoff).
	h := &v1alpha1.PluginHost{}
	testutil.Eventually(t, wait, "the host's status.types", func() error {
		if err := get(t, h, ns, "types"); err != nil {
			return err
		}
		var names []string
		for _, ty := range h.Status.Types {
			names = append(names, ty.Name)
		}
		if strings.Join(names, " ") != "counter ratelimit" || h.Status.TypesImage != opts.DefaultHostImage {
			return fmt.Errorf("status.types %v from %q, want counter and ratelimit from %s", names, h.Status.TypesImage, opts.DefaultHostImage)
		}
		return nil
	})
	for _, ty := range h.Status.Types {
		if ty.Name == "counter" && (len(ty.Operations) == 0 || ty.OptionsSchema == nil || !strings.Contains(string(ty.OptionsSchema.Raw), "increment")) {
			t.Errorf("counter recorded as %+v", ty)
		}
	}
	if code, v := pod.call(t, http.MethodPost, "good", "increment", `{"value":5}`, ""); code != 200 || v != 10 {
		t.Fatalf("increment: %d value %d, want 200 and 10", code, v)
	}

	// (b) A type the host does not carry: that Plugin alone is Stalled, spec.type named.
	waitKstatus(t, gauge, "Plugin", kstatus.FailedStatus)
	pg := pluginCondition(t, ns, "gauge", v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonUnknownPluginType)
	if c := findCondition(pg.Status.Conditions, v1alpha1.ConditionStalled); !strings.Contains(c.Message, "spec.type") ||
		!strings.Contains(c.Message, `"gauge"`) || !strings.Contains(c.Message, "counter") {
		t.Errorf("UnknownPluginType message %q names neither spec.type, the type nor the host's types", c.Message)
	}

	// (c) An option the type's schema refuses: that Plugin alone is Stalled, the option named.
	waitKstatus(t, odd, "Plugin", kstatus.FailedStatus)
	po := pluginCondition(t, ns, "odd", v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInvalidOptions)
	if c := findCondition(po.Status.Conditions, v1alpha1.ConditionStalled); !strings.Contains(c.Message, "spec.options.step") {
		t.Errorf("InvalidOptions message %q does not name spec.options.step", c.Message)
	}
	waitKstatus(t, limiter, "Plugin", kstatus.FailedStatus)
	pl := pluginCondition(t, ns, "limiter", v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInvalidOptions)
	if c := findCondition(pl.Status.Conditions, v1alpha1.ConditionStalled); !strings.Contains(c.Message, "spec.options.rate") ||
		!strings.Contains(c.Message, "must be greater than 0") {
		t.Errorf("InvalidOptions message %q does not name spec.options.rate and its bound", c.Message)
	}
	waitKstatus(t, good, "Plugin", kstatus.CurrentStatus)
	_, served := configMapData(t, ns, "types", contains(`"good"`))
	if err := lacks(`"gauge"`, `"odd"`, `"limiter"`)(served); err != nil {
		t.Errorf("rendered config: %v", err)
	}
	// The host serves the good one and nothing else of them.
	if code, _ := pod.call(t, http.MethodGet, "odd", "get", "", ""); code != http.StatusNotFound {
		t.Errorf("GET /plugins/odd/get: %d, want 404 (not rendered)", code)
	}
	hostCondition(t, ns, "types", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRolledOut)

	// Fixing the option renders and serves the Plugin.
	update(t, odd, func(p *v1alpha1.Plugin) { withOptions(t, p, "counter", `{"increment": 3}`) })
	pluginCondition(t, ns, "odd", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	testutil.Eventually(t, wait, "odd served with increment 3", func() error {
		if code, v := pod.call(t, http.MethodPost, "odd", "increment", `{"value":1}`, ""); code != 200 || v%3 != 0 {
			return fmt.Errorf("increment: %d value %d", code, v)
		}
		return nil
	})
	update(t, limiter, func(p *v1alpha1.Plugin) { withOptions(t, p, "ratelimit", `{"rate": 5, "burst": 10}`) })
	pluginCondition(t, ns, "limiter", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	resp, err := http.Get("http://" + pod.addr + "/plugins/limiter/get?key=a")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "10") {
		t.Errorf("GET /plugins/limiter/get?key=a: %d %s, want 200 with a full bucket of 10", resp.StatusCode, body)
	}
	pluginCondition(t, ns, "good", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
}

// BenchmarkVerdictAfterAdvertisement measures advertisement → verdict: from the moment a
// real pluginhost answers /status with its types and its pod is marked running (what lets
// the manager read it) to the watch event of a Plugin carrying its verdict — Stalled
// (UnknownPluginType) for one Plugin, Ready for another — over -benchtime iterations, each
// a fresh host whose Plugins wait for its types.
//
//	go test ./controllers/ -run '^$' -bench VerdictAfterAdvertisement -benchtime 5x
func BenchmarkVerdictAfterAdvertisement(b *testing.B) {
	needEnv(b)
	ns := newNamespace(b)
	startManager(b, ns, testOptions())
	c := fastClient(b)
	ctx := context.Background()
	var stalled, ready []time.Duration
	i := 0
	for b.Loop() {
		i++
		name := fmt.Sprintf("adv-%d", i)
		good := newPlugin(ns, name+"-good", name, 1)
		gauge := withOptions(b, newPlugin(ns, name+"-gauge", name, 1), "gauge", "")
		create(b, newHost(ns, name, name), good, gauge)
		pluginCondition(b, ns, good.Name, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonAwaitingHostTypes)
		pluginCondition(b, ns, gauge.Name, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonAwaitingHostTypes)
		w, err := c.Watch(ctx, &v1alpha1.PluginList{}, client.InNamespace(ns))
		if err != nil {
			b.Fatal(err)
		}
		startPod(b, ns, name, name+"-0")
		start := time.Now()
		deadline := time.After(wait)
		var gotStalled, gotReady bool
		for !gotStalled || !gotReady {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					b.Fatal("Plugin watch ended")
				}
				p, isPlugin := ev.Object.(*v1alpha1.Plugin)
				if !isPlugin {
					continue
				}
				switch {
				case p.Name == gauge.Name && !gotStalled && meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionStalled):
					gotStalled = true
					stalled = append(stalled, time.Since(start))
				case p.Name == good.Name && !gotReady && meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady):
					gotReady = true
					ready = append(ready, time.Since(start))
				}
			case <-deadline:
				b.Fatalf("no verdict within %v (stalled %v, ready %v)", wait, gotStalled, gotReady)
			}
		}
		w.Stop()
	}
	b.StopTimer()
	slices.Sort(stalled)
	slices.Sort(ready)
	b.ReportMetric(ms(percentile(stalled, 0.50)), "stalled-p50-ms")
	b.ReportMetric(ms(stalled[len(stalled)-1]), "stalled-max-ms")
	b.ReportMetric(ms(percentile(ready, 0.50)), "ready-p50-ms")
	b.ReportMetric(ms(ready[len(ready)-1]), "ready-max-ms")
	b.Logf("advertisement → Stalled over %d hosts: p50 %v, max %v; → Ready (rendered, applied, served): p50 %v, max %v",
		len(stalled), percentile(stalled, 0.50), stalled[len(stalled)-1], percentile(ready, 0.50), ready[len(ready)-1])
}
