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
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotreload/plugin-operator/internal/audit"
	"github.com/hotreload/plugin-operator/internal/hostapi"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
	"github.com/hotreload/plugin-operator/pkg/plugins/counter"
)

// auditedHost is a host whose audit trail is at path and whose log goes to the buffer.
func auditedHost(t *testing.T, path string) (*Host, *testutil.SyncBuffer) {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	a := OpenAudit(AuditOptions{Path: path, Pod: "host-0"}, log)
	t.Cleanup(func() { _ = a.Close() })
	return New(Options{Registry: MustRegistry(counter.Factory{}), Logger: log, Audit: a}), logs
}

func statusOf(t *testing.T, h *Host) hostapi.Status {
	t.Helper()
	var st hostapi.Status
	if err := json.Unmarshal([]byte(do(t, "GET", serve(t, h).URL+"/status", "").Body), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestAuditRecordsConfigsAndCredentials: one chained record per applied or refused config
// and per credentials rotation; /status and the metrics show the trail's head.
func TestAuditRecordsConfigsAndCredentials(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, _ := auditedHost(t, path)
	cfg := `{"plugins":[{"name":"c","type":"counter","auth":{"method":"bearer","token_file":"` + token + `"}}]}`
	if _, err := h.Apply([]byte(cfg)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Apply([]byte(`{"plugins":[`)); err == nil {
		t.Fatal("a truncated config applied")
	}
	if err := os.WriteFile(token, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.ReloadCredentials(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(token); err != nil {
		t.Fatal(err)
	}
	if err := h.ReloadCredentials(); err == nil {
		t.Fatal("credentials reloaded from a missing file")
	}

	res, err := audit.Verify([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range res.Entries {
		if e.Status != audit.StatusOK {
			t.Fatalf("entry %+v", e)
		}
		got = append(got, e.Record.Kind+":"+e.Record.Result)
	}
	if want := "genesis: config:applied config:refused credentials:applied credentials:refused"; strings.Join(got, " ") != want {
		t.Fatalf("records %q; want %q", strings.Join(got, " "), want)
	}
	if r := res.Entries[3].Record; r.Revision != h.Revision() || strings.Contains(string(mustJSON(t, r)), "new") {
		t.Fatalf("credentials record %+v: want the config revision and no credential", r)
	}
	if r := res.Entries[4].Record; !strings.Contains(r.Error, "reloading credentials") {
		t.Fatalf("refused credentials record %+v", r)
	}

	st := statusOf(t, h)
	a := st.Audit
	if a == nil || a.Chain != res.Chain || a.Sequence != 5 || a.Head != res.Head.Hash || !a.Verified || !a.FromGenesis || a.VerifiedFrom != 1 || a.Broken != nil || a.Path != path {
		t.Fatalf("/status audit %+v; want the trail's head %+v", a, res.Head)
	}
	m := do(t, "GET", serve(t, h).URL+"/metrics", "").Body
	for _, want := range []string{
		`pluginhost_audit_records_total{kind="config"} 2`,
		`pluginhost_audit_records_total{kind="credentials"} 2`,
		"pluginhost_audit_sequence 5",
		"pluginhost_audit_chain_broken 0",
		"pluginhost_audit_write_errors_total 0",
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAuditBrokenAtStart: a trail with a record edited, removed or cut is reported at
// start (log, /status, metric); the host still applies configs, and the trail goes on
// after a break record. The next start reports the same break as recorded earlier and
// writes no second break record.
func TestAuditBrokenAtStart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func([][]byte) [][]byte
		seq    uint64
		kind   string
	}{
		{"edited", func(ls [][]byte) [][]byte {
			ls[2] = bytes.Replace(ls[2], []byte(`"plugins":1`), []byte(`"plugins":9`), 1)
			return ls
		}, 3, audit.BreakEdited},
		{"removed", func(ls [][]byte) [][]byte { return append(ls[:2:2], ls[3:]...) }, 4, audit.BreakRemoved},
		{"truncated", func(ls [][]byte) [][]byte {
			ls[len(ls)-2] = ls[len(ls)-2][:20]
			return ls
		}, 4, audit.BreakTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			h, _ := auditedHost(t, path)
			for i := 1; i <= 3; i++ {
				if _, err := h.Apply([]byte(seedConfig(i))); err != nil {
					t.Fatal(err)
				}
			}
			_ = h.audit.Load().Close()
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, bytes.Join(tc.tamper(bytes.SplitAfter(b, []byte("\n"))), nil), 0o600); err != nil {
				t.Fatal(err)
			}

			h, logs := auditedHost(t, path)
			if !strings.Contains(logs.String(), "Audit trail broken") || !strings.Contains(logs.String(), "brokenAt="+itoa(int(tc.seq))) {
				t.Fatalf("log lacks the break at seq %d:\n%s", tc.seq, logs)
			}
			st := statusOf(t, h).Audit
			if st == nil || st.Verified || st.Broken == nil || st.Broken.Sequence != tc.seq || st.Broken.Kind != tc.kind || st.Broken.RecordedEarlier {
				t.Fatalf("/status audit %+v; want broken at seq %d (%s), found now", st, tc.seq, tc.kind)
			}
			if m := do(t, "GET", serve(t, h).URL+"/metrics", "").Body; !strings.Contains(m, "pluginhost_audit_chain_broken 1\n") {
				t.Fatal("/metrics lacks pluginhost_audit_chain_broken 1")
			}
			// Auditing never stops serving: the host applies, and records after the break.
			if _, err := h.Apply([]byte(seedConfig(7))); err != nil {
				t.Fatal(err)
			}
			head := h.audit.Load().Status()
			_ = h.audit.Load().Close()
			files, err := audit.Segments(path)
			if err != nil {
				t.Fatal(err)
			}
			res, err := audit.Verify(files)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Breaks) != 1 || !res.Breaks[0].Acknowledged || res.Head.Seq != head.Sequence || res.Head.Kind != audit.KindConfig {
				t.Fatalf("after the break: breaks %+v, head %+v; want the break acknowledged and the new config record last", res.Breaks, res.Head)
			}

			h, logs = auditedHost(t, path)
			st = statusOf(t, h).Audit
			if st.Broken == nil || !st.Broken.RecordedEarlier || st.Sequence != head.Sequence {
				t.Fatalf("second start: %+v; want the break recorded earlier and no new record (seq %d)", st, head.Sequence)
			}
			if !strings.Contains(logs.String(), "Audit trail has a recorded break") {
				t.Fatalf("second start log:\n%s", logs)
			}
		})
	}
}

// TestWatchStatusAndArgusMetrics: Argus' own view of the watch is on /status and in the
// metrics, and moves when the config changes.
func TestWatchStatusAndArgusMetrics(t *testing.T) {
	path := filepath.Join(testutil.ShortTempDir(t), "config.json")
	if err := os.WriteFile(path, []byte(seedConfig(1)), 0o600); err != nil {
		t.Fatal(err)
	}
	h := watchingArgus(t, path)
	srv := serve(t, h)
	w := statusOf(t, h).Watch
	if w == nil || w.Digest == "" || w.Documents != 1 || w.DocumentBytes != int64(len(seedConfig(1))) || w.MaxStaleness != testPoll.String() || len(w.Sources) != 1 || w.Sources[0].State != "loaded" || !strings.Contains(w.Sources[0].Detail, path) {
		t.Fatalf("/status watch %+v", w)
	}
	before := *w
	waitForANewMtime(t, path)
	if err := os.WriteFile(path, []byte(seedConfig(22)), 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyTrue(t, waitTimeout, "Argus' revision to move", func() bool {
		w := h.WatchStatus()
		return w.Revision > before.Revision && w.Changes > before.Changes && w.Digest != before.Digest && step(t, h) == 22
	})
	w = h.WatchStatus()
	m := do(t, "GET", srv.URL+"/metrics", "").Body
	for _, want := range []string{
		"pluginhost_argus_revision " + itoa(int(w.Revision)),
		`pluginhost_argus_info{backend="` + w.Backend + `",digest="` + w.Digest + `"} 1`,
		"pluginhost_argus_documents 1",
		"pluginhost_argus_document_bytes " + itoa(len(seedConfig(22))),
		"pluginhost_argus_refused_cycles 0",
		`pluginhost_argus_reports_total{kind="change"} ` + itoa(int(w.Changes)),
		`pluginhost_argus_reports_total{kind="error"} ` + itoa(int(w.Errors)),
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestAuditPath(t *testing.T) {
	for _, tc := range []struct {
		log, state, want string
	}{
		{"", "", ""},
		{"", "/state", "/state/audit.jsonl"},
		{"/var/log/a.jsonl", "/state", "/var/log/a.jsonl"},
		{AuditOff, "/state", ""},
	} {
		if got := (RunOptions{AuditLog: tc.log, StateDir: tc.state}).auditPath(); got != tc.want {
			t.Errorf("--audit-log=%q --state-dir=%q: trail at %q, want %q", tc.log, tc.state, got, tc.want)
		}
	}
}
