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
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// Whatever a client sends, the handler answers without panicking, never with a 5xx other
// than 503, and the counter changes only on a 200 increment.
func FuzzPluginHandler(f *testing.F) {
	f.Add("POST", "counter-1", "increment", `{"value": 5}`, "application/json")
	f.Add("GET", "counter-1", "get", "", "")
	f.Add("POST", "counter-1", "reset", "", "")
	f.Add("PUT", "x", "y", "{", "text/plain")
	f.Add("POST", "counter-1", "increment", `{"value": 9223372036854775807}`, "application/json; charset=utf-8")
	h := newTestHost(f, seedConfig(3))
	handler := h.Handler()
	f.Fuzz(func(t *testing.T, method, name, op, body, ctype string) {
		if !validMethod(method) || name == "" || op == "" {
			return
		}
		before := value(t, h, "counter-1")
		req := httptest.NewRequest(method, "/plugins/"+url.PathEscape(name)+"/"+url.PathEscape(op), strings.NewReader(body))
		if ctype != "" && !strings.ContainsAny(ctype, "\r\n\x00") {
			req.Header.Set("Content-Type", ctype)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s %q: %d %s", method, req.URL.Path, body, rec.Code, rec.Body)
		}
		after := value(t, h, "counter-1")
		changed := after != before
		okIncrement := rec.Code == 200 && name == "counter-1" && (op == "increment" || op == "reset")
		if changed && !okIncrement {
			t.Fatalf("counter changed %d -> %d on %s %s (%d)", before, after, method, req.URL.Path, rec.Code)
		}
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
