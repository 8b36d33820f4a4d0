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

// Command auditcost measures the two audit trails the host could use, in one process on
// one disk: Argus' SQLite-backed AuditLogger (which needs a cgo build) and the host's own
// hash chain (internal/audit). For each it prints the time to open a new trail, the mean
// time to write one record durably enough to survive the process (Argus: Log with a
// one-record buffer, which writes through; the chain: one write(2)), the time to verify the
// whole chain, the time a restarted host takes to open the full trail and verify it, and
// the bytes on disk. docs/pluginhost.md ("Audit") has the figures:
//
//	CGO_ENABLED=1 go run ./hack/auditcost -n 10000
//
// Built with CGO_ENABLED=0, Argus cannot open SQLite and falls back to JSON lines without
// a chain; the program says so.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/agilira/argus"

	"github.com/hotreload/plugin-operator/internal/audit"
)

func main() {
	n := flag.Int("n", 10000, "records to write")
	flag.Parse()
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "auditcost:", err)
		os.Exit(1)
	}
}

func run(n int) error {
	dir, err := os.MkdirTemp("", "auditcost")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("records: %d\n", n)
	if err := argusSQLite(filepath.Join(dir, "argus.db"), n); err != nil {
		fmt.Printf("argus-sqlite: %v\n", err)
	}
	return chain(filepath.Join(dir, "audit.jsonl"), n)
}

func argusSQLite(path string, n int) error {
	start := time.Now()
	al, err := argus.NewAuditLogger(argus.AuditConfig{Enabled: true, OutputFile: path, BufferSize: 1, MinLevel: argus.AuditInfo})
	if err != nil {
		return err
	}
	opened := time.Since(start)
	defer func() { _ = al.Close() }()
	if err := al.VerifyAuditChain(); err != nil {
		return fmt.Errorf("no SQLite backend (built without cgo?): %w", err)
	}
	start = time.Now()
	for i := range n {
		al.Log(argus.AuditInfo, "config", "pluginhost", "", nil, nil, map[string]any{"seq": i, "result": "applied", "revision": fmt.Sprintf("sha256:%064d", i)})
	}
	if err := al.Flush(); err != nil {
		return err
	}
	wrote := time.Since(start)
	start = time.Now()
	if err := al.VerifyAuditChain(); err != nil {
		return err
	}
	verified := time.Since(start)
	if err := al.Close(); err != nil {
		return err
	}
	start = time.Now()
	al, err = argus.NewAuditLogger(argus.AuditConfig{Enabled: true, OutputFile: path, BufferSize: 1, MinLevel: argus.AuditInfo})
	if err != nil {
		return err
	}
	if err := al.VerifyAuditChain(); err != nil {
		return err
	}
	reopened := time.Since(start)
	size := int64(0)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if fi, err := os.Stat(path + suffix); err == nil {
			size += fi.Size()
		}
	}
	fmt.Printf("argus-sqlite: open %s, write %s/record, verify %s, reopen and verify %s, %d bytes\n", opened, wrote/time.Duration(n), verified, reopened, size)
	return nil
}

func chain(path string, n int) error {
	start := time.Now()
	tr, _, err := audit.Open(audit.Options{Path: path, MaxBytes: 1 << 40, Pod: "auditcost"})
	if err != nil {
		return err
	}
	opened := time.Since(start)
	start = time.Now()
	for i := range n {
		if _, err := tr.Append(audit.Record{Kind: audit.KindConfig, Result: audit.ResultApplied, Revision: fmt.Sprintf("sha256:%064d", i)}); err != nil {
			return err
		}
	}
	wrote := time.Since(start)
	if err := tr.Close(); err != nil {
		return err
	}
	start = time.Now()
	res, err := audit.Verify([]string{path})
	if err != nil {
		return err
	}
	if len(res.Breaks) != 0 {
		return fmt.Errorf("chain broken: %v", res.Breaks)
	}
	verified := time.Since(start)
	start = time.Now()
	tr, res, err = audit.Open(audit.Options{Path: path, MaxBytes: 1 << 40})
	if err != nil {
		return err
	}
	reopened := time.Since(start)
	if err := tr.Close(); err != nil {
		return err
	}
	if len(res.Breaks) != 0 {
		return fmt.Errorf("chain broken at reopen: %v", res.Breaks)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	fmt.Printf("hash-chain: open %s, write %s/record, verify %s, reopen and verify %s, %d bytes\n", opened, wrote/time.Duration(n), verified, reopened, fi.Size())
	return nil
}
