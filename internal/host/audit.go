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
	"errors"
	"log/slog"
	"sync"

	"github.com/hotreload/plugin-operator/internal/audit"
	"github.com/hotreload/plugin-operator/internal/hostapi"
)

// AuditOptions configure OpenAudit.
type AuditOptions struct {
	// Path is the trail's current segment ("": log only).
	Path string
	// MaxBytes and Segments bound the trail (see audit.Options).
	MaxBytes int64
	Segments int
	// Pod names the host in a new chain.
	Pod string
}

// Audit writes one record per applied or refused config and per credentials rotation to
// the log and, with a path, to the hash-chained trail (package audit). A nil *Audit logs
// only.
type Audit struct {
	trail *audit.Trail
	path  string
	// start is what verifying the trail at start found.
	start *audit.Result

	mu      sync.Mutex
	lastErr string
}

// OpenAudit verifies the trail at o.Path and opens it for appending; "" logs only (nil).
// Nothing here stops the host from serving: a broken trail is logged and reported
// (status, metrics) and goes on in a new segment that starts with a record of the break; a
// trail that cannot be read or written at all is logged and reported, and records are
// then only logged.
func OpenAudit(o AuditOptions, log *slog.Logger) *Audit {
	if o.Path == "" {
		return nil
	}
	tr, res, err := audit.Open(audit.Options{Path: o.Path, MaxBytes: o.MaxBytes, Segments: o.Segments, Pod: o.Pod})
	if err != nil {
		log.Error("Cannot open the audit trail; config changes are only logged", "path", o.Path, "err", err)
		return &Audit{path: o.Path, lastErr: err.Error()}
	}
	a := &Audit{trail: tr, path: o.Path, start: res}
	head := tr.Head()
	switch b := res.Pending(); {
	case b != nil:
		log.Error("Audit trail broken: the break is recorded and the trail goes on in a new segment", "path", o.Path,
			"brokenAt", b.Seq, "kind", b.Kind, "file", b.File, "line", b.Line, "reason", b.Reason, "chain", head.Chain, "sequence", head.Seq)
	case len(res.Breaks) > 0:
		b := res.Breaks[0]
		log.Warn("Audit trail has a recorded break", "path", o.Path, "brokenAt", b.Seq, "kind", b.Kind, "reason", b.Reason, "chain", head.Chain, "sequence", head.Seq)
	case len(res.Entries) == 0:
		log.Info("Audit trail started: a new chain", "path", o.Path, "chain", head.Chain, "pod", o.Pod)
	default:
		log.Info("Audit trail verified", "path", o.Path, "chain", head.Chain, "sequence", head.Seq, "from", res.From, "fromGenesis", res.FromGenesis)
	}
	return a
}

// Record logs rec and appends it to the trail as a record of kind (audit.KindConfig or
// audit.KindCredentials). A failing write is logged, counted and shown on /status, not
// fatal.
func (a *Audit) Record(log *slog.Logger, m *Metrics, kind string, rec ReloadRecord) {
	switch {
	case kind == audit.KindCredentials && rec.Result == ReloadApplied:
		log.Info("Credentials reloaded", "reload", rec)
	case kind == audit.KindCredentials:
		log.Warn("Rotated credentials refused, keeping the credentials in force", "reload", rec)
	case rec.Result == ReloadApplied:
		log.Info("Config applied", "reload", rec)
	default:
		log.Warn("Config refused, keeping the last good config", "reload", rec)
	}
	if a == nil {
		return
	}
	if a.trail == nil {
		m.audited(kind, 0, errors.New("no audit trail"))
		return
	}
	_, err := a.trail.Append(audit.Record{
		Time: rec.Time, Kind: kind, Revision: rec.Revision, PreviousRevision: rec.PreviousRevision, Result: rec.Result,
		Error: rec.Error, Added: rec.Added, Removed: rec.Removed, Changed: rec.Changed, Plugins: rec.Plugins,
	})
	a.mu.Lock()
	a.lastErr = ""
	if err != nil {
		a.lastErr = err.Error()
	}
	a.mu.Unlock()
	m.audited(kind, a.trail.Head().Seq, err)
	if err != nil {
		log.Error("Writing audit record failed", "path", a.path, "err", err)
	}
}

// Status is the trail's part of /status (nil without a trail).
func (a *Audit) Status() *hostapi.AuditStatus {
	if a == nil {
		return nil
	}
	if a.trail == nil {
		return &hostapi.AuditStatus{Path: a.path, LastError: a.lastErr}
	}
	head := a.trail.Head()
	st := &hostapi.AuditStatus{
		Path: a.path, Chain: head.Chain, Sequence: head.Seq, Head: head.Hash,
		Verified: len(a.start.Breaks) == 0, VerifiedFrom: a.start.From, FromGenesis: a.start.FromGenesis,
	}
	if len(a.start.Breaks) > 0 {
		b := a.start.Breaks[0]
		st.Broken = &hostapi.AuditBreak{Sequence: b.Seq, File: b.File, Line: b.Line, Kind: b.Kind, Reason: b.Reason, RecordedEarlier: b.Acknowledged}
	}
	if st.VerifiedFrom == 0 {
		st.VerifiedFrom, st.FromGenesis = 1, true // a new trail: its genesis is the first record
	}
	a.mu.Lock()
	st.LastError = a.lastErr
	a.mu.Unlock()
	return st
}

// Close closes the trail.
func (a *Audit) Close() error {
	if a == nil || a.trail == nil {
		return nil
	}
	return a.trail.Close()
}
