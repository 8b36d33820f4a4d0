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

package counter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotreload/plugin-operator/internal/host"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// TestHotReloadFunctionality is the seed's "go test -v -run TestHotReloadFunctionality": the
// seed's walkthrough against the runtime with this type, on a real socket and a real config
// file. Increment 5; change options.increment from 1 to 10 in config.json; the host applies
// it without a restart and increment 1 gives 15. A broken file is then refused and the last
// good config keeps serving.
func TestHotReloadFunctionality(t *testing.T) {
	seed, err := os.ReadFile(filepath.Join("..", "..", "..", "internal", "pluginconfig", "testdata", "seed-full.json"))
	if err != nil {
		t.Fatal(err)
	}
	step2, err := os.ReadFile(filepath.Join("..", "..", "..", "internal", "pluginconfig", "testdata", "seed-step2.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	write := func(b []byte) { t.Helper(); testutil.ReplaceFile(t, cfg, b) }
	write(seed)

	ctx, cancel := context.WithCancel(t.Context())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- host.Run(ctx, host.RunOptions{
			Registry: host.MustRegistry(Factory{}), Config: cfg, Listen: "127.0.0.1:0",
			PollInterval: 10 * time.Millisecond, SnapshotInterval: time.Second, ShutdownTimeout: 5 * time.Second,
			Ready: func(a string) { addr <- a },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("host: %v", err)
		}
	})
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("host exited: %v", err)
	}

	if got := post(t, base+"/plugins/counter-1/increment", `{"value": 5}`); got != `{"plugin":"counter-1","operation":"increment","value":5}` {
		t.Fatalf("increment 5: %s", got)
	}
	revision := status(t, base).Revision
	write(step2)
	testutil.Eventually(t, 10*time.Second, "the changed config applied", func() error {
		if st := status(t, base); st.Revision == revision || st.Revision != pluginconfig.Revision(step2) {
			return fmt.Errorf("revision %s", st.Revision)
		}
		return nil
	})
	if got := post(t, base+"/plugins/counter-1/increment", `{"value": 1}`); got != `{"plugin":"counter-1","operation":"increment","value":15}` {
		t.Fatalf("after the reload, increment 1: %s (want 15: the value kept, the increment now 10)", got)
	}

	write([]byte(strings.Replace(string(step2), "10  //", `"ten"  //`, 1)))
	testutil.Eventually(t, 10*time.Second, "the broken config refused", func() error {
		if st := status(t, base); !strings.Contains(st.LastError, "plugins[0].options.increment") {
			return fmt.Errorf("lastError %q", st.LastError)
		}
		return nil
	})
	if got := post(t, base+"/plugins/counter-1/increment", `{"value": 1}`); got != `{"plugin":"counter-1","operation":"increment","value":25}` {
		t.Fatalf("after a refused config, increment 1: %s (want 25: the last good increment, 10)", got)
	}
}

func post(t *testing.T, url, body string) string {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	return strings.TrimSpace(string(b))
}

func status(t *testing.T, base string) host.Status {
	t.Helper()
	resp, err := http.Get(base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st host.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}
