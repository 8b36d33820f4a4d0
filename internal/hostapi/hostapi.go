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
// (GET /status, GET /types), so that the manager does not import the runtime (and Argus) to
// read them. The JSON they describe is a public protocol, versioned by StatusVersion and
// documented in docs/pluginhost.md.
package hostapi

import (
	"encoding/json"
	"log/slog"
	"time"

	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// StatusVersion is the version of the /status document (Status.Version) this build writes.
// A reader accepts its own version and older ones; fields are only ever added within a
// version, so a reader ignores fields it does not know.
const StatusVersion = 1

// LongPollHeader is set (to "1") on the answers to GET /status?after=<revision>&wait=<duration>,
// the long-poll: a runtime without it ignores the parameters and answers at once, without
// the header.
const LongPollHeader = "Pluginhost-Long-Poll"

// Status is the body of GET /status. The operator reads Revision, LastError and Types from
// it.
type Status struct {
	// Version is StatusVersion of the host that wrote the document (0: a host built before
	// the document had a version, which reports no Types).
	Version int `json:"version"`
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
	// Types are the plugin types this host's binary carries, sorted by name: what a config
	// may use. They do not depend on the config and never change while the process runs.
	Types []TypeInfo `json:"types"`
}

// TypesDocument is the body of GET /types on the operations listener.
type TypesDocument struct {
	Version int        `json:"version"`
	Types   []TypeInfo `json:"types"`
}

// TypeInfo is one plugin type as a host advertises it.
type TypeInfo struct {
	// Name is the value of "type" in config.json.
	Name string `json:"name"`
	// Operations are the type's operations: /plugins/{name}/{operation}.
	Operations []Operation `json:"operations"`
	// OptionsSchema is a JSON Schema (draft 2020-12) of the options object; absent when the
	// type takes no options.
	OptionsSchema json.RawMessage `json:"optionsSchema,omitempty"`
}

// Operation is one operation of a type.
type Operation struct {
	Name        string `json:"name"`
	Method      string `json:"method"`
	Mutating    bool   `json:"mutating,omitempty"`
	Description string `json:"description,omitempty"`
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
