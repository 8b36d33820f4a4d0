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

package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Ways a trail breaks.
const (
	// BreakEdited: a record's hash does not match its content, a line is not a record, or
	// a record does not link to the one before it.
	BreakEdited = "edited"
	// BreakRemoved: the sequence skips (records removed) or goes backwards (reordered).
	BreakRemoved = "removed"
	// BreakTruncated: the last line of a segment is partial.
	BreakTruncated = "truncated"
	// BreakChain: a record of another chain, or a genesis inside the trail.
	BreakChain = "chain"
)

// Entry statuses.
const (
	// StatusOK: the record verifies and links to the one before it.
	StatusOK = "ok"
	// StatusStart: the first record read, which is not a genesis: its predecessors were
	// removed by rotation; verification begins here.
	StatusStart = "start"
	// StatusBroken: the record (or line) where the chain breaks.
	StatusBroken = "broken"
	// StatusUnverified: a record after a break that no break record acknowledges.
	StatusUnverified = "unverified"
)

// Break is where a trail stops verifying.
type Break struct {
	// Seq is the sequence of the record that does not verify, or the one expected where a
	// line is not a record.
	Seq    uint64 `json:"seq"`
	File   string `json:"file"`
	Line   int    `json:"line"`
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
	// Acknowledged is true when a later break record (written by the host at start) names
	// this break: the chain goes on, verified, from that record.
	Acknowledged bool `json:"acknowledged"`
}

func (b Break) String() string {
	return fmt.Sprintf("seq %d (%s line %d): %s: %s", b.Seq, b.File, b.Line, b.Kind, b.Reason)
}

// Entry is one line of a trail as read.
type Entry struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Status string `json:"status"`
	// Record is what the line holds (zero when the line is not a record).
	Record Record `json:"record"`
	// Raw is the line when it is not a record.
	Raw string `json:"raw,omitempty"`
}

// Result is a verified trail.
type Result struct {
	Files   []string `json:"files"`
	Entries []Entry  `json:"entries"`
	// Chain is the chain ID of the last trusted record ("" when none).
	Chain string `json:"chain"`
	// Head is the last trusted record: verified and linked.
	Head *Record `json:"head,omitempty"`
	// From is the sequence verification began at; FromGenesis is true when that is the
	// chain's genesis, false when older segments were removed by rotation.
	From        uint64 `json:"from"`
	FromGenesis bool   `json:"fromGenesis"`
	// MaxSeq is the highest sequence read, trusted or not.
	MaxSeq uint64 `json:"maxSeq"`
	// Breaks are the breaks found, in order.
	Breaks []Break `json:"breaks,omitempty"`
}

// Pending is the first break no break record acknowledges, or nil.
func (r *Result) Pending() *Break {
	for i := range r.Breaks {
		if !r.Breaks[i].Acknowledged {
			return &r.Breaks[i]
		}
	}
	return nil
}

// Verify reads the segments of a trail, oldest first, and checks every record: its hash,
// its sequence (one more than the record before) and its link (Prev is the hash of the
// record before). A break does not stop the reading: the records after it are listed as
// unverified until a break record that names it, from which the chain is trusted again.
// The error is for files that cannot be read.
func Verify(files []string) (*Result, error) {
	v := &verifier{res: &Result{Files: files, Entries: []Entry{}}}
	for _, f := range files {
		if err := v.file(f); err != nil {
			return nil, err
		}
	}
	if v.last != nil {
		h := *v.last
		v.res.Head = &h
		v.res.Chain = h.Chain
	}
	return v.res, nil
}

type verifier struct {
	res *Result
	// last is the last trusted record; pending the break not yet acknowledged.
	last    *Record
	pending *Break
	started bool
}

func (v *verifier) file(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening audit trail: %w", err)
	}
	defer f.Close()
	rd := bufio.NewReaderSize(f, 64<<10)
	for n := 1; ; n++ {
		line, err := rd.ReadBytes('\n')
		if len(line) > 0 {
			v.line(path, n, line, err == io.EOF)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
	}
}

func (v *verifier) expected() uint64 {
	if v.last != nil {
		return v.last.Seq + 1
	}
	return v.res.MaxSeq + 1
}

func (v *verifier) line(file string, n int, line []byte, partial bool) {
	e := Entry{File: file, Line: n}
	if partial {
		e.Status, e.Raw = StatusBroken, string(line)
		v.breakAt(&e, v.expected(), BreakTruncated, fmt.Sprintf("the last line is partial (%d bytes, no newline): the segment was cut", len(line)))
		return
	}
	rec, err := parseLine(bytes.TrimSuffix(line, []byte{'\n'}))
	e.Record = rec
	if err != nil {
		seq := rec.Seq
		if rec.Hash == "" {
			e.Raw, seq = strings.TrimSuffix(string(line), "\n"), v.expected()
		}
		v.breakAt(&e, seq, BreakEdited, err.Error())
		return
	}
	v.res.MaxSeq = max(v.res.MaxSeq, rec.Seq)
	switch {
	case v.pending != nil:
		if rec.Kind == KindBreak && rec.BrokenAt == v.pending.Seq && rec.Prev == v.lastHash() {
			v.pending.Acknowledged = true
			v.pending = nil
			v.trust(&e, rec, StatusOK)
			return
		}
		e.Status = StatusUnverified
		v.res.Entries = append(v.res.Entries, e)
	case !v.started:
		v.started = true
		v.res.From = rec.Seq
		if rec.Kind == KindGenesis {
			if rec.Prev != "" {
				v.breakAt(&e, rec.Seq, BreakEdited, "a genesis record with a prev hash")
				return
			}
			v.res.FromGenesis = true
			v.trust(&e, rec, StatusOK)
			return
		}
		v.trust(&e, rec, StatusStart)
	default:
		if reason, kind := v.link(rec); reason != "" {
			v.breakAt(&e, rec.Seq, kind, reason)
			return
		}
		v.trust(&e, rec, StatusOK)
	}
}

// link says why rec does not follow the last trusted record ("" when it does).
func (v *verifier) link(rec Record) (reason, kind string) {
	last := v.last
	if last == nil {
		// Everything before was broken and not acknowledged: handled by pending.
		return "", ""
	}
	switch {
	case rec.Kind == KindGenesis:
		return fmt.Sprintf("a genesis record (chain %s) inside the trail of chain %s", rec.Chain, last.Chain), BreakChain
	case rec.Chain != last.Chain:
		return fmt.Sprintf("record of chain %s inside the trail of chain %s", rec.Chain, last.Chain), BreakChain
	case rec.Seq > last.Seq+1:
		return fmt.Sprintf("sequence gap: seq %d follows seq %d: records %s removed", rec.Seq, last.Seq, seqRange(last.Seq+1, rec.Seq-1)), BreakRemoved
	case rec.Seq <= last.Seq:
		return fmt.Sprintf("sequence goes backwards: seq %d follows seq %d: records reordered or copied", rec.Seq, last.Seq), BreakRemoved
	case rec.Prev != last.Hash:
		return fmt.Sprintf("prev mismatch: seq %d does not link to seq %d (prev %s, seq %d's hash %s): a record was replaced", rec.Seq, last.Seq, short(rec.Prev), last.Seq, short(last.Hash)), BreakEdited
	}
	return "", ""
}

func seqRange(a, b uint64) string {
	if a == b {
		return strconv.FormatUint(a, 10)
	}
	return fmt.Sprintf("%d-%d", a, b)
}

func (v *verifier) lastHash() string {
	if v.last == nil {
		return ""
	}
	return v.last.Hash
}

func (v *verifier) trust(e *Entry, rec Record, status string) {
	e.Status = status
	v.res.Entries = append(v.res.Entries, *e)
	r := rec
	v.last = &r
}

func (v *verifier) breakAt(e *Entry, seq uint64, kind, reason string) {
	v.started = true
	e.Status = StatusBroken
	v.res.Entries = append(v.res.Entries, *e)
	if v.pending != nil {
		// Already broken: what follows a break is unverified, not broken again.
		e := &v.res.Entries[len(v.res.Entries)-1]
		e.Status = StatusUnverified
		return
	}
	v.res.Breaks = append(v.res.Breaks, Break{Seq: seq, File: e.File, Line: e.Line, Kind: kind, Reason: reason})
	v.pending = &v.res.Breaks[len(v.res.Breaks)-1]
}

// SegmentName is the name a segment takes when rotated: path and its first sequence.
func SegmentName(path string, firstSeq uint64) string {
	return fmt.Sprintf("%s.%012d", path, firstSeq)
}

// Segments lists the files of the trail at path, oldest first: the rotated segments
// (path.<first sequence>) and path itself when it exists.
func Segments(path string) ([]string, error) {
	matches, err := filepath.Glob(globQuote(path) + ".*")
	if err != nil {
		return nil, err
	}
	type seg struct {
		name string
		n    uint64
	}
	var segs []seg
	for _, m := range matches {
		n, err := strconv.ParseUint(strings.TrimPrefix(m, path+"."), 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, seg{m, n})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].n < segs[j].n })
	files := make([]string, 0, len(segs)+1)
	for _, s := range segs {
		files = append(files, s.name)
	}
	if _, err := os.Stat(path); err == nil {
		files = append(files, path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return files, nil
}

// SortSegments orders files given on a command line as Segments does: a rotated segment
// (name.<digits>) before the current file of the same name, by sequence.
func SortSegments(files []string) []string {
	key := func(f string) (string, uint64, bool) {
		if i := strings.LastIndexByte(f, '.'); i >= 0 {
			if n, err := strconv.ParseUint(f[i+1:], 10, 64); err == nil {
				return f[:i], n, true
			}
		}
		return f, 0, false
	}
	out := append([]string(nil), files...)
	sort.SliceStable(out, func(i, j int) bool {
		bi, ni, ri := key(out[i])
		bj, nj, rj := key(out[j])
		if bi != bj {
			return bi < bj
		}
		if ri != rj {
			return ri // rotated first
		}
		return ni < nj
	})
	return out
}

func globQuote(p string) string {
	var sb strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`*?[]\`, r) {
			sb.WriteByte('\\')
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
