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

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// Metrics of the manager, served with controller-runtime's on its metrics endpoint. The
// chart's PrometheusRule alerts on these names: keep them.
var (
	configApplyDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "plugin_operator_config_apply_duration_seconds",
		Help: "Time from the manager first rendering a new configuration revision of a running PluginHost " +
			"to every ready pod of the host reporting it applied. A host's first revision is not timed. " +
			"A rollout in flight while the manager restarts is timed by the next one from status.configRevisionTime " +
			"(to the second); one the previous manager saw complete in a reconcile whose status write was lost " +
			"to the restart is timed twice.",
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
	metrics.Registry.MustRegister(configApplyDuration, configRefused, stalePods, statusProbeErrors, configPushes)
}

// rolloutClock times configuration revisions for configApplyDuration. Its timers live in
// memory; status.configRevisionTime carries a revision's start across a manager restart
// (see newTimer).
type rolloutClock struct {
	mu    sync.Mutex
	hosts map[types.NamespacedName]revisionTimer
}

type revisionTimer struct {
	revision string
	since    time.Time
	// done: observed, or never to be (see newTimer).
	done bool
	// refused: a refusal of the revision was counted.
	refused bool
}

// priorRollout is what a host's status said of its rollout before a reconcile: what a
// manager that has no timer for the host (it just started) resumes from.
type priorRollout struct {
	// Revision and Applied are status.configRevision and status.appliedRevision.
	Revision, Applied string
	// ReadyApplied: status.pods lists a ready pod, and every ready pod there runs Revision.
	ReadyApplied bool
	// RefusalCounted: a pod in status.pods refused Revision, and that was counted then.
	RefusalCounted bool
}

// priorRolloutOf reads a priorRollout from a host's status.
func priorRolloutOf(st *v1alpha1.PluginHostStatus) priorRollout {
	p := priorRollout{Revision: st.ConfigRevision, Applied: st.AppliedRevision}
	ready, stale := 0, 0
	for _, pod := range st.Pods {
		p.RefusalCounted = p.RefusalCounted || pod.LastReloadError != ""
		if pod.Ready {
			ready++
			if pod.AppliedRevision != st.ConfigRevision {
				stale++
			}
		}
	}
	p.ReadyApplied = st.ConfigRevision != "" && ready > 0 && stale == 0
	return p
}

// newTimer starts the timer of revision desired for a host that this manager has no timer
// of that revision for. renderedAt is status.configRevisionTime as this reconcile leaves it.
//
// A revision rendered in this reconcile (the status held another) is timed from then,
// unless it is the host's first (it would time pod start-up, not a change).
//
// One found in the status was rendered earlier, by a manager that stopped (or by this one
// in a reconcile that read no pods). It is timed from configRevisionTime if the status
// shows its rollout under way: not when appliedRevision is already desired, nor when every
// ready pod listed in status.pods ran it (the previous manager timed it then, though a pod
// that is not ready may still hold appliedRevision back), nor when no revision was ever
// applied (the status cannot tell a host's first revision; this also leaves untimed a second
// revision rendered before any pod applied the first, which the in-memory rule times), nor
// when configRevisionTime is unset (rendered by an operator that did not record it). Two
// windows remain. Double: the previous manager observed the rollout in a reconcile whose
// status write did not land before it stopped; this manager times it again, from the same
// start (the first sample is lost anyway unless Prometheus scraped it before the process
// ended). Miss: the last status written showed every ready pod running desired while the
// previous manager could not read the /status of a pod that was Ready (listed not ready),
// so neither manager times it. (A rendering whose status write was lost counts as rendered
// by the next manager, which times it from then: short by the restart.)
func newTimer(prior priorRollout, desired string, renderedAt, now time.Time) revisionTimer {
	t := revisionTimer{revision: desired, since: renderedAt}
	if renderedAt.IsZero() {
		t.since = now
	}
	if prior.Revision != desired {
		t.done = prior.Revision == ""
		return t
	}
	t.done = renderedAt.IsZero() || prior.Applied == "" || prior.Applied == desired || prior.ReadyApplied
	return t
}

// renderedAt returns when this manager first rendered revision rev of host key: when it
// started a timer for it, or now.
func (c *rolloutClock) renderedAt(key types.NamespacedName, rev string, now time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.hosts[key]; ok && t.revision == rev {
		return t.since
	}
	return now
}

// observeRollout records what one reconcile of a host learned: prior is what the host's
// status said before the reconcile, renderedAt its configRevisionTime after it (zero if
// unset), f the facts with the pods read.
func (c *rolloutClock) observeRollout(key types.NamespacedName, prior priorRollout, renderedAt time.Time, f hostFacts, now time.Time) {
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
		t = newTimer(prior, f.DesiredRevision, renderedAt, now)
	}
	// Counted once per revision: remembered here, and in the status for a new manager (the
	// cache may not show this manager's last status write yet, so both are needed).
	refusalCounted := prior.RefusalCounted && prior.Revision == f.DesiredRevision
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
