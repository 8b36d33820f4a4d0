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
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSnapshotRestoreKeepsCountersByNameAndType(t *testing.T) {
	dir := t.TempDir()
	store, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	two := `{"plugins":[{"name":"counter-1","type":"counter"},{"name":"counter-2","type":"counter"}]}`
	h := newTestHost(t, two)
	increment(t, h, "counter-1", 5)
	increment(t, h, "counter-2", 7)
	if err := h.Snapshot(store); err != nil {
		t.Fatal(err)
	}

	// A new process: counter-2 is not in the first config; its state waits for it.
	h2 := New(Options{Registry: h.opts.Registry})
	store2, _ := NewStore(dir)
	if err := h2.Restore(store2); err != nil {
		t.Fatal(err)
	}
	if _, err := h2.Apply([]byte(`{"plugins":[{"name":"counter-1","type":"counter"}]}`)); err != nil {
		t.Fatal(err)
	}
	if v := value(t, h2, "counter-1"); v != 5 {
		t.Fatalf("counter-1 restored to %d", v)
	}
	// A snapshot now must not drop counter-2's pending state.
	if err := h2.Snapshot(store2); err != nil {
		t.Fatal(err)
	}
	if _, err := h2.Apply([]byte(two)); err != nil {
		t.Fatal(err)
	}
	if v := value(t, h2, "counter-2"); v != 7 {
		t.Fatalf("counter-2 restored to %d once configured", v)
	}
}

func TestSnapshotSkipsUnchangedState(t *testing.T) {
	dir := t.TempDir()
	store, _ := NewStore(dir)
	h := newTestHost(t, seedConfig(1))
	increment(t, h, "counter-1", 1)
	if err := h.Snapshot(store); err != nil {
		t.Fatal(err)
	}
	fi1, _ := os.Stat(filepath.Join(dir, StateFileName))
	if err := h.Snapshot(store); err != nil {
		t.Fatal(err)
	}
	fi2, _ := os.Stat(filepath.Join(dir, StateFileName))
	if !fi1.ModTime().Equal(fi2.ModTime()) {
		t.Fatal("an idle host rewrote its state")
	}
	var f stateFile
	b, _ := os.ReadFile(filepath.Join(dir, StateFileName))
	var st struct{ Value int64 }
	if err := json.Unmarshal(b, &f); err != nil || json.Unmarshal(f.Plugins["counter-1"].State, &st) != nil || st.Value != 1 || f.Plugins["counter-1"].Type != "counter" {
		t.Fatalf("state file: %v %s", err, b)
	}
}

func TestUnwritableStateDirKeepsServing(t *testing.T) {
	// A file where the directory was fails for root too (permissions would not).
	dir := t.TempDir()
	store, _ := NewStore(dir)
	h := newTestHost(t, seedConfig(1))
	srv := serve(t, h)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a dir"), 0o600); err != nil {
		t.Fatal(err)
	}
	increment(t, h, "counter-1", 1)
	err := h.Snapshot(store)
	if err == nil {
		t.Fatal("snapshot into a file succeeded")
	}
	st := h.Status()
	if st.State == nil || !strings.Contains(st.State.LastError, "writing state") {
		t.Fatalf("state error not in status: %+v", st.State)
	}
	if r := do(t, "POST", srv.URL+"/plugins/counter-1/increment", `{"value":1}`); r.Status != 200 {
		t.Fatalf("serving stopped: %d", r.Status)
	}
	m := do(t, "GET", srv.URL+"/metrics", "")
	if !strings.Contains(m.Body, `pluginhost_state_snapshots_total{result="error"} 1`) {
		t.Error("snapshot error not counted")
	}
	// Recovery once the directory is usable again.
	_ = os.Remove(dir)
	_ = os.Mkdir(dir, 0o700)
	if err := h.Snapshot(store); err != nil {
		t.Fatal(err)
	}
	if h.Status().State.LastError != "" {
		t.Fatal("state error not cleared")
	}
}

func TestCorruptStateFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, StateFileName), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	store, _ := NewStore(dir)
	err := newTestHost(t, "").Restore(store)
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("err = %v", err)
	}
}

// The snapshot loop of an idle host sleeps on StateChanged. It must receive after a plugin
// operation, a config that adds or removes plugins and a failed snapshot, once until the
// next snapshot, and not otherwise.
func TestStateChangedSignalsOnlyAfterAChange(t *testing.T) {
	dir := t.TempDir()
	store, _ := NewStore(dir)
	h := newTestHost(t, seedConfig(1))
	srv := serve(t, h)
	signalled := func() bool {
		select {
		case <-h.StateChanged():
			return true
		default:
			return false
		}
	}
	post := func() {
		t.Helper()
		if r := do(t, "POST", srv.URL+"/plugins/counter-1/increment", `{"value":1}`); r.Status != 200 {
			t.Fatalf("increment: %d %s", r.Status, r.Body)
		}
	}
	if !signalled() {
		t.Fatal("a new host does not ask for its first snapshot")
	}
	if err := h.Snapshot(store); err != nil {
		t.Fatal(err)
	}
	if signalled() {
		t.Fatal("signalled with nothing changed since the snapshot")
	}

	post()
	post()
	if !signalled() {
		t.Fatal("an operation did not signal")
	}
	if signalled() {
		t.Fatal("two operations before a snapshot signalled twice")
	}
	if err := h.Snapshot(store); err != nil {
		t.Fatal(err)
	}
	post()
	if !signalled() {
		t.Fatal("an operation after a snapshot did not signal")
	}
	if err := h.Snapshot(store); err != nil {
		t.Fatal(err)
	}

	if _, err := h.Apply([]byte(`{"plugins":[{"name":"counter-1","type":"counter"},{"name":"counter-2","type":"counter"}]}`)); err != nil {
		t.Fatal(err)
	}
	if !signalled() {
		t.Fatal("a config adding a plugin did not signal")
	}

	// A file where the directory was fails for root too (permissions would not).
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a dir"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.Snapshot(store); err == nil {
		t.Fatal("snapshot into a file succeeded")
	}
	if !signalled() {
		t.Fatal("a failed snapshot does not ask to be tried again")
	}
}
