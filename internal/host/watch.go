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

// maxArgusPath is the longest path whose events Argus v1.4.2 delivers: its event ring
// stores paths in a 110-byte array, and a longer path never matches its watch.
const maxArgusPath = 109

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
	// strategy is Argus' event processor; Light sleeps instead of spinning (see
	// BenchmarkIdleCPU for the measured choice).
	strategy argus.OptimizationStrategy
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
	return &ConfigSource{host: h, path: abs, dir: filepath.Dir(abs), strategy: argus.OptimizationLight}, nil
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

// Watch polls with Argus until ctx ends, calling Load on every change. Argus refuses a
// path through kubelet's "..data" links and follows a symlink to a target that kubelet
// deletes at the next swap, so the directory is watched (its mtime changes at every swap,
// rename or create); the file itself is watched too when Argus accepts it, which catches
// in-place edits that leave the directory alone. Argus runs with its audit trail off (no
// SQLite files) and its sleep-only processor (no busy-waiting).
func (s *ConfigSource) Watch(ctx context.Context, poll time.Duration) error {
	for _, p := range []string{s.dir, s.path} {
		if len(p) > maxArgusPath {
			return fmt.Errorf("path %s is %d bytes; Argus v1.4.2 drops events for paths over %d bytes, use a shorter path", p, len(p), maxArgusPath)
		}
	}
	log := s.host.log
	kick := make(chan struct{}, 1)
	notify := func(argus.ChangeEvent) {
		// Runs under Argus' lock: signal only, never call back into Argus.
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	w := argus.New(argus.Config{
		PollInterval:         poll,
		MaxWatchedFiles:      4,
		DisableAudit:         true,
		OptimizationStrategy: s.strategy,
		ErrorHandler: func(err error, path string) {
			log.Debug("Argus reported an error", "path", path, "err", err)
		},
	})
	if err := w.Watch(s.dir, notify); err != nil {
		return fmt.Errorf("watching config directory %s: %w", s.dir, err)
	}
	if err := w.Watch(s.path, notify); err != nil {
		log.Debug("Watching the config directory only", "path", s.path, "reason", err)
	}
	if err := w.Start(); err != nil {
		return fmt.Errorf("starting Argus: %w", err)
	}
	defer func() { _ = w.Close() }()
	// go-timecache, which Argus imports, keeps a 500 µs ticker running for its cached clock:
	// 2.9 % of a core on an idle host (docs/performance.md). Argus reads that clock only to
	// expire its stat cache, so stop the ticker and expire the cache ourselves, twice per
	// poll so that every poll stats afresh.
	stopTimeCache.Do(timecache.StopDefaultCache)
	clear := time.NewTicker(poll / 2)
	defer clear.Stop()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-clear.C:
				w.ClearCache()
			}
		}
	}()
	// Argus took its first stat when the watch was added: a change made between the
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
			if !s.failing {
				s.checkCredentials()
				continue
			}
		}
		_, _ = s.Load() // results are recorded in status, metrics and the audit log
	}
}
