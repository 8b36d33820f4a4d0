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

package pluginhost

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/hotreload/plugin-operator/internal/audit"
	"github.com/hotreload/plugin-operator/internal/host"
)

// envPrefix prefixes the environment variable of every flag: --poll-interval is
// PLUGINHOST_POLL_INTERVAL.
const envPrefix = "PLUGINHOST_"

// parseFlags reads args, with environment variables as defaults for flags not given.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*host.RunOptions, error) {
	f := &host.RunOptions{}
	var logLevel, logFormat string
	fs := flag.NewFlagSet("pluginhost", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.Config, "config", "config.json", "config file in the seed format; watched for changes")
	fs.StringVar(&f.Listen, "listen", ":8080", "HTTP listen address of the plugins' API")
	fs.StringVar(&f.OpsAddr, "ops-addr", "", "listen address of the operational endpoints (/status, /plugins, /metrics), which then leave --listen; empty serves everything on --listen")
	fs.DurationVar(&f.PollInterval, "poll-interval", 100*time.Millisecond, "how often Argus checks the config file")
	fs.StringVar(&f.StateDir, "state-dir", "", "directory to persist plugin state in (empty: state is lost at exit)")
	fs.DurationVar(&f.SnapshotInterval, "snapshot-interval", time.Second, "how long after a change state is saved; the most a crash can lose")
	fs.StringVar(&f.AuditLog, "audit-log", "", "the hash-chained audit trail: one JSON line per config change and credentials rotation (empty: <state-dir>/audit.jsonl with --state-dir, else none; \"off\": none)")
	fs.Int64Var(&f.AuditMaxBytes, "audit-max-bytes", audit.DefaultMaxBytes, "size past which the audit trail's segment is rotated")
	fs.IntVar(&f.AuditSegments, "audit-segments", audit.DefaultSegments, "audit trail segments kept, the current one included (at least 2): the trail holds at most about this many times --audit-max-bytes")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&logFormat, "log-format", "text", "text or json")
	fs.DurationVar(&f.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight requests may take to finish at shutdown")
	fs.Int64Var(&f.MaxBodyBytes, "max-body-bytes", host.DefaultMaxBodyBytes, "request body limit; larger bodies get 413")
	fs.StringVar(&f.PushTokenFile, "push-token-file", "", "file holding the bearer token that PUT /config (config push, on the operations endpoints) requires; empty turns config push off")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [flags]\n\nRuns plugin instances from a config file and reloads it in place.\nEvery flag can be set by an environment variable: --poll-interval is %sPOLL_INTERVAL.\n\n", fs.Name(), envPrefix)
		fs.PrintDefaults()
	}
	var envErr error
	fs.VisitAll(func(fl *flag.Flag) {
		name := envPrefix + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
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
	if f.AuditMaxBytes <= 0 {
		return nil, fmt.Errorf("--audit-max-bytes must be positive")
	}
	if f.AuditSegments < 2 {
		return nil, fmt.Errorf("--audit-segments %d: at least 2 (the current segment and the one rotated last)", f.AuditSegments)
	}
	if f.MaxBodyBytes <= 0 {
		return nil, fmt.Errorf("--max-body-bytes must be positive")
	}
	if f.OpsAddr != "" && f.OpsAddr == f.Listen && !strings.HasSuffix(f.OpsAddr, ":0") {
		return nil, fmt.Errorf("--ops-addr %q is the same as --listen; give the operational endpoints another port, or leave --ops-addr empty to serve everything on --listen", f.OpsAddr)
	}
	f.Pod, _ = os.Hostname() // a pod's hostname is its name
	log, err := newLogger(logLevel, logFormat, stderr)
	if err != nil {
		return nil, err
	}
	f.Logger = log
	return f, nil
}

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: use text or json", format)
	}
}
