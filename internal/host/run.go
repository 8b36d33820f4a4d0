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
	"path/filepath"
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
	// AuditLog is the audit trail's current segment: one hash-chained JSON line per config
	// change and credentials rotation (package audit). "" puts it in StateDir (audit.jsonl)
	// when there is one; AuditOff ("off") disables it.
	AuditLog string
	// AuditMaxBytes and AuditSegments bound the trail: a segment is rotated past
	// AuditMaxBytes and AuditSegments are kept, the current one included.
	AuditMaxBytes int64
	AuditSegments int
	// Pod names the host in a new audit chain (the pod's hostname).
	Pod string
	// ShutdownTimeout bounds how long in-flight requests may take at shutdown.
	ShutdownTimeout time.Duration
	// MaxBodyBytes is the request body limit.
	MaxBodyBytes int64
	// PushTokenFile holds the bearer token of PUT /config ("": config push is off).
	PushTokenFile string
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
	if f.Registry == nil {
		return errors.New("no plugin types")
	}
	if f.PollInterval <= 0 || f.SnapshotInterval <= 0 {
		return fmt.Errorf("poll interval (%s) and snapshot interval (%s) must be positive", f.PollInterval, f.SnapshotInterval)
	}
	if f.Logger == nil {
		f.Logger = slog.New(slog.DiscardHandler)
	}
	r := &runner{opts: f, log: f.Logger, host: New(Options{Registry: f.Registry, Logger: f.Logger, MaxBodyBytes: f.MaxBodyBytes, PushTokenFile: f.PushTokenFile})}

	// Listen before anything else, so that kubelet's probes are answered while the host
	// waits for the state dir: /healthz says the process is alive, /readyz and plugin
	// requests say what it waits for. No plugin exists until the config is applied.
	if err := r.listen(); err != nil {
		return err
	}
	unlock, err := r.takeStateDir(ctx)
	switch {
	case errors.Is(err, errStoppedWaiting):
		// SIGTERM while waiting: this process never owned the state, so it has nothing to
		// save and must not write over the holder's snapshot.
		r.log.Info("Shutting down while waiting for the state directory; no snapshot written: another pluginhost still holds it", "dir", f.StateDir)
		r.drain()
		return nil
	case err != nil:
		r.close()
		return err
	}
	defer unlock() // after the final snapshot
	// The trail may live in the state dir: opened once this process holds it.
	audit := OpenAudit(AuditOptions{Path: f.auditPath(), MaxBytes: f.AuditMaxBytes, Segments: f.AuditSegments, Pod: f.Pod}, r.log)
	defer func() { _ = audit.Close() }()
	r.host.SetAudit(audit)
	src, err := r.applyInitialConfig()
	if err != nil {
		r.close()
		return err
	}
	runErr := r.serve(ctx, src)
	r.drain()
	return errors.Join(runErr, r.finalSnapshot())
}

// AuditOff as RunOptions.AuditLog disables the audit trail.
const AuditOff = "off"

// auditPath is where the trail lives ("": none).
func (f RunOptions) auditPath() string {
	switch {
	case f.AuditLog == AuditOff:
		return ""
	case f.AuditLog != "":
		return f.AuditLog
	case f.StateDir != "":
		return filepath.Join(f.StateDir, "audit.jsonl")
	}
	return ""
}

// runner is one run of the host program: the steps of Run share it.
type runner struct {
	opts RunOptions
	log  *slog.Logger
	host *Host

	servers   []*http.Server
	listeners []net.Listener
	serveErr  chan error
	store     *Store // nil without a state dir
}

// errStoppedWaiting: ctx ended while another process held the state dir.
var errStoppedWaiting = errors.New("stopped while waiting for the state directory")

// listen opens the plugins' listener, and the operations listener with OpsAddr, and serves
// them.
func (r *runner) listen() error {
	ln, err := net.Listen("tcp", r.opts.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", r.opts.Listen, err)
	}
	handlers := []http.Handler{r.host.Handler()}
	r.listeners = []net.Listener{ln}
	if r.opts.OpsAddr != "" {
		opsLn, err := net.Listen("tcp", r.opts.OpsAddr)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("listening on %s (--ops-addr): %w", r.opts.OpsAddr, err)
		}
		handlers = []http.Handler{r.host.APIHandler(), r.host.OpsHandler()}
		r.listeners = append(r.listeners, opsLn)
	}
	r.serveErr = make(chan error, len(handlers))
	for i, handler := range handlers {
		srv := &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
		}
		r.servers = append(r.servers, srv)
		go func() { r.serveErr <- srv.Serve(r.listeners[i]) }()
	}
	r.log.Info("Listening", "addr", r.addr(), "opsAddr", r.opsAddr())
	return nil
}

func (r *runner) addr() string { return r.listeners[0].Addr().String() }

func (r *runner) opsAddr() string {
	if len(r.listeners) < 2 {
		return ""
	}
	return r.listeners[1].Addr().String()
}

// takeStateDir locks the state dir (waiting while another pluginhost holds it) and restores
// the saved state; it returns the unlock. Without a state dir it does nothing.
func (r *runner) takeStateDir(ctx context.Context) (unlock func(), err error) {
	dir := r.opts.StateDir
	if dir == "" {
		return func() {}, nil
	}
	unlock, err = LockStateDir(ctx, dir, r.log, func(lock string) { r.host.WaitingForLock(dir, lock) })
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, errStoppedWaiting
		}
		return nil, err
	}
	if r.store, err = NewStore(dir); err == nil {
		err = r.host.Restore(r.store)
	}
	if err != nil {
		unlock()
		return nil, err
	}
	r.host.LockTaken()
	return unlock, nil
}

// applyInitialConfig applies the config file as it is now; a refused one is logged, and the
// host serves nothing until the file is valid.
func (r *runner) applyInitialConfig() (*ConfigSource, error) {
	src, err := NewConfigSource(r.host, r.opts.Config)
	if err != nil {
		return nil, err
	}
	if _, err := src.Load(); err != nil {
		r.log.Error("Initial config refused; serving nothing until the file is valid", "path", r.opts.Config, "err", err)
	}
	// Logged once the initial config is applied: tests and tools that wait for this line
	// may send plugin requests at once.
	r.log.Info("Serving plugins", "addr", r.addr(), "opsAddr", r.opsAddr(), "config", r.opts.Config, "revision", r.host.Revision(), "poll", r.opts.PollInterval, "stateDir", r.opts.StateDir)
	if r.opts.Ready != nil {
		r.opts.Ready(r.addr())
	}
	return src, nil
}

// serve watches the config and saves state snapshots until ctx ends (nil) or a server or
// the watch fails.
func (r *runner) serve(ctx context.Context, src *ConfigSource) error {
	watchCtx, stop := context.WithCancel(context.Background())
	watchErr := make(chan error, 1)
	go func() { watchErr <- src.Watch(watchCtx, r.opts.PollInterval) }()
	snapshotsDone := make(chan struct{})
	go func() {
		defer close(snapshotsDone)
		r.saveSnapshots(watchCtx)
	}()
	defer func() {
		stop()
		<-snapshotsDone
	}()
	select {
	case <-ctx.Done():
		r.log.Info("Shutting down: draining in-flight requests", "timeout", r.opts.ShutdownTimeout)
		return nil
	case err := <-r.serveErr:
		return fmt.Errorf("HTTP server: %w", err)
	case err := <-watchErr:
		return fmt.Errorf("config watch: %w", err)
	}
}

// saveSnapshots saves plugin state SnapshotInterval after it changes, until ctx ends. A
// host whose state has not changed does not wake up: each timer wake-up of an idle process
// costs CPU (docs/performance.md, "Idle CPU"). Changes within one interval share a
// snapshot.
func (r *runner) saveSnapshots(ctx context.Context) {
	if r.store == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.host.StateChanged():
		}
		t := time.NewTimer(r.opts.SnapshotInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		_ = r.host.Snapshot(r.store) // errors are reported in /status, metrics and the log
	}
}

// drain makes /readyz fail and lets in-flight requests finish within ShutdownTimeout.
func (r *runner) drain() {
	r.host.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.ShutdownTimeout)
	defer cancel()
	for i, srv := range r.servers {
		if err := srv.Shutdown(ctx); err != nil {
			r.log.Warn("In-flight requests did not finish in time", "addr", r.listeners[i].Addr().String(), "err", err)
		}
	}
}

// close stops serving at once, when Run fails before it serves plugins.
func (r *runner) close() {
	for _, srv := range r.servers {
		_ = srv.Close()
	}
}

// finalSnapshot saves the state after the last request, with a state dir.
func (r *runner) finalSnapshot() error {
	if r.store == nil {
		return nil
	}
	if err := r.host.Snapshot(r.store); err != nil {
		return fmt.Errorf("final state snapshot: %w", err)
	}
	r.log.Info("Final state snapshot saved", "dir", r.store.Dir())
	return nil
}
