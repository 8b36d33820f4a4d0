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
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultMaxBytes = 1 << 20
	DefaultSegments = 4
)

// Options configure a Trail.
type Options struct {
	// Path is the current segment; rotated ones are Path.<first sequence>.
	Path string
	// MaxBytes is the size past which the current segment is rotated (DefaultMaxBytes).
	MaxBytes int64
	// Segments is how many segments are kept, the current one included (DefaultSegments):
	// the trail holds at most about Segments × MaxBytes.
	Segments int
	// Pod names the host in a new chain's ID and its genesis record.
	Pod string
	// Now is the clock (tests); time.Now by default.
	Now func() time.Time
}

// Head is the last record of a chain.
type Head struct {
	Chain string
	Seq   uint64
	Hash  string
}

// Trail appends records to a hash-chained, rotated trail. It is safe for concurrent use.
type Trail struct {
	opts Options

	mu    sync.Mutex
	f     *os.File
	size  int64
	first uint64 // sequence of the current segment's first record (0: none yet)
	head  Head
}

// Open verifies the trail at opts.Path and opens it for appending. A new trail starts with a
// genesis record. A trail that does not verify is reported in the Result and not appended
// to: its current segment is rotated aside, untouched, and a new segment starts with a
// break record that names the break and links to the last record that verified, so that
// the chain goes on and the evidence stays. The error is for a trail that cannot be read
// or written.
func Open(opts Options) (*Trail, *Result, error) {
	if opts.Path == "" {
		return nil, nil, errors.New("audit trail: no path")
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Segments <= 0 {
		opts.Segments = DefaultSegments
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	files, err := Segments(opts.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("audit trail: %w", err)
	}
	res, err := Verify(files)
	if err != nil {
		return nil, nil, err
	}
	t := &Trail{opts: opts}
	if res.Head != nil {
		t.head = Head{Chain: res.Head.Chain, Seq: res.Head.Seq, Hash: res.Head.Hash}
	}
	t.head.Seq = max(t.head.Seq, res.MaxSeq)
	if err := t.openCurrent(res); err != nil {
		return nil, nil, err
	}
	switch b := res.Pending(); {
	case b != nil:
		// Never append after a break: set the broken segment aside and start afresh.
		if err := t.rotate(); err != nil {
			_ = t.Close()
			return nil, nil, err
		}
		prev := ""
		if res.Head != nil {
			prev = res.Head.Hash
		}
		if t.head.Chain == "" {
			if t.head.Chain, err = newChainID(opts.Pod); err != nil {
				_ = t.Close()
				return nil, nil, err
			}
		}
		rec := Record{Kind: KindBreak, Pod: opts.Pod, BrokenAt: b.Seq, Reason: b.Kind + ": " + b.Reason}
		if _, err := t.appendLinked(rec, prev); err != nil {
			_ = t.Close()
			return nil, nil, err
		}
	case res.Head == nil:
		if t.head.Chain, err = newChainID(opts.Pod); err != nil {
			_ = t.Close()
			return nil, nil, err
		}
		if _, err := t.Append(Record{Kind: KindGenesis, Pod: opts.Pod}); err != nil {
			_ = t.Close()
			return nil, nil, err
		}
	}
	return t, res, nil
}

// openCurrent opens the current segment for appending and learns its first sequence.
func (t *Trail) openCurrent(res *Result) error {
	f, err := os.OpenFile(t.opts.Path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("opening audit trail: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("opening audit trail: %w", err)
	}
	t.f, t.size, t.first = f, fi.Size(), 0
	for _, e := range res.Entries {
		if e.File == t.opts.Path && e.Record.Hash != "" {
			t.first = e.Record.Seq
			break
		}
	}
	if t.first == 0 && t.size > 0 {
		// Nothing readable in it: name it after the sequence it would have held.
		t.first = t.head.Seq + 1
	}
	return nil
}

// Head returns the last record appended.
func (t *Trail) Head() Head {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.head
}

// Append chains rec to the head (setting Seq, Chain, Prev, Hash, and Time when zero),
// rotating first when the current segment would grow past MaxBytes, and writes it in one
// write(2). It returns the sealed record. On error nothing is appended: the head stays.
func (t *Trail) Append(rec Record) (Record, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.appendLinked(rec, t.head.Hash)
}

func (t *Trail) appendLinked(rec Record, prev string) (Record, error) {
	if t.f == nil {
		return rec, errors.New("audit trail is closed")
	}
	if t.head.Seq == math.MaxUint64 {
		return rec, errors.New("audit trail: the sequence is exhausted (a record claims the highest sequence)")
	}
	rec.Seq, rec.Chain, rec.Prev = t.head.Seq+1, t.head.Chain, prev
	if rec.Time.IsZero() {
		rec.Time = t.opts.Now()
	}
	line, err := rec.Seal()
	if err != nil {
		return rec, fmt.Errorf("audit record: %w", err)
	}
	if t.size > 0 && t.size+int64(len(line)) > t.opts.MaxBytes {
		if err := t.rotate(); err != nil {
			return rec, err
		}
	}
	n, err := t.f.Write(line)
	t.size += int64(n)
	if err != nil {
		return rec, fmt.Errorf("writing audit record: %w", err)
	}
	if t.first == 0 {
		t.first = rec.Seq
	}
	t.head = Head{Chain: rec.Chain, Seq: rec.Seq, Hash: rec.Hash}
	return rec, nil
}

// rotate renames the current segment to Path.<first sequence>, drops the oldest segments
// beyond Segments and opens a new, empty current segment.
func (t *Trail) rotate() error {
	if t.size > 0 {
		if err := t.f.Close(); err != nil {
			return fmt.Errorf("rotating audit trail: %w", err)
		}
		t.f = nil
		first := t.first
		if first == 0 {
			first = t.head.Seq + 1
		}
		// Never over another segment: a broken segment's first sequence is a guess.
		for {
			if _, err := os.Lstat(SegmentName(t.opts.Path, first)); errors.Is(err, os.ErrNotExist) {
				break
			}
			first++
		}
		if err := os.Rename(t.opts.Path, SegmentName(t.opts.Path, first)); err != nil {
			return fmt.Errorf("rotating audit trail: %w", err)
		}
	}
	files, err := Segments(t.opts.Path)
	if err != nil {
		return fmt.Errorf("rotating audit trail: %w", err)
	}
	var rotated []string
	for _, f := range files {
		if f != t.opts.Path {
			rotated = append(rotated, f)
		}
	}
	for len(rotated) > t.opts.Segments-1 {
		if err := os.Remove(rotated[0]); err != nil {
			return fmt.Errorf("rotating audit trail: %w", err)
		}
		rotated = rotated[1:]
	}
	if t.f != nil {
		return nil // the current segment was empty: keep it
	}
	f, err := os.OpenFile(t.opts.Path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("rotating audit trail: %w", err)
	}
	t.f, t.size, t.first = f, 0, 0
	return nil
}

// Close closes the current segment.
func (t *Trail) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return nil
	}
	err := t.f.Close()
	t.f = nil
	return err
}

// newChainID is pod.<96 random bits in hex>, or the random part alone without a pod.
func newChainID(pod string) (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("audit chain ID: %w", err)
	}
	id := hex.EncodeToString(b[:])
	if pod != "" {
		id = pod + "." + id
	}
	return id, nil
}
