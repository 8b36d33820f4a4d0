//go:build unix

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
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotreload/plugin-operator/pkg/plugins/counter"
)

// A host waiting for the state dir lock answers on both listeners: alive, not ready because
// of the lock (named), the wait in /status, and 503 for plugin requests with nothing created.
// Once the holder lets go it takes the lock and waits no more.
func TestWaitingForTheStateLockIsReported(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	release, err := LockStateDir(context.Background(), dir, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := New(Options{Registry: MustRegistry(counter.Factory{})})
	api := httptest.NewServer(h.APIHandler())
	t.Cleanup(api.Close)
	ops := httptest.NewServer(h.OpsHandler())
	t.Cleanup(ops.Close)

	waiting := make(chan string, 1)
	type locked struct {
		unlock func()
		err    error
	}
	took := make(chan locked, 1)
	go func() {
		unlock, err := LockStateDir(context.Background(), dir, log, func(lock string) {
			h.WaitingForLock(dir, lock)
			waiting <- lock
		})
		took <- locked{unlock, err}
	}()
	var lock string
	select {
	case lock = <-waiting:
	case l := <-took:
		t.Fatalf("took a lock another holder has: %v", l.err)
	case <-time.After(30 * time.Second):
		t.Fatal("no wait reported")
	}
	if want := filepath.Join(dir, StateLockFileName); lock != want {
		t.Fatalf("waiting for %q, want %q", lock, want)
	}

	for _, base := range []string{api.URL, ops.URL} {
		if r := do(t, "GET", base+"/healthz", ""); r.Status != 200 {
			t.Errorf("GET %s/healthz while waiting = %d %s, want 200", base, r.Status, r.Body)
		}
		r := do(t, "GET", base+"/readyz", "")
		if r.Status != 503 || !strings.Contains(r.Body, "waiting for the state directory lock "+lock) || !strings.Contains(r.Body, "held by another pluginhost") {
			t.Errorf("GET %s/readyz while waiting = %d %q, want 503 naming the lock", base, r.Status, r.Body)
		}
	}
	st := do(t, "GET", ops.URL+"/status", "")
	state, _ := st.JSON["state"].(map[string]any)
	if st.Status != 200 || st.JSON["ready"] != false || state["waitingForLock"] != true || state["lock"] != lock || state["dir"] != dir {
		t.Errorf("GET /status while waiting = %d %s, want ready false and state.waitingForLock, lock, dir", st.Status, st.Body)
	}
	for _, req := range [][2]string{{"POST", "/plugins/counter-1/increment"}, {"GET", "/plugins/counter-1/get"}} {
		r := do(t, req[0], api.URL+req[1], "")
		msg, _ := r.JSON["error"].(string)
		if r.Status != 503 || r.JSON["status"] == nil || !strings.Contains(msg, "waiting for the state directory lock "+lock) || !strings.Contains(msg, "saved state is restored") {
			t.Errorf("%s %s while waiting = %d %s, want a 503 JSON error naming the lock", req[0], req[1], r.Status, r.Body)
		}
	}
	if _, ok := h.Instance("counter-1"); ok || len(h.live) != 0 {
		t.Errorf("a plugin instance exists while waiting: %v", h.live)
	}

	release()
	var l locked
	select {
	case l = <-took:
	case <-time.After(30 * time.Second):
		t.Fatal("the lock was not taken after the holder released it")
	}
	if l.err != nil {
		t.Fatal(l.err)
	}
	t.Cleanup(l.unlock)
	h.LockTaken()
	if r := do(t, "GET", api.URL+"/readyz", ""); r.Status != 503 || !strings.Contains(r.Body, "no configuration applied yet") {
		t.Errorf("GET /readyz after the lock, before a config = %d %q", r.Status, r.Body)
	}
	st = do(t, "GET", ops.URL+"/status", "")
	if state, _ := st.JSON["state"].(map[string]any); state["waitingForLock"] != nil || state["lock"] != nil {
		t.Errorf("GET /status after the lock still reports the wait: %s", st.Body)
	}
	if _, err := h.Apply([]byte(seedConfig(1))); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", api.URL+"/readyz", ""); r.Status != 200 {
		t.Errorf("GET /readyz with the lock and a config = %d %q", r.Status, r.Body)
	}
}

// A wait ends when its context does (SIGTERM), with an error that says the lock is held.
func TestLockStateDirWaitEndsWithTheContext(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	release, err := LockStateDir(context.Background(), dir, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := LockStateDir(ctx, dir, log, func(string) { cancel() })
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the wait did not end with its context")
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "still held by another process") {
		t.Fatalf("err = %v, want context.Canceled saying the lock is held", err)
	}
}
