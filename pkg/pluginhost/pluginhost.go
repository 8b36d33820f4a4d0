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

// Package pluginhost is the plugin host's entry point: a host binary is Main with the list
// of plugin types it carries.
//
//	func main() {
//		pluginhost.Main(counter.Factory{}, mytype.Factory{})
//	}
//
// That binary is the whole runtime: the HTTP API (/plugins/{name}/{operation}), the config
// watch with Argus and the in-place reload that keeps the last good config on any error,
// state snapshots (--state-dir), request auth, Prometheus metrics, and the /status and
// /types documents the operator reads. It takes the flags and PLUGINHOST_* environment
// variables of the project's own pluginhost (run it with --help), so the operator runs it
// unchanged as a PluginHost's spec.image.
//
// # Stability
//
// The SDK (this package and pkg/plugin) is versioned apart from the CRDs: its v1alpha1
// promise is that exported identifiers of pkg/plugin and Main and Run here change only
// with a note in docs/plugins.md; the /status and /types documents carry a version
// number and only ever gain fields within one. See docs/plugins.md.
package pluginhost

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/hotreload/plugin-operator/internal/audit"
	"github.com/hotreload/plugin-operator/internal/host"
	"github.com/hotreload/plugin-operator/pkg/plugin"
)

// Main runs a plugin host with the given plugin types until SIGTERM or an interrupt, with
// os.Args and the environment, and exits: 0 after a clean shutdown (in-flight requests
// drained, final state snapshot saved), 1 with the error on standard error otherwise.
//
// `audit verify FILE…` as arguments runs the audit trail's verifier instead (every host
// binary carries it, so that it runs in the host's own image): it prints the records and
// exits 0 when the trail verifies, 1 at the first broken record, 2 on bad arguments
// (docs/pluginhost.md, "Audit").
func Main(types ...plugin.Factory) {
	if len(os.Args) > 1 && os.Args[1] == "audit" {
		os.Exit(audit.Command(os.Args[2:], os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := Run(ctx, os.Args[1:], os.Getenv, os.Stderr, types...)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pluginhost:", err)
		os.Exit(1)
	}
}

// Run is Main without the process: it parses args (flags, without the program name) with
// getenv's PLUGINHOST_* variables as defaults, writes logs and usage to stderr, and runs the
// host with the given plugin types until ctx ends. A type whose declaration is invalid (its
// name, operations or options schema), or two types of one name, fail before anything
// listens. --help returns nil.
func Run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, types ...plugin.Factory) error {
	reg, err := host.NewRegistry(types...)
	if err != nil {
		return fmt.Errorf("plugin types: %w", err)
	}
	opts, err := parseFlags(args, getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	opts.Registry = reg
	return host.Run(ctx, *opts)
}
