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
	"path/filepath"
	"sort"

	"github.com/hotreload/plugin-operator/internal/hostapi"
)

// Status is the body of GET /status (see package hostapi).
type Status = hostapi.Status

// PluginStatus is one plugin as applied.
type PluginStatus = hostapi.PluginStatus

// StateStatus describes persistence.
type StateStatus = hostapi.StateStatus

// ReloadCounts counts config changes.
type ReloadCounts = hostapi.ReloadCounts

// ReloadRecord is one audit record: a config change applied or refused.
type ReloadRecord = hostapi.ReloadRecord

// Status reports what the host has applied.
func (h *Host) Status() Status {
	g := h.current.Load()
	st := Status{Version: hostapi.StatusVersion, Ready: h.Ready(), Plugins: []PluginStatus{}, Types: h.opts.Registry.Types()}
	if g != nil {
		st.Revision, st.Sequence = g.revision, h.sequence.Load()
		at := g.appliedAt
		st.AppliedAt = &at
		for _, p := range g.config.Plugins {
			st.Plugins = append(st.Plugins, PluginStatus{
				Name: p.Name, Type: p.Type, Enabled: p.IsEnabled(), Transport: p.Transport, Endpoint: p.Endpoint,
				AuthMethod: p.Auth.Method, Connection: p.Connection, Options: p.Options,
			})
		}
		sort.Slice(st.Plugins, func(i, j int) bool { return st.Plugins[i].Name < st.Plugins[j].Name })
	}
	st.Audit = h.audit.Load().Status()
	st.Watch = h.WatchStatus()
	h.statusMu.Lock()
	defer h.statusMu.Unlock()
	s := h.status
	st.LastError, st.LastErrorRevision = s.lastError, s.lastErrorRev
	st.LastReload = s.lastAttempt
	st.Reloads = ReloadCounts{Applied: s.appliedCount, Refused: s.refusedCount}
	st.ConfigPath = s.configPath
	if s.stateDir != "" {
		ss := &StateStatus{Dir: s.stateDir, LastError: s.lastStateError}
		if lock := h.waitingFor(); lock != "" {
			ss.WaitingForLock, ss.Lock = true, lock
		}
		if !s.lastSnapshot.IsZero() {
			t := s.lastSnapshot
			ss.LastSnapshot = &t
		}
		st.State = ss
	}
	return st
}

// TypesDocument is the body of GET /types: the plugin types this host carries.
func (h *Host) TypesDocument() hostapi.TypesDocument {
	return hostapi.TypesDocument{Version: hostapi.StatusVersion, Types: h.opts.Registry.Types()}
}

func (h *Host) setConfigPath(p string) {
	h.baseDir.Store(filepath.Dir(p))
	h.statusMu.Lock()
	h.status.configPath = p
	h.statusMu.Unlock()
}

// Reload results.
const (
	ReloadApplied = hostapi.ReloadApplied
	ReloadRefused = hostapi.ReloadRefused
)
