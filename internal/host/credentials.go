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
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/hotreload/plugin-operator/internal/audit"
)

// credentialFiles lists the credential files the applied config reads, resolved as
// newAuthenticator resolves them.
func (h *Host) credentialFiles() []string {
	g := h.current.Load()
	if g == nil {
		return nil
	}
	base := h.baseDir.Load().(string)
	var files []string
	for _, p := range g.config.Plugins {
		a := p.Auth
		for _, f := range []string{a.APIKeyFile, a.TokenFile, a.UsernameFile, a.PasswordFile} {
			if f == "" {
				continue
			}
			if !filepath.IsAbs(f) && base != "" {
				f = filepath.Join(base, f)
			}
			files = append(files, f)
		}
	}
	sort.Strings(files)
	return files
}

// credentialStamp identifies the current version of the credential files: a Secret rotated
// by kubelet swaps the files' target (new inode and mtime) without touching config.json.
func (h *Host) credentialStamp() string {
	var sb strings.Builder
	for _, f := range h.credentialFiles() {
		fi, err := os.Stat(f)
		if err != nil {
			fmt.Fprintf(&sb, "%s:missing;", f)
			continue
		}
		var ino uint64
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
		fmt.Fprintf(&sb, "%s:%d:%d:%d;", f, fi.Size(), fi.ModTime().UnixNano(), ino)
	}
	return sb.String()
}

// ReloadCredentials builds the applied config again — which re-reads its credential files —
// and commits it through the same path as a config change: instances, state, slots and
// metric series carry over, and requests in flight finish with the credentials they were
// admitted with. If a file cannot be read the old credentials stay in force and the error is
// reported like a refused config.
func (h *Host) ReloadCredentials() error {
	h.applyMu.Lock()
	defer h.applyMu.Unlock()
	prev := h.current.Load()
	if prev == nil {
		return nil
	}
	var res Result
	next, err := h.build(prev.data, prev.revision, prev, &res)
	if err != nil {
		err = fmt.Errorf("reloading credentials: %w", err)
		h.refuse(audit.KindCredentials, prev.revision, prev.revision, err)
		return err
	}
	next.appliedAt = prev.appliedAt // the config did not change
	h.commit(next, prev)
	h.recovered(prev.revision)
	rec := ReloadRecord{Time: h.opts.Now(), Result: ReloadApplied, Revision: prev.revision, Plugins: len(next.entries)}
	h.audit.Load().Record(h.log, h.opts.Metrics, audit.KindCredentials, rec)
	return nil
}
