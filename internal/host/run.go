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
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// RunOptions configure Run; pkg/pluginhost fills them from its flags and environment.
type RunOptions struct {
	// Registry holds the plugin types the host runs.
	Registry *Registry
	// Config is the config file, watched for changes.
	Config string
	// Listen is the HTTP listen address of the plugins' API.
	Listen string
	// OpsAddr is the listen address of the operational endpoints (/status, /plugins,
	// /metrics), which then leave Listen; "" serves everything on Listen.
	OpsAddr string
	// PollInterval is how often Argus checks the config file.
	PollInterval time.Duration
	// StateDir persists plugin state ("": state is lost at exit).
	StateDir string
	// SnapshotInterval is how long after a change state is saved: the most a crash can lose.
	SnapshotInterval time.Duration
	// AuditLog receives one JSON line per config change ("": none).
	AuditLog string
	// ShutdownTimeout bounds how long in-flight requests may take at shutdown.
	ShutdownTimeout time.Duration
	// MaxBodyBytes is the request body limit.
	MaxBodyBytes int64
	// Logger receives the host's logs.
	Logger *slog.Logger
	// Ready, if not nil, receives the bound address once the initial config is applied
	// (after the state dir lock and the restore, with StateDir).
	Ready func(addr string)
}

// Run is the pluginhost program: it listens, takes the state dir (waiting, and saying so on
// /readyz and /status, while another pluginhost holds it), restores the saved state, applies
// the config and serves until ctx ends (SIGTERM); then it drains in-flight requests, saves a
// final snapshot and returns nil. SIGTERM while it waits for the state dir returns nil at
// once and writes nothing.
func Run(ctx context.Context, f RunOptions) error {
	if f.PollInterval <= 0 || f.SnapshotInterval <= 0 {
		return fmt.Errorf("poll interval (%s) and snapshot interval (%s) must be positive", f.PollInterval, f.SnapshotInterval)
	}
	log := f.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	audit, err := OpenAudit(f.AuditLog)
	if err != nil {
		return err
	}
	defer func() { _ = audit.Close() }()

	h := New(Options{Registry: f.Registry, Logger: log, Audit: audit, MaxBodyBytes: f.MaxBodyBytes})

	// Listen before anything else, so that kubelet's probes are answered while the host
	// waits for the state dir: /healthz says the process is alive, /readyz and plugin
	// requests say what it waits for. No plugin exists until the config is applied below.
	ln, err := net.Listen("tcp", f.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", f.Listen, err)
	}
	newServer := func(handler http.Handler) *http.Server {
		return &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
	}
	srv := newServer(h.Handler())
	servers := []*http.Server{srv}
	listeners := []net.Listener{ln}
	opsAddr := ""
	if f.OpsAddr != "" {
		opsLn, err := net.Listen("tcp", f.OpsAddr)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("listening on %s (--ops-addr): %w", f.OpsAddr, err)
		}
		srv.Handler = h.APIHandler()
		servers = append(servers, newServer(h.OpsHandler()))
		listeners = append(listeners, opsLn)
		opsAddr = opsLn.Addr().String()
	}
	serveErr := make(chan error, len(servers))
	for i := range servers {
		go func() { serveErr <- servers[i].Serve(listeners[i]) }()
	}
	// abort closes the listeners when Run fails before it serves plugins.
	abort := func(err error) error {
		for _, srv := range servers {
			_ = srv.Close()
		}
		return err
	}
	log.Info("Listening", "addr", ln.Addr().String(), "opsAddr", opsAddr)

	var store *Store
	if f.StateDir != "" {
		unlock, err := LockStateDir(ctx, f.StateDir, log, func(lock string) { h.WaitingForLock(f.StateDir, lock) })
		if err != nil {
			if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
				return abort(err)
			}
			// SIGTERM while waiting: this process never owned the state, so it has nothing
			// to save and must not write over the holder's snapshot.
			log.Info("Shutting down while waiting for the state directory; no snapshot written: another pluginhost still holds it", "dir", f.StateDir)
			h.Drain()
			shutdownCtx, cancel := context.WithTimeout(context.Background(), f.ShutdownTimeout)
			defer cancel()
			for _, srv := range servers {
				_ = srv.Shutdown(shutdownCtx)
			}
			return nil
		}
		defer unlock() // after the final snapshot
		if store, err = NewStore(f.StateDir); err != nil {
			return abort(err)
		}
		if err := h.Restore(store); err != nil {
			return abort(err)
		}
		h.LockTaken()
	}
	src, err := NewConfigSource(h, f.Config)
	if err != nil {
		return abort(err)
	}
	if _, err := src.Load(); err != nil {
		log.Error("Initial config refused; serving nothing until the file is valid", "path", f.Config, "err", err)
	}
	// Logged once the initial config is applied: tests and tools that wait for this line
	// may send plugin requests at once.
	log.Info("Serving plugins", "addr", ln.Addr().String(), "opsAddr", opsAddr, "config", f.Config, "revision", h.Revision(), "poll", f.PollInterval, "stateDir", f.StateDir)
	if f.Ready != nil {
		f.Ready(ln.Addr().String())
	}

	watchCtx, stopWatch := context.WithCancel(context.Background())
	watchErr := make(chan error, 1)
	go func() { watchErr <- src.Watch(watchCtx, f.PollInterval) }()
	snapDone := make(chan struct{})
	go func() {
		defer close(snapDone)
		if store == nil {
			return
		}
		// A snapshot follows a change by SnapshotInterval, and a host whose state has not
		// changed does not wake up: each timer wake-up of an idle process costs CPU
		// (docs/performance.md, "Idle CPU"). Changes within one interval share a snapshot.
		for {
			select {
			case <-watchCtx.Done():
				return
			case <-h.StateChanged():
			}
			t := time.NewTimer(f.SnapshotInterval)
			select {
			case <-watchCtx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			_ = h.Snapshot(store) // errors are reported in /status, metrics and the log
		}
	}()

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("Shutting down: draining in-flight requests", "timeout", f.ShutdownTimeout)
	case err := <-serveErr:
		runErr = fmt.Errorf("HTTP server: %w", err)
	case err := <-watchErr:
		runErr = fmt.Errorf("config watch: %w", err)
	}
	h.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), f.ShutdownTimeout)
	defer cancel()
	for i, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			log.Warn("In-flight requests did not finish in time", "addr", listeners[i].Addr().String(), "err", err)
		}
	}
	stopWatch()
	<-snapDone
	if store != nil {
		if err := h.Snapshot(store); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("final state snapshot: %w", err))
		} else {
			log.Info("Final state snapshot saved", "dir", store.Dir())
		}
	}
	return runErr
}
