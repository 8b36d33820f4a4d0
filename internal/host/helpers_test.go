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
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hotreload/plugin-operator/pkg/plugins/counter"
)

// seedConfig is the seed README's config.json with a chosen increment.
func seedConfig(increment int) string {
	return `{"plugins":[{"name":"counter-1","type":"counter","transport":"http","endpoint":"http://localhost:9001","enabled":true,
"auth":{"method":"none"},"connection":{"max_connections":10,"max_idle_connections":5,"idle_timeout":"30s","connection_timeout":"10s","request_timeout":"30s","keep_alive":true},
"options":{"increment":` + itoa(increment) + `}}]}`
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func newTestHost(t testing.TB, config string) *Host {
	t.Helper()
	h := New(Options{Registry: MustRegistry(counter.Factory{})})
	if config != "" {
		if _, err := h.Apply([]byte(config)); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
	return h
}

func serve(t testing.TB, h *Host) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	return srv
}

type reply struct {
	Status int
	Header http.Header
	Body   string
	JSON   map[string]any
}

func do(t testing.TB, method, url, body string, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		_ = d.Decode(&r.JSON)
	}
	return r
}

func (r reply) value(t testing.TB) int64 {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	n, ok := r.JSON["value"].(json.Number)
	if !ok {
		t.Fatalf("no value in %s", r.Body)
	}
	v, _ := n.Int64()
	return v
}

// newSlowBody is a request body the test feeds by hand.
func newSlowBody() (*io.PipeReader, *io.PipeWriter) { return io.Pipe() }
