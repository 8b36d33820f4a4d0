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
	"net/url"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// TestReadyWithoutAPollPeriod: with a status poll of a minute, a Plugin edit becomes Ready
// within half the test's wait only because the manager long-polls the pod's /status
// (?after=<revision>&wait=) and hears the applied revision at once (without it: a minute).
func TestReadyWithoutAPollPeriod(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	opts := testOptions()
	opts.SecretsMountPath = testutil.ShortTempDir(t)
	opts.StatusPollInterval = time.Hour // ≫ wait: a periodic read cannot make it
	startManager(t, ns, opts)

	// The manager reads a host's pods at the pace of its spec.pollInterval while a change is
	// in flight, when shorter than the status poll: here it is not, while the runtime itself
	// polls its config file every 100ms.
	host := newHost(ns, "lp", "lp")
	host.Spec.PollInterval = &metav1.Duration{Duration: time.Minute} // the most it takes
	counter := newPlugin(ns, "counter-a", "lp", 2)
	create(t, host, counter)
	pod := startPodPolling(t, ns, "lp", "lp-0", 100*time.Millisecond)
	ready := func() *v1alpha1.Plugin {
		t.Helper()
		p := &v1alpha1.Plugin{}
		testutil.Eventually(t, wait/2, "Plugin counter-a Ready for its generation", func() error {
			if err := get(t, p, ns, "counter-a"); err != nil {
				return err
			}
			if p.Status.ObservedGeneration != p.Generation {
				return fmt.Errorf("status describes generation %d of %d", p.Status.ObservedGeneration, p.Generation)
			}
			return condition(p.Status.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing, p.Generation)
		})
		return p
	}
	ready()

	for i := range int32(3) {
		update(t, counter, func(p *v1alpha1.Plugin) { p.Spec.Options.Increment = ptr.To(3 + i) })
		p := ready()
		st, err := pod.status()
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.AppliedRevision == "" || p.Status.AppliedRevision != st.Revision {
			t.Errorf("edit %d: the Plugin reports applied revision %q, the pod serves %q", i, p.Status.AppliedRevision, st.Revision)
		}
		// The PluginHost records it too. The Plugin's status was computed from the host
		// status being written (statusHandoff), so its write can land first, by one write.
		testutil.Eventually(t, wait/2, "the PluginHost records the revision the pod serves", func() error {
			h := &v1alpha1.PluginHost{}
			if err := get(t, h, ns, "lp"); err != nil {
				return err
			}
			if len(h.Status.Pods) != 1 || h.Status.Pods[0].AppliedRevision != st.Revision {
				return fmt.Errorf("pods %+v", h.Status.Pods)
			}
			return nil
		})
	}
}

// BenchmarkReadyAfterServed measures, per Plugin edit on a host with a real pluginhost pod
// (spec.pollInterval 250ms, --status-poll-interval 1s, the defaults): edit → served (the
// pod's /status long-poll answering the new revision) and edit → Plugin Ready (the watch
// event), from the Plugin patch's response, and Ready − served per edit.
//
//	go test ./controllers/ -run '^$' -bench ReadyAfterServed -benchtime 1x
func BenchmarkReadyAfterServed(b *testing.B) {
	needEnv(b)
	const edits = 50
	ns := newNamespace(b)
	opts := benchOptions()
	opts.SecretsMountPath = testutil.ShortTempDir(b)
	startManager(b, ns, opts)
	c := fastClient(b)
	ctx := context.Background()
	p := newPlugin(ns, "p", "ras", 1)
	create(b, newHost(ns, "ras", "ras"), p)
	pod := startPod(b, ns, "ras", "ras-0")
	pluginCondition(b, ns, "p", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)

	w, err := c.Watch(ctx, &v1alpha1.PluginList{}, client.InNamespace(ns),
		client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", "p")})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	var served, ready, gap []time.Duration
	inc := int32(1)
	for b.Loop() {
		for range edits {
			st, err := pod.status()
			if err != nil {
				b.Fatal(err)
			}
			servedAt := make(chan time.Time, 1)
			go func() {
				resp, err := http.Get("http://" + pod.addr + "/status?after=" + url.QueryEscape(st.Revision) + "&wait=30s")
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
				servedAt <- time.Now()
			}()
			inc++
			patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"options":{"increment":%d}}}`, inc))
			if err := c.Patch(ctx, p, patch); err != nil {
				b.Fatal(err)
			}
			start, gen := time.Now(), p.Generation
			deadline := time.After(wait)
			var readyAt time.Time
			for readyAt.IsZero() {
				select {
				case ev, ok := <-w.ResultChan():
					if !ok {
						b.Fatal("Plugin watch ended")
					}
					got, isPlugin := ev.Object.(*v1alpha1.Plugin)
					if !isPlugin || got.Status.ObservedGeneration != gen {
						continue
					}
					if cond := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady); cond != nil &&
						cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == gen {
						readyAt = time.Now()
					}
				case <-deadline:
					b.Fatalf("Plugin never Ready for generation %d", gen)
				}
			}
			sAt := <-servedAt
			served, ready, gap = append(served, sAt.Sub(start)), append(ready, readyAt.Sub(start)), append(gap, readyAt.Sub(sAt))
		}
	}
	b.StopTimer()
	for _, s := range [][]time.Duration{served, ready, gap} {
		slices.Sort(s)
	}
	b.ReportMetric(ms(percentile(served, 0.99)), "served-p99-ms")
	b.ReportMetric(ms(percentile(ready, 0.99)), "ready-p99-ms")
	b.ReportMetric(ms(percentile(gap, 0.50)), "gap-p50-ms")
	b.ReportMetric(ms(percentile(gap, 0.99)), "gap-p99-ms")
	for _, s := range []struct {
		name string
		d    []time.Duration
	}{{"edit → served", served}, {"edit → Ready", ready}, {"Ready − served", gap}} {
		b.Logf("%s over %d edits: p50 %v, p95 %v, p99 %v, max %v", s.name, len(s.d),
			percentile(s.d, 0.50).Round(time.Millisecond), percentile(s.d, 0.95).Round(time.Millisecond),
			percentile(s.d, 0.99).Round(time.Millisecond), s.d[len(s.d)-1].Round(time.Millisecond))
	}
}
