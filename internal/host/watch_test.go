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
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/hotreload/plugin-operator/internal/pluginconfig"
	"github.com/hotreload/plugin-operator/internal/testing/projection"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
	"github.com/hotreload/plugin-operator/pkg/plugins/counter"
)

const testPoll = 20 * time.Millisecond

// waitTimeout bounds every wait of these tests: it bounds a hang, it measures nothing.
const waitTimeout = 10 * time.Second

// watching starts a host watching path and returns it once the first config is loaded.
func watching(t testing.TB, path string) (*Host, *ConfigSource) {
	t.Helper()
	return watchingWith(t, newTestHost(t, ""), path, testPoll)
}

// watchingArgus is watching for tests whose every change Argus must report: spaced more
// than a coarse clock tick apart, so that its stat moves each time. The test fails if the
// host's recheck, not Argus, applied one.
func watchingArgus(t testing.TB, path string) *Host {
	t.Helper()
	h, logs := loggingHost()
	t.Cleanup(func() {
		// Registered before watchingWith's, so it runs after the watch has stopped.
		if strings.Contains(logs.String(), "The recheck found a config change Argus did not report") {
			t.Errorf("a change was applied by the recheck, not reported by Argus:\n%s", logs.String())
		}
	})
	watchingWith(t, h, path, testPoll)
	// A change made before the watch is set up is applied by its first read, not reported
	// by Argus.
	waitWatching(t, logs)
	return h
}

// loggingHost returns a host whose debug log goes to the returned buffer.
func loggingHost() (*Host, *testutil.SyncBuffer) {
	logs := &testutil.SyncBuffer{}
	return New(Options{Registry: MustRegistry(counter.Factory{}), Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}), logs
}

// waitWatching waits for a loggingHost's watch to be set up: its log line follows the
// watch's own first read of the config.
func waitWatching(t testing.TB, logs *testutil.SyncBuffer) {
	t.Helper()
	testutil.EventuallyTrue(t, waitTimeout, "watch set up", func() bool { return strings.Contains(logs.String(), "Watching the config") })
}

// waitForANewMtime returns once a file written now gets a later mtime than path (the link
// and the file it resolves to) has. Filesystem timestamps are coarse (one kernel tick, 4 ms
// here): a file replaced within the tick of its last write, at the same size, looks unchanged
// to a stat, and only the host's recheck would apply it.
func waitForANewMtime(t testing.TB, path string) {
	t.Helper()
	var last time.Time
	for _, stat := range []func(string) (os.FileInfo, error){os.Lstat, os.Stat} {
		if fi, err := stat(path); err == nil && fi.ModTime().After(last) {
			last = fi.ModTime()
		}
	}
	probe := filepath.Join(t.TempDir(), "mtime-probe")
	testutil.EventuallyTrue(t, waitTimeout, "the filesystem clock to move past "+path+"'s mtime", func() bool {
		if err := os.WriteFile(probe, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(probe)
		return err == nil && fi.ModTime().After(last)
	})
}

// watchingWith starts h watching path with Argus polling every poll.
func watchingWith(t testing.TB, h *Host, path string, poll time.Duration) (*Host, *ConfigSource) {
	t.Helper()
	src, err := NewConfigSource(h, path)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = src.Load()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Watch(ctx, poll) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watch: %v", err)
		}
	})
	return h, src
}

func step(t testing.TB, h *Host) int64 {
	t.Helper()
	inst, ok := h.Instance("counter-1")
	if !ok {
		return -1
	}
	return inst.(*counter.Counter).IncrementBy()
}

func value(t testing.TB, h *Host, name string) int64 {
	t.Helper()
	inst, ok := h.Instance(name)
	if !ok {
		t.Fatalf("plugin %s not running", name)
	}
	return inst.(*counter.Counter).Get()
}

func increment(t testing.TB, h *Host, name string, v int64) {
	t.Helper()
	inst, _ := h.Instance(name)
	if _, err := inst.(*counter.Counter).Increment(v); err != nil {
		t.Fatal(err)
	}
}

// A plain file edited in place, as in the seed walkthrough (including its // comment).
func TestReloadPlainFileEditedInPlace(t *testing.T) {
	path := filepath.Join(testutil.ShortTempDir(t), "config.json")
	if err := os.WriteFile(path, []byte(seedConfig(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	h := watchingArgus(t, path)
	testutil.EventuallyTrue(t, waitTimeout, "initial config", func() bool { return step(t, h) == 1 })
	increment(t, h, "counter-1", 5)

	step2, err := os.ReadFile("../pluginconfig/testdata/seed-step2.json")
	if err != nil {
		t.Fatal(err)
	}
	waitForANewMtime(t, path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(step2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	testutil.EventuallyTrue(t, waitTimeout, "increment 10 applied", func() bool { return step(t, h) == 10 })
	increment(t, h, "counter-1", 1)
	if v := value(t, h, "counter-1"); v != 15 {
		t.Fatalf("value %d, want 15", v)
	}
}

// Editors and config tools replace the file by rename.
func TestReloadPlainFileReplacedByRename(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(seedConfig(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	h := watchingArgus(t, path)
	for i := 2; i <= 5; i++ {
		waitForANewMtime(t, path)
		testutil.ReplaceFile(t, path, []byte(seedConfig(i)))
		testutil.EventuallyTrue(t, waitTimeout, fmt.Sprintf("increment %d", i), func() bool { return step(t, h) == int64(i) })
	}
}

// The layout kubelet writes for a ConfigMap volume: Argus refuses to watch config.json
// there, so this is the case the naive seed-style watch never reloads.
func TestReloadKubeletProjection(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	w := projection.NewWriter(dir)
	if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(1))}); err != nil {
		t.Fatal(err)
	}
	h := watchingArgus(t, filepath.Join(dir, "config.json"))
	testutil.EventuallyTrue(t, waitTimeout, "initial config", func() bool { return step(t, h) == 1 })
	increment(t, h, "counter-1", 5)
	for i := 2; i <= 20; i++ {
		waitForANewMtime(t, filepath.Join(dir, "config.json"))
		if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(i))}); err != nil {
			t.Fatal(err)
		}
		testutil.EventuallyTrue(t, waitTimeout, fmt.Sprintf("projected increment %d", i), func() bool { return step(t, h) == int64(i) })
	}
	if v := value(t, h, "counter-1"); v != 5 {
		t.Fatalf("counter lost its value across reloads: %d", v)
	}
}

// Bursts of kubelet updates faster than the poll must end on the final content.
func TestReloadKubeletBurstEndsOnFinalContent(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	w := projection.NewWriter(dir)
	if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(1))}); err != nil {
		t.Fatal(err)
	}
	h, _ := watching(t, filepath.Join(dir, "config.json"))
	for burst := range 10 {
		last := 0
		for i := range 5 {
			last = 100*burst + i + 2
			if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(last))}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond)
		}
		testutil.EventuallyTrue(t, waitTimeout, fmt.Sprintf("burst %d final content", burst), func() bool { return step(t, h) == int64(last) })
	}
}

// A poll that lands in the middle of kubelet's swap (at every step of it) must not take
// the half-done state for the new config.
func TestReloadPollsMidSwap(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	w := projection.NewWriter(dir)
	if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(1))}); err != nil {
		t.Fatal(err)
	}
	h, _ := watching(t, filepath.Join(dir, "config.json"))
	testutil.EventuallyTrue(t, waitTimeout, "initial config", func() bool { return step(t, h) == 1 })
	next := 2
	w.SetHook(func(string) {
		// Hold each step longer than a poll, so that polls land between the steps.
		time.Sleep(2 * testPoll)
	})
	if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(next))}); err != nil {
		t.Fatal(err)
	}
	w.SetHook(nil)
	testutil.EventuallyTrue(t, waitTimeout, "config after a slow swap", func() bool { return step(t, h) == int64(next) })
	st := h.Status()
	if st.LastError != "" || st.Reloads.Refused != 0 {
		t.Fatalf("a mid-swap poll was taken for a bad config: %+v", st)
	}
}

// Every kind of bad file is refused, the last good config keeps serving, the error shows
// in /status, and the host recovers by itself once the file is valid.
func TestReloadRefusesBadFilesAndRecovers(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	w := projection.NewWriter(dir)
	if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(3))}); err != nil {
		t.Fatal(err)
	}
	h, _ := watching(t, filepath.Join(dir, "config.json"))
	testutil.EventuallyTrue(t, waitTimeout, "initial config", func() bool { return step(t, h) == 3 })
	increment(t, h, "counter-1", 2)
	good := h.Revision()

	oversized := `{"plugins":[]}` + strings.Repeat(" ", pluginconfig.MaxConfigBytes)
	bad := []struct {
		name, content, wantErr string
		remove                 bool
	}{
		{"malformed", `{"plugins": [}`, "invalid JSON", false},
		{"truncated", seedConfig(4)[:40], "unexpected end of input", false},
		{"empty", "", "config is empty", false},
		{"invalid", strings.Replace(seedConfig(4), `"increment":4`, `"increment":4.5`, 1), "plugins[0].options.increment", false},
		{"unknown type", strings.Replace(seedConfig(4), `"type":"counter"`, `"type":"gauge"`, 1), `Unsupported value: "gauge"`, false},
		{"oversized", oversized, "byte limit", false},
		{"deleted", "", "does not exist", true},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			var err error
			if b.remove {
				err = w.Remove()
			} else {
				_, err = w.Write(map[string][]byte{"config.json": []byte(b.content)})
			}
			if err != nil {
				t.Fatal(err)
			}
			testutil.EventuallyTrue(t, waitTimeout, "refusal reported", func() bool { return strings.Contains(h.Status().LastError, b.wantErr) })
			if h.Revision() != good || step(t, h) != 3 || value(t, h, "counter-1") != 6 {
				t.Fatalf("last good config not kept: revision %s step %d", h.Revision(), step(t, h))
			}
			// Recover.
			if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(3))}); err != nil {
				t.Fatal(err)
			}
			testutil.EventuallyTrue(t, waitTimeout, "recovery", func() bool { return h.Status().LastError == "" })
		})
	}
	if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(7))}); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyTrue(t, waitTimeout, "a new good config after the faults", func() bool { return step(t, h) == 7 })
	if v := value(t, h, "counter-1"); v != 6 {
		t.Fatalf("counter %d after faults, want 6", v)
	}
}

// A writer that truncates and then writes in place (not atomic) may be seen torn; the torn
// read is refused and the complete file applies.
func TestReloadTornInPlaceWrite(t *testing.T) {
	path := filepath.Join(testutil.ShortTempDir(t), "config.json")
	if err := os.WriteFile(path, []byte(seedConfig(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	h, _ := watching(t, path)
	testutil.EventuallyTrue(t, waitTimeout, "initial config", func() bool { return step(t, h) == 1 })
	full := []byte(seedConfig(9))
	err := projection.TruncatedInPlaceWriteFunc(path, full, len(full)/2, func() {
		testutil.EventuallyTrue(t, waitTimeout, "torn file refused", func() bool { return h.Status().LastError != "" })
		if step(t, h) != 1 {
			t.Error("torn file applied")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyTrue(t, waitTimeout, "complete file applied", func() bool { return step(t, h) == 9 && h.Status().LastError == "" })
}

// A config refused for something outside the file (a credentials file not there yet) is
// retried until it applies, with no change to the file.
func TestRefusedConfigIsRetried(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	tokenFile := filepath.Join(dir, "token")
	path := filepath.Join(dir, "config.json")
	cfg := `{"plugins":[{"name":"counter-1","type":"counter","auth":{"method":"bearer","token_file":"` + tokenFile + `"}}]}`
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	h, _ := watching(t, path)
	testutil.EventuallyTrue(t, waitTimeout, "refusal", func() bool { return strings.Contains(h.Status().LastError, "token_file") })
	refused := h.Status().Reloads.Refused
	// Atomically, as kubelet does: a retry must not see a half-written file.
	testutil.ReplaceFile(t, tokenFile, []byte("t"))
	testutil.EventuallyTrue(t, waitTimeout, "applied on retry", func() bool { return h.Ready() && h.Status().LastError == "" })
	if got := h.Status().Reloads.Refused; got != refused {
		t.Errorf("retries were counted as new refusals: %d -> %d", refused, got)
	}
}

// Argus' file Watcher dropped events for paths over 109 bytes before v1.5.0 (its event ring
// stores paths in a fixed array): a long path reloads like any other, watched as a
// projection's directory or as a plain file.
func TestReloadLongPath(t *testing.T) {
	long := strings.Repeat("d", 120)
	t.Run("projection", func(t *testing.T) {
		dir := filepath.Join(testutil.ShortTempDir(t), long)
		w := projection.NewWriter(dir)
		if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(1))}); err != nil {
			t.Fatal(err)
		}
		h := watchingArgus(t, filepath.Join(dir, "config.json"))
		testutil.EventuallyTrue(t, waitTimeout, "initial config", func() bool { return step(t, h) == 1 })
		waitForANewMtime(t, filepath.Join(dir, "config.json"))
		if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(2))}); err != nil {
			t.Fatal(err)
		}
		testutil.EventuallyTrue(t, waitTimeout, "reload on a long path", func() bool { return step(t, h) == 2 })
	})
	t.Run("plain-file", func(t *testing.T) {
		reloadsAfterAnEditInPlace(t, filepath.Join(testutil.ShortTempDir(t), long), "config.json")
	})
}

// A config path that is a link replaced by rename, its targets in "..name" directories
// (which Argus' file Watcher refused to watch).
func TestReloadWhenTheLinkIsReplaced(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	for i := 1; i <= 3; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("..v%d", i))
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, "config.json"), []byte(seedConfig(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "config.json")
	if err := os.Symlink("..v1/config.json", path); err != nil {
		t.Fatal(err)
	}
	h := watchingArgus(t, path)
	testutil.EventuallyTrue(t, waitTimeout, "initial config", func() bool { return step(t, h) == 1 })
	for i := 2; i <= 3; i++ {
		waitForANewMtime(t, path)
		tmp := filepath.Join(dir, "link.tmp")
		if err := os.Symlink(fmt.Sprintf("..v%d/config.json", i), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		testutil.EventuallyTrue(t, waitTimeout, fmt.Sprintf("increment %d", i), func() bool { return step(t, h) == int64(i) })
	}
}

// A config path that is a link into another directory, whose target is edited in place:
// the link itself does not change, the file it resolves to does.
func TestReloadWhenTheLinkTargetIsEdited(t *testing.T) {
	target := filepath.Join(testutil.ShortTempDir(t), "real.json")
	if err := os.WriteFile(target, []byte(seedConfig(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(testutil.ShortTempDir(t), "config.json")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	h := watchingArgus(t, path)
	testutil.EventuallyTrue(t, waitTimeout, "initial config", func() bool { return step(t, h) == 1 })
	for i := 2; i <= 3; i++ {
		waitForANewMtime(t, target)
		if err := os.WriteFile(target, []byte(seedConfig(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		testutil.EventuallyTrue(t, waitTimeout, fmt.Sprintf("increment %d", i), func() bool { return step(t, h) == int64(i) })
	}
}

// Argus reads a path holding *, ? or [ as a glob; the host's path is a name.
func TestReloadPathWithGlobCharacters(t *testing.T) {
	reloadsAfterAnEditInPlace(t, filepath.Join(testutil.ShortTempDir(t), `a[1]*?\b`), "config[x].json")
}

// reloadsAfterAnEditInPlace writes a config named name in a new directory dir, watches it,
// and checks that an edit in place is reported by Argus and applied.
func reloadsAfterAnEditInPlace(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(seedConfig(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	h := watchingArgus(t, path)
	testutil.EventuallyTrue(t, waitTimeout, "initial config", func() bool { return step(t, h) == 1 })
	waitForANewMtime(t, path)
	if err := os.WriteFile(path, []byte(seedConfig(2)), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyTrue(t, waitTimeout, "an edit in place of "+path, func() bool { return step(t, h) == 2 })
}

// A change Argus does not report — a file of the same size and mtime renamed into place, as
// a copy that keeps timestamps makes — is applied by the host's own recheck. Argus polls
// once an hour here, so nothing else can apply it once the watch is set up.
func TestRecheckAppliesAChangeArgusDoesNotReport(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(seedConfig(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	h, logs := loggingHost()
	watchingWith(t, h, path, time.Hour)
	waitWatching(t, logs) // from here on only the recheck reads

	if len(seedConfig(2)) != len(seedConfig(1)) {
		t.Fatal("the two configs must have the same size")
	}
	tmp := filepath.Join(dir, "config.json.tmp")
	if err := os.WriteFile(tmp, []byte(seedConfig(2)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyTrue(t, RecheckInterval+waitTimeout, "applied by the recheck", func() bool { return step(t, h) == 2 })
	// The recheck logs once Load has returned, a moment after the new config serves.
	testutil.Eventually(t, waitTimeout, "the recheck saying what it applied", func() error {
		if !strings.Contains(logs.String(), "The recheck found a config change Argus did not report") {
			return fmt.Errorf("not logged yet:\n%s", logs.String())
		}
		return nil
	})
}

// A rotated Secret changes the credential files but not config.json: the host picks up the
// new credentials without a config change.
func TestRotatedCredentialsApplyWithoutAConfigChange(t *testing.T) {
	root := testutil.ShortTempDir(t)
	conf := projection.NewWriter(filepath.Join(root, "config"))
	secrets := projection.NewWriter(filepath.Join(root, "secrets"))
	if _, err := secrets.Write(map[string][]byte{"c.token": []byte("old")}); err != nil {
		t.Fatal(err)
	}
	cfg := `{"plugins":[{"name":"c","type":"counter","auth":{"method":"bearer","token_file":"../secrets/c.token"}}]}`
	if _, err := conf.Write(map[string][]byte{"config.json": []byte(cfg)}); err != nil {
		t.Fatal(err)
	}
	h, _ := watching(t, filepath.Join(root, "config", "config.json"))
	srv := serve(t, h)
	status := func(token string) int {
		return do(t, "GET", srv.URL+"/plugins/c/get", "", "Authorization", "Bearer "+token).Status
	}
	testutil.EventuallyTrue(t, waitTimeout, "old token accepted", func() bool { return status("old") == 200 })
	rev := h.Revision()
	if _, err := secrets.Write(map[string][]byte{"c.token": []byte("new")}); err != nil {
		t.Fatal(err)
	}
	// Seen by the host's recheck, every RetryInterval while the config names credential files.
	testutil.EventuallyTrue(t, waitTimeout, "new token accepted", func() bool { return status("new") == 200 })
	if status("old") != 401 {
		t.Fatal("the rotated-out token still works")
	}
	if h.Revision() != rev {
		t.Fatal("revision changed without a config change")
	}
}

// noticed reads pluginhost_config_changes_applied_total{noticed_by=by}.
func noticed(t testing.TB, h *Host, by string) float64 {
	t.Helper()
	var m dto.Metric
	if err := h.opts.Metrics.noticed.WithLabelValues(by).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// While a /status long-poll is held, a projection kubelet swaps in is applied by the
// awaited check of the ..data link, not at the next poll (an hour here); once no long-poll
// is held, the next one is left to the poll and the recheck.
func TestAwaitedProjectionIsAppliedBeforeThePoll(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	w := projection.NewWriter(dir)
	if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(1))}); err != nil {
		t.Fatal(err)
	}
	h, logs := loggingHost()
	watchingWith(t, h, filepath.Join(dir, "config.json"), time.Hour)
	waitWatching(t, logs)
	base := opsServer(t, h)
	first := h.Status().Revision
	ch := longPoll(t, base, first, "30s")
	waiters(t, h, 1)
	if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(2))}); err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.Status != 200 || r.JSON["revision"] == first {
		t.Fatalf("long-poll answered %d %s, want the new revision", r.Status, r.Body)
	}
	// The watch counts the change once its apply returns, after the long-polls are answered.
	testutil.EventuallyTrue(t, waitTimeout, "the change counted as applied", func() bool {
		return noticed(t, h, NoticedByAwaited)+noticed(t, h, NoticedByRecheck)+noticed(t, h, NoticedByPoll) >= 1
	})
	if step(t, h) != 2 || noticed(t, h, NoticedByAwaited) != 1 || noticed(t, h, NoticedByRecheck) != 0 || noticed(t, h, NoticedByPoll) != 0 {
		t.Fatalf("increment %d; applied by awaited %v, recheck %v, poll %v; want 2 applied by the awaited check",
			step(t, h), noticed(t, h, NoticedByAwaited), noticed(t, h, NoticedByRecheck), noticed(t, h, NoticedByPoll))
	}

	// No long-poll held: the awaited check has stopped (the recheck applies this one).
	if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(3))}); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyTrue(t, waitTimeout, "increment 3 applied and counted", func() bool {
		return step(t, h) == 3 && noticed(t, h, NoticedByAwaited)+noticed(t, h, NoticedByRecheck)+noticed(t, h, NoticedByPoll) >= 2
	})
	if a, rc := noticed(t, h, NoticedByAwaited), noticed(t, h, NoticedByRecheck); a != 1 || rc != 1 {
		t.Errorf("applied by awaited %v, recheck %v; want 1 and 1", a, rc)
	}
}
