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

package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestHostBinary builds this module's host binary and runs it as a PluginHost pod would:
// a featureflags plugin served over HTTP, its config changed in place (same process, counts
// kept), an invalid config refused while the last good one keeps serving, and the counts
// restored from the state directory by the next process.
func TestHostBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the host binary; not run under -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "featureflags")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	config := filepath.Join(dir, "config.json")
	stateDir := filepath.Join(dir, "state")
	if err := os.Mkdir(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, config, `{"enabled": true}`)

	host := startHost(t, bin, "--config", config, "--state-dir", stateDir)
	base := host.base
	pid := host.cmd.Process.Pid

	// The host advertises the type with its operations.
	var types struct {
		Version int `json:"version"`
		Types   []struct {
			Name       string `json:"name"`
			Operations []struct {
				Name     string `json:"name"`
				Mutating bool   `json:"mutating"`
			} `json:"operations"`
		} `json:"types"`
	}
	getJSON(t, base+"/types", http.StatusOK, &types)
	advertised := false
	for _, ty := range types.Types {
		if ty.Name == "featureflags" {
			advertised = len(ty.Operations) == 2 && ty.Operations[0].Name == "evaluate" && ty.Operations[0].Mutating
		}
	}
	if types.Version != 1 || !advertised {
		t.Errorf("GET /types: %+v, want version 1 with featureflags (evaluate mutating, list)", types)
	}

	evaluations := 0
	ev := evaluate(t, base)
	evaluations++
	if !ev.Enabled || ev.Reason != "enabled" {
		t.Fatalf("evaluate: %+v, want enabled", ev)
	}
	// A bad request names the parameter.
	if body := getStatus(t, base+"/plugins/flags/evaluate?flag=Nope", http.StatusBadRequest); !strings.Contains(body, `query parameter \"flag\"`) {
		t.Errorf("evaluate?flag=Nope: %s", body)
	}

	// The flag turned off: served by the same process once the watch has seen the file.
	writeConfig(t, config, `{"enabled": false}`)
	eventually(t, "the new flags served", func() error {
		ev := evaluate(t, base)
		evaluations++
		if ev.Enabled {
			return fmt.Errorf("still %+v", ev)
		}
		return nil
	})
	// Only the process started above serves, as long as it has not exited.
	select {
	case err := <-host.exited:
		t.Fatalf("the host process %d exited during the reload: %v\n%s", pid, err, host.logs)
	default:
	}
	if got := listed(t, base); got != evaluations {
		t.Errorf("list counts %d evaluations of new-checkout, this test made %d: the reload lost counts", got, evaluations)
	}

	// An invalid option: refused with the field named, the last good flags keep serving.
	writeConfig(t, config, `{"enabled": true, "percent": 101}`)
	var status struct {
		LastError string `json:"lastError"`
	}
	eventually(t, "/status reports the refused config", func() error {
		getJSON(t, base+"/status", http.StatusOK, &status)
		if status.LastError == "" {
			return fmt.Errorf("no lastError yet")
		}
		return nil
	})
	t.Logf("lastError: %s", status.LastError)
	if !strings.Contains(status.LastError, "percent") {
		t.Errorf("lastError does not name the option: %s", status.LastError)
	}
	if ev := evaluate(t, base); ev.Enabled || ev.Reason != "disabled" {
		t.Errorf("after a refused config: %+v, want the last good (disabled)", ev)
	}
	evaluations++
	if got := listed(t, base); got != evaluations {
		t.Errorf("list counts %d evaluations, want %d", got, evaluations)
	}

	// evaluate is Mutating, so the host saved the counts; a new process restores them.
	host.stop(t)
	writeConfig(t, config, `{"enabled": true}`)
	host = startHost(t, bin, "--config", config, "--state-dir", stateDir)
	if got := listed(t, host.base); got != evaluations {
		t.Errorf("after a restart with the same state dir, list counts %d evaluations, want %d", got, evaluations)
	}
}

// host is a running host binary.
type host struct {
	cmd    *exec.Cmd
	base   string     // http://addr of --listen
	exited chan error // receives Wait's result once the process exits and its log is read
	logs   *logTail
}

// startHost starts bin with args on a free port and waits for its "Serving plugins" line.
// The host is stopped (SIGTERM) when the test ends unless stop was called.
func startHost(t *testing.T, bin string, args ...string) *host {
	t.Helper()
	args = append(args, "--listen", "127.0.0.1:0", "--log-format", "json", "--poll-interval", "50ms")
	h := &host{cmd: exec.Command(bin, args...), exited: make(chan error, 1), logs: &logTail{}}
	stderr, err := h.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		h.logs.read(stderr, addr)
		h.exited <- h.cmd.Wait()
	}()
	t.Cleanup(func() { h.stop(t) })
	select {
	case a := <-addr:
		h.base = "http://" + a
	case err := <-h.exited:
		h.exited <- err
		t.Fatalf("the host exited before serving: %v\n%s", err, h.logs)
	case <-time.After(time.Minute):
		t.Fatalf("no \"Serving plugins\" line within a minute\n%s", h.logs)
	}
	return h
}

// stop sends SIGTERM and waits for a clean exit (in-flight requests drained, the final
// snapshot saved); a second call does nothing.
func (h *host) stop(t *testing.T) {
	t.Helper()
	if h.exited == nil {
		return
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-h.exited; err != nil {
		t.Errorf("the host exited with %v after SIGTERM\n%s", err, h.logs)
	}
	h.exited = nil
}

// writeConfig writes config.json with one featureflags plugin whose new-checkout flag has
// the given settings, atomically (a rename, as kubelet's ConfigMap volume does).
func writeConfig(t *testing.T, path, newCheckout string) {
	t.Helper()
	doc := `{"plugins": [{"name": "flags", "type": "featureflags", "options": {"flags": {"new-checkout": ` + newCheckout + `}, "default": false}}]}`
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type evaluation struct {
	Flag    string `json:"flag"`
	Enabled bool   `json:"enabled"`
	Reason  string `json:"reason"`
}

func evaluate(t *testing.T, base string) evaluation {
	t.Helper()
	var ev evaluation
	getJSON(t, base+"/plugins/flags/evaluate?flag=new-checkout&user=alice", http.StatusOK, &ev)
	return ev
}

// listed returns new-checkout's evaluation count from list.
func listed(t *testing.T, base string) int {
	t.Helper()
	var l struct {
		Flags map[string]struct {
			Evaluations int `json:"evaluations"`
		} `json:"flags"`
	}
	getJSON(t, base+"/plugins/flags/list", http.StatusOK, &l)
	return l.Flags["new-checkout"].Evaluations
}

func getStatus(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d %s, want %d", url, resp.StatusCode, b, want)
	}
	return string(b)
}

func getJSON(t *testing.T, url string, want int, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(getStatus(t, url, want)), v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// eventually polls cond until it returns nil, for at most a minute (a reload takes a poll
// interval; the minute is for a machine busy compiling).
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute: %v", what, err)
		}
		<-tick.C
	}
}

// logTail keeps the host's log for failure messages and reports the address of the
// "Serving plugins" line.
type logTail struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logTail) read(r io.Reader, addr chan<- string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		l.mu.Lock()
		l.buf.WriteString(line + "\n")
		l.mu.Unlock()
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "Serving plugins" {
			select {
			case addr <- rec.Addr:
			default:
			}
		}
	}
}
