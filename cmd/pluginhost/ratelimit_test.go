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

package main

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hotreload/plugin-operator/internal/pluginconfig"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// whole is a token count without the fraction refilled meanwhile.
func whole(v any) float64 {
	f, _ := v.(float64)
	return math.Floor(f)
}

// The second built-in type, the rate limiter, through the binary as the counter is: a
// reload changes its limits and keeps its buckets, bad requests and a bad option change
// nothing, and its buckets survive a restart with a state dir. Its rate is so slow that no
// token refills while the test runs, whatever the machine's load.
func TestRateLimitThroughTheBinary(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	cfg := filepath.Join(dir, "config.json")
	write := func(burst string) string {
		t.Helper()
		b := []byte(`{"plugins":[{"name":"api","type":"ratelimit","options":{"rate":0.0001,"burst":` + burst + `}},` +
			`{"name":"counter-1","type":"counter"}]}`)
		testutil.ReplaceFile(t, cfg, b)
		return pluginconfig.Revision(b)
	}
	take := func(p *proc, key string) map[string]any {
		t.Helper()
		code, m := curl(t, "POST", p.url("/plugins/api/take"), `{"key":"`+key+`"}`)
		if code != 200 {
			t.Fatalf("take %s: %d %v", key, code, m)
		}
		return m
	}
	waitStatus := func(p *proc, what string, ok func(map[string]any) bool) {
		t.Helper()
		testutil.Eventually(t, wait, what, func() error {
			if _, st := curl(t, "GET", p.url("/status"), ""); !ok(st) {
				return fmt.Errorf("status %v", st)
			}
			return nil
		})
	}

	write("3")
	state := filepath.Join(dir, "state")
	p := start(t, dir, nil, "--config="+cfg, "--state-dir="+state, "--snapshot-interval=1h", "--poll-interval=20ms")
	pid := p.cmd.Process.Pid
	for i := range 3 {
		if m := take(p, "x"); m["allowed"] != true {
			t.Fatalf("take %d of a burst of 3: %v", i+1, m)
		}
	}
	if m := take(p, "x"); m["allowed"] != false || m["retryAfterSeconds"].(float64) <= 0 {
		t.Fatalf("a fourth take: %v, want refused with a time to retry", m)
	}

	// A reload to burst 5 keeps x's empty bucket (a new one would allow) and serves new
	// keys with the new burst, in the same process.
	rev := write("5")
	waitStatus(p, "burst 5 applied", func(st map[string]any) bool { return st["revision"] == rev })
	if m := take(p, "x"); m["allowed"] != false {
		t.Fatalf("x after the reload: %v, want its empty bucket kept", m)
	}
	if m := take(p, "y"); m["allowed"] != true || whole(m["remaining"]) != 4 {
		t.Fatalf("a new key after the reload: %v, want 4 of the new burst 5 left", m)
	}

	// Bad requests: a precise 4xx each, and no token taken.
	for _, tc := range []struct{ method, path, body, want string }{
		{"POST", "/plugins/api/take", `{"key":""}`, "key"},
		{"POST", "/plugins/api/take", `{"key":"y","tokens":99}`, "tokens"},
		{"POST", "/plugins/api/take", `{"key":"y","bogus":1}`, "bogus"},
		{"POST", "/plugins/api/take", `{"key":`, "JSON"},
		{"GET", "/plugins/api/get", "", "key"},
		{"GET", "/plugins/api/take", "", "use POST"},
	} {
		code, m := curl(t, tc.method, p.url(tc.path), tc.body)
		if code < 400 || code >= 500 || !strings.Contains(fmt.Sprint(m["error"]), tc.want) {
			t.Errorf("%s %s %s: %d %v, want a 4xx naming %q", tc.method, tc.path, tc.body, code, m, tc.want)
		}
	}
	if code, m := curl(t, "GET", p.url("/plugins/api/get?key=y"), ""); code != 200 || whole(m["tokens"]) != 4 {
		t.Fatalf("y after bad requests: %d %v, want 4 tokens", code, m)
	}

	// A bad option is refused with the option named; burst 5 keeps serving.
	badRev := write("0")
	waitStatus(p, "burst 0 refused", func(st map[string]any) bool {
		return st["lastErrorRevision"] == badRev && strings.Contains(fmt.Sprint(st["lastError"]), "plugins[0].options.burst")
	})
	if m := take(p, "y"); m["allowed"] != true || whole(m["remaining"]) != 3 {
		t.Fatalf("y under the last good config: %v", m)
	}
	if p.cmd.Process.Pid != pid {
		t.Fatal("the host restarted")
	}

	// A restart restores the buckets: x is still empty, y has 3 tokens.
	write("5")
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	p2 := start(t, dir, nil, "--config="+cfg, "--state-dir="+state)
	if m := take(p2, "x"); m["allowed"] != false {
		t.Fatalf("x after a restart: %v, want its empty bucket restored", m)
	}
	if code, m := curl(t, "GET", p2.url("/plugins/api/get?key=y"), ""); code != 200 || whole(m["tokens"]) != 3 {
		t.Fatalf("y after a restart: %d %v, want 3 tokens", code, m)
	}
}
