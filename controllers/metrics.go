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

package controllers

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics of the manager, served with controller-runtime's on its metrics endpoint. The
// chart's PrometheusRule alerts on these names: keep them.
var (
	configApplyDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "plugin_operator_config_apply_duration_seconds",
		Help: "Time from the manager first rendering a new configuration revision of a running PluginHost " +
			"to every ready pod of the host reporting it applied. A host's first revision is not timed.",
		// A change lands within the host's poll interval (250ms) plus the kubelet's volume
		// sync (about 1s with the nudge, up to a minute or more without it).
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 90, 120, 300},
	})
	configRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plugin_operator_config_refused_total",
		Help: "Configuration revisions that a pod of the PluginHost refused (each revision counted once).",
	}, []string{"namespace", "pluginhost"})
	stalePods = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "plugin_operator_pluginhost_stale_pods",
		Help: "Running pods of the PluginHost that do not (yet) serve its desired configuration revision.",
	}, []string{"namespace", "pluginhost"})
	statusProbeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plugin_operator_status_probe_errors_total",
		Help: "Failed reads of GET /status from running pods of the PluginHost.",
	}, []string{"namespace", "pluginhost"})
)

func init() {
	metrics.Registry.MustRegister(configApplyDuration, configRefused, stalePods, statusProbeErrors)
}

// rolloutClock times configuration revisions for configApplyDuration. It lives in memory:
// a revision in flight while the manager restarts is not timed.
type rolloutClock struct {
	mu    sync.Mutex
	hosts map[types.NamespacedName]revisionTimer
}

type revisionTimer struct {
	revision string
	since    time.Time
	// done: observed, or never to be (a first revision, or one seen after a restart).
	done bool
	// refused: a refusal of the revision was counted.
	refused bool
}

// observeRollout records what one reconcile of a host learned: prev is the revision the
// host's status held before the reconcile, refusalCounted whether that status already
// reported a pod refusing it, f the facts with the pods read.
func (c *rolloutClock) observeRollout(key types.NamespacedName, prev string, refusalCounted bool, f hostFacts, now time.Time) {
	labels := prometheus.Labels{"namespace": key.Namespace, "pluginhost": key.Name}
	stale := 0
	for _, p := range f.Running {
		if p.Err != nil || p.Applied != f.DesiredRevision {
			stale++
		}
	}
	stalePods.With(labels).Set(float64(stale))

	if f.DesiredRevision == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hosts == nil {
		c.hosts = map[types.NamespacedName]revisionTimer{}
	}
	t, ok := c.hosts[key]
	if !ok || t.revision != f.DesiredRevision {
		// Timed only when this manager rendered it, for a host that ran a revision before.
		t = revisionTimer{revision: f.DesiredRevision, since: now, done: prev == f.DesiredRevision || prev == ""}
	}
	// Counted once per revision: remembered here, and in the status for a new manager (the
	// cache may not show this manager's last status write yet, so both are needed).
	if !t.refused && !refusalCounted && f.refused() {
		configRefused.With(labels).Inc()
	}
	t.refused = t.refused || refusalCounted || f.refused()
	if !t.done && allReadyApplied(f) {
		configApplyDuration.Observe(now.Sub(t.since).Seconds())
		t.done = true
	}
	c.hosts[key] = t
}

// refused reports whether a running pod refused the desired revision.
func (f hostFacts) refused() bool {
	for _, p := range f.Running {
		if p.Refused != "" {
			return true
		}
	}
	return false
}

// allReadyApplied reports whether at least one ready pod runs and every ready pod reports
// the desired revision applied.
func allReadyApplied(f hostFacts) bool {
	ready := 0
	for _, p := range f.Running {
		if !p.Ready {
			continue
		}
		if p.Err != nil || p.Applied != f.DesiredRevision {
			return false
		}
		ready++
	}
	return ready > 0
}

// forgetHost drops a deleted host's timer and series.
func (c *rolloutClock) forgetHost(key types.NamespacedName) {
	c.mu.Lock()
	delete(c.hosts, key)
	c.mu.Unlock()
	labels := prometheus.Labels{"namespace": key.Namespace, "pluginhost": key.Name}
	configRefused.Delete(labels)
	stalePods.Delete(labels)
	statusProbeErrors.Delete(labels)
}
