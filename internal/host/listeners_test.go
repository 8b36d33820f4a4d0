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
	"net/http/httptest"
	"strings"
	"testing"
)

// With --ops-addr the plugins' API and the operational endpoints are two listeners: each
// serves its own paths and says where the others are.
func TestAPIAndOpsListenersServeTheirOwnPaths(t *testing.T) {
	h := newTestHost(t, seedConfig(1))
	api := httptest.NewServer(h.APIHandler())
	t.Cleanup(api.Close)
	ops := httptest.NewServer(h.OpsHandler())
	t.Cleanup(ops.Close)

	if v := do(t, "POST", api.URL+"/plugins/counter-1/increment", `{"value": 3}`).value(t); v != 3 {
		t.Fatalf("increment on the API listener = %d, want 3", v)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		for _, base := range []string{api.URL, ops.URL} {
			if r := do(t, "GET", base+p, ""); r.Status != 200 {
				t.Errorf("GET %s%s = %d: %s", base, p, r.Status, r.Body)
			}
		}
	}
	for _, p := range []string{"/status", "/plugins", "/metrics"} {
		r := do(t, "GET", api.URL+p, "")
		if r.Status != 404 || !strings.Contains(r.JSON["error"].(string), "--ops-addr") {
			t.Errorf("GET %s on the API listener = %d %s, want 404 naming --ops-addr", p, r.Status, r.Body)
		}
	}
	if r := do(t, "GET", api.URL+"/nope", ""); r.Status != 404 || !strings.Contains(r.Body, "operations listener") {
		t.Errorf("unknown path on the API listener = %d %s", r.Status, r.Body)
	}

	st := do(t, "GET", ops.URL+"/status", "")
	if st.Status != 200 || st.JSON["revision"] != h.Revision() {
		t.Fatalf("GET /status on the ops listener: %d %s", st.Status, st.Body)
	}
	if r := do(t, "GET", ops.URL+"/plugins", ""); r.Status != 200 || !strings.Contains(r.Body, `"counter-1"`) {
		t.Errorf("GET /plugins on the ops listener: %d %s", r.Status, r.Body)
	}
	m := do(t, "GET", ops.URL+"/metrics", "")
	if want := `pluginhost_requests_total{code="200",operation="increment",plugin="counter-1"} 1`; m.Status != 200 || !strings.Contains(m.Body, want) {
		t.Errorf("metrics on the ops listener lack %s", want)
	}
	// The ops listener runs no plugin operation, and a refused one changes nothing.
	r := do(t, "POST", ops.URL+"/plugins/counter-1/reset", "")
	if r.Status != 404 || !strings.Contains(r.Body, "operations listener") {
		t.Errorf("POST reset on the ops listener = %d %s, want 404", r.Status, r.Body)
	}
	if v := do(t, "GET", api.URL+"/plugins/counter-1/get", "").value(t); v != 3 {
		t.Errorf("counter after a reset refused on the ops listener = %d, want 3", v)
	}
}

// The single-listener Handler (no --ops-addr, as in the seed walkthrough) still serves all.
func TestOneListenerServesEverything(t *testing.T) {
	srv := serve(t, newTestHost(t, seedConfig(1)))
	for _, p := range []string{"/status", "/plugins", "/metrics", "/healthz", "/readyz", "/plugins/counter-1/get"} {
		if r := do(t, "GET", srv.URL+p, ""); r.Status != 200 {
			t.Errorf("GET %s = %d: %s", p, r.Status, r.Body)
		}
	}
}

// Refused credentials are compared by digest: a prefix, an extension or a value of another
// length is refused like any wrong value, and neither the presented nor the expected
// credential, nor any header value, appears in a response or a log line.
func TestRefusedCredentialsAreNeverEchoed(t *testing.T) {
	h, logs := loggingHost()
	cfg := `{"plugins":[
 {"name":"k","type":"counter","auth":{"method":"api-key","api_key":"expected-key-AAAA"}},
 {"name":"b","type":"counter","auth":{"method":"bearer","token":"expected-token-BBBB"}},
 {"name":"u","type":"counter","auth":{"method":"basic","username":"ann","password":"expected-pass-CCCC"}}]}`
	if _, err := h.Apply([]byte(cfg)); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)
	secrets := []string{"expected-key-AAAA", "expected-token-BBBB", "expected-pass-CCCC"}
	tests := []struct {
		name, plugin, presented string
		hdr                     []string
	}{
		{"api-key prefix", "k", "expected-key-AAA", []string{"X-API-Key", "expected-key-AAA"}},
		{"api-key extended", "k", "expected-key-AAAAx", []string{"X-API-Key", "expected-key-AAAAx"}},
		{"api-key other length", "k", "presented-XYZ", []string{"X-API-Key", "presented-XYZ"}},
		{"bearer prefix", "b", "expected-token-BBB", []string{"Authorization", "Bearer expected-token-BBB"}},
		{"bearer other", "b", "presented-token-QQQQ", []string{"Authorization", "Bearer presented-token-QQQQ"}},
		{"basic wrong password", "u", "presented-pass-ZZZZ", []string{"Authorization", "Basic YW5uOnByZXNlbnRlZC1wYXNzLVpaWlo="}}, // ann:presented-pass-ZZZZ
		{"basic empty", "u", "YW5uOg==", []string{"Authorization", "Basic YW5uOg=="}},                                             // ann:
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, "POST", srv.URL+"/plugins/"+tt.plugin+"/increment", "", tt.hdr...)
			if r.Status != 401 {
				t.Fatalf("status %d, want 401: %s", r.Status, r.Body)
			}
			if !strings.Contains(r.Body, "requires") {
				t.Errorf("the 401 does not say what the plugin requires: %s", r.Body)
			}
			for _, s := range append([]string{tt.presented, tt.hdr[1]}, secrets...) {
				if strings.Contains(r.Body, s) || strings.Contains(strings.Join(r.Header.Values("Www-Authenticate"), " "), s) {
					t.Errorf("the response repeats %q: %s", s, r.Body)
				}
			}
		})
	}
	// None of the refused increments counted.
	if v := do(t, "GET", srv.URL+"/plugins/k/get", "", "X-API-Key", "expected-key-AAAA").value(t); v != 0 {
		t.Errorf("refused increments were counted: %d", v)
	}

	// A header value in a refused Content-Type is not echoed either.
	r := do(t, "POST", srv.URL+"/plugins/k/increment", `{"value":1}`, "X-API-Key", "expected-key-AAAA", "Content-Type", "text/x-presented-ctype")
	if r.Status != 415 || strings.Contains(r.Body, "x-presented-ctype") || !strings.Contains(r.Body, "application/json") {
		t.Errorf("wrong Content-Type: %d %s", r.Status, r.Body)
	}
	all := logs.String()
	for _, s := range append(secrets, "presented-XYZ", "presented-token-QQQQ", "presented-pass-ZZZZ", "YW5uOnByZXNlbnRlZC1wYXNzLVpaWlo=", "x-presented-ctype") {
		if strings.Contains(all, s) {
			t.Errorf("a log line contains %q:\n%s", s, all)
		}
	}
	if all == "" {
		t.Error("no log lines at all: the check above would hold vacuously")
	}
}
