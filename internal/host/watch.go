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
	// credFailing is set while rotated credential files cannot be read.
	credFailing bool
}

// RetryInterval is how often a refused config, or rotated credentials that could not be
// read, are tried again while nothing changes; and how often credential files, when the
// applied config names any, are checked for rotation (kubelet replaces them without
// touching the config file).
const RetryInterval = time.Second

// RecheckInterval is how often a healthy host with no credential files reads the config
// again whatever Argus reported. Each timer wake-up of an idle process costs about as much
// as a poll (docs/performance.md, "Idle CPU"), so a host that has nothing else to check
// does it rarely.
const RecheckInterval = 5 * time.Second

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
		s.credFailing = s.host.ReloadCredentials() != nil
		if !s.credFailing {
			s.credStamp = stamp
		}
	}
}

// recheckAfter is how long the watch waits, with no change reported, before it reads the
// config and the credential files again.
func (s *ConfigSource) recheckAfter() time.Duration {
	if s.failing || s.credFailing || len(s.host.credentialFiles()) > 0 {
		return RetryInterval
	}
	return RecheckInterval
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

// Watch polls with Argus until ctx ends and calls Load on every change it reports.
//
// Argus' file Watcher stats one path per poll and reports a change of its mtime or size; its
// event processor parks while nothing happens (Argus v1.6.0), so an idle host costs a
// ticker, one stat per poll and Argus' 200 ms park backstop (docs/performance.md has the
// figures). Which path is watched:
//
//   - A plain file: the file itself. An edit in place or a replacement by rename changes the
//     mtime Argus reads through the path.
//   - Kubelet's projection (config.json -> ..data/config.json -> ..2026_…/config.json):
//     the directory holding it. Argus refuses to watch a file whose resolved path contains
//     ".." (every projected file: "..2026_…"), and every projection update renames ..data
//     inside that directory, which changes the directory's mtime. Load then reads the file
//     through ..data and skips content it has already handled.
//
// With no report for a while the config and the credential files are read again: every
// RetryInterval while something is refused (a refused config can apply once a credentials
// file appears) or while the config names credential files (rotated ones are swapped in
// within a second), else every RecheckInterval. That also picks up a change that left the
// watched mtime and size as they were (a copy that keeps the mtime; two projection updates
// within one coarse clock tick on a filesystem whose directory size does not change).
func (s *ConfigSource) Watch(ctx context.Context, poll time.Duration) error {
	log := s.host.log
	kick := make(chan struct{}, 1)
	w := argus.New(argus.Config{
		PollInterval: poll,
		// The host keeps its own audit log; Argus' would open an SQLite file.
		DisableAudit: true,
		// Light never spins: the processor parks until a poll finds a change.
		OptimizationStrategy: argus.OptimizationLight,
		ErrorHandler: func(err error, path string) {
			log.Debug("Argus could not stat the watched path", "path", path, "error", err)
		},
	})
	defer func() { _ = w.Close() }()
	onChange := func(argus.ChangeEvent) {
		// Runs on Argus' event processor: signal only.
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	watched := s.path
	if _, err := os.Lstat(filepath.Join(s.dir, "..data")); err == nil {
		watched = s.dir
	}
	err := w.Watch(watched, onChange)
	if err != nil && watched == s.path {
		// Argus refuses a symlink into a system directory or through a "..name": the
		// directory still shows a replacement of the link, and the recheck the rest.
		log.Info("Argus refuses to watch the config file itself; watching its directory",
			"path", s.path, "reason", err.Error(), "recheck", RecheckInterval)
		watched = s.dir
		err = w.Watch(watched, onChange)
	}
	if err != nil {
		return fmt.Errorf("watching %s: %w", watched, err)
	}
	if err := w.Start(); err != nil {
		return fmt.Errorf("starting the watch of %s: %w", watched, err)
	}
	// go-timecache, which Argus imports, keeps a 500 µs ticker running for its cached clock:
	// about 3 % of a core (BenchmarkIdleCPU's baseline row). Argus' polling stats afresh at
	// every poll and never reads that clock to decide anything.
	stopTimeCache.Do(timecache.StopDefaultCache)
	// Argus took its first stat when the watch was set up: a change made between the
	// caller's first Load and that moment raises no event, so look once more now.
	_, _ = s.Load()
	log.Debug("Watching the config", "path", watched, "kubeletProjection", watched == s.dir, "poll", poll)

	due := time.Now().Add(s.recheckAfter())
	recheck := time.NewTimer(time.Until(due))
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
			_, _ = s.Load() // results are recorded in status, metrics and the audit log
			// A config refused now is retried sooner; otherwise the recheck keeps its time,
			// so that changes every few seconds do not put off the credentials check.
			if next := time.Now().Add(s.recheckAfter()); next.Before(due) {
				due = next
				recheck.Reset(time.Until(due))
			}
		case <-recheck.C:
			res, err := s.Load()
			if err == nil && !res.Unchanged {
				// Argus compares mtime and size: a file of the same size written within one
				// coarse clock tick of the last, or copied with its mtime, looks unchanged.
				log.Info("The recheck found a config change Argus did not report", "path", s.path, "revision", res.Revision)
			}
			if err == nil {
				s.checkCredentials()
			}
			due = time.Now().Add(s.recheckAfter())
			recheck.Reset(time.Until(due))
		}
	}
}
