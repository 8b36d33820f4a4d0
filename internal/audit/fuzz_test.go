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
	"os"
	"path/filepath"
	"testing"
)

// FuzzVerify: any bytes as a segment are read without a panic, and a trail reported
// without a break is a chain: each record after the first follows the one before it by one
// sequence and links to its hash.
func FuzzVerify(f *testing.F) {
	b, err := os.ReadFile(writeTrail(f, f.TempDir(), 3, Options{}))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte("{}\n"))
	f.Add([]byte(`{"seq":1,"kind":"genesis","chain":"c","prev":"","hash":"00"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := Verify([]string{path})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Breaks) != 0 {
			return
		}
		for i := 1; i < len(res.Entries); i++ {
			prev, cur := res.Entries[i-1].Record, res.Entries[i].Record
			if cur.Seq != prev.Seq+1 || cur.Prev != prev.Hash || cur.Chain != prev.Chain {
				t.Fatalf("no break reported, yet entry %d (%+v) does not follow %+v", i, cur, prev)
			}
		}
		if res.Head != nil && res.Head.Seq != res.MaxSeq {
			t.Fatalf("no break reported, yet the head %d is not the highest sequence %d", res.Head.Seq, res.MaxSeq)
		}
	})
}
