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
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/agilira/argus"
	"github.com/agilira/go-timecache"

	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// stopTimeCache stops go-timecache's global ticker once per process.
var stopTimeCache sync.Once

// ConfigSource reads the config file and applies it when it changes. It handles both a
// plain file (edited in place or replaced by rename) and kubelet's ConfigMap projection
// (config.json -> ..data/config.json -> ..2026_…/config.json, swapped by renaming ..data).
type ConfigSource struct {
	host *Host
	path string // absolute, as given: the stable path, never a resolved target
	dir  string
	// lastKey identifies the last bytes (or read error) handled, so that repeated events
	// for the same content do nothing.
	lastKey string
	// credStamp is the credential files' stamp when they were last read.
	credStamp string
	// failing is set while the file's content is refused: a config can fail on something
	// outside it (a credentials file not projected yet), so it is retried every
	// RetryInterval until it applies or changes.
	failing bool
}

// RetryInterval is how often a refused config is tried again while it stays the same, and
// how often the credential files are checked for rotation.
const RetryInterval = time.Second

// NewConfigSource prepares to read path for h.
func NewConfigSource(h *Host, path string) (*ConfigSource, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config path: %w", err)
	}
	h.setConfigPath(abs)
	return &ConfigSource{host: h, path: abs, dir: filepath.Dir(abs)}, nil
}

// Load reads the file and applies it if its content changed since the last Load, or if the
// last attempt was refused. Load is not safe for concurrent use. It reads
// kubelet's ..data link before and after the file and retries when a swap happened in
// between, so a read that straddles a swap is never taken for the new content.
func (s *ConfigSource) Load() (Result, error) {
	var data []byte
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		before := s.generation()
		data, err = readConfig(s.path)
		if s.generation() == before {
			break
		}
		time.Sleep(time.Millisecond)
	}
	key := ""
	if err != nil {
		key = "error:" + err.Error()
	} else {
		key = pluginconfig.Revision(data)
	}
	if key == s.lastKey && !s.failing {
		return Result{Revision: s.host.Revision(), Unchanged: true}, nil
	}
	retry := key == s.lastKey
	s.lastKey = key
	if retry && err != nil {
		return Result{}, err // the same read error again: already reported
	}
	if err != nil {
		s.failing = true
		s.host.Refuse("", err)
		return Result{}, err
	}
	res, err := s.host.Apply(data)
	s.failing = err != nil
	if err == nil {
		s.credStamp = s.host.credentialStamp()
	}
	return res, err
}

// checkCredentials reloads the credential files when kubelet (or anyone) replaced them.
func (s *ConfigSource) checkCredentials() {
	if s.failing {
		return
	}
	if stamp := s.host.credentialStamp(); stamp != s.credStamp {
		if s.host.ReloadCredentials() == nil {
			s.credStamp = stamp
		}
	}
}

// generation is the target of kubelet's ..data link ("" for a plain file).
func (s *ConfigSource) generation() string {
	t, _ := os.Readlink(filepath.Join(s.dir, "..data"))
	return t
}

func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("config file %s does not exist", path)
		}
		return nil, fmt.Errorf("opening config file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, pluginconfig.MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	if len(b) > pluginconfig.MaxConfigBytes {
		return nil, fmt.Errorf("config file %s is over the %d-byte limit", path, pluginconfig.MaxConfigBytes)
	}
	return b, nil
}

// Watch polls with Argus until ctx ends, calling Load on every change, and calls Load every
// RetryInterval as well.
//
// Argus' file Watcher runs an event processor that wakes every millisecond even when
// nothing changes (OptimizationLight sleeps 1 ms in a loop; every other strategy spins):
// about 4 % of a core on an idle host. Its ticker-based WatchDirectory has no event
// processor: one goroutine scans the directory at every poll, and that is all an idle host
// does (docs/performance.md has the figures of both). The directory is walked recursively
// when it is kubelet's projection (a ..data link is there at start), because there
// config.json is a symlink whose own mtime never changes and each update appears as a new
// timestamped directory holding the file.
//
// WatchDirectory reports a file only when Argus can parse it, so a change to content Argus
// refuses (malformed, truncated, empty, or JSON with comments) is picked up by the
// RetryInterval tick instead: within a second rather than within a poll.
func (s *ConfigSource) Watch(ctx context.Context, poll time.Duration) error {
	log := s.host.log
	kick := make(chan struct{}, 1)
	notify := func(argus.DirectoryConfigUpdate) {
		// Runs on Argus' scan goroutine, sometimes under its lock: signal only.
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	root := s.dir
	if r, err := filepath.EvalSymlinks(s.dir); err == nil {
		root = r // Argus walks with Lstat: a symlinked root would show no files
	}
	_, err := os.Lstat(filepath.Join(root, "..data"))
	projected := err == nil
	dw, err := argus.WatchDirectory(root, argus.DirectoryWatchOptions{
		Patterns:     []string{globEscape(filepath.Base(s.path))},
		Recursive:    projected,
		PollInterval: poll,
		Context:      ctx,
	}, notify)
	if err != nil {
		return fmt.Errorf("watching config directory %s: %w", s.dir, err)
	}
	defer func() { _ = dw.Close() }()
	log.Debug("Watching the config directory", "dir", root, "kubeletProjection", projected, "poll", poll)
	// go-timecache, which Argus imports, keeps a 500 µs ticker running for its cached clock:
	// about 3 % of a core (BenchmarkIdleCPU's baseline row). WatchDirectory never reads
	// that clock.
	stopTimeCache.Do(timecache.StopDefaultCache)
	// Argus took its first scan when the watch was set up: a change made between the
	// caller's first Load and that moment raises no event, so look once more now.
	_, _ = s.Load()

	retry := time.NewTicker(RetryInterval)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		case <-retry.C:
			// A content Argus could not parse raised no event; a refused config may apply
			// now (a credentials file appeared); credentials may have been rotated.
			if _, err := s.Load(); err == nil {
				s.checkCredentials()
			}
			continue
		}
		_, _ = s.Load() // results are recorded in status, metrics and the audit log
	}
}

// globEscape quotes the characters filepath.Match treats specially, so that Argus matches
// the config file's name literally.
func globEscape(name string) string {
	var sb strings.Builder
	for _, r := range name {
		if strings.ContainsRune(`*?[]\`, r) {
			sb.WriteByte('\\')
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
