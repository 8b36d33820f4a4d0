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

package projection

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// tsDirRE matches kubelet's timestamped dir names: "..2026_11_25_16_00_00." + MkdirTemp's
// random decimal suffix.
var tsDirRE = regexp.MustCompile(`^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+$`)

func tsDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if tsDirRE.MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func mustReadlink(t *testing.T, p string) string {
	t.Helper()
	s, err := os.Readlink(p)
	if err != nil {
		t.Fatalf("readlink %s: %v", p, err)
	}
	return s
}

func mustWrite(t *testing.T, w *Writer, files map[string][]byte, wantChanged bool) {
	t.Helper()
	changed, err := w.Write(files)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if changed != wantChanged {
		t.Fatalf("Write changed = %v, want %v", changed, wantChanged)
	}
}

// checkLayout asserts the directory is exactly kubelet's layout for files.
func checkLayout(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	ts := tsDirs(t, dir)
	if len(ts) != 1 {
		t.Fatalf("timestamped dirs = %v, want exactly one", ts)
	}
	if got := mustReadlink(t, filepath.Join(dir, DataDirName)); got != ts[0] {
		t.Fatalf("..data -> %q, want %q", got, ts[0])
	}
	fi, err := os.Stat(filepath.Join(dir, ts[0]))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("timestamped dir mode = %v, want 0755", fi.Mode().Perm())
	}
	want := []string{DataDirName, ts[0]}
	tops := map[string]bool{}
	for name, content := range files {
		top, _, _ := strings.Cut(name, "/")
		tops[top] = true
		// the bytes, through the user-visible path
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		if !bytes.Equal(got, content) {
			t.Errorf("%s = %q, want %q", name, got, content)
		}
		fi, err := os.Stat(filepath.Join(dir, ts[0], name))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != DefaultMode {
			t.Errorf("%s mode = %v, want regular 0644", name, fi.Mode())
		}
	}
	for top := range tops {
		want = append(want, top)
		p := filepath.Join(dir, top)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is not a symlink", top)
		}
		if got := mustReadlink(t, p); got != DataDirName+"/"+top {
			t.Errorf("%s -> %q, want %q", top, got, DataDirName+"/"+top)
		}
	}
	sort.Strings(want)
	if got := names(t, dir); !slices.Equal(got, want) {
		t.Fatalf("dir entries = %v, want %v", got, want)
	}
}

func TestWriteLayoutIsKubelets(t *testing.T) {
	dir := t.TempDir()
	w := NewWriter(dir)
	v1 := map[string][]byte{"config.json": []byte(`{"v":1}`)}
	mustWrite(t, w, v1, true)
	checkLayout(t, dir, v1)
	first := mustReadlink(t, filepath.Join(dir, DataDirName))
	if !strings.HasPrefix(first, "..20") {
		t.Fatalf("..data -> %q, want a ..20YY_… timestamped name", first)
	}

	v2 := map[string][]byte{"config.json": []byte(`{"v":2}`)}
	mustWrite(t, w, v2, true)
	checkLayout(t, dir, v2)
	second := mustReadlink(t, filepath.Join(dir, DataDirName))
	if second == first {
		t.Fatalf("..data still -> %q after an update", first)
	}
	if _, err := os.Lstat(filepath.Join(dir, first)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("old timestamped dir %s still there (err=%v)", first, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, NewDataDirName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s left behind", NewDataDirName)
	}
	got, err := w.Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got["config.json"].Data) != `{"v":2}` || got["config.json"].Mode != DefaultMode {
		t.Fatalf("Read = %v", got)
	}
}

func TestWriteUnchangedIsNoop(t *testing.T) {
	dir := t.TempDir()
	w := NewWriter(dir)
	files := map[string][]byte{"config.json": []byte(`{}`), "other": []byte("x")}
	mustWrite(t, w, files, true)
	before := mustReadlink(t, filepath.Join(dir, DataDirName))
	var steps []string
	w.SetHook(func(s string) { steps = append(steps, s) })
	mustWrite(t, w, map[string][]byte{"config.json": []byte(`{}`), "other": []byte("x")}, false)
	if after := mustReadlink(t, filepath.Join(dir, DataDirName)); after != before {
		t.Fatalf("..data changed %q -> %q on an unchanged payload", before, after)
	}
	if !slices.Equal(steps, []string{StepUserLinksCreated}) {
		t.Fatalf("steps on a no-op = %v", steps)
	}
	checkLayout(t, dir, files)

	// Like kubelet (kubernetes#121472), a no-op write restores a deleted user link.
	if err := os.Remove(filepath.Join(dir, "other")); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, files, true)
	if after := mustReadlink(t, filepath.Join(dir, DataDirName)); after != before {
		t.Fatalf("..data changed when only a link was restored")
	}
	checkLayout(t, dir, files)
}

func TestWriteRemovesKey(t *testing.T) {
	dir := t.TempDir()
	w := NewWriter(dir)
	mustWrite(t, w, map[string][]byte{"config.json": []byte("a"), "extra.txt": []byte("b")}, true)
	// Same bytes for config.json: only the removal makes it a write.
	v2 := map[string][]byte{"config.json": []byte("a")}
	mustWrite(t, w, v2, true)
	checkLayout(t, dir, v2)
	if _, err := os.Lstat(filepath.Join(dir, "extra.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("extra.txt link still there: %v", err)
	}
}

func TestWriteNested(t *testing.T) {
	dir := t.TempDir()
	w := NewWriter(dir)
	v1 := map[string][]byte{"a/b.txt": []byte("ab"), "a/c/d.txt": []byte("acd"), "top": []byte("t")}
	mustWrite(t, w, v1, true)
	checkLayout(t, dir, v1)
	v2 := map[string][]byte{"a/c/d.txt": []byte("acd2"), "top": []byte("t")}
	mustWrite(t, w, v2, true)
	checkLayout(t, dir, v2)
	if _, err := os.Stat(filepath.Join(dir, "a", "b.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a/b.txt still visible: %v", err)
	}
	v3 := map[string][]byte{"top": []byte("t")}
	mustWrite(t, w, v3, true)
	checkLayout(t, dir, v3)
}

func TestWriteFilesModes(t *testing.T) {
	old := syscall.Umask(0o077) // kubelet chmods, so the umask must not matter
	defer syscall.Umask(old)
	dir := t.TempDir()
	w := NewWriter(dir)
	if _, err := w.WriteFiles(map[string]File{"secret": {Data: []byte("s"), Mode: 0o400}, "pub": {Data: []byte("p")}}); err != nil {
		t.Fatal(err)
	}
	ts := mustReadlink(t, filepath.Join(dir, DataDirName))
	for name, want := range map[string]os.FileMode{"secret": 0o400, "pub": 0o644} {
		fi, err := os.Stat(filepath.Join(dir, ts, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, ts))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("ts dir mode %v, want 0755", fi.Mode().Perm())
	}
}

func TestWriteRejectsBadPaths(t *testing.T) {
	w := NewWriter(t.TempDir())
	for _, p := range []string{"", "/abs", "../x", "a/../../x", "..data", "..hidden/x", strings.Repeat("x", 256)} {
		if _, err := w.Write(map[string][]byte{p: []byte("x")}); err == nil {
			t.Errorf("Write(%q) succeeded, want an error", p)
		}
	}
}

func TestHooksFireInOrderAndShowMidSwapState(t *testing.T) {
	dir := t.TempDir()
	w := NewWriter(dir)
	mustWrite(t, w, map[string][]byte{"config.json": []byte("old")}, true)
	oldTs := mustReadlink(t, filepath.Join(dir, DataDirName))

	var steps []string
	w.SetHook(func(step string) {
		steps = append(steps, step)
		read := func() string {
			b, err := os.ReadFile(filepath.Join(dir, "config.json"))
			if err != nil {
				return "ERR:" + err.Error()
			}
			return string(b)
		}
		switch step {
		case StepDirCreated, StepPayloadWritten:
			if got := read(); got != "old" {
				t.Errorf("at %s reader sees %q, want old", step, got)
			}
			if n := len(tsDirs(t, dir)); n != 2 {
				t.Errorf("at %s: %d timestamped dirs, want 2", step, n)
			}
		case StepTmpLinkCreated:
			if _, err := os.Readlink(filepath.Join(dir, NewDataDirName)); err != nil {
				t.Errorf("at %s: %v", step, err)
			}
			if got := read(); got != "old" {
				t.Errorf("at %s reader sees %q, want old", step, got)
			}
		case StepDataSwapped:
			if got := read(); got != "new" {
				t.Errorf("at %s reader sees %q, want new", step, got)
			}
			if _, err := os.Stat(filepath.Join(dir, oldTs)); err != nil {
				t.Errorf("old dir gone before its step: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(dir, NewDataDirName)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("..data_tmp still there after the rename")
			}
			// a key added by this update is not visible yet
			if _, err := os.Lstat(filepath.Join(dir, "added")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("added link exists before userLinksCreated")
			}
		case StepUserLinksCreated:
			if _, err := os.ReadFile(filepath.Join(dir, "added")); err != nil {
				t.Errorf("added not readable at %s: %v", step, err)
			}
		case StepOldDirRemoved:
			if _, err := os.Stat(filepath.Join(dir, oldTs)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("old dir still there at %s", step)
			}
		}
	})
	mustWrite(t, w, map[string][]byte{"config.json": []byte("new"), "added": []byte("+")}, true)
	want := []string{StepDirCreated, StepPayloadWritten, StepTmpLinkCreated, StepDataSwapped, StepUserLinksCreated, StepOldDirRemoved}
	if !slices.Equal(steps, want) {
		t.Fatalf("steps = %v, want %v", steps, want)
	}

	// First write into an empty dir fires all six too.
	steps = nil
	w2 := NewWriter(filepath.Join(t.TempDir(), "fresh"))
	w2.SetHook(func(s string) { steps = append(steps, s) })
	if _, err := w2.Write(map[string][]byte{"config.json": []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(steps, want) {
		t.Fatalf("first-write steps = %v, want %v", steps, want)
	}
}

func TestRapidWritesLeaveOneDir(t *testing.T) {
	dir := t.TempDir()
	w := NewWriter(dir)
	var last map[string][]byte
	for i := range 100 {
		last = map[string][]byte{"config.json": fmt.Appendf(nil, `{"i":%d}`, i)}
		mustWrite(t, w, last, true)
	}
	checkLayout(t, dir, last)
}

func TestWriteRawKeepsOtherKeys(t *testing.T) {
	dir := t.TempDir()
	w := NewWriter(dir)
	mustWrite(t, w, map[string][]byte{"config.json": []byte(`{"a":1}`), "other": []byte("o")}, true)
	if _, err := w.WriteRaw("config.json", []byte(`{"a":`)); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, dir, map[string][]byte{"config.json": []byte(`{"a":`), "other": []byte("o")})
	// into an empty dir it is a one-key projection
	dir2 := t.TempDir()
	if _, err := NewWriter(dir2).WriteRaw("config.json", []byte("{")); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, dir2, map[string][]byte{"config.json": []byte("{")})
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	w := NewWriter(dir)
	mustWrite(t, w, map[string][]byte{"config.json": []byte("x"), "a/b": []byte("y")}, true)
	if err := os.WriteFile(filepath.Join(dir, "unrelated"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"unrelated"}) {
		t.Fatalf("after Remove: %v", got)
	}
	if _, err := os.ReadFile(filepath.Join(dir, "config.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("config.json readable after Remove: %v", err)
	}
	if err := w.Remove(); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	files := map[string][]byte{"config.json": []byte("z")}
	mustWrite(t, w, files, true)
	if err := os.Remove(filepath.Join(dir, "unrelated")); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, dir, files)
}

func TestTruncatedInPlaceWrite(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	full := []byte(`{"plugins":[{"name":"c"}]}`)
	if err := os.WriteFile(p, []byte("previous content that is longer than the new one ....."), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(p)
	var mid []byte
	err := TruncatedInPlaceWriteFunc(p, full, 5, func() {
		var err error
		if mid, err = os.ReadFile(p); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(mid) != string(full[:5]) {
		t.Fatalf("mid-write content %q, want %q", mid, full[:5])
	}
	got, _ := os.ReadFile(p)
	if !bytes.Equal(got, full) {
		t.Fatalf("final %q", got)
	}
	after, _ := os.Stat(p)
	if !os.SameFile(before, after) || after.Mode().Perm() != 0o600 {
		t.Fatalf("in-place write changed inode or mode (%v)", after.Mode())
	}
	if err := TruncatedInPlaceWrite(p, full, len(full)+1); err == nil {
		t.Fatal("cut out of range accepted")
	}
	if err := TruncatedInPlaceWrite(p, []byte("ab"), 1); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "ab" {
		t.Fatalf("got %q", got)
	}
}

// content builds a recognisable, self-checking payload for generation i: a header, a
// large body and a trailer that all carry i, so a torn or mixed read is detected.
func content(i int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "BEGIN %06d\n", i)
	line := fmt.Sprintf("%06d:%s\n", i, strings.Repeat("x", 57))
	for range 512 { // ~32 KiB: several pages, more than one read(2) chunk
		b.WriteString(line)
	}
	fmt.Fprintf(&b, "END %06d\n", i)
	return b.Bytes()
}

func TestConcurrentReadersNeverSeePartialFile(t *testing.T) {
	dir := t.TempDir()
	w := NewWriter(dir)
	const swaps = 1000
	mustWrite(t, w, map[string][]byte{"config.json": content(0)}, true)
	want := make([][]byte, swaps+1)
	for i := range want {
		want[i] = content(i)
	}

	var (
		stop                     atomic.Bool
		reads, enoent, bad, errs atomic.Int64
		maxSeen                  atomic.Int64
		wg                       sync.WaitGroup
		firstBad                 sync.Once
	)
	for range 4 {
		wg.Go(func() {
			lastGen := -1
			for !stop.Load() {
				b, err := os.ReadFile(filepath.Join(dir, "config.json"))
				reads.Add(1)
				if errors.Is(err, fs.ErrNotExist) {
					enoent.Add(1)
					continue
				}
				if err != nil {
					errs.Add(1)
					firstBad.Do(func() { t.Errorf("read error: %v", err) })
					continue
				}
				var gen int
				if _, err := fmt.Sscanf(string(b), "BEGIN %06d\n", &gen); err != nil || gen < 0 || gen > swaps || !bytes.Equal(b, want[gen]) {
					bad.Add(1)
					firstBad.Do(func() { t.Errorf("partial or mixed read (%d bytes): %.40q…", len(b), b) })
					continue
				}
				if gen < lastGen {
					firstBad.Do(func() { t.Errorf("generation went back %d -> %d", lastGen, gen) })
				}
				lastGen = gen
				for {
					m := maxSeen.Load()
					if int64(gen) <= m || maxSeen.CompareAndSwap(m, int64(gen)) {
						break
					}
				}
			}
		})
	}
	for i := 1; i <= swaps; i++ {
		mustWrite(t, w, map[string][]byte{"config.json": want[i]}, true)
	}
	stop.Store(true)
	wg.Wait()
	checkLayout(t, dir, map[string][]byte{"config.json": want[swaps]})
	t.Logf("%d swaps, %d reads: %d complete, %d ENOENT (old dir removed between the ..data lookup and the file lookup), %d partial, %d other errors; newest generation seen %d",
		swaps, reads.Load(), reads.Load()-enoent.Load()-bad.Load()-errs.Load(), enoent.Load(), bad.Load(), errs.Load(), maxSeen.Load())
	if bad.Load() != 0 || errs.Load() != 0 {
		t.Fatalf("readers saw %d partial files and %d errors", bad.Load(), errs.Load())
	}
}

// An open file descriptor on the old generation keeps reading complete old bytes after
// the swap and the removal of the old dir (the file is unlinked, not truncated).
func TestOpenFileSurvivesSwap(t *testing.T) {
	dir := t.TempDir()
	w := NewWriter(dir)
	mustWrite(t, w, map[string][]byte{"config.json": content(1)}, true)
	f, err := os.Open(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mustWrite(t, w, map[string][]byte{"config.json": content(2)}, true)
	var b bytes.Buffer
	if _, err := b.ReadFrom(f); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), content(1)) {
		t.Fatal("open fd did not read the complete old generation")
	}
}
