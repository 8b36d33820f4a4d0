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

// Package testutil holds the helpers every test tier shares: waiting for a condition,
// short temporary directories, the repository root and plugin type sets. It is test support: product
// packages never import it.
package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotreload/plugin-operator/internal/typeschema"
	"github.com/hotreload/plugin-operator/pkg/plugin"
)

// PluginTypes compiles what factories declare, as a host advertises them: the
// pluginconfig.Types that validation in tests needs. It panics on a bad declaration.
func PluginTypes(factories ...plugin.Factory) *typeschema.Set {
	set, err := typeschema.Compile(typeschema.Declarations(factories...))
	if err != nil {
		panic(err)
	}
	return set
}

// pollInterval is how often Eventually re-checks its condition. It bounds how late a waiter
// notices a change, not how long anything takes.
const pollInterval = 20 * time.Millisecond

// Eventually calls cond until it returns nil and fails the test with cond's last error after
// timeout. Timeouts are generous on purpose: they bound a hang on a busy machine, they do not
// measure anything (measurements are benchmarks).
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(pollInterval)
	}
}

// EventuallyTrue is Eventually for a condition that can only say yes or no.
func EventuallyTrue(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	Eventually(t, timeout, what, func() error {
		if !cond() {
			return errors.New("not yet")
		}
		return nil
	})
}

// Consistently calls cond for the whole of d and fails the test as soon as it returns an
// error: the negative of Eventually, for "this must not happen" checks.
func Consistently(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if err := cond(); err != nil {
			t.Fatalf("%s stopped holding: %v", what, err)
		}
		time.Sleep(pollInterval)
	}
}

// WaitPastSecond returns once the clock has passed the second of ts. API timestamps
// (condition transitions, lastChecked) have one-second resolution: a write made after this
// is distinguishable from one made at ts.
func WaitPastSecond(t testing.TB, ts time.Time) {
	t.Helper()
	Eventually(t, 5*time.Second, "the clock to pass "+ts.Format(time.RFC3339), func() error {
		if now := time.Now().Unix(); now <= ts.Unix() {
			return fmt.Errorf("now %d", now)
		}
		return nil
	})
}

// ShortTempDir is t.TempDir with a short path: Argus drops events for paths over 109 bytes
// and unix socket paths are limited to 108, while t.TempDir() names grow with test names.
func ShortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ph")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// RepoRoot returns the directory holding go.mod, searching up from the working directory
// (a test's working directory is its package's).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// SyncBuffer is a bytes.Buffer that goroutines may write while a test reads it: a log
// destination for a server under test, or the output of a process's copier goroutine.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// LoadAverage is the machine's load average over 1, 5 and 15 minutes (/proc/loadavg), for
// measurements taken on a shared machine to say how busy it was.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// ReplaceFile replaces path with data at once, as an editor or a config tool that writes
// a temporary file and renames it does: a reader sees the old content or the new one, never
// a file truncated and half written (os.WriteFile), which a host polling every few
// milliseconds may read, and rightly refuse.
func ReplaceFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
