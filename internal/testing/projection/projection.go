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

// Package projection writes files into a directory exactly the way kubelet's
// AtomicWriter (k8s.io/kubernetes pkg/volume/util/atomic_writer.go, v1.37) projects a
// ConfigMap, Secret, downward-API or projected volume. Tests of the runtime's hot reload
// and the local end-to-end tests use it to reproduce a ConfigMap volume faithfully.
//
// # Layout
//
// After a Write of {"config.json": …, "certs/ca.pem": …} the directory holds:
//
//	<dir>/..2026_11_25_16_00_00.123456789/config.json     the bytes (mode 0644 by default)
//	<dir>/..2026_11_25_16_00_00.123456789/certs/ca.pem
//	<dir>/..data        -> ..2026_11_25_16_00_00.123456789 (relative symlink)
//	<dir>/config.json   -> ..data/config.json              (relative symlink)
//	<dir>/certs         -> ..data/certs                    (one link per top-level name)
//
// # The sequence of an update (kubelet's numbering)
//
//  1. validate the payload (relative paths, no ".." element, no leading "..").
//  2. readlink <dir>/..data to find the current timestamped dir.
//  3. walk the current timestamped dir: paths that are no longer in the payload.
//  4. compare every payload file with the current bytes; if nothing differs and nothing is
//     to be removed, no new dir is written (but step 10 still runs: missing user-visible
//     links are re-created, kubernetes#121472).
//  5. os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05.")) then chmod 0755.
//     Hook "dirCreated".
//  6. write each file (parent dirs MkdirAll 0777&^umask, os.WriteFile, then chmod to the
//     file's mode, default 0644, whatever the umask). Hook "payloadWritten".
//  7. (kubelet: fsGroup ownership; not modelled.)
//  8. symlink <dir>/..data_tmp -> <new ts dir base name>. Hook "tmpLinkCreated".
//  9. rename(..data_tmp, ..data): the atomic switch. Hook "dataSwapped".
//  10. for each top-level name of the payload with no link yet: symlink
//     <dir>/<name> -> ..data/<name>. Hook "userLinksCreated".
//  11. remove the user-visible top-level entries that are no longer in the payload.
//  12. os.RemoveAll(old timestamped dir). Hook "oldDirRemoved" (fired after steps 11 and
//     12, also on the first write where there is nothing to remove).
//
// # What a concurrent reader of <dir>/config.json can observe
//
// The file itself is never partial: every file is fully written (and closed) in a new
// directory that nobody can reach before the ..data rename, and the old directory's files
// are unlinked, not truncated, so a reader that already opened one keeps reading complete
// old bytes. A reader therefore sees either the complete old content or the complete new
// content — or, briefly, ENOENT: open(2) resolves "config.json" -> "..data/config.json",
// reads the ..data link (old dir name) and only then looks the file up in that dir; if the
// swap (step 9) and the old dir's removal (step 12) happen in between, the lookup fails.
// Kubelet has exactly the same window (this package runs the same steps), so a hot-reload
// reader must treat ENOENT as "retry shortly", not as "config deleted". Keys read through
// separate opens may come from different generations; for a consistent snapshot, readlink
// ..data once and read through <dir>/<that name>/ (retrying on ENOENT).
// A key added by an update is reachable only from step 10 on; a key removed by an update
// is a dangling link from step 9 to step 11.
package projection

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

const (
	// DataDirName is the symlink that points at the current timestamped directory.
	DataDirName = "..data"
	// NewDataDirName is the temporary symlink renamed over DataDirName at each update.
	NewDataDirName = "..data_tmp"
	// DefaultMode is the file mode of a ConfigMap volume's files (defaultMode 0644).
	DefaultMode os.FileMode = 0o644
	// timestampFormat is the prefix of every timestamped directory; os.MkdirTemp appends
	// a random number.
	timestampFormat = "..2006_01_02_15_04_05."

	maxFileNameLength = 255
	maxPathLength     = 4096
)

// Names of the steps reported to the hook set with SetHook, in the order they happen.
const (
	StepDirCreated       = "dirCreated"
	StepPayloadWritten   = "payloadWritten"
	StepTmpLinkCreated   = "tmpLinkCreated"
	StepDataSwapped      = "dataSwapped"
	StepUserLinksCreated = "userLinksCreated"
	StepOldDirRemoved    = "oldDirRemoved"
)

// File is one projected file: its bytes and mode. A zero Mode means DefaultMode.
type File struct {
	Data []byte
	Mode os.FileMode
}

// Writer projects payloads into one directory like kubelet's AtomicWriter. Unlike
// kubelet's, it is safe for concurrent use (calls are serialised).
type Writer struct {
	dir  string
	mu   sync.Mutex
	hook func(step string)
}

// NewWriter returns a Writer for dir. The directory is created (0755) on the first Write
// if it does not exist (kubelet's emptyDir wrapper does that in a pod).
func NewWriter(dir string) *Writer {
	return &Writer{dir: dir}
}

// Dir returns the target directory.
func (w *Writer) Dir() string { return w.dir }

// SetHook installs fn (nil removes it), called synchronously after each step of Write that
// is performed: StepDirCreated, StepPayloadWritten, StepTmpLinkCreated, StepDataSwapped,
// StepUserLinksCreated, StepOldDirRemoved, in that order. A write that changes content
// fires all six; a Write whose payload equals the current one fires only
// StepUserLinksCreated (kubelet still re-creates missing user-visible links). The write
// is paused while fn runs, so a fault test can block in fn and inspect the directory
// mid-swap. fn must not call methods of the same Writer.
func (w *Writer) SetHook(fn func(step string)) {
	w.mu.Lock()
	w.hook = fn
	w.mu.Unlock()
}

// Write projects files (name -> bytes, mode DefaultMode) atomically, like kubelet: the
// directory then holds exactly these keys. Names may be nested ("a/b.txt"); the
// user-visible link is then made for the top-level name ("a"). It reports whether
// anything changed on disk.
func (w *Writer) Write(files map[string][]byte) (changed bool, err error) {
	payload := make(map[string]File, len(files))
	for k, v := range files {
		payload[k] = File{Data: v}
	}
	return w.WriteFiles(payload)
}

// WriteRaw projects arbitrary bytes (for instance truncated or invalid JSON) under name,
// keeping the other keys currently projected: it is a kubelet update of a ConfigMap where
// only that key changed. It is otherwise just Write.
func (w *Writer) WriteRaw(name string, b []byte) (changed bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cur, err := w.readLocked()
	if err != nil {
		return false, err
	}
	cur[filepath.Clean(name)] = File{Data: b}
	return w.writeLocked(cur)
}

// WriteFiles is Write with a mode per file.
func (w *Writer) WriteFiles(files map[string]File) (changed bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writeLocked(files)
}

// Read returns the payload currently projected (the files under the timestamped dir that
// ..data points at, keyed by slash-separated relative path). It is empty if nothing is
// projected.
func (w *Writer) Read() (map[string]File, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.readLocked()
}

// Remove deletes the whole projection — the user-visible links, ..data, ..data_tmp and
// every timestamped directory — but keeps the directory itself: the "ConfigMap key or
// volume content deleted" fault. A later Write projects afresh.
func (w *Writer) Remove() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	entries, err := os.ReadDir(w.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	// User-visible links first (they dangle from now on), then ..data, then the data.
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			continue
		}
		p := filepath.Join(w.dir, e.Name())
		if t, err := os.Readlink(p); err == nil && strings.HasPrefix(t, DataDirName+string(os.PathSeparator)) {
			errs = append(errs, os.Remove(p))
		}
	}
	for _, name := range []string{DataDirName, NewDataDirName} {
		if err := os.Remove(filepath.Join(w.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, e := range entries {
		if isTimestampDir(e.Name()) && e.IsDir() {
			errs = append(errs, os.RemoveAll(filepath.Join(w.dir, e.Name())))
		}
	}
	return errors.Join(errs...)
}

func isTimestampDir(name string) bool {
	return strings.HasPrefix(name, "..") && name != DataDirName && name != NewDataDirName && len(name) > 2
}

func (w *Writer) step(name string) {
	if w.hook != nil {
		w.hook(name)
	}
}

func (w *Writer) readLocked() (map[string]File, error) {
	out := map[string]File{}
	ts, err := os.Readlink(filepath.Join(w.dir, DataDirName))
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	root := filepath.Join(w.dir, ts)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		out[rel] = File{Data: b, Mode: info.Mode().Perm()}
		return nil
	})
	return out, err
}

func (w *Writer) writeLocked(files map[string]File) (changed bool, err error) {
	// (1) validate
	payload := make(map[string]File, len(files))
	for k, f := range files {
		if err := validatePath(k); err != nil {
			return false, err
		}
		if f.Mode == 0 {
			f.Mode = DefaultMode
		}
		payload[filepath.Clean(k)] = f
	}
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return false, err
	}

	// (2) current timestamped dir
	dataDirPath := filepath.Join(w.dir, DataDirName)
	oldTsDir, err := os.Readlink(dataDirPath)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("reading link %s: %w", dataDirPath, err)
		}
		oldTsDir = ""
	}
	oldTsPath := filepath.Join(w.dir, oldTsDir)

	var toRemove []string
	shouldWrite := true
	if oldTsDir != "" {
		// (3) paths no longer in the payload
		toRemove, err = pathsToRemove(payload, oldTsPath)
		if err != nil {
			return false, fmt.Errorf("determining user-visible files to remove: %w", err)
		}
		// (4) anything to write?
		should, err := shouldWritePayload(payload, oldTsPath)
		if err != nil {
			return false, fmt.Errorf("comparing payload: %w", err)
		}
		if !should && len(toRemove) == 0 {
			shouldWrite = false
			oldTsDir = "" // keep the current data dir
		}
	}

	if shouldWrite {
		// (5) new timestamped dir, 0755 whatever the umask
		tsDir, err := os.MkdirTemp(w.dir, time.Now().UTC().Format(timestampFormat))
		if err != nil {
			return false, fmt.Errorf("creating timestamped dir: %w", err)
		}
		if err := os.Chmod(tsDir, 0o755); err != nil {
			return false, err
		}
		tsDirName := filepath.Base(tsDir)
		w.step(StepDirCreated)

		// (6) payload
		if err := writePayloadToDir(payload, tsDir); err != nil {
			return false, fmt.Errorf("writing payload to %s: %w", tsDir, err)
		}
		w.step(StepPayloadWritten)

		// (8) ..data_tmp -> new dir
		newDataDirPath := filepath.Join(w.dir, NewDataDirName)
		if err := os.Symlink(tsDirName, newDataDirPath); err != nil {
			_ = os.RemoveAll(tsDir)
			return false, fmt.Errorf("creating %s: %w", NewDataDirName, err)
		}
		w.step(StepTmpLinkCreated)

		// (9) atomic switch
		if err := os.Rename(newDataDirPath, dataDirPath); err != nil {
			_ = os.Remove(newDataDirPath)
			_ = os.RemoveAll(tsDir)
			return false, fmt.Errorf("renaming %s over %s: %w", NewDataDirName, DataDirName, err)
		}
		changed = true
		w.step(StepDataSwapped)
	}

	// (10) user-visible links for new top-level names
	created, err := createUserVisibleFiles(w.dir, payload)
	if created {
		changed = true
	}
	if err != nil {
		return changed, fmt.Errorf("creating user-visible links: %w", err)
	}
	w.step(StepUserLinksCreated)
	if !shouldWrite {
		return changed, nil
	}

	// (11) user-visible links no longer in the payload
	if err := removeUserVisiblePaths(w.dir, toRemove); err != nil {
		return changed, fmt.Errorf("removing old user-visible links: %w", err)
	}
	// (12) old timestamped dir
	if oldTsDir != "" {
		if err := os.RemoveAll(oldTsPath); err != nil {
			return changed, fmt.Errorf("removing old data dir %s: %w", oldTsDir, err)
		}
	}
	w.step(StepOldDirRemoved)
	return changed, nil
}

// validatePath is kubelet's: not empty, relative, no ".." element, not starting with "..",
// file names <= 255 bytes, path <= 4096 bytes.
func validatePath(p string) error {
	if p == "" {
		return fmt.Errorf("invalid path: must not be empty: %q", p)
	}
	if path.IsAbs(p) || filepath.IsAbs(p) {
		return fmt.Errorf("invalid path: must be relative path: %s", p)
	}
	if len(p) > maxPathLength {
		return fmt.Errorf("invalid path: must be less than or equal to %d characters", maxPathLength)
	}
	items := strings.Split(p, string(os.PathSeparator))
	for _, item := range items {
		if item == ".." {
			return fmt.Errorf("invalid path: must not contain '..': %s", p)
		}
		if len(item) > maxFileNameLength {
			return fmt.Errorf("invalid path: filenames must be less than or equal to %d characters", maxFileNameLength)
		}
	}
	if strings.HasPrefix(items[0], "..") && len(items[0]) > 2 {
		return fmt.Errorf("invalid path: must not start with '..': %s", p)
	}
	return nil
}

func shouldWritePayload(payload map[string]File, oldTsDir string) (bool, error) {
	for name, f := range payload {
		p := filepath.Join(oldTsDir, name)
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			return true, nil
		}
		cur, err := os.ReadFile(p)
		if err != nil {
			return false, err
		}
		if !bytes.Equal(cur, f.Data) {
			return true, nil
		}
	}
	return false, nil
}

// pathsToRemove returns the relative paths under oldTsDir (files and dirs) that are
// neither a payload file nor a parent dir of one.
func pathsToRemove(payload map[string]File, oldTsDir string) ([]string, error) {
	var paths []string
	err := filepath.Walk(oldTsDir, func(p string, _ os.FileInfo, err error) error {
		rel := strings.TrimPrefix(strings.TrimPrefix(p, oldTsDir), string(os.PathSeparator))
		if rel != "" {
			paths = append(paths, rel)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for name := range payload {
		for sub := name; sub != ""; {
			keep[sub] = true
			sub, _ = filepath.Split(sub)
			sub = strings.TrimSuffix(sub, string(os.PathSeparator))
		}
	}
	var out []string
	for _, p := range paths {
		if !keep[p] {
			out = append(out, p)
		}
	}
	return out, nil
}

func writePayloadToDir(payload map[string]File, dir string) error {
	for name, f := range payload {
		full := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(full), os.ModePerm); err != nil {
			return err
		}
		if err := os.WriteFile(full, f.Data, f.Mode); err != nil {
			return err
		}
		// WriteFile's mode is masked by the umask; kubelet chmods to the exact mode.
		if err := os.Chmod(full, f.Mode); err != nil {
			return err
		}
	}
	return nil
}

// createUserVisibleFiles makes <dir>/<top> -> ..data/<top> for each top-level name that
// has no entry yet (kubelet checks with readlink: only "does not exist" creates a link).
func createUserVisibleFiles(dir string, payload map[string]File) (created bool, err error) {
	for name := range payload {
		top, _, _ := strings.Cut(name, string(os.PathSeparator))
		visible := filepath.Join(dir, top)
		if _, err := os.Readlink(visible); err != nil && errors.Is(err, fs.ErrNotExist) {
			if err := os.Symlink(filepath.Join(DataDirName, top), visible); err != nil {
				return created, err
			}
			created = true
		}
	}
	return created, nil
}

// removeUserVisiblePaths removes only top-level entries (kubelet skips nested paths:
// they disappear with the old timestamped dir).
func removeUserVisiblePaths(dir string, paths []string) error {
	var lastErr error
	for _, p := range paths {
		if strings.Contains(p, string(os.PathSeparator)) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, p)); err != nil {
			lastErr = err
		}
	}
	return lastErr
}

// TruncatedInPlaceWrite rewrites the plain (non-projected) file at path in place the
// way a careless editor or `cat > file` does: it truncates the file, writes the first cut
// bytes of full, fsyncs (so a poller can see the torn state), then writes the rest and
// fsyncs again. The file keeps its inode and mode (0644 if it is created). It models the
// standalone (laptop) case; kubelet never does this.
func TruncatedInPlaceWrite(path string, full []byte, cut int) error {
	return TruncatedInPlaceWriteFunc(path, full, cut, nil)
}

// TruncatedInPlaceWriteFunc is TruncatedInPlaceWrite that calls mid (if not nil) while
// the file holds only the first cut bytes, so a test can hold the torn state as long as
// it needs (for example, across a watcher poll).
func TruncatedInPlaceWriteFunc(path string, full []byte, cut int, mid func()) (err error) {
	if cut < 0 || cut > len(full) {
		return fmt.Errorf("cut %d out of range [0,%d]", cut, len(full))
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, DefaultMode)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := f.Write(full[:cut]); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if mid != nil {
		mid()
	}
	if _, err := f.Write(full[cut:]); err != nil {
		return err
	}
	return f.Sync()
}
