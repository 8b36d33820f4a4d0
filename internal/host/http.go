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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hotreload/plugin-operator/internal/hostapi"
	"github.com/hotreload/plugin-operator/pkg/plugin"
)

// Handler returns the host's whole HTTP API on one listener: the plugins' API, the health
// checks and the operational endpoints (/status, /types, /plugins, /metrics, PUT /config). This is what the
// pluginhost command serves when it is given no --ops-addr.
func (h *Host) Handler() http.Handler {
	mux := http.NewServeMux()
	h.apiRoutes(mux, "see /plugins, /types, /status, /metrics")
	h.opsRoutes(mux)
	return h.withPluginPath(mux)
}

// APIHandler serves the plugins' API (/plugins/{name}/{operation}) and the health checks
// only: the listener that clients reach when the operational endpoints have a listener of
// their own (OpsHandler). They are left out here because they tell anyone who can reach the
// Service every plugin's name, configuration revision and request counts.
func (h *Host) APIHandler() http.Handler {
	mux := http.NewServeMux()
	h.apiRoutes(mux, "/status, /types, /plugins, /metrics and /config are served on the operations listener (--ops-addr) only")
	for _, p := range []string{"/status", "/types", "/plugins", "/metrics", hostapi.ConfigPath} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("%s is served on the operations listener (--ops-addr), not on the plugins' API", r.URL.Path))
		})
	}
	return h.withPluginPath(mux)
}

// OpsHandler serves the operational endpoints (/status, /types, /plugins, /metrics, PUT
// /config) and the health checks, for the operator and monitoring; it serves no plugin
// operation.
func (h *Host) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	h.healthRoutes(mux)
	h.opsRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint %q on the operations listener; it serves /status, /types, /plugins, /metrics, /config, /healthz and /readyz", r.URL.Path))
	})
	return mux
}

// withPluginPath routes /plugins/{name}/{op} before mux: the hot path skips ServeMux, whose
// pattern matching allocates per request.
func (h *Host) withPluginPath(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/plugins/") {
			h.servePlugin(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// apiRoutes are the plugins' API and the health checks; notFound ends the 404 message.
func (h *Host) apiRoutes(mux *http.ServeMux, notFound string) {
	mux.HandleFunc("/plugins/", h.servePlugin) // /plugins/{name}/{op}; withPluginPath routes it first
	h.healthRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint %q; %s", r.URL.Path, notFound))
	})
}

func (h *Host) healthRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeText(w, http.StatusOK, "ok") })
	mux.HandleFunc("GET /readyz", h.serveReady)
}

// opsRoutes are the operational endpoints.
func (h *Host) opsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /plugins", h.serveList)
	mux.HandleFunc("GET /status", h.serveStatus)
	mux.HandleFunc("GET /types", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, h.TypesDocument()) })
	mux.Handle("GET /metrics", h.opts.Metrics.Handler())
	mux.HandleFunc(hostapi.ConfigPath, h.servePush) // PUT only; other methods get 405 there
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// servePlugin serves /plugins/{name}/{op}: an operation of the plugin's type.
func (h *Host) servePlugin(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	gen := h.current.Load()
	if gen == nil {
		h.opts.Metrics.unrouted(http.StatusServiceUnavailable)
		if lock := h.waitingFor(); lock != "" {
			writeError(w, http.StatusServiceUnavailable, waitingMessage(lock)+"; plugins are served once it is released and their saved state is restored; see /status")
			return
		}
		writeError(w, http.StatusServiceUnavailable, "no configuration applied yet; see /status")
		return
	}
	name, op, ok := splitPluginPath(r.URL.Path)
	if !ok {
		h.opts.Metrics.unrouted(http.StatusNotFound)
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint %q; plugin operations are /plugins/{name}/{operation}", r.URL.Path))
		return
	}
	e := gen.entries[name]
	if e == nil {
		if au := gen.unknownAuth; au != nil {
			// Some plugin has auth: an unknown name gets the answer a known one gets without
			// credentials, so that plugin names cannot be probed anonymously.
			h.opts.Metrics.unrouted(http.StatusUnauthorized)
			unauthorized(w, name, au)
			return
		}
		h.opts.Metrics.unrouted(http.StatusNotFound)
		writeError(w, http.StatusNotFound, fmt.Sprintf("plugin %q not found", name))
		return
	}
	rt := e.route(op)
	if e.auth != nil && !e.auth.allow(r) {
		// Before the operation and the method: without credentials a client learns nothing of
		// the plugin, not even its type's operations.
		code := unauthorized(w, e.name, e.auth)
		if rt != nil {
			rt.metrics.observe(code, time.Since(start))
		} else {
			h.opts.Metrics.unrouted(code)
		}
		return
	}
	if rt == nil {
		h.opts.Metrics.unrouted(http.StatusNotFound)
		writeError(w, http.StatusNotFound, fmt.Sprintf("plugin %q (type %s) has no operation %q; operations: %s", name, e.spec.Type, op, e.allowed))
		return
	}
	code := h.serveOperation(w, r, e, rt)
	rt.metrics.observe(code, time.Since(start))
}

// unauthorized answers 401 for plugin name, whose auth is au.
func unauthorized(w http.ResponseWriter, name string, au *authenticator) int {
	w.Header()["Www-Authenticate"] = au.challenge
	return writeError(w, http.StatusUnauthorized, fmt.Sprintf("plugin %q requires %s authentication", name, au.method))
}

// splitPluginPath splits /plugins/{name}/{op}.
func splitPluginPath(p string) (name, op string, ok bool) {
	rest, ok := strings.CutPrefix(p, "/plugins/")
	if !ok {
		return "", "", false
	}
	name, op, ok = strings.Cut(rest, "/")
	if !ok || name == "" || op == "" || strings.IndexByte(op, '/') >= 0 {
		return "", "", false
	}
	return name, op, true
}

// serveOperation runs one routed request and returns the status it wrote.
func (h *Host) serveOperation(w http.ResponseWriter, r *http.Request, e *entry, rt *route) int {
	if r.Method != rt.op.Method {
		w.Header()["Allow"] = rt.allow
		return writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s /plugins/%s/%s: method not allowed, use %s", r.Method, e.name, rt.op.Name, rt.op.Method))
	}
	if !e.enabled {
		return writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("plugin %q is disabled in the configuration (enabled: false); its state is kept", e.name))
	}
	slots := e.slots
	select {
	case slots <- struct{}{}:
	default:
		if !waitSlot(slots, e.spec.Connection.ConnectionTimeout.D()) {
			w.Header()["Retry-After"] = hdrRetry
			return writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("plugin %q is at max_connections (%d) and no slot freed within connection_timeout (%s)", e.name, cap(slots), e.spec.Connection.ConnectionTimeout))
		}
	}
	defer func() { <-slots }()
	if !e.spec.Connection.KeepAliveEnabled() {
		w.Header()["Connection"] = hdrClose
	}

	// One pooled buffer holds the body and, after it, the type's answer (Request.Buf).
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	req := plugin.Request{Operation: rt.op.Name, RawQuery: r.URL.RawQuery}
	if r.Method == http.MethodPost {
		// request_timeout bounds reading the body, so a slow client cannot hold a slot.
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(e.spec.Connection.RequestTimeout.D()))
		body, status, err := h.readBody(r, (*bp)[:0])
		*bp = body[:0]
		if err != nil {
			return writeError(w, status, err.Error())
		}
		req.Body = body
	}
	req.Buf = (*bp)[len(req.Body):len(req.Body)]
	resp, err := e.inst.Execute(r.Context(), req)
	if rt.op.Mutating {
		h.markStateChanged() // whatever the outcome: a failed operation may have written too
	}
	if err != nil {
		return writeError(w, plugin.StatusOf(err), err.Error())
	}
	setJSON(w)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp.Body)
	return http.StatusOK
}

func waitSlot(slots chan struct{}, timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

// readBody reads a POST body into buf: JSON (or no Content-Type), at most MaxBodyBytes.
func (h *Host) readBody(r *http.Request, buf []byte) ([]byte, int, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			// The value is not echoed: error bodies never repeat what a client sent in headers.
			return buf, http.StatusUnsupportedMediaType, errors.New("the Content-Type header is not supported; send application/json")
		}
	}
	limit := h.opts.MaxBodyBytes
	if r.ContentLength > limit {
		return buf, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is %d bytes, over the %d-byte limit", r.ContentLength, limit)
	}
	buf, err := readAtMost(buf, r.Body, limit)
	switch {
	case errors.Is(err, errTooLarge):
		return buf, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is over the %d-byte limit", limit)
	case err != nil:
		return buf, http.StatusRequestTimeout, fmt.Errorf("reading request body: %v", err)
	}
	return buf, 0, nil
}

var errTooLarge = errors.New("body too large")

// readAtMost appends r to buf, failing once more than limit bytes arrive.
func readAtMost(buf []byte, r io.Reader, limit int64) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return buf, errTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

type errorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// writeError is the one place error responses are written.
func writeError(w http.ResponseWriter, status int, msg string) int {
	setJSON(w)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: msg, Status: status})
	return status
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	setJSON(w)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeText(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, s+"\n")
}

func (h *Host) serveReady(w http.ResponseWriter, _ *http.Request) {
	lock := h.waitingFor()
	switch {
	case h.draining.Load():
		writeText(w, http.StatusServiceUnavailable, "draining")
	case lock != "":
		writeText(w, http.StatusServiceUnavailable, waitingMessage(lock))
	case h.current.Load() == nil:
		writeText(w, http.StatusServiceUnavailable, "no configuration applied yet; see /status")
	default:
		writeText(w, http.StatusOK, "ok")
	}
}

// waitingMessage says why a host waiting for the state dir lock serves nothing yet.
func waitingMessage(lock string) string {
	return fmt.Sprintf("waiting for the state directory lock %s, held by another pluginhost (the pod being replaced, which saves its final snapshot before it exits)", lock)
}

func (h *Host) serveList(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.Status().Plugins)
}
