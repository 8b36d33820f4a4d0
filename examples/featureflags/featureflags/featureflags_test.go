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

package featureflags_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/hotreload/plugin-operator/examples/featureflags/featureflags"
	"github.com/hotreload/plugin-operator/pkg/plugin"
)

func spec(options string) plugin.Spec {
	return plugin.Spec{Name: "flags", Type: featureflags.Type, Options: json.RawMessage(options)}
}

func newFlags(t *testing.T, options string) plugin.Instance {
	t.Helper()
	inst, err := featureflags.Factory{}.New(spec(options), slog.Default())
	if err != nil {
		t.Fatalf("New(%s): %v", options, err)
	}
	return inst
}

func evaluate(t *testing.T, inst plugin.Instance, query string) featureflags.Evaluation {
	t.Helper()
	resp, err := inst.Execute(context.Background(), plugin.Request{Operation: "evaluate", RawQuery: query})
	if err != nil {
		t.Fatalf("evaluate?%s: %v", query, err)
	}
	var ev featureflags.Evaluation
	if err := json.Unmarshal(resp.Body, &ev); err != nil {
		t.Fatalf("evaluate?%s answered %s: %v", query, resp.Body, err)
	}
	return ev
}

func list(t *testing.T, inst plugin.Instance) featureflags.List {
	t.Helper()
	resp, err := inst.Execute(context.Background(), plugin.Request{Operation: "list"})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var l featureflags.List
	if err := json.Unmarshal(resp.Body, &l); err != nil {
		t.Fatalf("list answered %s: %v", resp.Body, err)
	}
	return l
}

// usersIn returns a user in, and a user outside, flag's rollout of percent.
func usersIn(t *testing.T, flag string, percent int) (in, out string) {
	t.Helper()
	for i := 0; in == "" || out == ""; i++ {
		u := fmt.Sprintf("user-%d", i)
		if featureflags.Bucket(flag, u) < percent {
			in = u
		} else {
			out = u
		}
	}
	return in, out
}

const options = `{
  "flags": {
    "new-checkout": {"enabled": true, "percent": 25},
    "dark-mode": {"enabled": true},
    "beta.search": {"enabled": false, "percent": 100},
    "nobody": {"enabled": true, "percent": 0}
  },
  "default": true
}`

func TestEvaluate(t *testing.T) {
	inst := newFlags(t, options)
	in, out := usersIn(t, "new-checkout", 25)
	for _, tc := range []struct {
		query   string
		enabled bool
		reason  string
	}{
		{"flag=dark-mode", true, featureflags.ReasonEnabled},
		{"flag=dark-mode&user=alice", true, featureflags.ReasonEnabled},
		{"flag=beta.search&user=alice", false, featureflags.ReasonDisabled},
		{"flag=new-checkout&user=" + in, true, featureflags.ReasonInRollout},
		{"flag=new-checkout&user=" + out, false, featureflags.ReasonOutRollout},
		{"flag=nobody&user=" + in, false, featureflags.ReasonOutRollout},
		{"flag=nobody", false, featureflags.ReasonOutRollout}, // percent 0 needs no user
		// An unknown flag is the default (true here), not an error.
		{"flag=not-there&user=alice", true, featureflags.ReasonUnknownFlag},
	} {
		ev := evaluate(t, inst, tc.query)
		if ev.Enabled != tc.enabled || ev.Reason != tc.reason {
			t.Errorf("evaluate?%s = %+v, want enabled %v, reason %q", tc.query, ev, tc.enabled, tc.reason)
		}
	}
	// The same user always gets the same answer.
	for range 3 {
		if ev := evaluate(t, inst, "flag=new-checkout&user="+in); !ev.Enabled {
			t.Fatalf("user %s left the rollout: %+v", in, ev)
		}
	}
	l := list(t, inst)
	want := map[string]featureflags.FlagStatus{
		"new-checkout": {Enabled: true, Percent: 25, Evaluations: 5},
		"dark-mode":    {Enabled: true, Percent: 100, Evaluations: 2},
		"beta.search":  {Enabled: false, Percent: 100, Evaluations: 1},
		"nobody":       {Enabled: true, Percent: 0, Evaluations: 2},
	}
	if fmt.Sprint(l.Flags) != fmt.Sprint(want) || !l.Default || l.UnknownEvaluations != 1 {
		t.Errorf("list = %+v, want flags %v, default true, 1 unknown evaluation", l, want)
	}
}

// TestRollout checks the bucketing: about the percent of users is in, and raising the
// percent only adds users (nobody who had the flag loses it).
func TestRollout(t *testing.T) {
	const users = 10000
	prev := map[string]bool{}
	for _, p := range []int{0, 10, 25, 50, 100} {
		n := 0
		for i := range users {
			u := fmt.Sprintf("u%d", i)
			in := featureflags.Bucket("new-checkout", u) < p
			if prev[u] && !in {
				t.Fatalf("user %s left the rollout when it grew to %d%%", u, p)
			}
			prev[u] = in
			if in {
				n++
			}
		}
		// The hash is fixed, so the share is too; the bound only says it is near p.
		if got := 100 * n / users; got < p-3 || got > p+3 {
			t.Errorf("rollout %d%%: %d%% of %d users are in", p, got, users)
		}
	}
}

func TestBadRequests(t *testing.T) {
	inst := newFlags(t, options)
	for _, tc := range []struct {
		op, query string
		want      string // in the error
	}{
		{"evaluate", "", `query parameter "flag" is required`},
		{"evaluate", "user=alice", `query parameter "flag" is required`},
		{"evaluate", "flag=Bad_Name", `query parameter "flag": "Bad_Name" is not a flag name`},
		{"evaluate", "flag=dark-mode&color=red", `query parameter "color" is not known`},
		{"evaluate", "flag=dark-mode&flag=new-checkout", `query parameter "flag" is given 2 times`},
		{"evaluate", "flag=new-checkout", `query parameter "user" is required: flag "new-checkout" is on for 25% of users`},
		{"evaluate", "flag=%zz", "query: invalid URL escape"},
		{"list", "all=1", `query parameter "all" is not known`},
		{"toggle", "", `unknown operation "toggle"`},
	} {
		_, err := inst.Execute(context.Background(), plugin.Request{Operation: tc.op, RawQuery: tc.query})
		if plugin.StatusOf(err) != http.StatusBadRequest || !strings.Contains(fmt.Sprint(err), tc.want) {
			t.Errorf("%s?%s: %d %v, want 400 with %q", tc.op, tc.query, plugin.StatusOf(err), err, tc.want)
		}
	}
	// Refused requests count nothing.
	for name, st := range list(t, inst).Flags {
		if st.Evaluations != 0 {
			t.Errorf("flag %s counted %d evaluations of refused requests", name, st.Evaluations)
		}
	}
}

func TestOptionsSchema(t *testing.T) {
	raw := featureflags.Factory{}.OptionsSchema()
	if len(raw) > plugin.MaxSchemaBytes {
		t.Errorf("the options schema is %d bytes, over plugin.MaxSchemaBytes (%d)", len(raw), plugin.MaxSchemaBytes)
	}
	// Compiled as the host does: draft 2020-12, no remote references.
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("featureflags.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("featureflags.json")
	if err != nil {
		t.Fatalf("the options schema does not compile: %v", err)
	}
	for _, tc := range []struct {
		options string
		want    string // "" valid; else in the error
	}{
		{`{}`, ""},
		{options, ""},
		{`{"flags": {}, "default": false}`, ""},
		{`{"flags": {"a": {"enabled": true, "percent": 0}, "b": {"enabled": false, "percent": 100}}}`, ""},
		{`{"flags": {"a": {"enabled": true, "percent": 101}}}`, "/flags/a/percent"},
		{`{"flags": {"a": {"enabled": true, "percent": -1}}}`, "/flags/a/percent"},
		{`{"flags": {"a": {"enabled": true, "percent": 2.5}}}`, "/flags/a/percent"},
		{`{"flags": {"a": {"percent": 5}}}`, "enabled"},
		{`{"flags": {"a": {"enabled": "yes"}}}`, "/flags/a/enabled"},
		{`{"flags": {"a": {"enabled": true, "colour": "red"}}}`, "colour"},
		{`{"flags": {"Bad_Name": {"enabled": true}}}`, "Bad_Name"},
		{`{"flags": {"-x": {"enabled": true}}}`, "-x"},
		{`{"flags": {"a": {"enabled": true}}, "fallback": true}`, "fallback"},
		{`{"default": "no"}`, "/default"},
		{`{"flags": []}`, "/flags"},
	} {
		var v any
		if err := json.Unmarshal([]byte(tc.options), &v); err != nil {
			t.Fatal(err)
		}
		err := sch.Validate(v)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.options, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s: accepted", tc.options)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: the error does not name %s: %v", tc.options, tc.want, err)
		}
		// The host calls New only with options the schema accepts: New takes them all.
		if _, newErr := (featureflags.Factory{}).New(spec(tc.options), slog.Default()); err == nil && newErr != nil {
			t.Errorf("%s: valid by the schema, refused by New: %v", tc.options, newErr)
		}
	}
}

func TestReconfigureKeepsCountsAndChangesFlags(t *testing.T) {
	old := newFlags(t, `{"flags": {"new-checkout": {"enabled": true}}}`)
	for range 3 {
		evaluate(t, old, "flag=new-checkout")
	}
	r, ok := plugin.As[plugin.Reconfigurer](old)
	if !ok {
		t.Fatal("not a plugin.Reconfigurer")
	}
	next, err := r.Reconfigure(spec(`{"flags": {"new-checkout": {"enabled": false}, "dark-mode": {"enabled": true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev := evaluate(t, next, "flag=new-checkout"); ev.Enabled || ev.Reason != featureflags.ReasonDisabled {
		t.Errorf("after the reload: %+v, want disabled", ev)
	}
	// The old instance keeps its flags (requests in flight finish on them) …
	if ev := evaluate(t, old, "flag=new-checkout"); !ev.Enabled {
		t.Errorf("Reconfigure changed the old instance: %+v", ev)
	}
	// … and both count into the same counts: 3 + 1 + 1.
	if got := list(t, next).Flags["new-checkout"].Evaluations; got != 5 {
		t.Errorf("evaluations after the reload: %d, want 5", got)
	}
	if _, ok := list(t, next).Flags["dark-mode"]; !ok {
		t.Error("the new flag is not listed")
	}
	// A refused reconfigure leaves everything as it was.
	if _, err := r.Reconfigure(spec(`{"flags": {"new-checkout": {"enabled": true, "percent": 200}}}`)); err == nil || !strings.Contains(err.Error(), "options.flags.new-checkout.percent") {
		t.Errorf("percent 200: %v, want an error naming options.flags.new-checkout.percent", err)
	}
	if ev := evaluate(t, next, "flag=new-checkout"); ev.Enabled {
		t.Errorf("a refused reload changed the flags: %+v", ev)
	}
}

func TestSnapshotRestore(t *testing.T) {
	a := newFlags(t, options)
	evaluate(t, a, "flag=dark-mode")
	evaluate(t, a, "flag=dark-mode")
	evaluate(t, a, "flag=gone")
	st, _ := plugin.As[plugin.Stateful](a)
	snap, err := st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	b := newFlags(t, options)
	bs, _ := plugin.As[plugin.Stateful](b)
	if err := bs.Restore(snap); err != nil {
		t.Fatal(err)
	}
	l := list(t, b)
	if l.Flags["dark-mode"].Evaluations != 2 || l.UnknownEvaluations != 1 {
		t.Errorf("restored from %s: %+v", snap, l)
	}
	if err := bs.Restore(json.RawMessage(`{"evaluations": 3}`)); err == nil {
		t.Error("a malformed snapshot was restored")
	}
}

// TestConcurrentEvaluationsAcrossReloads runs evaluations while the flags are reconfigured
// (with -race): every evaluation is counted once.
func TestConcurrentEvaluationsAcrossReloads(t *testing.T) {
	inst := newFlags(t, options)
	var cur sync.Mutex
	const workers, each = 4, 200
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				cur.Lock()
				in := inst
				cur.Unlock()
				if _, err := in.Execute(context.Background(), plugin.Request{Operation: "evaluate", RawQuery: "flag=dark-mode"}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range 50 {
		cur.Lock()
		r, _ := plugin.As[plugin.Reconfigurer](inst)
		next, err := r.Reconfigure(spec(fmt.Sprintf(`{"flags": {"dark-mode": {"enabled": %v}}}`, i%2 == 0)))
		if err != nil {
			cur.Unlock()
			t.Fatal(err)
		}
		inst = next
		cur.Unlock()
	}
	wg.Wait()
	if got := list(t, inst).Flags["dark-mode"].Evaluations; got != workers*each {
		t.Errorf("%d evaluations counted, want %d", got, workers*each)
	}
}
