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
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotreload/plugin-operator/internal/hostapi"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

var binary string

// TestMain builds the real binary once; every test runs it as a process over real HTTP.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pluginhost-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "pluginhost")
	out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building pluginhost: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// wait bounds every wait for the process: generous, it bounds a hang on a busy machine.
const wait = 30 * time.Second

type proc struct {
	cmd  *exec.Cmd
	addr string
	// opsAddr is where --ops-addr listens; empty without it. Set before addr is reported.
	opsAddr string
	mu      sync.Mutex
	logs    strings.Builder
	done    chan error
	// listening receives the addresses of the "Listening" line, logged before the host
	// takes the state dir and applies its config.
	listening chan [2]string
}

// start runs the binary in dir with args and env, and waits until it listens.
func start(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	p, addr := launch(t, dir, env, args...)
	p.waitListening(t, addr)
	return p
}

// launch runs the binary in dir with args and env; the channel receives the address it
// listens on.
func launch(t *testing.T, dir string, env []string, args ...string) (*proc, <-chan string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--listen=127.0.0.1:0", "--log-format=json"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1), listening: make(chan [2]string, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			var rec struct{ Msg, Addr, OpsAddr string }
			if json.Unmarshal([]byte(line), &rec) == nil {
				switch rec.Msg {
				case "Listening":
					p.listening <- [2]string{rec.Addr, rec.OpsAddr}
				case "Serving plugins":
					p.opsAddr = rec.OpsAddr
					addr <- rec.Addr
				}
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			if err := <-p.done; err != nil {
				t.Logf("pluginhost killed at cleanup: %v", err)
			}
		}
		if t.Failed() {
			t.Logf("pluginhost logs:\n%s", p.Logs())
		}
	})
	return p, addr
}

// waitListening waits for the address launch's channel reports.
func (p *proc) waitListening(t *testing.T, addr <-chan string) {
	t.Helper()
	select {
	case p.addr = <-addr:
	case err := <-p.done:
		t.Fatalf("pluginhost exited: %v\n%s", err, p.Logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("pluginhost did not listen\n%s", p.Logs())
	}
}

// waitListeningOnly waits until the process listens, before it serves plugins (it may be
// waiting for the state dir).
func (p *proc) waitListeningOnly(t *testing.T) {
	t.Helper()
	select {
	case a := <-p.listening:
		p.addr, p.opsAddr = a[0], a[1]
	case err := <-p.done:
		t.Fatalf("pluginhost exited: %v\n%s", err, p.Logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("pluginhost did not listen\n%s", p.Logs())
	}
}

func (p *proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func (p *proc) url(path string) string { return "http://" + p.addr + path }

// stop sends sig and returns the exit error.
func (p *proc) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("pluginhost did not exit")
		return nil
	}
}

// curl does what the seed README's curl commands do.
func curl(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// getText returns the status and body of GET url.
func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func value(t *testing.T, p *proc, method, op, body string) float64 {
	t.Helper()
	code, m := curl(t, method, p.url("/plugins/counter-1/"+op), body)
	if code != 200 {
		t.Fatalf("%s %s: %d %v", method, op, code, m)
	}
	return m["value"].(float64)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The seed README, "Running the Example" and "Test Hot Reload", against the binary: start
// in a directory holding config.json, increment 5, edit the file as step 2 shows (its
// comment included), increment 1 → 15. The process is the same throughout.
func TestSeedWalkthroughAgainstTheBinary(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	tmp := t.TempDir()
	copyFile(t, "../../internal/pluginconfig/testdata/seed-full.json", filepath.Join(dir, "config.json"))
	p := start(t, dir, []string{"TMPDIR=" + tmp})
	pid := p.cmd.Process.Pid

	if v := value(t, p, "POST", "increment", `{"value": 5}`); v != 5 {
		t.Fatalf("step 1: %v", v)
	}
	copyFile(t, "../../internal/pluginconfig/testdata/seed-step2.json", filepath.Join(dir, "config.json"))
	testutil.Eventually(t, wait, "reload", func() error {
		_, st := curl(t, "GET", p.url("/status"), "")
		if plugins, _ := st["plugins"].([]any); len(plugins) != 1 || plugins[0].(map[string]any)["options"].(map[string]any)["increment"] != float64(10) {
			return fmt.Errorf("status plugins %v", st["plugins"])
		}
		return nil
	})
	if v := value(t, p, "POST", "increment", `{"value": 1}`); v != 15 {
		t.Fatalf("step 4: %v, want 15", v)
	}
	if v := value(t, p, "GET", "get", ""); v != 15 {
		t.Fatalf("get: %v", v)
	}
	if v := value(t, p, "POST", "reset", ""); v != 0 {
		t.Fatalf("reset: %v", v)
	}
	if p.cmd.Process.Pid != pid || p.cmd.ProcessState != nil {
		t.Fatal("the host restarted")
	}
	// Argus' audit trail is off: no SQLite database under TMPDIR.
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Fatalf("files appeared under TMPDIR: %v", entries)
	}
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM exit: %v", err)
	}
}

// SIGTERM drains, writes a final snapshot and exits 0; a restart restores the counter.
func TestSIGTERMLosesNothing(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	state := filepath.Join(dir, "state")
	copyFile(t, "../../internal/pluginconfig/testdata/seed-full.json", filepath.Join(dir, "config.json"))
	// A long snapshot interval: only the final snapshot can save these increments.
	p := start(t, dir, nil, "--state-dir="+state, "--snapshot-interval=1h")
	for range 7 {
		value(t, p, "POST", "increment", `{"value": 3}`)
	}
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if !strings.Contains(p.Logs(), "Final state snapshot saved") {
		t.Fatalf("no final snapshot:\n%s", p.Logs())
	}
	p2 := start(t, dir, nil, "--state-dir="+state)
	if v := value(t, p2, "GET", "get", ""); v != 21 {
		t.Fatalf("restored %v, want 21", v)
	}
}

// A replacement started on the same state dir while the old process still runs (a deleted
// pod's ReplicaSet starts the new pod at once, on the same volume) listens at once, so that
// kubelet's probes are answered: alive, not ready, waiting for the lock (named) — and it
// serves no plugin until the old one has saved its final snapshot and exited. Then it
// restores every increment and serves on from there: nothing counted is lost, one writer.
func TestReplacementWaitsForTheStateLock(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	state := filepath.Join(dir, "state")
	lock := filepath.Join(state, ".lock")
	copyFile(t, "../../internal/pluginconfig/testdata/seed-full.json", filepath.Join(dir, "config.json"))
	old := start(t, dir, nil, "--state-dir="+state, "--snapshot-interval=1h")
	for range 7 {
		value(t, old, "POST", "increment", `{"value": 3}`)
	}
	replacement, serving := launch(t, dir, nil, "--state-dir="+state, "--ops-addr=127.0.0.1:0")
	replacement.waitListeningOnly(t)
	ops := func(path string) string { return "http://" + replacement.opsAddr + path }
	testutil.Eventually(t, wait, "the replacement reports the wait in /status", func() error {
		code, st := curl(t, "GET", ops("/status"), "")
		s, _ := st["state"].(map[string]any)
		if code != 200 || st["ready"] != false || s["waitingForLock"] != true || s["lock"] != lock {
			return fmt.Errorf("GET /status = %d %v, want ready false, state.waitingForLock true, state.lock %s", code, st, lock)
		}
		return nil
	})
	if !strings.Contains(replacement.Logs(), "Waiting for the state directory") {
		t.Errorf("no log of the wait:\n%s", replacement.Logs())
	}
	// Kubelet probes the API port ("http"); the ops port answers the same.
	for _, url := range []string{replacement.url(""), ops("")} {
		if code, body := getText(t, url+"/healthz"); code != 200 {
			t.Errorf("GET %s/healthz while waiting = %d %q, want 200", url, code, body)
		}
		code, body := getText(t, url+"/readyz")
		if code != 503 || !strings.Contains(body, "waiting for the state directory lock "+lock+", held by another pluginhost") {
			t.Errorf("GET %s/readyz while waiting = %d %q, want 503 naming the lock", url, code, body)
		}
	}
	for _, req := range [][3]string{{"POST", "increment", `{"value": 100}`}, {"GET", "get", ""}, {"POST", "reset", ""}} {
		code, m := curl(t, req[0], replacement.url("/plugins/counter-1/"+req[1]), req[2])
		msg, _ := m["error"].(string)
		if code != 503 || m["status"] != float64(503) || !strings.Contains(msg, "waiting for the state directory lock "+lock) {
			t.Errorf("%s %s on the waiting replacement = %d %v, want a 503 JSON error naming the lock", req[0], req[1], code, m)
		}
	}
	select {
	case addr := <-serving:
		t.Fatalf("the replacement serves plugins on %s while the old process holds the state dir", addr)
	default:
	}
	if v := value(t, old, "POST", "increment", `{"value": 1}`); v != 22 { // the old process still counts
		t.Fatalf("the old process counted %v, want 22", v)
	}
	if err := old.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	replacement.waitListening(t, serving)
	if code, body := getText(t, replacement.url("/readyz")); code != 200 {
		t.Errorf("GET /readyz once serving = %d %q, want 200", code, body)
	}
	if v := value(t, replacement, "GET", "get", ""); v != 22 {
		t.Fatalf("the replacement restored %v, want 22 (every increment of the old process, none of the refused ones)", v)
	}
	if v := value(t, replacement, "POST", "increment", `{"value": 1}`); v != 23 {
		t.Fatalf("increment after the restore = %v, want 23", v)
	}
	_, st := curl(t, "GET", ops("/status"), "")
	if s, _ := st["state"].(map[string]any); st["ready"] != true || s["waitingForLock"] != nil || s["lock"] != nil {
		t.Errorf("GET /status once serving still reports the wait: %v", st)
	}
	if !strings.Contains(replacement.Logs(), "Took the state directory lock") {
		t.Errorf("no log of the lock taken:\n%s", replacement.Logs())
	}
	if err := replacement.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("replacement exit after SIGTERM: %v", err)
	}
}

// SIGTERM to a host waiting for the state dir exits 0 without waiting for the lock, and
// writes nothing there: it never owned the state. The holder's snapshot stays byte for byte.
func TestSIGTERMWhileWaitingForTheStateLock(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	state := filepath.Join(dir, "state")
	stateFile := filepath.Join(state, "state.json")
	copyFile(t, "../../internal/pluginconfig/testdata/seed-full.json", filepath.Join(dir, "config.json"))
	holder := start(t, dir, nil, "--state-dir="+state, "--snapshot-interval=10ms")
	value(t, holder, "POST", "increment", `{"value": 5}`)
	// The holder writes only when a value changed: once the file holds 5 it stays as is.
	testutil.Eventually(t, wait, "the holder's snapshot", func() error {
		b, err := os.ReadFile(stateFile)
		if err != nil || !strings.Contains(string(b), `"value": 5`) {
			return fmt.Errorf("state.json %q, %v", b, err)
		}
		return nil
	})
	before, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	entries := func() []string {
		es, err := os.ReadDir(state)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return names
	}
	namesBefore := entries()

	waiter, _ := launch(t, dir, nil, "--state-dir="+state)
	waiter.waitListeningOnly(t)
	testutil.Eventually(t, wait, "the waiter reports the wait", func() error {
		_, st := curl(t, "GET", waiter.url("/status"), "")
		if s, _ := st["state"].(map[string]any); s["waitingForLock"] != true {
			return fmt.Errorf("GET /status = %v", st)
		}
		return nil
	})
	// The holder still holds the lock: an exit now proves the waiter did not wait for it.
	if err := waiter.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM while waiting: %v (want status 0)\n%s", err, waiter.Logs())
	}
	logs := waiter.Logs()
	if !strings.Contains(logs, "Shutting down while waiting for the state directory") || strings.Contains(logs, "Final state snapshot saved") || strings.Contains(logs, "Serving plugins") {
		t.Errorf("waiter logs, want a shutdown while waiting and no snapshot:\n%s", logs)
	}
	after, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("state.json changed while the holder held it:\nbefore %s\nafter  %s", before, after)
	}
	if got := entries(); strings.Join(got, " ") != strings.Join(namesBefore, " ") {
		t.Errorf("state dir entries %v, want %v", got, namesBefore)
	}
	if v := value(t, holder, "POST", "increment", `{"value": 1}`); v != 6 {
		t.Fatalf("the holder after the waiter's exit counts %v, want 6", v)
	}
	if err := holder.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("holder exit after SIGTERM: %v", err)
	}
}

// SIGKILL loses at most what came after the last snapshot.
func TestSIGKILLLosesAtMostOneSnapshotInterval(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	state := filepath.Join(dir, "state")
	copyFile(t, "../../internal/pluginconfig/testdata/seed-full.json", filepath.Join(dir, "config.json"))
	p := start(t, dir, nil, "--state-dir="+state, "--snapshot-interval=50ms")
	for range 10 {
		value(t, p, "POST", "increment", `{"value": 1}`)
	}
	// Wait until a snapshot holds all ten, then kill.
	testutil.Eventually(t, wait, "snapshot", func() error {
		b, err := os.ReadFile(filepath.Join(state, "state.json"))
		if err != nil || !strings.Contains(string(b), `"value": 10`) {
			return fmt.Errorf("state.json %q, %v", b, err)
		}
		return nil
	})
	if err := p.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("SIGKILL exit reported success")
	}
	p2 := start(t, dir, nil, "--state-dir="+state)
	if v := value(t, p2, "GET", "get", ""); v != 10 {
		t.Fatalf("restored %v, want 10", v)
	}
}

func TestEnvironmentVariablesAndAuditLog(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	cfg := filepath.Join(dir, "plugins.json")
	audit := filepath.Join(dir, "audit.jsonl")
	copyFile(t, "../../internal/pluginconfig/testdata/seed-full.json", cfg)
	p := start(t, t.TempDir(), []string{"PLUGINHOST_CONFIG=" + cfg, "PLUGINHOST_AUDIT_LOG=" + audit, "PLUGINHOST_POLL_INTERVAL=20ms"})
	if v := value(t, p, "POST", "increment", ""); v != 1 {
		t.Fatalf("increment: %v", v)
	}
	// Replaced at once, so that the host (polling every 20 ms) cannot read it empty: one refusal.
	testutil.ReplaceFile(t, cfg, []byte(`{"plugins": [`))
	testutil.Eventually(t, wait, "refusal in the audit log", func() error {
		b, err := os.ReadFile(audit)
		if err != nil || strings.Count(string(b), "\n") != 3 || !strings.Contains(string(b), `"result":"refused"`) {
			return fmt.Errorf("audit log %q, %v", b, err)
		}
		return nil
	})
	b, _ := os.ReadFile(audit)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var genesis, first, second map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &genesis)
	_ = json.Unmarshal([]byte(lines[1]), &first)
	_ = json.Unmarshal([]byte(lines[2]), &second)
	if genesis["kind"] != "genesis" || genesis["seq"] != 1.0 || first["prev"] != genesis["hash"] || second["prev"] != first["hash"] {
		t.Errorf("the trail does not start with a genesis or is not chained:\n%s", b)
	}
	if first["result"] != "applied" || first["added"].([]any)[0] != "counter-1" || !strings.HasPrefix(first["revision"].(string), "sha256:") {
		t.Errorf("first audit record: %s", lines[0])
	}
	if second["previousRevision"] != first["revision"] || !strings.Contains(second["error"].(string), "unexpected end of input") {
		t.Errorf("second audit record: %s", lines[1])
	}
	if v := value(t, p, "GET", "get", ""); v != 1 {
		t.Fatalf("value after a refused config: %v", v)
	}
}

func TestBadFlagsFailClearly(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--poll-interval=1ms"}, nil, "below 10ms"},
		{[]string{"--log-level=loud"}, nil, "--log-level"},
		{nil, []string{"PLUGINHOST_POLL_INTERVAL=soon"}, `PLUGINHOST_POLL_INTERVAL="soon"`},
		{[]string{"--listen=256.0.0.1:1"}, nil, "listening on"},
		{[]string{"extra"}, nil, "unexpected arguments"},
		{[]string{"--listen=127.0.0.1:18080", "--ops-addr=127.0.0.1:18080"}, nil, "--ops-addr \"127.0.0.1:18080\" is the same as --listen"},
		{[]string{"--listen=127.0.0.1:0", "--ops-addr=256.0.0.1:1"}, nil, "(--ops-addr)"},
		{[]string{"--audit-segments=1"}, nil, "--audit-segments 1: at least 2"},
		{[]string{"--audit-max-bytes=0"}, nil, "--audit-max-bytes must be positive"},
		{[]string{"audit", "check", "x"}, nil, "usage: pluginhost audit verify"},
	} {
		cmd := exec.Command(binary, tc.args...)
		cmd.Dir = t.TempDir()
		cmd.Env = append(os.Environ(), tc.env...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v %v: err=%v, output lacks %q:\n%s", tc.args, tc.env, err, tc.want, out)
		}
	}
}

// A request in flight when SIGTERM arrives completes before the process exits.
func TestSIGTERMLetsInFlightRequestsFinish(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	copyFile(t, "../../internal/pluginconfig/testdata/seed-full.json", filepath.Join(dir, "config.json"))
	p := start(t, dir, nil)
	// Warm a keep-alive connection first: the in-flight request then travels on a connection
	// the server has already accepted, so SIGTERM cannot race the accept.
	value(t, p, "GET", "get", "")
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", p.url("/plugins/counter-1/increment"), pr)
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = int64(len(`{"value": 4}`))
	// With Expect: 100-continue the server answers "100 Continue" when the handler first
	// reads the body: the signal that the request is inside the handler.
	req.Header.Set("Expect", "100-continue")
	inHandler := make(chan struct{})
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got100Continue: func() { close(inHandler) },
	}))
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{code: resp.StatusCode, body: string(b)}
	}()
	select {
	case <-inHandler:
	case r := <-res:
		t.Fatalf("request ended before its body was sent: %+v", r)
	case <-time.After(30 * time.Second):
		t.Fatal("the handler never read the request body")
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Shutdown has begun once the listener is closed: new connections are refused.
	testutil.Eventually(t, 30*time.Second, "the listener closed by Shutdown", func() error {
		conn, err := net.DialTimeout("tcp", p.addr, time.Second)
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			return nil
		case err != nil:
			return fmt.Errorf("dial: %w (want connection refused)", err)
		}
		_ = conn.Close()
		return errors.New("still accepting connections")
	})
	_, _ = pw.Write([]byte(`{"value": 4}`))
	_ = pw.Close()
	r := <-res
	if r.err != nil || r.code != 200 || !strings.Contains(r.body, `"value":4`) {
		t.Fatalf("in-flight request: %+v", r)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

// With --ops-addr the binary serves the seed's API on --listen and /status, /plugins and
// /metrics on the second listener only; a second config is applied and reported there.
func TestOpsListenerAgainstTheBinary(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	copyFile(t, "../../internal/pluginconfig/testdata/seed-full.json", filepath.Join(dir, "config.json"))
	p := start(t, dir, nil, "--ops-addr=127.0.0.1:0", "--poll-interval=10ms")
	if p.opsAddr == "" || p.opsAddr == p.addr {
		t.Fatalf("ops address %q (API %q)", p.opsAddr, p.addr)
	}
	ops := func(path string) string { return "http://" + p.opsAddr + path }

	if v := value(t, p, "POST", "increment", `{"value": 5}`); v != 5 {
		t.Fatalf("increment on --listen: %v", v)
	}
	for _, path := range []string{"/status", "/plugins", "/metrics"} {
		code, m := curl(t, "GET", p.url(path), "")
		if code != 404 || !strings.Contains(fmt.Sprint(m["error"]), "--ops-addr") {
			t.Errorf("GET %s on --listen = %d %v, want 404 naming --ops-addr", path, code, m)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		for _, url := range []string{p.url(path), ops(path)} {
			if code, _ := curl(t, "GET", url, ""); code != 200 {
				t.Errorf("GET %s = %d", url, code)
			}
		}
	}
	copyFile(t, "../../internal/pluginconfig/testdata/seed-step2.json", filepath.Join(dir, "config.json"))
	testutil.EventuallyTrue(t, wait, "the reload, reported on the ops listener", func() bool {
		code, st := curl(t, "GET", ops("/status"), "")
		plugins, _ := st["plugins"].([]any)
		return code == 200 && len(plugins) == 1 && plugins[0].(map[string]any)["options"].(map[string]any)["increment"] == float64(10)
	})
	if v := value(t, p, "POST", "increment", `{"value": 1}`); v != 15 {
		t.Fatalf("increment after the reload: %v, want 15", v)
	}
	resp, err := http.Get(ops("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `pluginhost_requests_total{code="200",operation="increment",plugin="counter-1"} 2`; !strings.Contains(string(b), want) {
		t.Errorf("metrics on the ops listener lack %s", want)
	}
	if code, _ := curl(t, "POST", ops("/plugins/counter-1/reset"), ""); code != 404 {
		t.Errorf("reset on the ops listener = %d, want 404", code)
	}
	if v := value(t, p, "GET", "get", ""); v != 15 {
		t.Errorf("value after a reset refused on the ops listener: %v", v)
	}
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM exit: %v", err)
	}
}

// Config push against the binary over real HTTP: a push applies in place on the ops
// listener only; then the file with the same config and sequence changes nothing, and an
// older file is not applied.
func TestConfigPushAgainstTheBinary(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	copyFile(t, "../../internal/pluginconfig/testdata/seed-full.json", filepath.Join(dir, "config.json"))
	if err := os.WriteFile(filepath.Join(dir, "config.json.sequence"), []byte("1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "push-token")
	if err := os.WriteFile(token, []byte("t0ken"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, dir, nil, "--ops-addr=127.0.0.1:0", "--poll-interval=10ms", "--push-token-file="+token)
	ops := "http://" + p.opsAddr
	step2, err := os.ReadFile("../../internal/pluginconfig/testdata/seed-step2.json")
	if err != nil {
		t.Fatal(err)
	}
	if v := value(t, p, "POST", "increment", `{"value": 5}`); v != 5 {
		t.Fatalf("increment: %v", v)
	}
	pushTo := func(url string, seq int) (int, map[string]any) {
		req, err := http.NewRequest(http.MethodPut, url+hostapi.ConfigPath, bytes.NewReader(step2))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer t0ken")
		req.Header.Set(hostapi.SequenceHeader, strconv.Itoa(seq))
		req.Header.Set(hostapi.PushStatusHeader, "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if code, m := pushTo(p.url(""), 2); code != 404 {
		t.Fatalf("push on --listen: %d %v, want 404", code, m)
	}
	code, m := pushTo(ops, 2)
	if code != 200 || m["sequence"] != float64(2) {
		t.Fatalf("push: %d %v", code, m)
	}
	if st, _ := m["status"].(map[string]any); st == nil || st["revision"] != m["revision"] || st["sequence"] != float64(2) {
		t.Fatalf("push answer's status: %v, want the status after the push (revision %v, sequence 2)", m["status"], m["revision"])
	}
	if v := value(t, p, "POST", "increment", `{"value": 1}`); v != 15 {
		t.Fatalf("increment right after the push: %v, want 15 (increment 10, value kept)", v)
	}
	_, st := curl(t, "GET", ops+"/status", "")
	if st["sequence"] != float64(2) {
		t.Fatalf("/status sequence: %v", st["sequence"])
	}
	// A newer config in the file (sequence first: the watch follows config.json) applies
	// through the watch as before.
	testutil.ReplaceFile(t, filepath.Join(dir, "config.json.sequence"), []byte("3\n"))
	step3 := bytes.Replace(step2, []byte(`"increment": 10`), []byte(`"increment": 5`), 1)
	if bytes.Equal(step3, step2) {
		t.Fatal("seed-step2.json has no increment of 10 to change")
	}
	testutil.ReplaceFile(t, filepath.Join(dir, "config.json"), step3)
	testutil.EventuallyTrue(t, wait, "the newer file applied", func() bool {
		_, st := curl(t, "GET", ops+"/status", "")
		return st["sequence"] == float64(3)
	})
	if v := value(t, p, "POST", "increment", `{"value": 1}`); v != 20 {
		t.Fatalf("increment after the file: %v, want 20 (increment 5, value kept)", v)
	}
	_, st = curl(t, "GET", ops+"/status", "")
	if reloads := st["reloads"].(map[string]any); reloads["applied"] != float64(3) || reloads["refused"] != float64(0) {
		t.Fatalf("reloads: %v, want 3 applied (file, push, file), none refused", reloads)
	}
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM exit: %v", err)
	}
	if !strings.Contains(p.Logs(), "Config pushed and applied") {
		t.Errorf("no log line for the push:\n%s", p.Logs())
	}
}
