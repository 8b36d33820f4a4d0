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
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// writeVerbs are the verbs of apiserver_request_total that change something.
var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "APPLY": true, "DELETE": true, "DELETECOLLECTION": true}

// apiWrites is a count of write requests by "VERB resource[/subresource]", as the API server
// itself counts them.
type apiWrites map[string]float64

// readAPIWrites scrapes the envtest kube-apiserver's /metrics (as an administrator) and sums
// apiserver_request_total of the write verbs by verb, resource and subresource, over every
// response code. The API server counts the requests of every client (and its own): take the
// difference of two reads around the phase of interest (sub).
func readAPIWrites(t testing.TB) apiWrites {
	t.Helper()
	rc, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rc.Get(strings.TrimSuffix(env.Config.Host, "/") + "/metrics")
	if err != nil {
		t.Fatalf("scraping the API server's metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scraping the API server's metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the API server's metrics: %v", err)
	}
	w := apiWrites{}
	f := families["apiserver_request_total"]
	if f == nil {
		t.Fatal("the API server reports no apiserver_request_total")
	}
	for _, m := range f.GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		if !writeVerbs[l["verb"]] || l["dry_run"] != "" {
			continue
		}
		key := l["verb"] + " " + l["resource"]
		if l["subresource"] != "" {
			key += "/" + l["subresource"]
		}
		w[key] += m.GetCounter().GetValue()
	}
	return w
}

// sub returns w − before, without the keys that did not change.
func (w apiWrites) sub(before apiWrites) apiWrites {
	d := apiWrites{}
	for k, v := range w {
		if n := v - before[k]; n != 0 {
			d[k] = n
		}
	}
	return d
}

// total adds up the writes whose resource is in resources (all when empty).
func (w apiWrites) total(resources ...string) float64 {
	sum := 0.0
	for k, v := range w {
		_, res, _ := strings.Cut(k, " ")
		res, _, _ = strings.Cut(res, "/")
		if len(resources) == 0 || slices.Contains(resources, res) {
			sum += v
		}
	}
	return sum
}

// of returns the writes whose resource is in resources.
func (w apiWrites) of(resources []string) apiWrites {
	out := apiWrites{}
	for k, v := range w {
		_, res, _ := strings.Cut(k, " ")
		res, _, _ = strings.Cut(res, "/")
		if slices.Contains(resources, res) {
			out[k] = v
		}
	}
	return out
}

func (w apiWrites) String() string {
	if len(w) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(w)) {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, w[k]))
	}
	return strings.Join(parts, ", ")
}

// operatorResources are the resources the manager writes: Plugin and PluginHost status, the
// children, pod annotations and events. (The API server's own leases are not among them.)
var operatorResources = []string{"plugins", "pluginhosts", "configmaps", "secrets", "deployments", "services", "controllerrevisions",
	"networkpolicies", "poddisruptionbudgets", "persistentvolumeclaims", "pods", "events"}

// readyCounter follows the Plugins of a namespace with a watch, from its creation on and in
// a goroutine of its own, and counts those Ready for their generation, updating the count per
// event (never recounting). It reads its watch all along: a watch read only after the
// Plugins' creates made the API server buffer their events, end the watch and serve a list of
// every Plugin again, load that is the benchmark's, not the manager's. When the API server
// ends the watch, it lists and watches again from the list's resourceVersion.
type readyCounter struct {
	c    client.WithWatch
	ns   string
	done chan struct{}

	mu    sync.Mutex
	ready map[string]bool
	n     int
	// reached is when the count last changed to each value (waitFor); counted is the count
	// it was last recorded at.
	reached map[int]time.Time
	counted int
	err     error
	// rewatches counts the watches that ended and were established again.
	rewatches int
	changed   chan struct{}
}

func newReadyCounter(t testing.TB, c client.WithWatch, ns string) *readyCounter {
	t.Helper()
	r := &readyCounter{c: c, ns: ns, ready: map[string]bool{}, reached: map[int]time.Time{}, done: make(chan struct{}), changed: make(chan struct{})}
	w, rv, err := r.relist()
	if err != nil {
		t.Fatal(err)
	}
	go r.follow(w, rv)
	return r
}

func (r *readyCounter) observe(p *v1alpha1.Plugin, deleted bool) {
	cnd := pluginReadyCondition(p)
	now := !deleted && cnd
	if now != r.ready[p.Name] {
		if now {
			r.n++
		} else {
			r.n--
		}
	}
	if deleted {
		delete(r.ready, p.Name)
	} else {
		r.ready[p.Name] = now
	}
}

func pluginReadyCondition(p *v1alpha1.Plugin) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			return c.Status == metav1.ConditionTrue && c.ObservedGeneration == p.Generation
		}
	}
	return false
}

// relist lists the Plugins, recounts from the list, and watches from its resourceVersion.
func (r *readyCounter) relist() (watch.Interface, string, error) {
	list := &v1alpha1.PluginList{}
	if err := r.c.List(context.Background(), list, client.InNamespace(r.ns)); err != nil {
		return nil, "", fmt.Errorf("listing Plugins: %w", err)
	}
	r.mu.Lock()
	r.ready, r.n = map[string]bool{}, 0
	for i := range list.Items {
		r.observe(&list.Items[i], false)
	}
	r.notifyLocked()
	r.mu.Unlock()
	w, err := r.watchFrom(list.ResourceVersion)
	return w, list.ResourceVersion, err
}

func (r *readyCounter) watchFrom(rv string) (watch.Interface, error) {
	w, err := r.c.Watch(context.Background(), &v1alpha1.PluginList{}, client.InNamespace(r.ns),
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv}})
	if err != nil {
		return nil, fmt.Errorf("watching Plugins: %w", err)
	}
	return w, nil
}

// follow applies the watch's events until stop.
func (r *readyCounter) follow(w watch.Interface, rv string) {
	defer func() { w.Stop() }()
	fail := func(err error) {
		r.mu.Lock()
		r.err = err
		r.notifyLocked()
		r.mu.Unlock()
	}
	for {
		select {
		case <-r.done:
			return
		case ev, ok := <-w.ResultChan():
			var err error
			switch p, isPlugin := ev.Object.(*v1alpha1.Plugin); {
			case !ok: // the API server ended the watch: from the last event's resourceVersion
				r.mu.Lock()
				r.rewatches++
				r.mu.Unlock()
				w, err = r.watchFrom(rv)
			case !isPlugin: // an error (the resourceVersion is too old): start again from a list
				w.Stop()
				r.mu.Lock()
				r.rewatches++
				r.mu.Unlock()
				w, rv, err = r.relist()
			default:
				rv = p.ResourceVersion
				r.mu.Lock()
				r.observe(p, ev.Type == watch.Deleted)
				r.notifyLocked()
				r.mu.Unlock()
			}
			if err != nil {
				fail(err)
				return
			}
		}
	}
}

// notifyLocked records when the count changed to its value and wakes waitFor.
func (r *readyCounter) notifyLocked() {
	if _, ok := r.reached[r.n]; !ok || r.n != r.counted {
		r.reached[r.n], r.counted = time.Now(), r.n
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

// count returns the Plugins seen and those Ready now.
func (r *readyCounter) count() (seen, ready int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ready), r.n
}

// waitFor waits until n Plugins are Ready and returns when the watch counted n. tick,
// when not nil, is called every second meanwhile.
func (r *readyCounter) waitFor(t testing.TB, n int, timeout time.Duration, tick func()) time.Time {
	t.Helper()
	deadline := time.After(timeout)
	second := time.NewTicker(time.Second)
	defer second.Stop()
	for {
		r.mu.Lock()
		at, reached := r.reached[n]
		cur, err, changed := r.n, r.err, r.changed
		r.mu.Unlock()
		switch {
		case err != nil:
			t.Fatal(err)
		case reached && cur >= n:
			return at
		}
		select {
		case <-changed:
		case <-second.C:
			if tick != nil {
				tick()
			}
		case <-deadline:
			t.Fatalf("%d of %d Plugins Ready after %v", cur, n, timeout)
		}
	}
}

func (r *readyCounter) stop() {
	select {
	case <-r.done:
	default:
		close(r.done)
	}
}

func (r *readyCounter) rewatchCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rewatches
}
