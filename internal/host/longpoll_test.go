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
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

func longPoll(t *testing.T, base, after, wait string) <-chan reply {
	t.Helper()
	ch := make(chan reply, 1)
	u := base + "/status?after=" + url.QueryEscape(after) + "&wait=" + url.QueryEscape(wait)
	go func() {
		resp, err := http.Get(u)
		if err != nil {
			ch <- reply{Body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		r := reply{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
		_ = json.Unmarshal(b, &r.JSON)
		ch <- r
	}()
	return ch
}

func opsServer(t *testing.T, h *Host) string {
	t.Helper()
	srv := httptest.NewServer(h.OpsHandler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func waiters(t *testing.T, h *Host, n int32) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, fmt.Sprintf("%d long-polls held", n), func() error {
		if got := h.statusWaiters.Load(); got != n {
			return fmt.Errorf("%d held", got)
		}
		return nil
	})
}

func TestStatusLongPollAnswersAtOnceWhenTheRevisionDiffers(t *testing.T) {
	h := newTestHost(t, seedConfig(1))
	base := opsServer(t, h)
	// A wait longer than the test's own timeout: only an immediate answer passes.
	r := <-longPoll(t, base, "sha256:"+strings.Repeat("0", 64), "30s")
	if r.Status != http.StatusOK || !strings.Contains(r.Body, h.Status().Revision) || r.Header.Get(LongPollHeader) != "1" {
		t.Fatalf("status %d %v %s, want 200 with revision %s and %s", r.Status, r.Header, r.Body, h.Status().Revision, LongPollHeader)
	}
	// No config yet and after= a revision: differs too.
	empty := New(Options{Registry: h.opts.Registry})
	if r := <-longPoll(t, opsServer(t, empty), h.Status().Revision, "30s"); r.Status != http.StatusOK {
		t.Fatalf("status %d %s", r.Status, r.Body)
	}
}

func TestStatusLongPollIsReleasedByAReload(t *testing.T) {
	h := newTestHost(t, seedConfig(1))
	base := opsServer(t, h)
	old := h.Status().Revision
	ch := longPoll(t, base, old, "30s")
	waiters(t, h, 1)
	select {
	case r := <-ch:
		t.Fatalf("answered before any change: %d %s", r.Status, r.Body)
	default:
	}
	if _, err := h.Apply([]byte(seedConfig(2))); err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.Status != http.StatusOK || r.JSON["revision"] == old || r.JSON["revision"] != h.Status().Revision {
		t.Fatalf("status %d %s, want 200 with the new revision %s", r.Status, r.Body, h.Status().Revision)
	}

	// A refused reload releases it too, with the error.
	cur := h.Status().Revision
	ch = longPoll(t, base, cur, "30s")
	waiters(t, h, 1)
	if _, err := h.Apply([]byte(`{"plugins":[{"name":"x","type":"nope"}]}`)); err == nil {
		t.Fatal("an unknown type was applied")
	}
	r = <-ch
	if r.Status != http.StatusOK || r.JSON["lastError"] == nil || r.JSON["revision"] != cur {
		t.Fatalf("status %d %s, want 200 with lastError and revision %s", r.Status, r.Body, cur)
	}
	// Draining releases a held long-poll.
	ch = longPoll(t, base, cur, "30s")
	waiters(t, h, 1)
	h.Drain()
	if r := <-ch; r.Status != http.StatusOK {
		t.Fatalf("status %d %s", r.Status, r.Body)
	}
}

func TestStatusLongPollEndsAfterWait(t *testing.T) {
	h := newTestHost(t, seedConfig(1))
	base := opsServer(t, h)
	start := time.Now()
	r := <-longPoll(t, base, h.Status().Revision, "100ms")
	if r.Status != http.StatusOK || !strings.Contains(r.Body, h.Status().Revision) {
		t.Fatalf("status %d %s", r.Status, r.Body)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("answered after %v, before wait=100ms", d)
	}
	if n := h.statusWaiters.Load(); n != 0 {
		t.Errorf("%d waiters left", n)
	}
}

func TestStatusLongPollBadParameters(t *testing.T) {
	h := newTestHost(t, seedConfig(1))
	base := opsServer(t, h)
	for q, want := range map[string]string{
		"after=x":                 "after=<revision> and wait=<duration> together",
		"wait=1s":                 "after=<revision> and wait=<duration> together",
		"after=x&wait=soon":       `wait="soon": want a Go duration greater than 0 and at most 30s`,
		"after=x&wait=0s":         `wait="0s"`,
		"after=x&wait=-1s":        `wait="-1s"`,
		"after=x&wait=31s":        `wait="31s"`,
		"after=x&after=y&wait=1s": "once each",
		"after=" + strings.Repeat("a", 129) + "&wait=1s": "at most 128 bytes",
	} {
		r := do(t, http.MethodGet, base+"/status?"+q, "")
		if msg, _ := r.JSON["error"].(string); r.Status != http.StatusBadRequest || !strings.Contains(msg, want) {
			t.Errorf("?%s: %d %s, want 400 with %q", q, r.Status, r.Body, want)
		}
	}
	// Without parameters, and with others, /status is the plain document.
	for _, q := range []string{"", "?pretty=1"} {
		if r := do(t, http.MethodGet, base+"/status"+q, ""); r.Status != http.StatusOK || r.Header.Get(LongPollHeader) != "" {
			t.Errorf("/status%s: %d %s", q, r.Status, r.Body)
		}
	}
}

func TestStatusLongPollWaitersAreBounded(t *testing.T) {
	h := newTestHost(t, seedConfig(1))
	base := opsServer(t, h)
	rev := h.Status().Revision
	held := make([]<-chan reply, MaxStatusWaiters)
	for i := range held {
		held[i] = longPoll(t, base, rev, "30s")
	}
	waiters(t, h, MaxStatusWaiters)
	// One more is answered at once, unchanged.
	if r := <-longPoll(t, base, rev, "30s"); r.Status != http.StatusOK || !strings.Contains(r.Body, rev) {
		t.Fatalf("status %d %s", r.Status, r.Body)
	}
	if _, err := h.Apply([]byte(seedConfig(2))); err != nil {
		t.Fatal(err)
	}
	for _, ch := range held {
		if r := <-ch; r.Status != http.StatusOK || r.JSON["revision"] == rev {
			t.Fatalf("status %d %s", r.Status, r.Body)
		}
	}
}
