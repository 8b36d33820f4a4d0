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
	"testing"

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
var operatorResources = []string{"plugins", "pluginhosts", "configmaps", "secrets", "deployments", "services",
	"networkpolicies", "poddisruptionbudgets", "persistentvolumeclaims", "pods", "events"}

// readyCounter follows the Plugins of a namespace with a watch and counts those Ready for
// their generation, updating the count per event (never recounting). When the API server
// ends the watch, it lists and watches again from the list's resourceVersion.
type readyCounter struct {
	c     client.WithWatch
	ns    string
	ready map[string]bool
	n     int
	rv    string
	w     watch.Interface
	// rewatches counts the watches that ended and were established again.
	rewatches int
}

func newReadyCounter(t testing.TB, c client.WithWatch, ns string) *readyCounter {
	t.Helper()
	r := &readyCounter{c: c, ns: ns, ready: map[string]bool{}}
	r.relist(t)
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
func (r *readyCounter) relist(t testing.TB) {
	t.Helper()
	list := &v1alpha1.PluginList{}
	if err := r.c.List(context.Background(), list, client.InNamespace(r.ns)); err != nil {
		t.Fatalf("listing Plugins: %v", err)
	}
	r.ready, r.n = map[string]bool{}, 0
	for i := range list.Items {
		r.observe(&list.Items[i], false)
	}
	r.rv = list.ResourceVersion
	r.watch(t)
}

func (r *readyCounter) watch(t testing.TB) {
	t.Helper()
	w, err := r.c.Watch(context.Background(), &v1alpha1.PluginList{}, client.InNamespace(r.ns),
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: r.rv}})
	if err != nil {
		t.Fatalf("watching Plugins: %v", err)
	}
	r.w = w
}

// handle applies one event of the watch's channel (ok false: the channel closed).
func (r *readyCounter) handle(t testing.TB, ev watch.Event, ok bool) {
	t.Helper()
	if !ok {
		r.rewatches++
		r.watch(t) // from the last event's resourceVersion
		return
	}
	p, isPlugin := ev.Object.(*v1alpha1.Plugin)
	if !isPlugin {
		// An error (the resourceVersion is too old): start again from a list.
		r.w.Stop()
		r.rewatches++
		r.relist(t)
		return
	}
	r.rv = p.ResourceVersion
	r.observe(p, ev.Type == watch.Deleted)
}

func (r *readyCounter) stop() {
	if r.w != nil {
		r.w.Stop()
	}
}
