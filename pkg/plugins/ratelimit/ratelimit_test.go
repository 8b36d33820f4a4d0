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

package ratelimit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/hotreload/plugin-operator/internal/typeschema"
	"github.com/hotreload/plugin-operator/pkg/plugin"
	"github.com/hotreload/plugin-operator/pkg/plugins/ratelimit"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 6, 6, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newLimiter(t testing.TB, c *clock, options string) plugin.Instance {
	t.Helper()
	inst, err := ratelimit.NewFactory(ratelimit.WithClock(c.now)).New(plugin.Spec{Name: "rl", Type: ratelimit.Type, Options: json.RawMessage(options)}, nil)
	if err != nil {
		t.Fatalf("New(%s): %v", options, err)
	}
	return inst
}

type takeResp struct {
	Key               string  `json:"key"`
	Allowed           bool    `json:"allowed"`
	Remaining         float64 `json:"remaining"`
	RetryAfterSeconds float64 `json:"retryAfterSeconds"`
	Limit             struct {
		Rate  float64 `json:"rate"`
		Burst int64   `json:"burst"`
	} `json:"limit"`
}

func take(t testing.TB, inst plugin.Instance, body string) takeResp {
	t.Helper()
	resp, err := inst.Execute(context.Background(), plugin.Request{Operation: "take", Body: []byte(body)})
	if err != nil {
		t.Fatalf("take %s: %v", body, err)
	}
	var r takeResp
	if err := json.Unmarshal(resp.Body, &r); err != nil {
		t.Fatalf("take %s answered %s: %v", body, resp.Body, err)
	}
	return r
}

func tokens(t *testing.T, inst plugin.Instance, key string) float64 {
	t.Helper()
	resp, err := inst.Execute(context.Background(), plugin.Request{Operation: "get", RawQuery: "key=" + key})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	var r struct {
		Key    string  `json:"key"`
		Tokens float64 `json:"tokens"`
	}
	if err := json.Unmarshal(resp.Body, &r); err != nil || r.Key != key {
		t.Fatalf("get %s answered %s (%v)", key, resp.Body, err)
	}
	return r.Tokens
}

func resetKeys(t *testing.T, inst plugin.Instance, body string) int {
	t.Helper()
	resp, err := inst.Execute(context.Background(), plugin.Request{Operation: "reset", Body: []byte(body)})
	if err != nil {
		t.Fatalf("reset %s: %v", body, err)
	}
	var r struct {
		KeysReset int `json:"keysReset"`
	}
	if err := json.Unmarshal(resp.Body, &r); err != nil {
		t.Fatalf("reset %s answered %s: %v", body, resp.Body, err)
	}
	return r.KeysReset
}

func TestTakeUpToBurstThenDenyAndRefill(t *testing.T) {
	c := newClock()
	inst := newLimiter(t, c, `{"rate": 2, "burst": 3}`)
	for i, want := range []float64{2, 1, 0} {
		r := take(t, inst, `{"key": "u"}`)
		if !r.Allowed || r.Remaining != want || r.RetryAfterSeconds != 0 || r.Limit.Rate != 2 || r.Limit.Burst != 3 || r.Key != "u" {
			t.Fatalf("take %d: %+v, want allowed with %v remaining", i, r, want)
		}
	}
	r := take(t, inst, `{"key": "u"}`)
	if r.Allowed || r.Remaining != 0 || r.RetryAfterSeconds != 0.5 {
		t.Fatalf("4th take: %+v, want denied, retry after 0.5 s", r)
	}
	// Two tokens at 2/s: 1 s.
	if r := take(t, inst, `{"key": "u", "tokens": 2}`); r.Allowed || r.RetryAfterSeconds != 1 {
		t.Fatalf("take 2 of 0: %+v, want denied, retry after 1 s", r)
	}
	// Another key has its own full bucket.
	if r := take(t, inst, `{"key": "v", "tokens": 3}`); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("take 3 on a new key: %+v", r)
	}
	// Waiting exactly retryAfterSeconds is enough.
	c.advance(time.Duration(r.RetryAfterSeconds * float64(time.Second)))
	if r := take(t, inst, `{"key": "u"}`); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("take after 0.5 s: %+v, want allowed, 0 left", r)
	}
	c.advance(10 * time.Second) // refills up to the burst, not beyond
	if got := tokens(t, inst, "u"); got != 3 {
		t.Fatalf("tokens after 10 s = %v, want the burst, 3", got)
	}
}

func TestRetryAfterIsEnough(t *testing.T) {
	c := newClock()
	inst := newLimiter(t, c, `{"rate": 3, "burst": 1}`)
	take(t, inst, `{"key": "k"}`)
	r := take(t, inst, `{"key": "k"}`)
	if r.Allowed || r.RetryAfterSeconds <= 0.33 || r.RetryAfterSeconds >= 0.34 {
		t.Fatalf("second take: %+v, want denied, retry after 1/3 s", r)
	}
	c.advance(time.Duration(r.RetryAfterSeconds * float64(time.Second)))
	if r := take(t, inst, `{"key": "k"}`); !r.Allowed {
		t.Fatalf("take after retryAfterSeconds: %+v, want allowed", r)
	}
}

func TestDefaults(t *testing.T) {
	c := newClock()
	for _, tc := range []struct {
		options string
		burst   int64
	}{
		{`{"rate": 2.5}`, 3},
		{`{"rate": 0.1}`, 1},
		{`{"rate": 7}`, 7},
	} {
		if r := take(t, newLimiter(t, c, tc.options), `{"key": "k"}`); r.Limit.Burst != tc.burst {
			t.Errorf("%s: burst %d, want %d", tc.options, r.Limit.Burst, tc.burst)
		}
	}
}

func TestBadRequests(t *testing.T) {
	c := newClock()
	inst := newLimiter(t, c, `{"rate": 1, "burst": 3}`)
	long := strings.Repeat("x", 257)
	for _, tc := range []struct {
		name, op, body, query, want string
	}{
		{"more tokens than the burst", "take", `{"key": "k", "tokens": 4}`, "", "tokens: 4, must be 1 to the burst (3)"},
		{"zero tokens", "take", `{"key": "k", "tokens": 0}`, "", "tokens: 0"},
		{"fractional tokens", "take", `{"key": "k", "tokens": 1.5}`, "", "tokens: must be an integer"},
		{"missing key", "take", `{"tokens": 1}`, "", "key: required"},
		{"empty body", "take", ``, "", "key: required"},
		{"empty key", "take", `{"key": ""}`, "", "key: must not be empty"},
		{"long key", "take", `{"key": "` + long + `"}`, "", "key: 257 bytes, at most 256"},
		{"unknown field", "take", `{"key": "k", "token": 1}`, "", `unknown field "token"`},
		{"not JSON", "take", `{"key": `, "", "malformed JSON"},
		{"get without key", "get", "", "", "key: required (?key=…)"},
		{"get with another parameter", "get", "", "key=k&tokens=1", `query parameter "tokens"`},
		{"get with two keys", "get", "", "key=a&key=b", "key: given 2 times"},
		{"get with an empty key", "get", "", "key=", "key: must not be empty"},
		{"get with a key not UTF-8", "get", "", "key=%FF", "key: must be valid UTF-8"},
		{"get with a bad query", "get", "", "key=%zz", "query:"},
		{"reset with an empty key", "reset", `{"key": ""}`, "", "key: must not be empty"},
		{"reset with tokens", "reset", `{"tokens": 1}`, "", "tokens: reset takes only key"},
		{"unknown operation", "put", ``, "", `unknown operation "put"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := inst.Execute(context.Background(), plugin.Request{Operation: tc.op, Body: []byte(tc.body), RawQuery: tc.query})
			if plugin.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %d %v, want 400 with %q", plugin.StatusOf(err), err, tc.want)
			}
		})
	}
	// Nothing was taken by any of them.
	if got := tokens(t, inst, "k"); got != 3 {
		t.Fatalf("tokens of k after refused requests = %v, want 3", got)
	}
}

func TestGetDoesNotTake(t *testing.T) {
	c := newClock()
	inst := newLimiter(t, c, `{"rate": 1, "burst": 2}`)
	if got := tokens(t, inst, "never-seen"); got != 2 {
		t.Fatalf("a key never seen has %v tokens, want 2", got)
	}
	take(t, inst, `{"key": "k"}`)
	for range 3 {
		if got := tokens(t, inst, "k"); got != 1 {
			t.Fatalf("get = %v, want 1", got)
		}
	}
	if r := take(t, inst, `{"key": "k"}`); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("take after gets: %+v", r)
	}
	// A get does not create a bucket: the snapshot has k only.
	snap := snapshotOf(t, inst)
	if _, ok := snap.Buckets["never-seen"]; ok || len(snap.Buckets) != 1 {
		t.Fatalf("snapshot after gets: %+v, want only k", snap)
	}
}

func TestReset(t *testing.T) {
	c := newClock()
	inst := newLimiter(t, c, `{"rate": 1, "burst": 2}`)
	for _, k := range []string{"a", "b", "c"} {
		take(t, inst, `{"key": "`+k+`", "tokens": 2}`)
	}
	if n := resetKeys(t, inst, `{"key": "a"}`); n != 1 {
		t.Fatalf("reset a: %d keys, want 1", n)
	}
	if n := resetKeys(t, inst, `{"key": "nobody"}`); n != 0 {
		t.Fatalf("reset of a key never seen: %d keys, want 0", n)
	}
	if a, b := tokens(t, inst, "a"), tokens(t, inst, "b"); a != 2 || b != 0 {
		t.Fatalf("after reset a: a=%v b=%v, want 2 and 0", a, b)
	}
	if n := resetKeys(t, inst, `{}`); n != 2 {
		t.Fatalf("reset all: %d keys, want 2 (b and c)", n)
	}
	if b, c := tokens(t, inst, "b"), tokens(t, inst, "c"); b != 2 || c != 2 {
		t.Fatalf("after reset all: b=%v c=%v, want 2 and 2", b, c)
	}
}

func reconfigure(t *testing.T, inst plugin.Instance, options string) plugin.Instance {
	t.Helper()
	r, ok := plugin.As[plugin.Reconfigurer](inst)
	if !ok {
		t.Fatal("the instance is not a Reconfigurer through its wrappers")
	}
	next, err := r.Reconfigure(plugin.Spec{Name: "rl", Type: ratelimit.Type, Options: json.RawMessage(options)})
	if err != nil {
		t.Fatalf("Reconfigure(%s): %v", options, err)
	}
	return next
}

func TestReconfigureSettlesAtTheOldRate(t *testing.T) {
	c := newClock()
	old := newLimiter(t, c, `{"rate": 1, "burst": 10}`)
	take(t, old, `{"key": "k", "tokens": 10}`) // k: 0 tokens
	take(t, old, `{"key": "j", "tokens": 1}`)  // j: 9 tokens
	c.advance(4 * time.Second)                 // k: 4 at the old rate, j: 10
	next := reconfigure(t, old, `{"rate": 10, "burst": 5}`)

	// New: the elapsed 4 s counted at the old rate (4, not 40 capped at 5), j capped at 5.
	if k, j := tokens(t, next, "k"), tokens(t, next, "j"); k != 4 || j != 5 {
		t.Fatalf("new limiter: k=%v j=%v, want 4 (settled at rate 1) and 5 (capped at the new burst)", k, j)
	}
	// The old instance is unchanged: its burst and rate still apply.
	if k, j := tokens(t, old, "k"), tokens(t, old, "j"); k != 4 || j != 10 {
		t.Fatalf("old limiter: k=%v j=%v, want 4 and 10", k, j)
	}
	if r := take(t, old, `{"key": "zz", "tokens": 10}`); !r.Allowed || r.Limit.Burst != 10 {
		t.Fatalf("old limiter refused a take of its own burst: %+v", r)
	}
	// From now on the new rate refills: 0.1 s at 10/s is one token.
	c.advance(100 * time.Millisecond)
	if k := tokens(t, next, "k"); k != 5 {
		t.Fatalf("new limiter after 0.1 s: k=%v, want 5", k)
	}
	if _, err := next.Execute(context.Background(), plugin.Request{Operation: "take", Body: []byte(`{"key": "k", "tokens": 6}`)}); plugin.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("take over the new burst: %v, want 400", err)
	}
}

func TestReconfigureRefusedChangesNothing(t *testing.T) {
	c := newClock()
	inst := newLimiter(t, c, `{"rate": 1, "burst": 4, "maxKeys": 3}`)
	for _, k := range []string{"a", "b", "c"} {
		take(t, inst, `{"key": "`+k+`", "tokens": 4}`)
		c.advance(500 * time.Millisecond)
	}
	// Tokens now: a 1.5, b 1, c 0.5.
	seen := func() string {
		d := snapshotOf(t, inst)
		return fmt.Sprintf("%d buckets, a=%v b=%v c=%v", len(d.Buckets), tokens(t, inst, "a"), tokens(t, inst, "b"), tokens(t, inst, "c"))
	}
	before := seen()
	r, _ := plugin.As[plugin.Reconfigurer](inst)
	if _, err := r.Reconfigure(plugin.Spec{Options: json.RawMessage(`{"rate": 1, "burst": "x"}`)}); err == nil || !strings.Contains(err.Error(), "burst") {
		t.Fatalf("Reconfigure with a bad burst: %v", err)
	}
	// A good config the host then drops (another entry failed): the settle at the old rate
	// changes nothing the old limiter computes, and the smaller burst and maxKeys apply
	// only when the new limiter serves.
	reconfigure(t, inst, `{"rate": 100, "burst": 1, "maxKeys": 1}`)
	if after := seen(); after != before {
		t.Fatalf("an unpublished Reconfigure changed what the old limiter serves: %s, then %s", before, after)
	}
	c.advance(time.Second)
	if r := take(t, inst, `{"key": "a", "tokens": 2}`); !r.Allowed || r.Remaining != 0.5 {
		t.Fatalf("old limiter after an unpublished reload: %+v, want 2.5 - 2 = 0.5 left", r)
	}
}

func TestMaxKeys(t *testing.T) {
	c := newClock()
	inst := newLimiter(t, c, `{"rate": 1, "burst": 2, "maxKeys": 2}`)
	take(t, inst, `{"key": "a", "tokens": 2}`)
	take(t, inst, `{"key": "b", "tokens": 2}`)
	// Full, and the least recently used bucket (a) has not refilled: refused, nothing lost.
	_, err := inst.Execute(context.Background(), plugin.Request{Operation: "take", Body: []byte(`{"key": "c"}`)})
	if plugin.StatusOf(err) != http.StatusServiceUnavailable || !strings.Contains(err.Error(), "options.maxKeys") || !strings.Contains(err.Error(), "retry after 2 s") {
		t.Fatalf("take for a third key: %d %v, want 503 naming maxKeys and 2 s", plugin.StatusOf(err), err)
	}
	if r := take(t, inst, `{"key": "a"}`); r.Allowed {
		t.Fatalf("a was forgotten: %+v", r)
	}
	// Now b is the least recently used; once it has refilled it makes room for c.
	c.advance(2 * time.Second)
	if r := take(t, inst, `{"key": "c"}`); !r.Allowed {
		t.Fatalf("take for c after b refilled: %+v", r)
	}
	snap := snapshotOf(t, inst)
	if _, ok := snap.Buckets["b"]; ok || len(snap.Buckets) != 2 {
		t.Fatalf("buckets after the eviction: %v, want a and c", snap.Buckets)
	}

	// A smaller maxKeys forgets the least recently used buckets at the first take.
	take(t, inst, `{"key": "d"}`) // evicts a (full again after 2 s); order now d, c
	next := reconfigure(t, inst, `{"rate": 1, "burst": 2, "maxKeys": 1}`)
	take(t, next, `{"key": "d"}`)
	snap = snapshotOf(t, next)
	if _, ok := snap.Buckets["d"]; !ok || len(snap.Buckets) != 1 {
		t.Fatalf("buckets after maxKeys 1: %v, want only d", snap.Buckets)
	}
}

type snapshotDoc struct {
	Buckets map[string]struct {
		Tokens float64   `json:"tokens"`
		At     time.Time `json:"at"`
	} `json:"buckets"`
}

func mustSnapshot(t *testing.T, inst plugin.Instance) json.RawMessage {
	t.Helper()
	s, ok := plugin.As[plugin.Stateful](inst)
	if !ok {
		t.Fatal("the instance is not Stateful through its wrappers")
	}
	b, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func snapshotOf(t *testing.T, inst plugin.Instance) snapshotDoc {
	t.Helper()
	var d snapshotDoc
	if err := json.Unmarshal(mustSnapshot(t, inst), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSnapshotRestore(t *testing.T) {
	c := newClock()
	inst := newLimiter(t, c, `{"rate": 1, "burst": 5}`)
	take(t, inst, `{"key": "a", "tokens": 5}`)
	c.advance(time.Second)
	take(t, inst, `{"key": "b", "tokens": 2}`)
	saved := mustSnapshot(t, inst)
	want := fmt.Sprintf(`{"buckets":{"a":{"tokens":0,"at":%q},"b":{"tokens":3,"at":%q}}}`,
		c.now().Add(-time.Second).Format(time.RFC3339Nano), c.now().Format(time.RFC3339Nano))
	if string(saved) != want {
		t.Fatalf("snapshot:\n%s\nwant\n%s", saved, want)
	}
	if again := mustSnapshot(t, inst); string(again) != string(saved) {
		t.Fatal("an idle limiter's snapshot changed")
	}

	restored := newLimiter(t, c, `{"rate": 1, "burst": 5}`)
	s, _ := plugin.As[plugin.Stateful](restored)
	if err := s.Restore(saved); err != nil {
		t.Fatal(err)
	}
	if a, b := tokens(t, restored, "a"), tokens(t, restored, "b"); a != 1 || b != 3 {
		t.Fatalf("restored: a=%v b=%v, want 1 and 3", a, b)
	}

	// A smaller burst caps; a time in the future is now; too many buckets keep the newest.
	future := c.now().Add(time.Hour).Format(time.RFC3339Nano)
	small := newLimiter(t, c, `{"rate": 1, "burst": 2, "maxKeys": 2}`)
	s, _ = plugin.As[plugin.Stateful](small)
	state := fmt.Sprintf(`{"buckets":{"old":{"tokens":0,"at":%q},"x":{"tokens":4,"at":%q},"f":{"tokens":0,"at":%q}}}`,
		c.now().Add(-time.Minute).Format(time.RFC3339Nano), c.now().Format(time.RFC3339Nano), future)
	if err := s.Restore(json.RawMessage(state)); err != nil {
		t.Fatal(err)
	}
	d := snapshotOf(t, small)
	if len(d.Buckets) != 2 || d.Buckets["x"].Tokens != 2 || !d.Buckets["f"].At.Equal(c.now()) {
		t.Fatalf("restored with burst 2, maxKeys 2: %+v", d)
	}
	c.advance(time.Second)
	if f := tokens(t, small, "f"); f != 1 {
		t.Fatalf("a bucket saved in the future refilled to %v after 1 s, want 1", f)
	}

	for _, bad := range []string{`[]`, `{"buckets":{"":{"tokens":1,"at":"2026-01-01T00:00:00Z"}}}`, `{"buckets":{"k":{"tokens":-1,"at":"2026-01-01T00:00:00Z"}}}`, `{"buckets":{"k":{"tokens":1}}}`} {
		if err := s.Restore(json.RawMessage(bad)); err == nil {
			t.Errorf("Restore(%s) succeeded", bad)
		}
	}
}

func TestConcurrentTakes(t *testing.T) {
	c := newClock()
	inst := newLimiter(t, c, `{"rate": 10, "burst": 50}`)
	run := func() int64 {
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 40 {
					if take(t, inst, `{"key": "hot"}`).Allowed {
						allowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		return allowed.Load()
	}
	if n := run(); n != 50 {
		t.Fatalf("frozen clock: %d takes allowed, want exactly the burst, 50", n)
	}
	c.advance(1500 * time.Millisecond)
	if n := run(); n != 15 {
		t.Fatalf("after 1.5 s at 10/s: %d takes allowed, want 15", n)
	}
}

func TestOptionsSchema(t *testing.T) {
	f := ratelimit.Factory{}
	if n := len(f.OptionsSchema()); n >= 2048 {
		t.Errorf("the options schema is %d bytes, want under 2 KiB", n)
	}
	var doc struct {
		Properties map[string]map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(f.OptionsSchema(), &doc); err != nil {
		t.Fatal(err)
	}
	for name, p := range doc.Properties {
		if d, _ := p["description"].(string); d == "" {
			t.Errorf("option %s has no description", name)
		}
	}
	set, err := typeschema.Compile(typeschema.Declarations(f))
	if err != nil {
		t.Fatal(err)
	}
	path := field.NewPath("spec", "options")
	for _, tc := range []struct {
		options string
		want    []string
	}{
		{options: `{"rate": 0.5}`},
		{options: `{"rate": 100, "burst": 1, "maxKeys": 1000000}`},
		{options: `{}`, want: []string{"spec.options.rate: Required"}},
		{options: `{"rate": 0}`, want: []string{"spec.options.rate"}},
		{options: `{"rate": "fast"}`, want: []string{"spec.options.rate"}},
		{options: `{"rate": 1, "burst": 0}`, want: []string{"spec.options.burst"}},
		{options: `{"rate": 1, "burst": 1.5}`, want: []string{"spec.options.burst"}},
		{options: `{"rate": 1, "maxKeys": 1000001}`, want: []string{"spec.options.maxKeys"}},
		{options: `{"rate": 1, "limit": 3}`, want: []string{"spec.options.limit", `supported values: "burst", "maxKeys", "rate"`}},
	} {
		var options map[string]any
		dec := json.NewDecoder(strings.NewReader(tc.options))
		dec.UseNumber()
		if err := dec.Decode(&options); err != nil {
			t.Fatal(err)
		}
		_, errs := set.ValidateOptions(ratelimit.Type, options, path)
		if len(tc.want) == 0 {
			if len(errs) > 0 {
				t.Errorf("%s: %v", tc.options, errs)
			}
			// What the schema accepts, New accepts.
			if _, err := f.New(plugin.Spec{Options: json.RawMessage(tc.options)}, nil); err != nil {
				t.Errorf("New(%s): %v", tc.options, err)
			}
			continue
		}
		msg := errs.ToAggregate().Error()
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q does not name %q", tc.options, msg, w)
			}
		}
		// New refuses it too, naming the option.
		if _, err := f.New(plugin.Spec{Options: json.RawMessage(tc.options)}, nil); err == nil {
			t.Errorf("New(%s) succeeded", tc.options)
		}
	}
}

func TestNewNamesTheOption(t *testing.T) {
	for _, tc := range []struct{ options, want string }{
		{`{}`, "options.rate: required"},
		{`{"rate": -1}`, "options.rate: -1"},
		{`{"rate": 1, "burst": 0}`, "options.burst: 0"},
		{`{"rate": 1, "maxKeys": 0}`, "options.maxKeys: 0"},
		{`{"rate": 1, "burst": "x"}`, "burst"},
	} {
		_, err := ratelimit.Factory{}.New(plugin.Spec{Options: json.RawMessage(tc.options)}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%s): %v, want %q", tc.options, err, tc.want)
		}
	}
}

func BenchmarkTake(b *testing.B) {
	inst, err := ratelimit.Factory{}.New(plugin.Spec{Options: json.RawMessage(`{"rate": 1e9, "burst": 1000000000}`)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"key": "user-1"}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := inst.Execute(ctx, plugin.Request{Operation: "take", Body: body}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTakeParallel(b *testing.B) {
	inst, err := ratelimit.Factory{}.New(plugin.Spec{Options: json.RawMessage(`{"rate": 1e9, "burst": 1000000000}`)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, 1000)
	for i := range bodies {
		bodies[i] = []byte(fmt.Sprintf(`{"key": "user-%d"}`, i))
	}
	ctx := context.Background()
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(7919))
		for pb.Next() {
			i++
			if _, err := inst.Execute(ctx, plugin.Request{Operation: "take", Body: bodies[i%len(bodies)]}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
