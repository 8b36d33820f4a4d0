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
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hotreload/plugin-operator/pkg/plugin"
	"github.com/hotreload/plugin-operator/pkg/plugins/counter"
)

// kvFactory is a plugin type unlike the counter, written with plugin.Typed and Adapt: a
// string map with a GET that reads the query, a POST that takes a JSON object, an
// operation that answers each typed error, and neither Reconfigurer nor Stateful. The host
// has no special case for it.
type kvFactory struct{}

func (kvFactory) Type() string { return "kv" }
func (kvFactory) Operations() []plugin.Operation {
	return []plugin.Operation{
		{Name: "lookup", Method: http.MethodGet},
		{Name: "put", Method: http.MethodPost, Mutating: true},
		{Name: "fail", Method: http.MethodPost},
	}
}
func (kvFactory) OptionsSchema() json.RawMessage {
	return json.RawMessage(`{"type":"object","properties":{"prefix":{"type":"string","maxLength":8}},"additionalProperties":false}`)
}
func (kvFactory) New(spec plugin.Spec, _ *slog.Logger) (plugin.Instance, error) {
	var o struct {
		Prefix string `json:"prefix"`
	}
	if err := plugin.DecodeOptions(spec, &o); err != nil {
		return nil, err
	}
	return plugin.Adapt[kvRequest, kvResponse](&kv{prefix: o.Prefix, m: map[string]string{}}), nil
}

type kvRequest struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Fail  string `json:"fail"`
}

type kvResponse struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type kv struct {
	prefix string
	mu     sync.Mutex
	m      map[string]string
}

func (k *kv) Execute(_ context.Context, op string, req kvRequest) (kvResponse, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch op {
	case "put":
		k.m[req.Key] = k.prefix + req.Value
		return kvResponse{Key: req.Key, Value: k.m[req.Key]}, nil
	case "fail":
		for _, e := range []error{plugin.ErrInvalidRequest, plugin.ErrNotFound, plugin.ErrConflict, plugin.ErrUnprocessable, plugin.ErrTooManyRequests, plugin.ErrUnavailable} {
			if e.Error() == req.Fail {
				return kvResponse{}, fmt.Errorf("%w: as asked", e)
			}
		}
		return kvResponse{}, fmt.Errorf("an error of no kind")
	}
	return kvResponse{}, fmt.Errorf("%w: unknown operation %s", plugin.ErrInvalidRequest, op)
}

// lookup reads key through the lookup operation's query string.
func lookup(t *testing.T, base, key string) reply {
	t.Helper()
	return do(t, "GET", base+"/plugins/store/lookup?key="+url.QueryEscape(key), "")
}

func kvConfig(prefix string) string {
	return `{"plugins":[{"name":"store","type":"kv","options":{"prefix":"` + prefix + `"}},{"name":"c","type":"counter"}]}`
}

func TestAnyPluginTypeThroughTheHost(t *testing.T) {
	h := New(Options{Registry: MustRegistry(counter.Factory{}, queryKVFactory{})})
	if _, err := h.Apply([]byte(kvConfig("a-"))); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)

	if r := do(t, "POST", srv.URL+"/plugins/store/put", `{"key":"x","value":"1"}`); r.Status != 200 || r.Body != `{"key":"x","value":"a-1"}` {
		t.Fatalf("put: %d %s", r.Status, r.Body)
	}
	if r := lookup(t, srv.URL, "x"); r.Status != 200 || r.Body != `{"key":"x","value":"a-1"}` {
		t.Fatalf("lookup: %d %s", r.Status, r.Body)
	}
	if r := lookup(t, srv.URL, "nope"); r.Status != 404 || !strings.Contains(r.Body, `no key \"nope\"`) {
		t.Fatalf("lookup of a missing key: %d %s", r.Status, r.Body)
	}
	for kind, status := range map[string]int{
		plugin.ErrInvalidRequest.Error(): 400, plugin.ErrNotFound.Error(): 404, plugin.ErrConflict.Error(): 409,
		plugin.ErrUnprocessable.Error(): 422, plugin.ErrTooManyRequests.Error(): 429, plugin.ErrUnavailable.Error(): 503, "other": 500,
	} {
		r := do(t, "POST", srv.URL+"/plugins/store/fail", `{"fail":"`+kind+`"}`)
		if r.Status != status || r.JSON["status"] == nil || !strings.Contains(r.Body, "error") {
			t.Errorf("fail %q: %d %s, want %d with an error body", kind, r.Status, r.Body, status)
		}
	}
	// The adapter's strict decoding, and the host's checks before any type code runs.
	for _, tc := range []struct {
		method, op, body, ctype string
		status                  int
		want                    string
	}{
		{"POST", "put", `{"key":"x","bogus":1}`, "application/json", 400, `request body: unknown field "bogus"`},
		{"POST", "put", `{"key":5}`, "application/json", 400, "key: must be a string"},
		{"POST", "put", `{"key":"x"} {}`, "application/json", 400, "unexpected data after the JSON value"},
		{"POST", "put", `{"key":"x"}`, "text/plain", 415, "Content-Type"},
		{"POST", "put", `{"value":"` + strings.Repeat("v", DefaultMaxBodyBytes) + `"}`, "application/json", 413, "over the 4096-byte limit"},
		{"GET", "put", "", "", 405, "use POST"},
		{"POST", "lookup", "", "", 405, "use GET"},
		{"POST", "nope", "", "", 404, "operations: lookup (GET), put (POST), fail (POST)"},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+"/plugins/store/"+tc.op, strings.NewReader(tc.body))
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(body.Error, tc.want) {
			t.Errorf("%s %s %.40q: %d %q, want %d containing %q", tc.method, tc.op, tc.body, resp.StatusCode, body.Error, tc.status, tc.want)
		}
	}
	if r := lookup(t, srv.URL, "x"); r.Body != `{"key":"x","value":"a-1"}` {
		t.Fatalf("refused requests changed the state: %s", r.Body)
	}

	// An option the schema refuses: the whole config is refused with the option named.
	if _, err := h.Apply([]byte(kvConfig("much-too-long"))); err == nil || !strings.Contains(err.Error(), "plugins[0].options.prefix") {
		t.Fatalf("a prefix over maxLength: %v", err)
	}
	// A type with no Reconfigure gets a new instance for a changed entry (its state starts
	// over); the counter beside it is unchanged and keeps its instance.
	before, _ := h.Instance("c")
	if _, err := h.Apply([]byte(kvConfig("b-"))); err != nil {
		t.Fatal(err)
	}
	if r := lookup(t, srv.URL, "x"); r.Status != 404 {
		t.Fatalf("after a change of a type that cannot reconfigure: %d %s, want a new, empty instance", r.Status, r.Body)
	}
	if after, _ := h.Instance("c"); after != before {
		t.Fatal("an unchanged counter got a new instance")
	}
}

// queryKVFactory is kv whose lookup reads the query string (the Typed adapter passes only
// the body): a hand-written Instance in front of an adapted one.
type queryKVFactory struct{ kvFactory }

func (f queryKVFactory) New(spec plugin.Spec, log *slog.Logger) (plugin.Instance, error) {
	inst, err := f.kvFactory.New(spec, log)
	if err != nil {
		return nil, err
	}
	return queryKV{inst}, nil
}

type queryKV struct{ plugin.Instance }

func (q queryKV) Unwrap() any { return q.Instance }

func (q queryKV) Execute(ctx context.Context, req plugin.Request) (plugin.Response, error) {
	if req.Operation != "lookup" {
		return q.Instance.Execute(ctx, req)
	}
	vals, err := url.ParseQuery(req.RawQuery)
	if err != nil || vals.Get("key") == "" {
		return plugin.Response{}, fmt.Errorf("%w: the query needs key=", plugin.ErrInvalidRequest)
	}
	k, _ := plugin.As[*kv](q.Instance)
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[vals.Get("key")]
	if !ok {
		return plugin.Response{}, fmt.Errorf("%w: no key %q", plugin.ErrNotFound, vals.Get("key"))
	}
	b, _ := json.Marshal(kvResponse{Key: vals.Get("key"), Value: v})
	return plugin.Response{Body: b}, nil
}

// Only operations declared Mutating mark the state for a snapshot; a type that is not
// Stateful is left out of snapshots without an error.
func TestOnlyMutatingOperationsMarkState(t *testing.T) {
	h := New(Options{Registry: MustRegistry(counter.Factory{}, queryKVFactory{})})
	if _, err := h.Apply([]byte(kvConfig("a-"))); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)
	store, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	marked := func() bool {
		select {
		case <-h.StateChanged():
			return true
		default:
			return false
		}
	}
	if err := h.Snapshot(store); err != nil {
		t.Fatal(err)
	}
	_ = marked() // the mark left by New and Apply
	for _, r := range []reply{lookup(t, srv.URL, "x"), do(t, "GET", srv.URL+"/plugins/c/get", ""), do(t, "POST", srv.URL+"/plugins/store/fail", `{"fail":"x"}`)} {
		if r.Status == 0 {
			t.Fatal("no answer")
		}
	}
	if marked() {
		t.Fatal("a non-mutating operation marked the state changed")
	}
	do(t, "POST", srv.URL+"/plugins/store/put", `{"key":"x","value":"1"}`)
	if !marked() {
		t.Fatal("a mutating operation did not mark the state changed")
	}
	do(t, "POST", srv.URL+"/plugins/c/increment", `{"value":3}`)
	if err := h.Snapshot(store); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(store.Dir(), StateFileName))
	if err != nil {
		t.Fatal(err)
	}
	var saved stateFile
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	var c struct{ Value int64 }
	if err := json.Unmarshal(saved.Plugins["c"].State, &c); err != nil {
		t.Fatal(err)
	}
	if _, ok := saved.Plugins["store"]; ok || len(saved.Plugins) != 1 || c.Value != 3 {
		t.Fatalf("snapshot %s: want the counter only", b)
	}
}

// The host advertises the types it carries, the same on /status and /types.
func TestTypesAreAdvertised(t *testing.T) {
	h := New(Options{Registry: MustRegistry(counter.Factory{}, queryKVFactory{})})
	srv := serve(t, h) // no config applied: types do not depend on it
	st := do(t, "GET", srv.URL+"/status", "")
	ty := do(t, "GET", srv.URL+"/types", "")
	var status Status
	var types struct {
		Version int
		Types   []json.RawMessage
	}
	if err := json.Unmarshal([]byte(st.Body), &status); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(ty.Body), &types); err != nil {
		t.Fatal(err)
	}
	if status.Version != 1 || types.Version != 1 || len(status.Types) != 2 || len(types.Types) != 2 {
		t.Fatalf("status %s\ntypes %s", st.Body, ty.Body)
	}
	if status.Types[0].Name != "counter" || status.Types[1].Name != "kv" || len(status.Types[1].Operations) != 3 || !status.Types[1].Operations[1].Mutating {
		t.Fatalf("types %+v", status.Types)
	}
	if !json.Valid(status.Types[1].OptionsSchema) || !strings.Contains(string(status.Types[1].OptionsSchema), "prefix") {
		t.Fatalf("schema %s", status.Types[1].OptionsSchema)
	}
	// On their own listener, /status and /types are not served to the plugins' clients.
	api := httptest.NewServer(h.APIHandler())
	t.Cleanup(api.Close)
	if r := do(t, "GET", api.URL+"/types", ""); r.Status != 404 {
		t.Fatalf("/types on the API listener: %d", r.Status)
	}
}

// A type whose declaration is invalid, or two types of one name, are refused before a host
// starts, naming the type.
func TestBadTypeDeclarationsAreRefused(t *testing.T) {
	if _, err := NewRegistry(counter.Factory{}, counter.Factory{}); err == nil || !strings.Contains(err.Error(), `"counter" declared twice`) {
		t.Errorf("a type twice: %v", err)
	}
	if _, err := NewRegistry(badSchemaFactory{}); err == nil || !strings.Contains(err.Error(), `plugin type "kv": options schema`) {
		t.Errorf("a bad schema: %v", err)
	}
}

type badSchemaFactory struct{ kvFactory }

func (badSchemaFactory) OptionsSchema() json.RawMessage { return json.RawMessage(`{"type":"nope"}`) }
