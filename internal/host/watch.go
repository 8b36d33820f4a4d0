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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agilira/argus"
	"github.com/agilira/go-timecache"

	"github.com/hotreload/plugin-operator/internal/hostapi"
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
	// lastTarget is kubelet's ..data link target at the last Load ("" for a plain file).
	lastTarget string
	// credStamp is the credential files' stamp when they were last read.
	credStamp string
	// failing is set while the file's content is refused: a config can fail on something
	// outside it (a credentials file not projected yet), so it is retried every
	// RetryInterval until it applies or changes.
	failing bool
	// credFailing is set while rotated credential files cannot be read.
	credFailing bool
	// behind is set while the file holds an older config than a push applied: it is read
	// again every RetryInterval until it catches up, or until Host.ApplySequenced applies it
	// after PushLeadLimit.
	behind bool
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

// AwaitedCheckInterval is how often, while a GET /status long-poll is held (the manager
// long-polls a pod while it awaits a revision; docs/pluginhost.md), the watch reads
// kubelet's ..data link to see whether a new projection was swapped in. A readlink costs
// about a microsecond; a change is expected now, and the poll alone would take up to one
// poll interval to see it.
const AwaitedCheckInterval = 10 * time.Millisecond

// AwaitedCheckWindow bounds the checks that one long-poll starts: with the pod nudge, kubelet
// swaps the projection in within about a second of the edit (its PLEG relist); without it,
// after up to its sync period (a minute or more), and a check every 10 ms for that long would
// cost more CPU than the poll (docs/performance.md, idle CPU). The manager's next long-poll
// (every 10 s while it awaits) starts another window.
const AwaitedCheckWindow = 3 * time.Second

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
// between, so a read that straddles a swap is never taken for the new content. The
// config's delivery sequence, when a file beside it holds one (SequencePath), is read in
// the same swap: bytes older than a config already pushed are not applied
// (Host.ApplySequenced).
func (s *ConfigSource) Load() (Result, error) {
	var data []byte
	var seq uint64
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		before := s.dataTarget()
		data, err = readConfig(s.path)
		if err == nil {
			seq, err = readSequence(s.sequencePath(before))
		}
		s.lastTarget = s.dataTarget()
		if s.lastTarget == before {
			break
		}
		time.Sleep(time.Millisecond)
	}
	key := ""
	if err != nil {
		key = "error:" + err.Error()
	} else {
		key = pluginconfig.Revision(data) + "@" + strconv.FormatUint(seq, 10)
	}
	if key == s.lastKey && !s.failing && !s.behind {
		return Result{Revision: s.host.Revision(), Unchanged: true}, nil
	}
	retry := key == s.lastKey && s.failing
	s.lastKey = key
	if retry && err != nil {
		return Result{}, err // the same read error again: already reported
	}
	if err != nil {
		s.failing = true
		s.host.Refuse("", err)
		return Result{}, err
	}
	res, err := s.host.ApplySequenced(data, seq, false)
	if stale := (*StaleError)(nil); errors.As(err, &stale) {
		// Already past it: a push delivered a newer config before kubelet projected this one.
		if !s.behind {
			s.host.log.Debug("The config file holds an older config than the one pushed; waiting for the projection to catch up",
				"path", s.path, "sequence", stale.Sequence, "applied", stale.Applied)
		}
		s.failing, s.behind = false, true
		return res, nil
	}
	s.behind = false
	s.failing = err != nil
	if err == nil {
		s.credStamp = s.host.credentialStamp()
	}
	return res, err
}

// SequencePath is where the delivery sequence of the config at configPath is read from:
// <configPath>.sequence, a decimal number. The operator renders it as the key
// config.json.sequence of the host's ConfigMap, so kubelet swaps it in with the config.
// Without that file, the config is unsequenced.
func SequencePath(configPath string) string { return configPath + ".sequence" }

// sequencePath is SequencePath, read through kubelet's ..data link when the config is
// projected (dataTarget, "" if not): kubelet links a key new to the ConfigMap into the
// directory only after it swapped ..data, and the sequence must be the one swapped in
// with the config.
func (s *ConfigSource) sequencePath(dataTarget string) string {
	if dataTarget == "" {
		return SequencePath(s.path)
	}
	return SequencePath(filepath.Join(s.dir, "..data", filepath.Base(s.path)))
}

// readSequence reads a delivery sequence file: 0 when there is none.
func readSequence(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the config's sequence file: %w", err)
	}
	seq, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("the config's sequence file %s holds %.40q, not a positive decimal number", path, b)
	}
	return seq, nil
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
	if s.failing || s.credFailing || s.behind || len(s.host.credentialFiles()) > 0 {
		return RetryInterval
	}
	return RecheckInterval
}

// dataTarget is the target of kubelet's ..data link ("" for a plain file): each update of a
// projection writes a new one.
func (s *ConfigSource) dataTarget() string {
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

// Watch polls with Argus until ctx ends and calls Load whenever Argus reports a change.
//
// Argus' Settings (argus.Setup) runs one ticker at the poll interval; at each tick it
// Lstats the declared paths and, only when a stat moved, reads them and compares their
// content. A config whose bytes changed (or that appeared, vanished or became unreadable)
// is reported, and Load then reads the file itself. An idle host therefore costs one
// wake-up and two Lstat calls per path per poll, and the recheck below (docs/performance.md,
// "Idle CPU"). What is declared (watchedPaths):
//
//   - A plain file: the file itself, which an edit in place or a replacement by rename
//     changes; if it is a link, also the file it resolves to, whose edits leave the link
//     as it was.
//   - Kubelet's projection (config.json -> ..data/config.json -> ..2026_…/config.json):
//     <dir>/..data/config.json. Lstat follows ..data, so it stats the file of the current
//     timestamped directory, which every update writes anew and swaps in by renaming ..data.
//
// With no report for a while the config and the credential files are read again: every
// RetryInterval while something is refused (a refused config can apply once a credentials
// file appears) or while the config names credential files (rotated ones are swapped in
// within a second), else every RecheckInterval. That also picks up a change that left the
// stat as it was (a same-size file copied with its mtime) or that went through a link
// retargeted since the watch began.
func (s *ConfigSource) Watch(ctx context.Context, poll time.Duration) error {
	log := s.host.log
	kick := make(chan struct{}, 1)
	signal := func() {
		// Runs on Argus' polling goroutine: signal only.
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	paths, projected := s.watchedPaths()
	setup := argus.Setup("pluginhost").
		MaxStaleness(poll).
		// Argus reads a changed file to compare its content: never more than the host would
		// take. Over the limit, it drops the document and reports that as a change.
		DocumentLimits(pluginconfig.MaxConfigBytes, int64(len(paths))*pluginconfig.MaxConfigBytes, len(paths)).
		OnReload(func(*argus.Settings, argus.Change) {
			s.host.watchChanges.Add(1)
			signal()
		}).
		OnError(func(err error) {
			s.host.watchErrors.Add(1)
			log.Debug("Argus could not read the config", "path", s.path, "error", err)
			signal()
		})
	for i, p := range paths {
		// Optional: the host, not Argus, says what is wrong with a missing or unreadable
		// file, and keeps serving the last good config. One group per path, since the two
		// paths of a link usually share a base name.
		setup = setup.Documents(fmt.Sprintf("config-%d", i), globEscape(p))
	}
	settings, err := setup.Start()
	if err != nil {
		return fmt.Errorf("watching %s: %w", s.path, err)
	}
	s.host.watch.Store(settings)
	defer func() {
		s.host.watch.Store(nil)
		_ = settings.Close()
	}()
	// go-timecache, which Argus imports, keeps a 500 µs ticker running for its cached clock:
	// about 3 % of a core (BenchmarkIdleCPU's baseline row). Argus' polling stats afresh at
	// every poll and never reads that clock to decide anything.
	stopTimeCache.Do(timecache.StopDefaultCache)
	// Argus took its first stat when the watch was set up: a change made between the
	// caller's first Load and that moment raises no report, so look once more now.
	_, _ = s.Load()
	log.Debug("Watching the config", "paths", paths, "kubeletProjection", projected, "poll", poll)

	due := time.Now().Add(s.recheckAfter())
	recheck := time.NewTimer(time.Until(due))
	defer recheck.Stop()
	// While a /status long-poll is held, kubelet's ..data link is read every
	// AwaitedCheckInterval (awaitedC is nil otherwise): the change is applied as soon as
	// kubelet swaps it in, not at the next poll.
	var awaitedTick *time.Ticker
	var awaitedC <-chan time.Time
	var awaitedUntil time.Time
	defer func() {
		if awaitedTick != nil {
			awaitedTick.Stop()
		}
	}()
	load := func(by string) (Result, error) {
		res, err := s.Load() // results are recorded in status, metrics and the audit log
		if err == nil && !res.Unchanged {
			s.host.opts.Metrics.changeApplied(by)
		}
		return res, err
	}
	awaitedCheck := func() {
		if s.host.statusWaiters.Load() == 0 || time.Now().After(awaitedUntil) {
			awaitedTick.Stop()
			awaitedTick, awaitedC = nil, nil
			return
		}
		if s.dataTarget() != s.lastTarget {
			_, _ = load(NoticedByAwaited)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
			_, _ = load(NoticedByPoll)
			// A config refused now is retried sooner; otherwise the recheck keeps its time,
			// so that changes every few seconds do not put off the credentials check.
			if next := time.Now().Add(s.recheckAfter()); next.Before(due) {
				due = next
				recheck.Reset(time.Until(due))
			}
		case <-s.host.awaited:
			if projected && awaitedTick == nil {
				awaitedUntil = time.Now().Add(AwaitedCheckWindow)
				awaitedTick = time.NewTicker(AwaitedCheckInterval)
				awaitedC = awaitedTick.C
				awaitedCheck() // the swap may have happened already
			}
		case <-awaitedC:
			awaitedCheck()
		case <-recheck.C:
			res, err := load(NoticedByRecheck)
			if err == nil && !res.Unchanged {
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

// watchedPaths returns the paths whose stat tells a change of the config (see Watch), and
// whether the config is kubelet's projection.
func (s *ConfigSource) watchedPaths() (paths []string, projected bool) {
	if _, err := os.Lstat(filepath.Join(s.dir, "..data")); err == nil {
		return []string{filepath.Join(s.dir, "..data", filepath.Base(s.path))}, true
	}
	paths = []string{s.path}
	if real, err := filepath.EvalSymlinks(s.path); err == nil && real != s.path {
		paths = append(paths, real)
	}
	return paths, false
}

// globEscape quotes the characters filepath.Match treats specially when path holds any:
// Argus reads a path with none of *?[ literally, and one with any as a glob.
func globEscape(path string) string {
	if !strings.ContainsAny(path, "*?[") {
		return path
	}
	var sb strings.Builder
	for _, r := range path {
		if strings.ContainsRune(`*?[]\`, r) {
			sb.WriteByte('\\')
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// WatchStatus is Argus' own view of the watch (Settings.Explain) and the reports it made,
// or nil while the config is not watched.
func (h *Host) WatchStatus() *hostapi.WatchStatus {
	settings := h.watch.Load()
	if settings == nil {
		return nil
	}
	e := settings.Explain()
	w := &hostapi.WatchStatus{
		Revision: e.Revision, Digest: e.Digest, Backend: e.Backend, MaxStaleness: e.MaxStaleness.String(),
		Documents: e.Documents.Count, DocumentBytes: e.Documents.Bytes, Issues: e.Issues,
		Changes: h.watchChanges.Load(), Errors: h.watchErrors.Load(),
	}
	for _, src := range e.Sources {
		w.Sources = append(w.Sources, hostapi.WatchSource{Detail: src.Detail, State: src.State})
	}
	if r := e.LastRefusal; r != nil {
		w.LastRefusal = &hostapi.WatchRefusal{Reason: r.Reason, At: r.At, Cycles: r.Cycles, Revision: r.Revision}
	}
	return w
}
