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
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hotreload/plugin-operator/internal/plugin/builtin"
)

// Flags of the pluginhost command; each has an environment variable equivalent.
type Flags struct {
	Config           string
	Listen           string
	OpsAddr          string
	PollInterval     time.Duration
	StateDir         string
	SnapshotInterval time.Duration
	AuditLog         string
	LogLevel         string
	LogFormat        string
	ShutdownTimeout  time.Duration
	MaxBodyBytes     int64
}

// EnvPrefix prefixes the environment variable of every flag: --poll-interval is
// PLUGINHOST_POLL_INTERVAL.
const EnvPrefix = "PLUGINHOST_"

// ParseFlags reads args, with environment variables as defaults for flags not given.
func ParseFlags(args []string, getenv func(string) string, stderr io.Writer) (*Flags, error) {
	f := &Flags{}
	fs := flag.NewFlagSet("pluginhost", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.Config, "config", "config.json", "config file in the seed format; watched for changes")
	fs.StringVar(&f.Listen, "listen", ":8080", "HTTP listen address of the plugins' API")
	fs.StringVar(&f.OpsAddr, "ops-addr", "", "listen address of the operational endpoints (/status, /plugins, /metrics), which then leave --listen; empty serves everything on --listen")
	fs.DurationVar(&f.PollInterval, "poll-interval", 100*time.Millisecond, "how often Argus checks the config file")
	fs.StringVar(&f.StateDir, "state-dir", "", "directory to persist plugin state in (empty: state is lost at exit)")
	fs.DurationVar(&f.SnapshotInterval, "snapshot-interval", time.Second, "how often state is saved; the most a crash can lose")
	fs.StringVar(&f.AuditLog, "audit-log", "", "append one JSON line per config change to this file")
	fs.StringVar(&f.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.LogFormat, "log-format", "text", "text or json")
	fs.DurationVar(&f.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight requests may take to finish at shutdown")
	fs.Int64Var(&f.MaxBodyBytes, "max-body-bytes", DefaultMaxBodyBytes, "request body limit; larger bodies get 413")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: pluginhost [flags]\n\nRuns plugin instances from a config file and reloads it in place.\nEvery flag can be set by an environment variable: --poll-interval is %sPOLL_INTERVAL.\n\n", EnvPrefix)
		fs.PrintDefaults()
	}
	var envErr error
	fs.VisitAll(func(fl *flag.Flag) {
		name := EnvPrefix + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if err := fl.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if f.PollInterval < 10*time.Millisecond {
		return nil, fmt.Errorf("--poll-interval %s is below 10ms", f.PollInterval)
	}
	if f.SnapshotInterval <= 0 {
		return nil, fmt.Errorf("--snapshot-interval must be positive")
	}
	if f.MaxBodyBytes <= 0 {
		return nil, fmt.Errorf("--max-body-bytes must be positive")
	}
	if f.OpsAddr != "" && f.OpsAddr == f.Listen && !strings.HasSuffix(f.OpsAddr, ":0") {
		return nil, fmt.Errorf("--ops-addr %q is the same as --listen; give the operational endpoints another port, or leave --ops-addr empty to serve everything on --listen", f.OpsAddr)
	}
	return f, nil
}

func newLogger(f *Flags, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", f.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch f.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: use text or json", f.LogFormat)
	}
}

// Run is the pluginhost program: it serves until ctx ends (SIGTERM), then drains in-flight
// requests, saves a final snapshot and returns nil. ready, if not nil, receives the bound
// address once the server listens.
func Run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(addr string)) error {
	f, err := ParseFlags(args, getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log, err := newLogger(f, stderr)
	if err != nil {
		return err
	}
	audit, err := OpenAudit(f.AuditLog)
	if err != nil {
		return err
	}
	defer func() { _ = audit.Close() }()

	h := New(Options{Registry: builtin.Registry(), Logger: log, Audit: audit, MaxBodyBytes: f.MaxBodyBytes})
	var store *Store
	if f.StateDir != "" {
		unlock, err := LockStateDir(ctx, f.StateDir, log)
		if err != nil {
			return err
		}
		defer unlock() // after the final snapshot
		if store, err = NewStore(f.StateDir); err != nil {
			return err
		}
		if err := h.Restore(store); err != nil {
			return err
		}
	}
	src, err := NewConfigSource(h, f.Config)
	if err != nil {
		return err
	}
	if _, err := src.Load(); err != nil {
		log.Error("Initial config refused; serving nothing until the file is valid", "path", f.Config, "err", err)
	}

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
	log.Info("Serving plugins", "addr", ln.Addr().String(), "opsAddr", opsAddr, "config", f.Config, "revision", h.Revision(), "poll", f.PollInterval, "stateDir", f.StateDir)
	if ready != nil {
		ready(ln.Addr().String())
	}

	watchCtx, stopWatch := context.WithCancel(context.Background())
	watchErr := make(chan error, 1)
	go func() { watchErr <- src.Watch(watchCtx, f.PollInterval) }()
	serveErr := make(chan error, len(servers))
	for i := range servers {
		go func() { serveErr <- servers[i].Serve(listeners[i]) }()
	}
	snapDone := make(chan struct{})
	go func() {
		defer close(snapDone)
		if store == nil {
			return
		}
		t := time.NewTicker(f.SnapshotInterval)
		defer t.Stop()
		for {
			select {
			case <-watchCtx.Done():
				return
			case <-t.C:
				_ = h.Snapshot(store) // errors are reported in /status, metrics and the log
			}
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
