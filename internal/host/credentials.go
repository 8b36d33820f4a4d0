package host

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
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

// ReloadCredentials re-reads the credential files of the applied config and swaps in new
// authenticators, keeping everything else. If a file cannot be read the old credentials
// stay in force and the error is reported like a refused config.
func (h *Host) ReloadCredentials() error {
	h.applyMu.Lock()
	defer h.applyMu.Unlock()
	g := h.current.Load()
	if g == nil {
		return nil
	}
	next := &generation{revision: g.revision, appliedAt: g.appliedAt, config: g.config, entries: make(map[string]*entry, len(g.entries))}
	base := h.baseDir.Load().(string)
	for name, e := range g.entries {
		auth, err := newAuthenticator(e.spec.Auth, base)
		if err != nil {
			err = fmt.Errorf("reloading credentials of plugin %q: %w", name, err)
			h.refuse(g.revision, g.revision, err)
			return err
		}
		ne := *e
		ne.auth = auth
		next.entries[name] = &ne
	}
	h.current.Store(next)
	h.recovered(g.revision)
	h.log.Info("Credentials reloaded", "revision", g.revision, "files", len(h.credentialFiles()))
	return nil
}
