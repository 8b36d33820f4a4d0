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

// Package loadtest drives the real pluginhost binary under load (vegeta as a library) and
// under faults: throughput against a bare net/http baseline, kubelet-style config reloads
// while requests run (with exact accounting), SIGKILL/SIGTERM with a state dir, an
// unwritable state dir, and a flapping config file. The scenarios return what they
// measured; the tests in cmd/pluginhost assert on it and hack/benchreport reports it.
package loadtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hotreload/plugin-operator/internal/hostapi"
)

// Proc is a running server process (pluginhost or the bare baseline) that logs a JSON
// line {"msg":"Serving plugins","addr":…} once it listens.
type Proc struct {
	Cmd  *exec.Cmd
	Addr string

	mu   sync.Mutex
	logs strings.Builder
	done chan struct{}
	err  error
}

// Start runs bin with args (plus --listen=127.0.0.1:0 --log-format=json) in dir and waits
// until it listens.
func Start(bin, dir string, args ...string) (*Proc, error) {
	cmd := exec.Command(bin, append([]string{"--listen=127.0.0.1:0", "--log-format=json"}, args...)...)
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "Serving plugins" {
				select {
				case addr <- rec.Addr:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.err = cmd.Wait()
		close(p.done)
	}()
	select {
	case p.Addr = <-addr:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before listening: %v\n%s", bin, p.err, p.Logs())
	case <-time.After(30 * time.Second):
		p.Kill()
		return nil, fmt.Errorf("%s did not listen within 30s\n%s", bin, p.Logs())
	}
}

// Logs returns everything the process wrote to stderr so far.
func (p *Proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// URL is http://addr/path.
func (p *Proc) URL(path string) string { return "http://" + p.Addr + path }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends sig and waits (up to 30 s) for the exit; it returns the exit error.
func (p *Proc) Stop(sig syscall.Signal) error {
	_ = p.Cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.err
	case <-time.After(30 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("did not exit within 30s of %v", sig)
	}
}

// Kill ends the process if it still runs (for cleanups).
func (p *Proc) Kill() {
	if !p.Exited() {
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
}

// Status reads /status.
func (p *Proc) Status() (hostapi.Status, error) {
	var st hostapi.Status
	resp, err := http.Get(p.URL("/status"))
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// Value reads a counter through GET /plugins/{name}/get.
func (p *Proc) Value(name string) (int64, error) {
	resp, err := http.Get(p.URL("/plugins/" + name + "/get"))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("get %s: %d %s", name, resp.StatusCode, b)
	}
	return parseValue(b)
}

func parseValue(b []byte) (int64, error) {
	var r struct{ Value *int64 }
	if err := json.Unmarshal(b, &r); err != nil || r.Value == nil {
		return 0, fmt.Errorf("no value in %q", b)
	}
	return *r.Value, nil
}

// Eventually polls cond every 10 ms for up to timeout.
func Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// TempDir is a short temporary directory (Argus refuses paths over 109 bytes).
func TempDir() (string, error) { return os.MkdirTemp("", "lt") }
