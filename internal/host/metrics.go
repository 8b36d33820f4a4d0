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

package host

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the host's Prometheus metrics, in a registry of their own.
type Metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	reloads      *prometheus.CounterVec
	configInfo   *prometheus.GaugeVec
	lastReloadOK prometheus.Gauge
	lastReloadTS *prometheus.GaugeVec
	plugins      *prometheus.GaugeVec
	snapshots    *prometheus.CounterVec
	noticed      *prometheus.CounterVec
	pushes       *prometheus.CounterVec

	auditRecords  *prometheus.CounterVec
	auditErrors   prometheus.Counter
	auditSequence prometheus.Gauge
	auditBroken   prometheus.Gauge
	argus         *argusCollector

	// routes caches each plugin operation's resolved series so that applying a config
	// resolves only the plugins it adds (guarded by routesMu; written when a config is
	// committed, never for a refused one).
	routesMu sync.Mutex
	routes   map[[2]string]*routeMetrics
}

// NewMetrics registers the host's metrics in reg (a new registry with Go and process
// collectors when nil).
func NewMetrics(reg *prometheus.Registry) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &Metrics{
		reg:    reg,
		routes: map[[2]string]*routeMetrics{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pluginhost_requests_total", Help: "Plugin API requests by plugin, operation and HTTP status code.",
		}, []string{"plugin", "operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pluginhost_request_duration_seconds", Help: "Time to serve plugin API requests, from routing to the response.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05, .1, 1},
		}, []string{"plugin", "operation"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pluginhost_config_reloads_total", Help: "Config changes seen, by result (applied or refused).",
		}, []string{"result"}),
		configInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pluginhost_config_info", Help: "The applied config revision (value 1).",
		}, []string{"revision"}),
		lastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pluginhost_config_last_reload_successful", Help: "1 when the last config change was applied, 0 when it was refused.",
		}),
		lastReloadTS: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pluginhost_config_last_reload_timestamp_seconds", Help: "Unix time of the last config change, by result.",
		}, []string{"result"}),
		plugins: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pluginhost_plugins", Help: "Plugins in the applied config, by state (enabled or disabled).",
		}, []string{"state"}),
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pluginhost_state_snapshots_total", Help: "State snapshots written to the state dir, by result (ok or error).",
		}, []string{"result"}),
		auditRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pluginhost_audit_records_total", Help: "Records appended to the audit trail, by kind (config or credentials; genesis and break records at start are not counted).",
		}, []string{"kind"}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pluginhost_audit_write_errors_total", Help: "Audit records that could not be written.",
		}),
		auditSequence: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pluginhost_audit_sequence", Help: "Sequence of the audit trail's last record (0 without a trail).",
		}),
		auditBroken: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pluginhost_audit_chain_broken", Help: "1 when verifying the audit trail at start found a break (see /status audit.broken), else 0.",
		}),
		argus: &argusCollector{},
		noticed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pluginhost_config_changes_applied_total",
			Help: "Config changes applied, by what noticed them: poll (Argus), awaited (kubelet's ..data link, looked at often while a /status long-poll is held), recheck, or push (PUT /config).",
		}, []string{"noticed_by"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pluginhost_config_pushes_total",
			Help: "PUT /config requests by result: applied, unchanged (already applied), stale (older than the applied sequence), refused (does not apply; the config file decides), unauthorized, invalid (method, sequence, size) or unavailable (no token file, no config applied yet).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.requests, m.duration, m.reloads, m.configInfo, m.lastReloadOK, m.lastReloadTS, m.plugins, m.snapshots,
		m.auditRecords, m.auditErrors, m.auditSequence, m.auditBroken, m.argus, m.noticed, m.pushes)
	for _, k := range []string{"config", "credentials"} {
		m.auditRecords.WithLabelValues(k)
	}
	for _, r := range []string{ReloadApplied, ReloadRefused} {
		m.reloads.WithLabelValues(r)
	}
	for _, by := range []string{NoticedByPoll, NoticedByAwaited, NoticedByRecheck, NoticedByPush} {
		m.noticed.WithLabelValues(by)
	}
	for _, r := range []string{PushApplied, PushUnchanged, PushStale, PushRefused, PushUnauthorized, PushInvalid, PushUnavailable} {
		m.pushes.WithLabelValues(r)
	}
	return m
}

// What noticed a config change the watch applied (pluginhost_config_changes_applied_total).
const (
	NoticedByPoll    = "poll"
	NoticedByAwaited = "awaited"
	NoticedByRecheck = "recheck"
	NoticedByPush    = "push"
)

// pushed counts one PUT /config by result.
func (m *Metrics) pushed(result string) {
	if m != nil {
		m.pushes.WithLabelValues(result).Inc()
	}
}

// changeApplied counts a config change the watch applied, by what noticed it.
func (m *Metrics) changeApplied(by string) {
	if m != nil {
		m.noticed.WithLabelValues(by).Inc()
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry exposes the registry (tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Status codes whose counters are resolved ahead, so the request path does not build
// label strings.
var knownCodes = [...]int{200, 400, 401, 404, 405, 408, 409, 413, 415, 422, 429, 500, 503}

// routeMetrics are one plugin operation's series, resolved at apply time.
type routeMetrics struct {
	plugin, op string
	m          *Metrics
	byCode     [len(knownCodes)]prometheus.Counter
	latency    prometheus.Observer
}

func (m *Metrics) forRoute(plugin, op string) *routeMetrics {
	m.routesMu.Lock()
	defer m.routesMu.Unlock()
	if rm, ok := m.routes[[2]string{plugin, op}]; ok {
		return rm
	}
	rm := &routeMetrics{plugin: plugin, op: op, m: m, latency: m.duration.WithLabelValues(plugin, op)}
	for i, c := range knownCodes {
		rm.byCode[i] = m.requests.WithLabelValues(plugin, op, strconv.Itoa(c))
	}
	m.routes[[2]string{plugin, op}] = rm
	return rm
}

func (rm *routeMetrics) observe(code int, d time.Duration) {
	rm.latency.Observe(d.Seconds())
	for i, c := range knownCodes {
		if c == code {
			rm.byCode[i].Inc()
			return
		}
	}
	rm.m.requests.WithLabelValues(rm.plugin, rm.op, strconv.Itoa(code)).Inc()
}

// unrouted counts requests for unknown plugins or operations under one label value, so
// that arbitrary names in URLs cannot create series.
func (m *Metrics) unrouted(code int) {
	m.requests.WithLabelValues("", "", strconv.Itoa(code)).Inc()
}

// forgetRoute drops the series of a plugin operation the applied config no longer has (the
// plugin was removed or changed type).
func (m *Metrics) forgetRoute(plugin, op string) {
	m.routesMu.Lock()
	delete(m.routes, [2]string{plugin, op})
	m.routesMu.Unlock()
	m.requests.DeletePartialMatch(prometheus.Labels{"plugin": plugin, "operation": op})
	m.duration.DeleteLabelValues(plugin, op)
}

func (m *Metrics) reloaded(result, rev, prevRev string, g *appliedConfig) {
	m.reloads.WithLabelValues(result).Inc()
	m.lastReloadTS.WithLabelValues(result).SetToCurrentTime()
	if result != ReloadApplied {
		m.lastReloadOK.Set(0)
		return
	}
	m.lastReloadOK.Set(1)
	if prevRev != "" {
		m.configInfo.DeleteLabelValues(prevRev)
	}
	m.configInfo.WithLabelValues(rev).Set(1)
	var on, off float64
	for _, e := range g.entries {
		if e.enabled {
			on++
		} else {
			off++
		}
	}
	m.plugins.WithLabelValues("enabled").Set(on)
	m.plugins.WithLabelValues("disabled").Set(off)
}

func (m *Metrics) snapshot(err error) {
	if err != nil {
		m.snapshots.WithLabelValues("error").Inc()
		return
	}
	m.snapshots.WithLabelValues("ok").Inc()
}

func (m *Metrics) audited(kind string, seq uint64, err error) {
	if err != nil {
		m.auditErrors.Inc()
		return
	}
	m.auditRecords.WithLabelValues(kind).Inc()
	m.auditSequence.Set(float64(seq))
}

func (m *Metrics) auditOpened(a *Audit) {
	st := a.Status()
	if st == nil {
		return
	}
	m.auditSequence.Set(float64(st.Sequence))
	if st.Broken != nil {
		m.auditBroken.Set(1)
	} else {
		m.auditBroken.Set(0)
	}
}

func (m *Metrics) watchFrom(h *Host) { m.argus.host.Store(h) }

// argusCollector exports Argus' view of the watch (Settings.Explain) at each scrape, so
// that nothing runs between scrapes.
type argusCollector struct {
	host atomic.Pointer[Host]
}

var (
	argusRevisionDesc = prometheus.NewDesc("pluginhost_argus_revision", "Argus' revision of the watched config: changes it committed since the watch started.", nil, nil)
	argusInfoDesc     = prometheus.NewDesc("pluginhost_argus_info", "Argus' digest of its current revision and its change backend (value 1).", []string{"digest", "backend"}, nil)
	argusDocsDesc     = prometheus.NewDesc("pluginhost_argus_documents", "Config documents Argus holds.", nil, nil)
	argusBytesDesc    = prometheus.NewDesc("pluginhost_argus_document_bytes", "Bytes of the config documents Argus holds.", nil, nil)
	argusRefusedDesc  = prometheus.NewDesc("pluginhost_argus_refused_cycles", "Consecutive watch cycles Argus refused (0 once one succeeds).", nil, nil)
	argusReportsDesc  = prometheus.NewDesc("pluginhost_argus_reports_total", "Argus' reports to the host, by kind: change (the config changed) or error (it could not be read).", []string{"kind"}, nil)
)

func (c *argusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{argusRevisionDesc, argusInfoDesc, argusDocsDesc, argusBytesDesc, argusRefusedDesc, argusReportsDesc} {
		ch <- d
	}
}

func (c *argusCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.host.Load()
	if h == nil {
		return
	}
	w := h.WatchStatus()
	if w == nil {
		return
	}
	refused := 0
	if w.LastRefusal != nil {
		refused = w.LastRefusal.Cycles
	}
	ch <- prometheus.MustNewConstMetric(argusRevisionDesc, prometheus.GaugeValue, float64(w.Revision))
	ch <- prometheus.MustNewConstMetric(argusInfoDesc, prometheus.GaugeValue, 1, w.Digest, w.Backend)
	ch <- prometheus.MustNewConstMetric(argusDocsDesc, prometheus.GaugeValue, float64(w.Documents))
	ch <- prometheus.MustNewConstMetric(argusBytesDesc, prometheus.GaugeValue, float64(w.DocumentBytes))
	ch <- prometheus.MustNewConstMetric(argusRefusedDesc, prometheus.GaugeValue, float64(refused))
	ch <- prometheus.MustNewConstMetric(argusReportsDesc, prometheus.CounterValue, float64(w.Changes), "change")
	ch <- prometheus.MustNewConstMetric(argusReportsDesc, prometheus.CounterValue, float64(w.Errors), "error")
}
