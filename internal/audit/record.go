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

// Package audit is the plugin host's tamper-evident audit trail: JSON lines, each record
// carrying the SHA-256 of the previous record's hash and its own canonical JSON, so that an
// edited, removed or cut record breaks the chain at a sequence number Verify names. The
// trail is rotated into a bounded number of segments; a chain starts with a genesis record
// holding a random chain ID, so that a new chain (a pod restarted without persistence) is
// told apart from a truncated one (same chain ID, a lower sequence).
//
// Why not Argus' own trail: only its SQLite backend chains, which needs cgo; see
// docs/pluginhost.md ("Audit") for the measured cost.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Record kinds.
const (
	// KindGenesis starts a chain: Chain is new, Prev is empty.
	KindGenesis = "genesis"
	// KindConfig is a config revision applied or refused.
	KindConfig = "config"
	// KindCredentials is a credentials rotation applied or refused.
	KindCredentials = "credentials"
	// KindBreak is written by a host that found its trail broken at start: it names the
	// sequence and the reason, links to the last record that verified, and the chain goes on
	// from it.
	KindBreak = "break"
)

// Results of config and credentials records.
const (
	ResultApplied = "applied"
	ResultRefused = "refused"
)

// Record is one line of the trail. Hash is the hex SHA-256 of Prev and the record's JSON
// with Hash empty (see Seal); every other field is covered.
type Record struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	// Chain is the chain's ID, on every record so that a lone segment names its chain.
	Chain string `json:"chain"`
	// Pod is the host's pod (its hostname), on genesis and break records.
	Pod              string   `json:"pod,omitempty"`
	Revision         string   `json:"revision,omitempty"`
	PreviousRevision string   `json:"previousRevision,omitempty"`
	Result           string   `json:"result,omitempty"`
	Error            string   `json:"error,omitempty"`
	Added            []string `json:"added,omitempty"`
	Removed          []string `json:"removed,omitempty"`
	Changed          []string `json:"changed,omitempty"`
	Plugins          int      `json:"plugins,omitempty"`
	// BrokenAt and Reason are the break a KindBreak record reports.
	BrokenAt uint64 `json:"brokenAt,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Prev     string `json:"prev"`
	Hash     string `json:"hash,omitempty"`
}

// Seal sets r.Hash from r.Prev and the rest of r, and returns the record as one JSON line
// (with its newline).
func (r *Record) Seal() ([]byte, error) {
	r.Hash = ""
	r.Time = r.Time.UTC()
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	r.Hash = chainHash(r.Prev, body)
	line, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return append(line, '\n'), nil
}

// chainHash is sha256(prev || "\n" || body) in hex: body is the record's JSON without its
// hash, prev the hash of the record before it.
func chainHash(prev string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write([]byte{'\n'})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// parseLine decodes one line strictly (an added field is an edit) and checks its hash.
func parseLine(line []byte) (Record, error) {
	var r Record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("not a record: %w", err)
	}
	if dec.More() {
		return r, errors.New("not a record: more than one JSON value on the line")
	}
	stored := r.Hash
	if stored == "" {
		return r, errors.New("no hash")
	}
	c := r
	c.Hash = ""
	body, err := json.Marshal(c)
	if err != nil {
		return r, err
	}
	if got := chainHash(r.Prev, body); got != stored {
		return r, fmt.Errorf("hash mismatch: the record was edited (stored %s, computed %s)", short(stored), short(got))
	}
	return r, nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
