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
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// The seed README's walkthrough, against the real handler.
func TestSeedWalkthrough(t *testing.T) {
	h := newTestHost(t, seedConfig(1))
	srv := serve(t, h)
	inc := srv.URL + "/plugins/counter-1/increment"
	if v := do(t, "POST", inc, `{"value": 5}`).value(t); v != 5 {
		t.Fatalf("increment 5 = %d", v)
	}
	if _, err := h.Apply([]byte(seedConfig(10))); err != nil {
		t.Fatal(err)
	}
	if v := do(t, "POST", inc, `{"value": 1}`).value(t); v != 15 {
		t.Fatalf("after reload, increment 1 = %d, want 15", v)
	}
	if v := do(t, "GET", srv.URL+"/plugins/counter-1/get", "").value(t); v != 15 {
		t.Fatalf("get = %d", v)
	}
	r := do(t, "POST", srv.URL+"/plugins/counter-1/reset", "")
	if r.value(t) != 0 || do(t, "GET", srv.URL+"/plugins/counter-1/get", "").value(t) != 0 {
		t.Fatal("reset did not zero the counter")
	}
	if r.JSON["plugin"] != "counter-1" || r.JSON["operation"] != "reset" {
		t.Errorf("response names plugin and operation: %s", r.Body)
	}
}

func TestValueDefaultsToOne(t *testing.T) {
	srv := serve(t, newTestHost(t, seedConfig(2)))
	inc := srv.URL + "/plugins/counter-1/increment"
	if v := do(t, "POST", inc, "").value(t); v != 2 {
		t.Fatalf("empty body: %d", v)
	}
	if v := do(t, "POST", inc, "{}").value(t); v != 4 {
		t.Fatalf("{}: %d", v)
	}
}

func TestBadRequestsGetPreciseErrors(t *testing.T) {
	h := newTestHost(t, seedConfig(1))
	srv := serve(t, h)
	inc := srv.URL + "/plugins/counter-1/increment"
	_ = do(t, "POST", inc, `{"value": 7}`).value(t)
	big := `{"value": 1` + strings.Repeat(" ", DefaultMaxBodyBytes) + `}`

	tests := []struct {
		name, method, url, body string
		hdr                     []string
		status                  int
		msg                     string
	}{
		{"unknown plugin", "POST", srv.URL + "/plugins/nope/increment", `{"value":1}`, nil, 404, `plugin "nope" not found`},
		{"unknown operation", "POST", srv.URL + "/plugins/counter-1/double", "", nil, 404, `has no operation "double"; operations: increment (POST), get (GET), reset (POST)`},
		{"wrong method on increment", "GET", inc, "", nil, 405, "method not allowed, use POST"},
		{"wrong method on get", "DELETE", srv.URL + "/plugins/counter-1/get", "", nil, 405, "use GET"},
		{"malformed JSON", "POST", inc, `{"value": 1`, nil, 400, "malformed JSON body"},
		{"not an object", "POST", inc, `[1]`, nil, 400, "must be a JSON object"},
		{"float value", "POST", inc, `{"value": 1.5}`, nil, 400, "value must be an integer, got 1.5"},
		{"string value", "POST", inc, `{"value": "5"}`, nil, 400, `value must be an integer, got "5"`},
		{"unknown field", "POST", inc, `{"valeu": 5}`, nil, 400, `unknown field "valeu"`},
		{"trailing data", "POST", inc, `{"value": 5} {}`, nil, 400, "unexpected data after the object"},
		{"int64 overflow in body", "POST", inc, `{"value": 9223372036854775808}`, nil, 400, "out of the int64 range"},
		{"counter overflow", "POST", inc, `{"value": 9223372036854775807}`, nil, 409, "would overflow int64"},
		{"oversized body", "POST", inc, big, nil, 413, "over the 4096-byte limit"},
		{"wrong content type", "POST", inc, `{"value": 1}`, []string{"Content-Type", "text/plain"}, 415, "send application/json"},
		{"unknown endpoint", "GET", srv.URL + "/nothing", "", nil, 404, "no such endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, tt.url, tt.body, tt.hdr...)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			if msg, _ := r.JSON["error"].(string); !strings.Contains(msg, tt.msg) {
				t.Errorf("error %q does not contain %q", msg, tt.msg)
			}
			if tt.status == 405 && r.Header.Get("Allow") == "" {
				t.Error("405 without Allow header")
			}
		})
	}
	// Nothing counted was lost by any of the refused requests.
	if v := do(t, "GET", srv.URL+"/plugins/counter-1/get", "").value(t); v != 7 {
		t.Fatalf("counter is %d after refused requests, want 7", v)
	}
}

func TestDisabledPluginAnswers503AndKeepsState(t *testing.T) {
	h := newTestHost(t, seedConfig(1))
	srv := serve(t, h)
	_ = do(t, "POST", srv.URL+"/plugins/counter-1/increment", `{"value":3}`).value(t)
	disabled := strings.Replace(seedConfig(1), `"enabled":true`, `"enabled":false`, 1)
	if _, err := h.Apply([]byte(disabled)); err != nil {
		t.Fatal(err)
	}
	r := do(t, "GET", srv.URL+"/plugins/counter-1/get", "")
	if r.Status != 503 || !strings.Contains(r.JSON["error"].(string), "disabled in the configuration") {
		t.Fatalf("disabled: %d %s", r.Status, r.Body)
	}
	if _, err := h.Apply([]byte(seedConfig(1))); err != nil {
		t.Fatal(err)
	}
	if v := do(t, "GET", srv.URL+"/plugins/counter-1/get", "").value(t); v != 3 {
		t.Fatalf("re-enabled counter = %d, want 3", v)
	}
}

func TestNoConfigYetIs503(t *testing.T) {
	srv := serve(t, newTestHost(t, ""))
	if r := do(t, "GET", srv.URL+"/plugins/counter-1/get", ""); r.Status != 503 {
		t.Fatalf("status %d", r.Status)
	}
	if r := do(t, "GET", srv.URL+"/readyz", ""); r.Status != 503 {
		t.Fatalf("readyz %d before any config", r.Status)
	}
	if r := do(t, "GET", srv.URL+"/healthz", ""); r.Status != 200 {
		t.Fatalf("healthz %d", r.Status)
	}
}

func TestAuthMethods(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := `{"plugins":[
 {"name":"k","type":"counter","auth":{"method":"api-key","api_key":"key-1"}},
 {"name":"h","type":"counter","auth":{"method":"api-key","api_key":"key-2","header":"x-custom-key"}},
 {"name":"b","type":"counter","auth":{"method":"bearer","token_file":"` + tokenFile + `"}},
 {"name":"u","type":"counter","auth":{"method":"basic","username":"ann","password":"pw"}}]}`
	srv := serve(t, newTestHost(t, cfg))
	get := func(name string, hdr ...string) reply {
		return do(t, "GET", srv.URL+"/plugins/"+name+"/get", "", hdr...)
	}

	tests := []struct {
		name, plugin string
		hdr          []string
		status       int
		challenge    string
	}{
		{"api-key missing", "k", nil, 401, `APIKey header="X-Api-Key"`},
		{"api-key wrong", "k", []string{"X-API-Key", "key-2"}, 401, "APIKey"},
		{"api-key right", "k", []string{"X-API-Key", "key-1"}, 200, ""},
		{"custom header right", "h", []string{"X-Custom-Key", "key-2"}, 200, ""},
		{"custom header in default header", "h", []string{"X-API-Key", "key-2"}, 401, `X-Custom-Key`},
		{"bearer from file right", "b", []string{"Authorization", "Bearer s3cret"}, 200, ""},
		{"bearer lower-case scheme", "b", []string{"Authorization", "bearer s3cret"}, 200, ""},
		{"bearer wrong", "b", []string{"Authorization", "Bearer s3cre"}, 401, `Bearer realm="pluginhost"`},
		{"basic right", "u", []string{"Authorization", "Basic YW5uOnB3"}, 200, ""},               // ann:pw
		{"basic wrong password", "u", []string{"Authorization", "Basic YW5uOnB4"}, 401, "Basic"}, // ann:px
		{"basic as bearer", "u", []string{"Authorization", "Bearer pw"}, 401, "Basic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(tt.plugin, tt.hdr...)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			if tt.challenge != "" && !strings.Contains(r.Header.Get("WWW-Authenticate"), tt.challenge) {
				t.Errorf("WWW-Authenticate %q, want %q", r.Header.Get("WWW-Authenticate"), tt.challenge)
			}
		})
	}
}

func TestRelativeCredentialFilesResolveFromTheConfigDir(t *testing.T) {
	root := testutil.ShortTempDir(t)
	for _, d := range []string{"config", "secrets"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "secrets", "c.token"), []byte("tok"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(root, "config", "config.json")
	if err := os.WriteFile(cfg, []byte(`{"plugins":[{"name":"c","type":"counter","auth":{"method":"bearer","token_file":"../secrets/c.token"}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newTestHost(t, "")
	src, err := NewConfigSource(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Load(); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)
	if r := do(t, "GET", srv.URL+"/plugins/c/get", "", "Authorization", "Bearer tok"); r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
}

func TestMissingCredentialFileRefusesConfig(t *testing.T) {
	h := newTestHost(t, seedConfig(1))
	_, err := h.Apply([]byte(`{"plugins":[{"name":"b","type":"counter","auth":{"method":"bearer","token_file":"/nonexistent/token"}}]}`))
	if err == nil || !strings.Contains(err.Error(), "plugins[0].auth: token_file") {
		t.Fatalf("err = %v", err)
	}
	if _, ok := h.Instance("counter-1"); !ok {
		t.Fatal("last good config was dropped")
	}
}

func TestMaxConnectionsBoundsInFlightRequests(t *testing.T) {
	cfg := `{"plugins":[{"name":"c","type":"counter","connection":{"max_connections":2,"max_idle_connections":1,"connection_timeout":"50ms"}}]}`
	h := newTestHost(t, cfg)
	srv := serve(t, h)
	// Hold both slots with requests whose bodies never finish.
	e := h.current.Load().entries["c"]
	e.slots <- struct{}{}
	e.slots <- struct{}{}
	start := time.Now()
	r := do(t, "GET", srv.URL+"/plugins/c/get", "")
	if r.Status != 503 || r.Header.Get("Retry-After") == "" || !strings.Contains(r.JSON["error"].(string), "max_connections (2)") {
		t.Fatalf("full: %d %v %s", r.Status, r.Header, r.Body)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("gave up after %s, before connection_timeout", waited)
	}
	<-e.slots
	if r := do(t, "GET", srv.URL+"/plugins/c/get", ""); r.Status != 200 {
		t.Fatalf("with a free slot: %d", r.Status)
	}
}

func TestRequestTimeoutBoundsSlowBodies(t *testing.T) {
	cfg := `{"plugins":[{"name":"c","type":"counter","connection":{"request_timeout":"100ms"}}]}`
	srv := serve(t, newTestHost(t, cfg))
	pr, pw := newSlowBody()
	defer func() { _ = pw.Close() }()
	req, _ := http.NewRequest("POST", srv.URL+"/plugins/c/increment", pr)
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = 20
	go func() { _, _ = pw.Write([]byte(`{"value"`)) }() // and then nothing
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408", resp.StatusCode)
	}
}

func TestKeepAliveFalseClosesConnections(t *testing.T) {
	cfg := `{"plugins":[{"name":"c","type":"counter","connection":{"keep_alive":false}},{"name":"d","type":"counter"}]}`
	srv := serve(t, newTestHost(t, cfg))
	closes := func(name string) bool {
		resp, err := http.Get(srv.URL + "/plugins/" + name + "/get")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return resp.Close // the client saw "Connection: close"
	}
	if !closes("c") {
		t.Fatal("keep_alive false did not close the connection")
	}
	if closes("d") {
		t.Fatal("keep_alive default closed the connection")
	}
}

func TestStatusAndMetrics(t *testing.T) {
	h := newTestHost(t, seedConfig(1))
	srv := serve(t, h)
	_ = do(t, "POST", srv.URL+"/plugins/counter-1/increment", `{"value":1}`).value(t)
	_ = do(t, "GET", srv.URL+"/plugins/nope/get", "")
	if _, err := h.Apply([]byte(`{"plugins":[`)); err == nil {
		t.Fatal("truncated config applied")
	}
	st := do(t, "GET", srv.URL+"/status", "")
	if st.Status != 200 || st.JSON["revision"] != h.Revision() || !strings.Contains(st.JSON["lastError"].(string), "unexpected end of input") {
		t.Fatalf("status: %s", st.Body)
	}
	if st.JSON["reloads"].(map[string]any)["refused"].(interface{ String() string }).String() != "1" {
		t.Errorf("refused count: %s", st.Body)
	}
	m := do(t, "GET", srv.URL+"/metrics", "")
	for _, want := range []string{
		`pluginhost_requests_total{code="200",operation="increment",plugin="counter-1"} 1`,
		`pluginhost_requests_total{code="404",operation="",plugin=""} 1`,
		`pluginhost_config_reloads_total{result="applied"} 1`,
		`pluginhost_config_reloads_total{result="refused"} 1`,
		`pluginhost_config_info{revision="` + h.Revision() + `"} 1`,
		`pluginhost_config_last_reload_successful 0`,
		`pluginhost_request_duration_seconds_count{operation="increment",plugin="counter-1"} 1`,
	} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// Concurrent increments through HTTP while the config changes: every acknowledged
// increment is counted with the increment in force when it was served.
func TestIncrementsDuringReloadsAreExact(t *testing.T) {
	h := newTestHost(t, seedConfig(1))
	srv := serve(t, h)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked int
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if r := do(t, "POST", srv.URL+"/plugins/counter-1/increment", `{"value":1}`); r.Status == 200 {
					mu.Lock()
					acked++
					mu.Unlock()
				} else {
					t.Errorf("non-200 during reload: %d %s", r.Status, r.Body)
					return
				}
			}
		})
	}
	for i := range 50 {
		// Alternate the increment between 1 and 1 written differently: values stay
		// comparable while the config bytes (and revision) change.
		cfg := seedConfig(1)
		if i%2 == 1 {
			cfg = strings.Replace(cfg, `"request_timeout":"30s"`, `"request_timeout":"31s"`, 1)
		}
		if _, err := h.Apply([]byte(cfg)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if got := do(t, "GET", srv.URL+"/plugins/counter-1/get", "").value(t); got != int64(acked) {
		t.Fatalf("counter %d, acknowledged %d", got, acked)
	}
}

// TestAuthBeforeNotFound: with a plugin that has auth, a client without credentials learns
// nothing from the plugins' API: an unknown plugin name, an unknown operation and a wrong
// method all answer 401 exactly as the operation itself does, so plugin names and types
// cannot be listed anonymously. With the right credentials the precise 404 and 405 come back.
func TestAuthBeforeNotFound(t *testing.T) {
	cfg := `{"plugins":[
 {"name":"secret-counter","type":"counter","auth":{"method":"api-key","api_key":"key-1"}},
 {"name":"other","type":"counter","auth":{"method":"api-key","api_key":"key-2"}}]}`
	srv := serve(t, newTestHost(t, cfg))
	// Answers without credentials, with the plugin's name in the path replaced by NAME: the
	// same for a plugin that exists and one that does not.
	anon := func(method, path string) string {
		t.Helper()
		r := do(t, method, srv.URL+path, "")
		name := strings.Split(strings.TrimPrefix(path, "/plugins/"), "/")[0]
		return fmt.Sprintf("%d %s %s", r.Status, r.Header.Get("WWW-Authenticate"), strings.ReplaceAll(r.Body, name, "NAME"))
	}
	want := anon("GET", "/plugins/secret-counter/get")
	if !strings.HasPrefix(want, "401 ") {
		t.Fatalf("an operation without credentials: %s, want 401", want)
	}
	for _, tc := range []struct{ method, path string }{
		{"GET", "/plugins/no-such-plugin/get"},
		{"POST", "/plugins/no-such-plugin/increment"},
		{"GET", "/plugins/secret-counter/no-such-operation"},
		{"DELETE", "/plugins/secret-counter/get"},
		{"GET", "/plugins/secret-counter/increment"},
	} {
		if got := anon(tc.method, tc.path); got != want {
			t.Errorf("%s %s without credentials: %q, want %q (as a known plugin's operation)", tc.method, tc.path, got, want)
		}
	}
	key := []string{"X-API-Key", "key-1"}
	if r := do(t, "GET", srv.URL+"/plugins/secret-counter/no-such-operation", "", key...); r.Status != 404 {
		t.Errorf("unknown operation with credentials: %d %s, want 404", r.Status, r.Body)
	}
	if r := do(t, "DELETE", srv.URL+"/plugins/secret-counter/get", "", key...); r.Status != 405 || r.Header.Get("Allow") == "" {
		t.Errorf("wrong method with credentials: %d %s, want 405 with Allow", r.Status, r.Body)
	}
	if v := do(t, "GET", srv.URL+"/plugins/secret-counter/get", "", key...).value(t); v != 0 {
		t.Errorf("get = %d", v)
	}
}
