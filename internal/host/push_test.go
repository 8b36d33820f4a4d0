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
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/hotreload/plugin-operator/internal/hostapi"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
	"github.com/hotreload/plugin-operator/internal/testing/projection"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
	"github.com/hotreload/plugin-operator/pkg/plugins/counter"
)

const testToken = "s3cret-push-token"

// pushHost is a host with a config applied and config push on, with its token file.
func pushHost(t testing.TB) (*Host, string) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "push-token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := New(Options{Registry: MustRegistry(counter.Factory{}), PushTokenFile: tokenFile})
	if _, err := h.Apply([]byte(seedConfig(1))); err != nil {
		t.Fatal(err)
	}
	return h, tokenFile
}

func push(t testing.TB, url, config string, seq uint64, token string) reply {
	t.Helper()
	hdr := []string{hostapi.SequenceHeader, fmt.Sprint(seq)}
	if token != "" {
		hdr = append(hdr, "Authorization", "Bearer "+token)
	}
	return do(t, http.MethodPut, url+hostapi.ConfigPath, config, hdr...)
}

func pushCount(t testing.TB, h *Host, result string) float64 {
	t.Helper()
	var m dto.Metric
	if err := h.opts.Metrics.pushes.WithLabelValues(result).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// A push applies in place (the counter keeps its value), and answers with the revision and
// the sequence; the same bytes again change nothing; /status reports the sequence.
func TestPushAppliesInPlace(t *testing.T) {
	h, _ := pushHost(t)
	srv := serve(t, h)
	increment(t, h, "counter-1", 5)
	before := h.Revision()

	r := push(t, srv.URL, seedConfig(7), 3, testToken)
	if r.Status != http.StatusOK {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	want := pluginconfig.Revision([]byte(seedConfig(7)))
	if r.JSON["revision"] != want || r.JSON["previousRevision"] != before || r.JSON["sequence"] != jsonNumber(3) || r.JSON["unchanged"] != nil {
		t.Fatalf("push answer %s, want revision %s after %s at sequence 3", r.Body, want, before)
	}
	if step(t, h) != 7 || value(t, h, "counter-1") != 5 {
		t.Fatalf("after the push: increment %d (want 7), value %d (want 5, kept)", step(t, h), value(t, h, "counter-1"))
	}
	if st := h.Status(); st.Revision != want || st.Sequence != 3 {
		t.Fatalf("/status: revision %s sequence %d", st.Revision, st.Sequence)
	}
	again := push(t, srv.URL, seedConfig(7), 3, testToken)
	if again.Status != http.StatusOK || again.JSON["unchanged"] != true {
		t.Fatalf("the same push again: %d %s", again.Status, again.Body)
	}
	if pushCount(t, h, PushApplied) != 1 || pushCount(t, h, PushUnchanged) != 1 || noticed(t, h, NoticedByPush) != 1 {
		t.Fatalf("metrics: applied %v unchanged %v noticed %v", pushCount(t, h, PushApplied), pushCount(t, h, PushUnchanged), noticed(t, h, NoticedByPush))
	}
}

func jsonNumber(n int) any { return json.Number(fmt.Sprint(n)) }

// A push that asks for the status (hostapi.PushStatusHeader) gets the /status document as
// it stands after the apply, the change's audit record included; one that does not gets the
// answer without it.
func TestPushAnswersWithTheStatusWhenAsked(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "push-token")
	if err := os.WriteFile(tokenFile, []byte(testToken), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	a := OpenAudit(AuditOptions{Path: filepath.Join(t.TempDir(), "audit.jsonl"), Pod: "host-0"}, log)
	t.Cleanup(func() { _ = a.Close() })
	h := New(Options{Registry: MustRegistry(counter.Factory{}), PushTokenFile: tokenFile, Logger: log, Audit: a})
	if _, err := h.Apply([]byte(seedConfig(1))); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)
	plain := push(t, srv.URL, seedConfig(4), 2, testToken)
	if plain.Status != http.StatusOK || plain.JSON["status"] != nil {
		t.Fatalf("push without %s: %d %s, want 200 without a status", hostapi.PushStatusHeader, plain.Status, plain.Body)
	}
	r := do(t, http.MethodPut, srv.URL+hostapi.ConfigPath, seedConfig(9),
		hostapi.SequenceHeader, "3", "Authorization", "Bearer "+testToken, hostapi.PushStatusHeader, "1")
	if r.Status != http.StatusOK {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	var res hostapi.PushResult
	if err := json.Unmarshal([]byte(r.Body), &res); err != nil {
		t.Fatal(err)
	}
	want := h.Status()
	if res.Status == nil || res.Status.Revision != res.Revision || res.Status.Sequence != 3 {
		t.Fatalf("push answer's status %+v, want revision %s at sequence 3", res.Status, res.Revision)
	}
	if res.Status.Audit == nil || want.Audit == nil || res.Status.Audit.Sequence != want.Audit.Sequence || res.Status.Audit.Head != want.Audit.Head || want.Audit.Sequence < 3 {
		t.Fatalf("push answer's audit %+v, /status after it %+v: the push's record must be in the answer", res.Status.Audit, want.Audit)
	}
	if res.Status.Reloads != want.Reloads || len(res.Status.Plugins) != len(want.Plugins) {
		t.Fatalf("push answer's status %+v differs from /status %+v", res.Status, want)
	}
}

// Every bad push gets a precise status and message, and nothing changes: the applied
// config, its sequence and the counter's value stay.
func TestBadPushesChangeNothing(t *testing.T) {
	h, tokenFile := pushHost(t)
	srv := serve(t, h)
	if r := push(t, srv.URL, seedConfig(4), 10, testToken); r.Status != http.StatusOK {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	increment(t, h, "counter-1", 8)
	applied, counted := h.Revision(), value(t, h, "counter-1")
	big := `{"plugins":[]` + strings.Repeat(" ", pluginconfig.MaxConfigBytes) + `}`

	tests := []struct {
		name, method, body string
		hdr                []string
		status             int
		msg, result        string
	}{
		{"no token", "PUT", seedConfig(5), []string{hostapi.SequenceHeader, "11"}, 401, "needs the bearer token", PushUnauthorized},
		{"wrong token", "PUT", seedConfig(5), []string{hostapi.SequenceHeader, "11", "Authorization", "Bearer nope"}, 401, "needs the bearer token", PushUnauthorized},
		{"token prefix", "PUT", seedConfig(5), []string{hostapi.SequenceHeader, "11", "Authorization", "Bearer " + testToken[:4]}, 401, "needs the bearer token", PushUnauthorized},
		{"basic auth", "PUT", seedConfig(5), []string{hostapi.SequenceHeader, "11", "Authorization", "Basic " + testToken}, 401, "needs the bearer token", PushUnauthorized},
		{"wrong method", "POST", seedConfig(5), []string{hostapi.SequenceHeader, "11", "Authorization", "Bearer " + testToken}, 405, "takes PUT", PushInvalid},
		{"no sequence", "PUT", seedConfig(5), []string{"Authorization", "Bearer " + testToken}, 400, "positive decimal", PushInvalid},
		{"zero sequence", "PUT", seedConfig(5), []string{hostapi.SequenceHeader, "0", "Authorization", "Bearer " + testToken}, 400, "positive decimal", PushInvalid},
		{"bad sequence", "PUT", seedConfig(5), []string{hostapi.SequenceHeader, "-3", "Authorization", "Bearer " + testToken}, 400, "positive decimal", PushInvalid},
		{"older sequence", "PUT", seedConfig(5), []string{hostapi.SequenceHeader, "9", "Authorization", "Bearer " + testToken}, 409, "delivery sequence 9 is older than the applied 10", PushStale},
		{"malformed JSON", "PUT", `{"plugins":[`, []string{hostapi.SequenceHeader, "11", "Authorization", "Bearer " + testToken}, 422, "the last good one keeps serving", PushRefused},
		{"unknown type", "PUT", strings.Replace(seedConfig(5), `"type":"counter"`, `"type":"nope"`, 1), []string{hostapi.SequenceHeader, "11", "Authorization", "Bearer " + testToken}, 422, "nope", PushRefused},
		{"too large", "PUT", big, []string{hostapi.SequenceHeader, "11", "Authorization", "Bearer " + testToken}, 413, "over the 1048576-byte limit", PushInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := pushCount(t, h, tc.result)
			r := do(t, tc.method, srv.URL+hostapi.ConfigPath, tc.body, tc.hdr...)
			if r.Status != tc.status || !strings.Contains(fmt.Sprint(r.JSON["error"]), tc.msg) {
				t.Fatalf("status %d %s, want %d with %q", r.Status, r.Body, tc.status, tc.msg)
			}
			if strings.Contains(r.Body, testToken) {
				t.Fatalf("the answer repeats the token: %s", r.Body)
			}
			if tc.status == 405 && r.Header.Get("Allow") != "PUT" {
				t.Errorf("405 without Allow: PUT: %v", r.Header)
			}
			if tc.status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("401 without a Bearer challenge: %v", r.Header)
			}
			if got := pushCount(t, h, tc.result); got != before+1 {
				t.Errorf("pluginhost_config_pushes_total{result=%q}: %v, want %v", tc.result, got, before+1)
			}
		})
	}
	st := h.Status()
	if st.Revision != applied || st.Sequence != 10 || value(t, h, "counter-1") != counted || step(t, h) != 4 {
		t.Fatalf("after the bad pushes: revision %s (want %s), sequence %d, value %d (want %d), increment %d", st.Revision, applied, st.Sequence, value(t, h, "counter-1"), counted, step(t, h))
	}
	// A refused push is not a refusal of the config: the file decides.
	if st.LastError != "" || st.Reloads.Refused != 0 {
		t.Fatalf("a pushed config that does not apply was recorded as refused: %+v", st)
	}

	// The token file is read at each push: an emptied one turns push away, a rotated one
	// takes effect at once.
	if err := os.WriteFile(tokenFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := push(t, srv.URL, seedConfig(5), 11, testToken); r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Body, "is empty") {
		t.Fatalf("empty token file: %d %s", r.Status, r.Body)
	}
	if err := os.WriteFile(tokenFile, []byte("rotated"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := push(t, srv.URL, seedConfig(5), 11, testToken); r.Status != http.StatusUnauthorized {
		t.Fatalf("old token after rotation: %d %s", r.Status, r.Body)
	}
	if r := push(t, srv.URL, seedConfig(5), 11, "rotated"); r.Status != http.StatusOK {
		t.Fatalf("rotated token: %d %s", r.Status, r.Body)
	}
}

// Without --push-token-file, push is off; before the first config, it is unavailable.
func TestPushOffAndBeforeTheFirstConfig(t *testing.T) {
	off := serve(t, newTestHost(t, seedConfig(1)))
	if r := push(t, off.URL, seedConfig(2), 1, testToken); r.Status != http.StatusForbidden || !strings.Contains(r.Body, "--push-token-file") {
		t.Fatalf("push off: %d %s", r.Status, r.Body)
	}
	tokenFile := filepath.Join(t.TempDir(), "t")
	if err := os.WriteFile(tokenFile, []byte(testToken), 0o600); err != nil {
		t.Fatal(err)
	}
	h := New(Options{Registry: MustRegistry(counter.Factory{}), PushTokenFile: tokenFile})
	srv := serve(t, h)
	if r := push(t, srv.URL, seedConfig(2), 1, testToken); r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Body, "first one is read from the config file") {
		t.Fatalf("push before the first config: %d %s", r.Status, r.Body)
	}
	if h.Revision() != "" {
		t.Fatalf("a push applied before the first config: %s", h.Revision())
	}
}

// A push lands before kubelet projects the same change; the projection may still hold an
// older config: the host neither goes back to it nor reports it refused, and applies the
// next newer projection.
func TestProjectionOlderThanAPushIsNotApplied(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	w := projection.NewWriter(dir)
	project := func(increment int, seq string) {
		t.Helper()
		if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(increment)), "config.json.sequence": []byte(seq)}); err != nil {
			t.Fatal(err)
		}
	}
	project(1, "1")
	tokenFile := filepath.Join(t.TempDir(), "t")
	if err := os.WriteFile(tokenFile, []byte(testToken), 0o600); err != nil {
		t.Fatal(err)
	}
	h, logs := loggingHost()
	h.opts.PushTokenFile = tokenFile
	watchingWith(t, h, filepath.Join(dir, "config.json"), testPoll)
	waitWatching(t, logs)
	if h.Sequence() != 1 || step(t, h) != 1 {
		t.Fatalf("initial projection: sequence %d increment %d", h.Sequence(), step(t, h))
	}
	srv := serve(t, h)

	if r := push(t, srv.URL, seedConfig(3), 3, testToken); r.Status != http.StatusOK {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	// kubelet now projects sequence 2: older than the push.
	project(2, "2")
	testutil.EventuallyTrue(t, waitTimeout, "the older projection seen", func() bool {
		return strings.Contains(logs.String(), "The config file holds an older config than the one pushed")
	})
	if step(t, h) != 3 || h.Sequence() != 3 || h.Status().LastError != "" || h.Status().Reloads.Applied != 2 {
		t.Fatalf("went back to the older projection: increment %d sequence %d error %q reloads %+v", step(t, h), h.Sequence(), h.Status().LastError, h.Status().Reloads)
	}
	// Then the pushed one itself (already applied: nothing happens), and a newer one.
	project(3, "3")
	project(4, "4")
	testutil.EventuallyTrue(t, waitTimeout, "the newer projection applied", func() bool { return step(t, h) == 4 && h.Sequence() == 4 })
	if r := push(t, srv.URL, seedConfig(3), 3, testToken); r.Status != http.StatusConflict {
		t.Fatalf("a push older than the projection: %d %s", r.Status, r.Body)
	}
}

// A projected sequence file that is not a positive number refuses the config, saying so.
func TestBadSequenceFileIsRefused(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	w := projection.NewWriter(dir)
	if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(1))}); err != nil {
		t.Fatal(err)
	}
	h, _ := watching(t, filepath.Join(dir, "config.json"))
	if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(2)), "config.json.sequence": []byte("two")}); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyTrue(t, waitTimeout, "the refusal in /status", func() bool {
		return strings.Contains(h.Status().LastError, `config.json.sequence holds "two", not a positive decimal number`)
	})
	if step(t, h) != 1 {
		t.Fatalf("the refused config applied: increment %d", step(t, h))
	}
}

// ApplySequenced: sequence 0 always applies; older sequences are stale whatever the bytes,
// until a file has stayed older than a push for PushLeadLimit.
func TestApplySequencedOrder(t *testing.T) {
	now := time.Unix(1000, 0)
	h := New(Options{Registry: MustRegistry(counter.Factory{}), Now: func() time.Time { return now }})
	if _, err := h.Apply([]byte(seedConfig(1))); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ApplySequenced([]byte(seedConfig(2)), 5, true); err != nil || h.Sequence() != 5 {
		t.Fatalf("pushed sequence 5: %v, %d", err, h.Sequence())
	}
	var stale *StaleError
	for _, push := range []bool{true, false} {
		if _, err := h.ApplySequenced([]byte(seedConfig(3)), 4, push); !errors.As(err, &stale) || stale.Applied != 5 || step(t, h) != 2 {
			t.Fatalf("sequence 4 after 5 (push %v): %v (increment %d)", push, err, step(t, h))
		}
	}
	if _, err := h.Apply([]byte(seedConfig(6))); err != nil || step(t, h) != 6 || h.Sequence() != 5 {
		t.Fatalf("unsequenced after 5: %v, increment %d, sequence %d", err, step(t, h), h.Sequence())
	}
	if st := h.Status(); st.Reloads.Refused != 0 {
		t.Fatalf("a stale config counted as refused: %+v", st.Reloads)
	}

	// The file stays at 4 past the limit: it applies, and its sequence becomes the applied
	// one; a push is never let through that way.
	now = now.Add(PushLeadLimit)
	if _, err := h.ApplySequenced([]byte(seedConfig(3)), 4, true); !errors.As(err, &stale) {
		t.Fatalf("a stale push after the limit: %v", err)
	}
	if _, err := h.ApplySequenced([]byte(seedConfig(3)), 4, false); err != nil || step(t, h) != 3 || h.Sequence() != 4 {
		t.Fatalf("the file after the limit: %v, increment %d, sequence %d", err, step(t, h), h.Sequence())
	}
}

// A push with a sequence far ahead (a writer's clock, a leaked token) keeps the host off its
// file for PushLeadLimit at most: the watch keeps reading the file and applies it then.
func TestFileWinsAfterThePushLeadLimit(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	w := projection.NewWriter(dir)
	if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(1)), "config.json.sequence": []byte("7")}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	logs := &testutil.SyncBuffer{}
	h := New(Options{Registry: MustRegistry(counter.Factory{}), Now: clock,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	watchingWith(t, h, filepath.Join(dir, "config.json"), testPoll)
	waitWatching(t, logs)
	if _, err := h.ApplySequenced([]byte(seedConfig(9)), 1<<62, true); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(2)), "config.json.sequence": []byte("8")}); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyTrue(t, waitTimeout, "the file seen behind the push", func() bool {
		return strings.Contains(logs.String(), "The config file holds an older config than the one pushed")
	})
	if step(t, h) != 9 {
		t.Fatalf("the file applied within the limit: increment %d", step(t, h))
	}
	mu.Lock()
	now = now.Add(PushLeadLimit)
	mu.Unlock()
	testutil.EventuallyTrue(t, waitTimeout, "the file applied after the limit (the recheck reads it every second)", func() bool {
		return step(t, h) == 2 && h.Sequence() == 8
	})
	if !strings.Contains(logs.String(), "applying the file, which the operator keeps") {
		t.Errorf("no warning when the file won:\n%s", logs.String())
	}
}
