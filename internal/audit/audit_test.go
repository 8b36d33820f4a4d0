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
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeTrail makes a trail of a genesis and n config records at dir/audit.jsonl.
func writeTrail(t testing.TB, dir string, n int, opts Options) string {
	t.Helper()
	opts.Path = filepath.Join(dir, "audit.jsonl")
	if opts.Pod == "" {
		opts.Pod = "host-0"
	}
	tr, res, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Breaks) != 0 {
		t.Fatalf("new trail: breaks %v", res.Breaks)
	}
	for i := range n {
		result := ResultApplied
		if i%3 == 2 {
			result = ResultRefused
		}
		if _, err := tr.Append(Record{Kind: KindConfig, Revision: fmt.Sprintf("sha256:%064d", i), Result: result, Plugins: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	return opts.Path
}

func lines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))
}

func writeLines(t *testing.T, path string, ls [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(ls, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func verifyPath(t *testing.T, path string) *Result {
	t.Helper()
	files, err := Segments(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Verify(files)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestCleanTrailVerifies(t *testing.T) {
	path := writeTrail(t, t.TempDir(), 10, Options{})
	res := verifyPath(t, path)
	if len(res.Breaks) != 0 {
		t.Fatalf("breaks: %v", res.Breaks)
	}
	if !res.FromGenesis || res.From != 1 || res.Head.Seq != 11 || len(res.Entries) != 11 {
		t.Fatalf("from %d genesis %v head %d entries %d; want from 1 (genesis), head 11, 11 entries", res.From, res.FromGenesis, res.Head.Seq, len(res.Entries))
	}
	g := res.Entries[0].Record
	if g.Kind != KindGenesis || g.Pod != "host-0" || !strings.HasPrefix(g.Chain, "host-0.") || g.Prev != "" {
		t.Fatalf("genesis %+v", g)
	}
	for _, e := range res.Entries {
		if e.Status != StatusOK || e.Record.Chain != g.Chain {
			t.Fatalf("entry %+v", e)
		}
	}
	// Reopening continues the chain: no new genesis.
	tr, res2, err := Open(Options{Path: path, Pod: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tr.Close() }()
	if h := tr.Head(); h.Seq != 11 || h.Chain != g.Chain || len(res2.Breaks) != 0 {
		t.Fatalf("reopened head %+v, breaks %v", h, res2.Breaks)
	}
	rec, err := tr.Append(Record{Kind: KindCredentials, Result: ResultApplied, Revision: "sha256:x"})
	if err != nil || rec.Seq != 12 || rec.Prev != res.Head.Hash {
		t.Fatalf("append after reopen: %+v, %v", rec, err)
	}
}

// TestTamper: each way of tampering is reported at the right sequence, with the right
// kind; reopening the trail writes one break record that acknowledges it (evidence kept in
// the rotated segment), and the trail verifies from there on; a second reopen adds nothing.
func TestTamper(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tamper  func(ls [][]byte) [][]byte
		seq     uint64
		kind    string
		reason  string
		lastSeq uint64 // last trusted before the break
	}{
		{
			name: "edited",
			tamper: func(ls [][]byte) [][]byte {
				ls[4] = bytes.Replace(ls[4], []byte(`"result":"applied"`), []byte(`"result":"refused"`), 1)
				return ls
			},
			seq: 5, kind: BreakEdited, reason: "hash mismatch", lastSeq: 4,
		},
		{
			name:   "removed",
			tamper: func(ls [][]byte) [][]byte { return append(ls[:4:4], ls[5:]...) },
			seq:    6, kind: BreakRemoved, reason: "sequence gap: seq 6 follows seq 4: records 5 removed", lastSeq: 4,
		},
		{
			name: "truncated",
			tamper: func(ls [][]byte) [][]byte {
				last := len(ls) - 2 // SplitAfter leaves an empty tail
				ls[last] = ls[last][:len(ls[last])/2]
				return ls
			},
			seq: 11, kind: BreakTruncated, reason: "the last line is partial", lastSeq: 10,
		},
		{
			name: "field added",
			tamper: func(ls [][]byte) [][]byte {
				ls[2] = bytes.Replace(ls[2], []byte(`{"seq"`), []byte(`{"note":"x","seq"`), 1)
				return ls
			},
			seq: 3, kind: BreakEdited, reason: "unknown field", lastSeq: 2,
		},
		{
			name: "replaced with a rehashed record",
			tamper: func(ls [][]byte) [][]byte {
				var r Record
				if err := json.Unmarshal(ls[6], &r); err != nil {
					panic(err)
				}
				r.Error = "forged"
				line, err := r.Seal() // a valid hash, but seq 8 links to the original
				if err != nil {
					panic(err)
				}
				ls[6] = line
				return ls
			},
			seq: 8, kind: BreakEdited, reason: "prev mismatch: seq 8 does not link to seq 7", lastSeq: 7,
		},
		{
			name:   "genesis removed",
			tamper: func(ls [][]byte) [][]byte { return ls[1:] },
			// Without its genesis the trail starts mid-chain, as after rotation; only an
			// outside witness of the head can tell (docs/pluginhost.md).
			seq: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTrail(t, t.TempDir(), 10, Options{})
			chain := verifyPath(t, path).Chain
			writeLines(t, path, tc.tamper(lines(t, path)))
			res := verifyPath(t, path)
			if tc.seq == 0 {
				if len(res.Breaks) != 0 || res.FromGenesis || res.From != 2 {
					t.Fatalf("breaks %v, from %d genesis %v; want no break, from 2 without genesis", res.Breaks, res.From, res.FromGenesis)
				}
				return
			}
			if len(res.Breaks) != 1 {
				t.Fatalf("breaks %v; want one", res.Breaks)
			}
			b := res.Breaks[0]
			if b.Seq != tc.seq || b.Kind != tc.kind || !strings.Contains(b.Reason, tc.reason) || b.Acknowledged || b.File != path {
				t.Fatalf("break %+v; want seq %d, kind %s, reason containing %q", b, tc.seq, tc.kind, tc.reason)
			}
			if res.Head.Seq != tc.lastSeq {
				t.Fatalf("head %d; want the last trusted record %d", res.Head.Seq, tc.lastSeq)
			}

			tr, opened, err := Open(Options{Path: path, Pod: "host-0"})
			if err != nil {
				t.Fatal(err)
			}
			if opened.Pending() == nil {
				t.Fatal("Open did not report the break")
			}
			head := tr.Head()
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}
			files, _ := Segments(path)
			if len(files) != 2 || files[0] != SegmentName(path, 1) {
				t.Fatalf("segments %v; want the broken one set aside and a new one", files)
			}
			after := verifyPath(t, path)
			if len(after.Breaks) != 1 || !after.Breaks[0].Acknowledged || after.Pending() != nil {
				t.Fatalf("after reopen: breaks %+v; want the one break, acknowledged", after.Breaks)
			}
			br := after.Head
			if br.Kind != KindBreak || br.BrokenAt != tc.seq || br.Chain != chain || br.Seq != head.Seq || br.Seq != after.MaxSeq {
				t.Fatalf("break record %+v (max seq %d)", br, after.MaxSeq)
			}
			// The host does not record the same break twice.
			tr, again, err := Open(Options{Path: path, Pod: "host-0"})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tr.Close() }()
			if again.Pending() != nil || tr.Head() != head {
				t.Fatalf("second reopen: pending %v, head %+v (was %+v)", again.Pending(), tr.Head(), head)
			}
		})
	}
}

// TestRotation: segments stay within the bound, the chain crosses them, and verification
// says where it begins once the oldest are gone; a removed middle segment is a gap.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := writeTrail(t, dir, 200, Options{MaxBytes: 4 << 10, Segments: 3})
	files, err := Segments(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("segments %v; want 3", files)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 4<<10 {
			t.Fatalf("%s is %d bytes, over the 4 KiB bound", f, fi.Size())
		}
	}
	res := verifyPath(t, path)
	if len(res.Breaks) != 0 || res.FromGenesis || res.From <= 1 || res.Head.Seq != 201 {
		t.Fatalf("breaks %v, from %d (genesis %v), head %d; want a clean chain from a later sequence to 201", res.Breaks, res.From, res.FromGenesis, res.Head.Seq)
	}
	if want := SegmentName(path, res.From); files[0] != want {
		t.Fatalf("oldest segment %s; want %s", files[0], want)
	}
	if err := os.Remove(files[1]); err != nil {
		t.Fatal(err)
	}
	res = verifyPath(t, path)
	if len(res.Breaks) != 1 || res.Breaks[0].Kind != BreakRemoved || res.Breaks[0].File != path {
		t.Fatalf("breaks %+v; want a gap at the start of the current segment", res.Breaks)
	}
}

// TestNewChainVersusTruncation: a trail started afresh (a pod without persistence) has a
// new chain ID; a trail cut at a record boundary keeps its chain ID with a lower head
// sequence, which an outside witness of the head (the PluginHost status) tells apart.
func TestNewChainVersusTruncation(t *testing.T) {
	path := writeTrail(t, t.TempDir(), 5, Options{})
	before := verifyPath(t, path).Head
	other := verifyPath(t, writeTrail(t, t.TempDir(), 5, Options{})).Head
	if other.Chain == before.Chain {
		t.Fatalf("two trails share chain ID %s", other.Chain)
	}
	ls := lines(t, path)
	writeLines(t, path, ls[:len(ls)-3])
	cut := verifyPath(t, path)
	if len(cut.Breaks) != 0 || cut.Head.Chain != before.Chain || cut.Head.Seq >= before.Seq {
		t.Fatalf("cut trail: breaks %v, head %+v; want a clean chain %s below seq %d", cut.Breaks, cut.Head, before.Chain, before.Seq)
	}
}

func TestSortSegments(t *testing.T) {
	got := SortSegments([]string{"a.jsonl", "a.jsonl.000000000120", "a.jsonl.000000000007"})
	want := []string{"a.jsonl.000000000007", "a.jsonl.000000000120", "a.jsonl"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// BenchmarkVerify10000 verifies a clean trail of 10,000 records (one segment).
func BenchmarkVerify10000(b *testing.B) {
	path := writeTrail(b, b.TempDir(), 9999, Options{MaxBytes: 64 << 20})
	b.ResetTimer()
	for b.Loop() {
		res, err := Verify([]string{path})
		if err != nil || len(res.Breaks) != 0 || res.Head.Seq != 10000 {
			b.Fatalf("%v %v", err, res.Breaks)
		}
	}
}

// BenchmarkAppend is the cost of one record on the reload path.
func BenchmarkAppend(b *testing.B) {
	tr, _, err := Open(Options{Path: filepath.Join(b.TempDir(), "audit.jsonl"), MaxBytes: 1 << 30, Now: func() time.Time { return time.Unix(0, 0) }})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tr.Close() }()
	rec := Record{Kind: KindConfig, Result: ResultApplied, Revision: "sha256:" + strings.Repeat("a", 64), PreviousRevision: "sha256:" + strings.Repeat("b", 64), Changed: []string{"counter-1"}, Plugins: 3}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.Append(rec); err != nil {
			b.Fatal(err)
		}
	}
}
