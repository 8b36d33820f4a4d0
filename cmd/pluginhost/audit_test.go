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

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// auditVerify runs `pluginhost audit verify args…` and returns its exit code, stdout and
// stderr.
func auditVerify(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"audit", "verify"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// auditTrail runs the binary with a state dir: it applies the seed config, a change and a
// refused change, and exits; it returns the state dir, which holds the trail (audit.jsonl).
func auditTrail(t *testing.T) (dir, state string) {
	t.Helper()
	dir = testutil.ShortTempDir(t)
	state = filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "config.json")
	copyFile(t, "../../internal/pluginconfig/testdata/seed-full.json", cfg)
	p := start(t, dir, nil, "--state-dir="+state, "--poll-interval=20ms")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Replaced at once: the host polls every 20 ms, and would read a file being rewritten
	// (truncated, then written) as empty, and refuse it: a record the test does not expect.
	testutil.ReplaceFile(t, cfg, bytes.Replace(b, []byte(`"increment": 1`), []byte(`"increment": 10`), 1))
	testutil.Eventually(t, wait, "the change applied", func() error {
		if v := value(t, p, "POST", "increment", ""); v < 10 {
			return fmt.Errorf("value %v", v)
		}
		return nil
	})
	testutil.ReplaceFile(t, cfg, []byte(`{"plugins": [`))
	testutil.Eventually(t, wait, "the refusal", func() error {
		_, st := curl(t, "GET", p.url("/status"), "")
		if r, _ := st["reloads"].(map[string]any); r["refused"] != 1.0 {
			return fmt.Errorf("reloads %v", st["reloads"])
		}
		return nil
	})
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	copyFile(t, "../../internal/pluginconfig/testdata/seed-full.json", cfg)
	return dir, state
}

// TestAuditVerifyAgainstTheBinary: the host writes its trail in the state dir; `pluginhost
// audit verify` prints it as a table and as JSON and exits 0; a trail with a record edited,
// removed or cut makes it exit 1 naming the record and why, and the host started on that
// trail reports the same break on /status while it serves.
func TestAuditVerifyAgainstTheBinary(t *testing.T) {
	dir, state := auditTrail(t)
	trail := filepath.Join(state, "audit.jsonl")
	code, out, errOut := auditVerify(t, trail)
	if code != 0 {
		t.Fatalf("verify a clean trail: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"SEQ", "genesis", "config", "applied", "refused", "verified from seq 1 (genesis); head seq 4"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = auditVerify(t, "-o", "json", trail)
	var doc struct {
		Verified bool
		Entries  []struct{ Status string }
		Head     struct {
			Seq  uint64
			Hash string
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 || !doc.Verified || len(doc.Entries) != 4 {
		t.Fatalf("verify -o json: exit %d, %v, %+v\n%s", code, err, doc, out)
	}
	head := fmt.Sprintf("%d:%s", doc.Head.Seq, doc.Head.Hash)

	clean, err := os.ReadFile(trail)
	if err != nil {
		t.Fatal(err)
	}
	ls := bytes.SplitAfter(clean, []byte("\n")) // genesis, applied, applied, refused, ""
	for _, tc := range []struct {
		name  string
		lines [][]byte
		want  string
	}{
		{"edited", [][]byte{ls[0], ls[1], bytes.Replace(ls[2], []byte(`"result":"applied"`), []byte(`"result":"refused"`), 1), ls[3]}, "BROKEN: seq 3 (" + trail + " line 3): edited: hash mismatch"},
		{"removed", [][]byte{ls[0], ls[1], ls[3]}, "BROKEN: seq 4 (" + trail + " line 3): removed: sequence gap: seq 4 follows seq 2: records 3 removed"},
		{"truncated", [][]byte{ls[0], ls[1], ls[2], ls[3][:len(ls[3])/2]}, "BROKEN: seq 4 (" + trail + " line 4): truncated: the last line is partial"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			removeTrail(t, trail)
			if err := os.WriteFile(trail, bytes.Join(tc.lines, nil), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := auditVerify(t, trail)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("verify: exit %d, stderr lacks %q:\n%s\n%s", code, tc.want, errOut, out)
			}
			seq := strings.Fields(tc.want)[2]
			p := start(t, dir, nil, "--state-dir="+state)
			if !strings.Contains(p.Logs(), `"msg":"Audit trail broken`) || !strings.Contains(p.Logs(), `"brokenAt":`+seq) {
				t.Fatalf("host log lacks the break at seq %s:\n%s", seq, p.Logs())
			}
			_, st := curl(t, "GET", p.url("/status"), "")
			a, _ := st["audit"].(map[string]any)
			broken, _ := a["broken"].(map[string]any)
			if a["verified"] != false || broken == nil || fmt.Sprint(broken["sequence"]) != seq || broken["kind"] != tc.name {
				t.Fatalf("/status audit %v; want broken at seq %s (%s)", a, seq, tc.name)
			}
			if v := value(t, p, "POST", "increment", ""); v < 1 {
				t.Fatalf("the host does not serve: %v", v)
			}
			if err := p.stop(t, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			// The evidence stays, set aside; the break record continues the chain.
			segments, _ := filepath.Glob(trail + "*")
			code, out, errOut = auditVerify(t, segments...)
			moved := strings.Replace(tc.want, trail, trail+".000000000001", 1)
			if len(segments) != 2 || code != 1 || !strings.Contains(errOut, moved) || !strings.Contains(errOut, "(recorded by the host in a break record)") || !strings.Contains(out, "broken at seq "+seq) {
				t.Fatalf("verify %v after the host recorded the break: exit %d, want %q\n%s\n%s", segments, code, moved, out, errOut)
			}
		})
	}
	removeTrail(t, trail)

	// A trail cut at a record boundary verifies on its own; the head seen before (the
	// PluginHost status keeps it) tells.
	if err := os.WriteFile(trail, bytes.Join(ls[:3], nil), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := auditVerify(t, trail); code != 0 {
		t.Fatalf("a trail cut at a record boundary: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = auditVerify(t, "--expect", head, trail)
	if code != 1 || !strings.Contains(errOut, "seq 4, seen before, is missing: the trail ends at seq 3: truncated") {
		t.Fatalf("verify --expect %s on a cut trail: exit %d\n%s", head, code, errOut)
	}
	if code, _, errOut := auditVerify(t, trail, "extra-file-that-does-not-exist"); code != 2 || !strings.Contains(errOut, "no such file") {
		t.Fatalf("a missing file: exit %d, %s", code, errOut)
	}
}

// removeTrail removes the trail's segments.
func removeTrail(t *testing.T, trail string) {
	t.Helper()
	segments, _ := filepath.Glob(trail + "*")
	for _, s := range segments {
		if err := os.Remove(s); err != nil {
			t.Fatal(err)
		}
	}
}
