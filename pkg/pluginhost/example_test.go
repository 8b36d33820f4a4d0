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

package pluginhost_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hotreload/plugin-operator/pkg/pluginhost"
	"github.com/hotreload/plugin-operator/pkg/plugins/counter"
)

// The whole main.go of a host binary: the runtime with the types it carries. Build it into
// an image whose entry point is /pluginhost and name that image in a PluginHost's
// spec.image (docs/plugins.md).
func ExampleMain() {
	pluginhost.Main(counter.Factory{} /* , yourtype.Factory{} */)
}

// Run is Main for a program that owns its process: its own signals, arguments and
// environment.
func ExampleRun() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	args := []string{"--config", filepath.Join(os.TempDir(), "config.json"), "--listen", "127.0.0.1:8080", "--poll-interval", "250ms"}
	if err := pluginhost.Run(ctx, args, os.Getenv, os.Stderr, counter.Factory{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// A bad declaration fails before anything listens, naming the type.
func ExampleRun_invalidTypes() {
	err := pluginhost.Run(context.Background(), nil, func(string) string { return "" }, os.Stderr, counter.Factory{}, counter.Factory{})
	fmt.Println(strings.TrimSpace(err.Error()))
	// Output:
	// plugin types: plugin type "counter" declared twice
}
