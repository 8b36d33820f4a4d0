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

package pluginconfig_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/hotreload/plugin-operator/internal/pluginconfig"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
	"github.com/hotreload/plugin-operator/pkg/plugins/counter"
)

var types = testutil.PluginTypes(counter.Factory{})

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseSeedConfigs(t *testing.T) {
	full, err := pluginconfig.Parse(mustRead(t, "testdata/seed-full.json"), types)
	if err != nil {
		t.Fatalf("seed config refused: %v", err)
	}
	step2, err := pluginconfig.Parse(mustRead(t, "testdata/seed-step2.json"), types)
	if err != nil {
		t.Fatalf("seed step-2 snippet (with its // comment) refused: %v", err)
	}
	if len(full.Plugins) != 1 || len(step2.Plugins) != 1 {
		t.Fatalf("want one plugin each, got %d and %d", len(full.Plugins), len(step2.Plugins))
	}
	// The step-2 snippet omits auth and connection: defaults equal the seed's spelled-out values.
	if !reflect.DeepEqual(full.Plugins[0].Connection, step2.Plugins[0].Connection) {
		t.Errorf("connection defaults %+v differ from the seed's values %+v", step2.Plugins[0].Connection, full.Plugins[0].Connection)
	}
	if step2.Plugins[0].Auth.Method != pluginconfig.AuthNone {
		t.Errorf("auth default = %q, want none", step2.Plugins[0].Auth.Method)
	}
	if got := step2.Plugins[0].Options["increment"]; got.(interface{ String() string }).String() != "10" {
		t.Errorf("increment = %v, want 10", got)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := pluginconfig.Parse([]byte(`{"plugins":[{"name":"a","type":"counter"}]}`), types)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Plugins[0]
	if p.Transport != "http" || !p.IsEnabled() || p.Auth.Method != "none" || !p.Connection.KeepAliveEnabled() ||
		p.Connection.MaxConnections != 10 || p.Connection.MaxIdleConnections != 5 ||
		p.Connection.IdleTimeout.String() != "30s" || p.Connection.ConnectionTimeout.String() != "10s" || p.Connection.RequestTimeout.String() != "30s" {
		t.Errorf("defaults not applied: %+v", p)
	}
	cfg, err = pluginconfig.Parse([]byte(`{"plugins":[{"name":"a","type":"counter","auth":{"method":"api-key","api_key":"k"}}]}`), types)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Plugins[0].Auth.Header != "X-API-Key" {
		t.Errorf("api-key header default = %q", cfg.Plugins[0].Auth.Header)
	}
	if cfg, err := pluginconfig.Parse([]byte(`{"plugins":[]}`), types); err != nil || len(cfg.Plugins) != 0 {
		t.Errorf("an empty plugin list is a valid config: %v", err)
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	plugin := func(body string) string { return `{"plugins":[{"name":"ok","type":"counter"},{` + body + `}]}` }
	tests := []struct {
		name, doc string
		want      []string // substrings of the error, all required
	}{
		{"empty", ``, []string{"config is empty"}},
		{"only whitespace", " \n\t", []string{"config is empty"}},
		{"only a comment", "// nothing\n", []string{"config is empty"}},
		{"truncated", `{"plugins":[{"name":"a",`, []string{"unexpected end of input"}},
		{"malformed", "{\n  \"plugins\": [}\n", []string{"line 2, column 15"}},
		{"trailing data", `{"plugins":[]} {}`, []string{"unexpected data after the top-level value"}},
		{"not an object", `[1,2]`, []string{"config must be a JSON object"}},
		{"plugins not an array", `{"plugins":{}}`, []string{"plugins: Invalid value", "must be an array"}},
		{"unknown top-level key", `{"plugins":[],"plugin":[]}`, []string{"plugin: Forbidden: unknown field"}},
		{"unknown plugin key", plugin(`"name":"b","type":"counter","colour":"red"`), []string{"plugins[1].colour: Forbidden: unknown field"}},
		{"missing name", plugin(`"type":"counter"`), []string{"plugins[1].name: Required value"}},
		{"bad name", plugin(`"name":"a/b","type":"counter"`), []string{"plugins[1].name: Invalid value"}},
		{"name not a string", plugin(`"name":5,"type":"counter"`), []string{"plugins[1].name: Invalid value: \"5\": must be a string"}},
		{"duplicate name", plugin(`"name":"ok","type":"counter"`), []string{"plugins[1].name: Duplicate value", "first defined at plugins[0]"}},
		{"missing type", plugin(`"name":"b"`), []string{"plugins[1].type: Required value", "counter"}},
		{"unknown type", plugin(`"name":"b","type":"gauge"`), []string{`plugins[1].type: Unsupported value: "gauge"`, `"counter"`}},
		{"unsupported transport", plugin(`"name":"b","type":"counter","transport":"grpc"`), []string{`plugins[1].transport: Unsupported value: "grpc"`}},
		{"endpoint not a URL", plugin(`"name":"b","type":"counter","endpoint":"localhost:9001"`), []string{"plugins[1].endpoint: Invalid value", "absolute URL"}},
		{"endpoint scheme mismatch", plugin(`"name":"b","type":"counter","endpoint":"https://x:1"`), []string{"plugins[1].endpoint", `does not match transport "http"`}},
		{"enabled not a bool", plugin(`"name":"b","type":"counter","enabled":"yes"`), []string{"plugins[1].enabled: Invalid value", "true or false"}},
		{"increment float", plugin(`"name":"b","type":"counter","options":{"increment":5.5}`), []string{"plugins[1].options.increment: Invalid value: 5.5: must be an integer"}},
		{"increment string", plugin(`"name":"b","type":"counter","options":{"increment":"5"}`), []string{"plugins[1].options.increment: Invalid value", "must be an integer"}},
		{"increment too large", plugin(`"name":"b","type":"counter","options":{"increment":9223372036854775808}`), []string{"plugins[1].options.increment", "must be at most 9223372036854775807"}},
		{"unknown option", plugin(`"name":"b","type":"counter","options":{"step":2}`), []string{`plugins[1].options.step: Unsupported value: "step"`}},
		{"options not an object", plugin(`"name":"b","type":"counter","options":[1]`), []string{"plugins[1].options: Invalid value", "must be an object"}},
		{"auth method unknown", plugin(`"name":"b","type":"counter","auth":{"method":"mtls"}`), []string{`plugins[1].auth.method: Unsupported value: "mtls"`}},
		{"api-key without key", plugin(`"name":"b","type":"counter","auth":{"method":"api-key"}`), []string{"plugins[1].auth.api_key: Required value"}},
		{"bearer with both", plugin(`"name":"b","type":"counter","auth":{"method":"bearer","token":"t","token_file":"/f"}`), []string{"plugins[1].auth.token_file: Forbidden: set token or token_file, not both"}},
		{"basic without password", plugin(`"name":"b","type":"counter","auth":{"method":"basic","username":"u"}`), []string{"plugins[1].auth.password: Required value"}},
		{"none with a token", plugin(`"name":"b","type":"counter","auth":{"method":"none","token":"t"}`), []string{"plugins[1].auth.token: Forbidden"}},
		{"bad header", plugin(`"name":"b","type":"counter","auth":{"method":"api-key","api_key":"k","header":"X Key"}`), []string{"plugins[1].auth.header: Invalid value"}},
		{"max_connections zero", plugin(`"name":"b","type":"counter","connection":{"max_connections":0}`), []string{"plugins[1].connection.max_connections: Invalid value: 0"}},
		{"max_connections float", plugin(`"name":"b","type":"counter","connection":{"max_connections":1.5}`), []string{"plugins[1].connection.max_connections: Invalid value", "must be an integer"}},
		{"idle over max", plugin(`"name":"b","type":"counter","connection":{"max_connections":2,"max_idle_connections":3}`), []string{"plugins[1].connection.max_idle_connections", "must not exceed max_connections (2)"}},
		{"duration number", plugin(`"name":"b","type":"counter","connection":{"idle_timeout":30}`), []string{"plugins[1].connection.idle_timeout: Invalid value", "duration string"}},
		{"duration garbage", plugin(`"name":"b","type":"counter","connection":{"request_timeout":"soon"}`), []string{"plugins[1].connection.request_timeout", `invalid duration "soon"`}},
		{"duration negative", plugin(`"name":"b","type":"counter","connection":{"connection_timeout":"-5s"}`), []string{"plugins[1].connection.connection_timeout", "must be positive"}},
		{"unknown connection key", plugin(`"name":"b","type":"counter","connection":{"timeout":"5s"}`), []string{"plugins[1].connection.timeout: Forbidden: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pluginconfig.Parse([]byte(tt.doc), types)
			if err == nil {
				t.Fatalf("accepted %q", tt.doc)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestOversizedConfig(t *testing.T) {
	big := make([]byte, pluginconfig.MaxConfigBytes+1)
	for i := range big {
		big[i] = ' '
	}
	_, err := pluginconfig.Parse(big, types)
	if err == nil || !strings.Contains(err.Error(), "over the 1048576-byte limit") {
		t.Fatalf("oversized config: %v", err)
	}
}

func TestCommentsInsideStringsAreKept(t *testing.T) {
	doc := `{"plugins":[{"name":"a","type":"counter","endpoint":"http://h:1/x//y/*z*/"} /* block */]}`
	cfg, err := pluginconfig.Parse([]byte(doc), types)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Plugins[0].Endpoint; got != "http://h:1/x//y/*z*/" {
		t.Errorf("endpoint = %q", got)
	}
}

func TestEncodeIsCanonicalAndRoundTrips(t *testing.T) {
	cfg, err := pluginconfig.Parse(mustRead(t, "testdata/seed-step2.json"), types)
	if err != nil {
		t.Fatal(err)
	}
	a, err := pluginconfig.Encode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	back, err := pluginconfig.Parse(a, types)
	if err != nil {
		t.Fatalf("canonical output does not parse: %v\n%s", err, a)
	}
	b, _ := pluginconfig.Encode(back)
	if string(a) != string(b) {
		t.Errorf("encode is not stable:\n%s\n---\n%s", a, b)
	}
	if pluginconfig.Revision(a) != pluginconfig.Revision(b) || len(pluginconfig.Revision(a)) != 71 || !strings.HasPrefix(pluginconfig.Revision(a), "sha256:") {
		t.Errorf("revision unstable or malformed: %s", pluginconfig.Revision(a))
	}
	for _, want := range []string{`"enabled": true`, `"method": "none"`, `"max_connections": 10`, `"idle_timeout": "30s"`, `"keep_alive": true`, `"increment": 10`} {
		if !strings.Contains(string(a), want) {
			t.Errorf("canonical form lacks %s:\n%s", want, a)
		}
	}
	// Go-built configs get the same bytes once defaulted.
	built := &pluginconfig.Config{Plugins: []pluginconfig.Plugin{{Name: "counter-1", Type: "counter", Endpoint: "http://localhost:9001", Options: map[string]any{"increment": 10}}}}
	pluginconfig.SetDefaults(built)
	c, _ := pluginconfig.Encode(built)
	if string(c) != string(a) {
		t.Errorf("Go-built config encodes differently:\n%s\n---\n%s", c, a)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/seed-full.json", "testdata/seed-step2.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"plugins":[{"name":"a","type":"counter","auth":{"method":"basic","username":"u","password":"p"}}]}`))
	f.Add([]byte(`{"plugins":[]} // c`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := pluginconfig.Parse(data, types)
		if err != nil {
			return
		}
		// Whatever parses must encode canonically and parse back to the same bytes.
		a, err := pluginconfig.Encode(cfg)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		back, err := pluginconfig.Parse(a, types)
		if err != nil {
			t.Fatalf("canonical form refused: %v\n%s", err, a)
		}
		b, _ := pluginconfig.Encode(back)
		if string(a) != string(b) {
			t.Fatalf("not a fixed point:\n%s\n---\n%s", a, b)
		}
	})
}
