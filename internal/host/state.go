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
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/hotreload/plugin-operator/pkg/plugin"
)

// StateFileName is the snapshot file inside the state dir.
const StateFileName = "state.json"

// SavedPlugin is one plugin's persisted state.
type SavedPlugin struct {
	Type  string          `json:"type"`
	State json.RawMessage `json:"state"`
}

type stateFile struct {
	Version int                    `json:"version"`
	SavedAt time.Time              `json:"savedAt"`
	Plugins map[string]SavedPlugin `json:"plugins"`
}

// Store persists plugin state in a directory with atomic snapshots (write a temp file,
// fsync, rename, fsync the dir): a crash leaves the previous or the new snapshot, never a
// torn one. Increments after the last snapshot are lost on a crash: the loss window is the
// snapshot interval.
type Store struct {
	dir       string
	lastBytes []byte
}

// NewStore uses dir, creating it if needed.
func NewStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the state directory.
func (s *Store) Dir() string { return s.dir }

// Restore loads the snapshot into h; each plugin gets its state when it is created with the
// same name and type. A missing file is a first start.
func (h *Host) Restore(s *Store) error {
	h.statusMu.Lock()
	h.status.stateDir = s.dir
	h.statusMu.Unlock()
	b, err := os.ReadFile(filepath.Join(s.dir, StateFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading state: %w", err)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("state file %s is corrupt: %w", filepath.Join(s.dir, StateFileName), err)
	}
	h.applyMu.Lock()
	defer h.applyMu.Unlock()
	for name, p := range f.Plugins {
		if li, ok := h.live[name]; ok && li.typ == p.Type {
			if sf, stateful := plugin.As[plugin.Stateful](li.inst); stateful {
				if err := sf.Restore(p.State); err != nil {
					return fmt.Errorf("restoring plugin %q: %w", name, err)
				}
			}
			continue
		}
		h.restored[name] = p
	}
	s.lastBytes, _ = json.Marshal(f.Plugins)
	return nil
}

// Snapshot writes the state of every plugin (and of restored plugins not yet configured
// again) when it differs from the last snapshot. Errors are recorded in /status and a
// metric; the host keeps serving.
func (h *Host) Snapshot(s *Store) error {
	// Cleared before the state is read: a change made while it is read marks it again.
	h.stateDirty.Store(false)
	err := h.snapshot(s)
	h.opts.Metrics.snapshot(err)
	h.statusMu.Lock()
	defer h.statusMu.Unlock()
	h.status.stateDir = s.dir
	if err != nil {
		h.markStateChanged() // so that it is tried again
		if h.status.lastStateError != err.Error() {
			h.log.Error("Saving plugin state failed; serving continues, state since the last snapshot is at risk", "dir", s.dir, "err", err)
		}
		h.status.lastStateError = err.Error()
		return err
	}
	if h.status.lastStateError != "" {
		h.log.Info("Saving plugin state works again", "dir", s.dir)
	}
	h.status.lastStateError = ""
	h.status.lastSnapshot = h.opts.Now()
	return nil
}

// StateChanged receives when plugin state may have changed since the last Snapshot began: a
// plugin operation ran, a config added or removed plugins, or a Snapshot failed. It is
// signalled once until the next Snapshot, so a host whose state has not changed since its
// last snapshot never needs to wake up to save it.
func (h *Host) StateChanged() <-chan struct{} { return h.stateChanged }

// markStateChanged marks the state changed since the last snapshot. It is on the request
// path: once the mark is set, it only reads it.
func (h *Host) markStateChanged() {
	if h.stateDirty.Load() || !h.stateDirty.CompareAndSwap(false, true) {
		return
	}
	select {
	case h.stateChanged <- struct{}{}:
	default:
	}
}

func (h *Host) snapshot(s *Store) error {
	h.applyMu.Lock()
	f := stateFile{Version: 1, Plugins: make(map[string]SavedPlugin, len(h.live)+len(h.restored))}
	for name, p := range h.restored {
		f.Plugins[name] = p
	}
	names := make([]string, 0, len(h.live))
	for name := range h.live {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		li := h.live[name]
		sf, stateful := plugin.As[plugin.Stateful](li.inst)
		if !stateful {
			continue
		}
		st, err := sf.Snapshot()
		if err != nil {
			h.applyMu.Unlock()
			return fmt.Errorf("snapshot of plugin %q: %w", name, err)
		}
		f.Plugins[name] = SavedPlugin{Type: li.typ, State: st}
	}
	h.applyMu.Unlock()

	// Compare without the timestamp so an idle host writes nothing.
	body, err := json.Marshal(f.Plugins)
	if err != nil {
		return err
	}
	if s.lastBytes != nil && bytes.Equal(body, s.lastBytes) {
		return nil
	}
	f.SavedAt = h.opts.Now().UTC()
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.dir, StateFileName, b); err != nil {
		return err
	}
	s.lastBytes = body
	return nil
}

// writeFileAtomic replaces dir/name with b so that readers and crashes see the old or the
// new file whole.
func writeFileAtomic(dir, name string, b []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("writing state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("replacing state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
