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

// Package hostapi holds the types of the plugin host's HTTP API that the operator reads
// (GET /status), so that the manager does not import the runtime (and Argus) to read them.
package hostapi

import (
	"log/slog"
	"time"

	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// Status is the body of GET /status. The operator reads Revision and LastError from it.
type Status struct {
	// Revision is the sha256 of the applied config.json ("" before the first good config).
	Revision string `json:"revision"`
	// AppliedAt is when Revision was applied.
	AppliedAt *time.Time `json:"appliedAt,omitempty"`
	// Ready is true when a config is applied and the host is not draining.
	Ready bool `json:"ready"`
	// LastError is the error of the last config change when it was refused; it is cleared
	// by the next applied change.
	LastError string `json:"lastError,omitempty"`
	// LastErrorRevision is the revision of the refused bytes.
	LastErrorRevision string `json:"lastErrorRevision,omitempty"`
	// LastReload is the last config change seen, applied or refused.
	LastReload *ReloadRecord `json:"lastReload,omitempty"`
	// Reloads counts config changes by result.
	Reloads ReloadCounts `json:"reloads"`
	// Plugins are the plugins of the applied config.
	Plugins []PluginStatus `json:"plugins"`
	// ConfigPath is the watched file.
	ConfigPath string `json:"configPath,omitempty"`
	// State describes persistence, when a state dir is set.
	State *StateStatus `json:"state,omitempty"`
}

// ReloadCounts counts config changes.
type ReloadCounts struct {
	Applied uint64 `json:"applied"`
	Refused uint64 `json:"refused"`
}

// PluginStatus is one plugin as applied. Credentials are never shown.
type PluginStatus struct {
	Name       string                  `json:"name"`
	Type       string                  `json:"type"`
	Enabled    bool                    `json:"enabled"`
	Transport  string                  `json:"transport"`
	Endpoint   string                  `json:"endpoint,omitempty"`
	AuthMethod string                  `json:"authMethod"`
	Connection pluginconfig.Connection `json:"connection"`
	Options    map[string]any          `json:"options,omitempty"`
}

// StateStatus describes persistence.
type StateStatus struct {
	Dir          string     `json:"dir"`
	LastSnapshot *time.Time `json:"lastSnapshot,omitempty"`
	LastError    string     `json:"lastError,omitempty"`
	// WaitingForLock is true while another pluginhost (the pod being replaced) holds the
	// state dir's lock: this one listens but serves no plugin until it takes the lock and
	// restores the saved state.
	WaitingForLock bool `json:"waitingForLock,omitempty"`
	// Lock is the lock file's path, reported while WaitingForLock.
	Lock string `json:"lock,omitempty"`
}

// Reload results.
const (
	ReloadApplied = "applied"
	ReloadRefused = "refused"
)

// ReloadRecord is one audit record: a config change applied or refused.
type ReloadRecord struct {
	Time             time.Time `json:"time"`
	Result           string    `json:"result"`
	Revision         string    `json:"revision"`
	PreviousRevision string    `json:"previousRevision,omitempty"`
	Added            []string  `json:"added,omitempty"`
	Removed          []string  `json:"removed,omitempty"`
	Changed          []string  `json:"changed,omitempty"`
	Plugins          int       `json:"plugins,omitempty"`
	Error            string    `json:"error,omitempty"`
}

// LogValue lets slog print the record as a group.
func (r ReloadRecord) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("result", r.Result), slog.String("revision", pluginconfig.ShortRevision(r.Revision))}
	if r.PreviousRevision != "" {
		attrs = append(attrs, slog.String("previous", pluginconfig.ShortRevision(r.PreviousRevision)))
	}
	if r.Result == ReloadApplied {
		attrs = append(attrs, slog.Any("added", r.Added), slog.Any("removed", r.Removed), slog.Any("changed", r.Changed), slog.Int("plugins", r.Plugins))
	}
	if r.Error != "" {
		attrs = append(attrs, slog.String("error", r.Error))
	}
	return slog.GroupValue(attrs...)
}
