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
	"io"
	"testing"
	"time"

	"github.com/hotreload/plugin-operator/internal/host"
)

// Defaults, then the environment, then flags: a flag wins over its variable.
func TestParseFlagsPrecedence(t *testing.T) {
	env := map[string]string{"PLUGINHOST_POLL_INTERVAL": "250ms", "PLUGINHOST_STATE_DIR": "/var/lib/ph", "PLUGINHOST_LISTEN": ":9000"}
	o, err := parseFlags([]string{"--listen=127.0.0.1:1"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.PollInterval != 250*time.Millisecond || o.StateDir != "/var/lib/ph" || o.Listen != "127.0.0.1:1" {
		t.Errorf("environment or flag not applied: %+v", o)
	}
	if o.Config != "config.json" || o.SnapshotInterval != time.Second || o.MaxBodyBytes != host.DefaultMaxBodyBytes || o.ShutdownTimeout != 10*time.Second || o.Logger == nil {
		t.Errorf("defaults: %+v", o)
	}
}
