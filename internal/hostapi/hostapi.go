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

// Config push (PUT /config on the ops listener, docs/pluginhost.md): the operator hands a
// pod the config it rendered, with its delivery sequence, before kubelet projects it.
const (
	// SequenceHeader carries the pushed config's delivery sequence: a positive decimal.
	SequenceHeader = "Pluginhost-Config-Sequence"
	// ConfigPath is the push endpoint's path.
	ConfigPath = "/config"
	// PushStatusHeader, set to "1" on a push, asks for the host's status in the answer
	// (PushResult.Status), so that the pusher need not read /status again. A runtime
	// without it answers without the status; a pusher that does not ask gets none, and so
	// an answer as small as before.
	PushStatusHeader = "Pluginhost-Push-Status"
)

// PushResult is the body of a PUT /config answered 200 (applied, or already applied).
type PushResult struct {
	// Revision is the sha256 of the pushed bytes, now applied.
	Revision string `json:"revision"`
	// PreviousRevision is the revision applied before ("" if none or Unchanged).
	PreviousRevision string `json:"previousRevision,omitempty"`
	// Sequence is the highest delivery sequence the host has applied.
	Sequence uint64 `json:"sequence"`
	// Unchanged is true when the bytes were already applied.
	Unchanged bool `json:"unchanged,omitempty"`
	// Status is the host's /status document right after the push, audit record included,
	// when the push asked for it (PushStatusHeader).
	Status *Status `json:"status,omitempty"`
}

// Status is the body of GET /status. The operator reads Revision, LastError, Types and
// Audit from it.
type Status struct {
	// Version is StatusVersion of the host that wrote the document (0: a host built before
	// the document had a version, which reports no Types).
	Version int `json:"version"`
	// Revision is the sha256 of the applied config.json ("" before the first good config).
	Revision string `json:"revision"`
	// AppliedAt is when Revision was applied.
	AppliedAt *time.Time `json:"appliedAt,omitempty"`
	// Sequence is the highest delivery sequence applied, pushed (PUT /config) or read beside
	// the config file (0: only unsequenced configs so far).
	Sequence uint64 `json:"sequence,omitempty"`
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
	// Audit is the head of the audit trail and what verifying it at start found; absent
	// without a trail.
	Audit *AuditStatus `json:"audit,omitempty"`
	// Watch is Argus' own view of the config watch (Settings.Explain); absent before the
	// watch starts.
	Watch *WatchStatus `json:"watch,omitempty"`
}

// AuditStatus is the head of a host's hash-chained audit trail (docs/pluginhost.md,
// "Audit"). Seen from outside over time, the same Chain with a lower Sequence, or another
// Head at a Sequence seen before, means the trail was cut or rewritten; a new Chain is a
// new trail (a pod started without its old one).
type AuditStatus struct {
	// Path is the trail's current segment.
	Path string `json:"path"`
	// Chain is the chain's ID, from its genesis record.
	Chain string `json:"chain"`
	// Sequence is the last record's sequence; Head its hash.
	Sequence uint64 `json:"sequence"`
	Head     string `json:"head"`
	// Verified is true when the trail verified at start without a break.
	Verified bool `json:"verified"`
	// VerifiedFrom is the sequence verification began at: the genesis (1, FromGenesis),
	// or the first record kept when older segments were removed by rotation.
	VerifiedFrom uint64 `json:"verifiedFrom"`
	FromGenesis  bool   `json:"fromGenesis"`
	// Broken is the first break found at start.
	Broken *AuditBreak `json:"broken,omitempty"`
	// LastError is the error of the last record that could not be written ("" once one is).
	LastError string `json:"lastError,omitempty"`
}

// AuditBreak is where a trail stopped verifying.
type AuditBreak struct {
	// Sequence is the sequence of the record that does not verify.
	Sequence uint64 `json:"sequence"`
	File     string `json:"file"`
	Line     int    `json:"line"`
	// Kind is edited, removed, truncated or chain.
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
	// RecordedEarlier is true when a break record written at an earlier start already
	// names it; false when this start found it (and wrote that record).
	RecordedEarlier bool `json:"recordedEarlier,omitempty"`
}

// WatchStatus is what Argus reports about the config watch (argus.Settings.Explain).
type WatchStatus struct {
	// Revision counts the changes Argus committed since the watch started; Digest is the
	// content identity of its current revision.
	Revision uint64 `json:"revision"`
	Digest   string `json:"digest"`
	// Backend is how Argus notices changes (polling, and its interval).
	Backend string `json:"backend"`
	// MaxStaleness is how long a change may go unnoticed (--poll-interval).
	MaxStaleness string `json:"maxStaleness"`
	// Documents and DocumentBytes are the config documents Argus holds.
	Documents     int   `json:"documents"`
	DocumentBytes int64 `json:"documentBytes"`
	// Sources are the watched paths and their state (loaded or absent).
	Sources []WatchSource `json:"sources,omitempty"`
	// Issues are Argus' complaints about sources (an oversized document, for one).
	Issues []string `json:"issues,omitempty"`
	// LastRefusal is the last candidate Argus refused, nil once a cycle succeeds.
	LastRefusal *WatchRefusal `json:"lastRefusal,omitempty"`
	// Changes and Errors count Argus' reports to the host: changes seen, and errors reading
	// the config.
	Changes uint64 `json:"changes"`
	Errors  uint64 `json:"errors"`
}

// WatchSource is one source Argus watches.
type WatchSource struct {
	Detail string `json:"detail"`
	State  string `json:"state"`
}

// WatchRefusal is a candidate Argus did not make a revision.
type WatchRefusal struct {
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	// Cycles is how many consecutive cycles were refused.
	Cycles int `json:"cycles"`
	// Revision is the Argus revision still in force.
	Revision uint64 `json:"revision"`
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
