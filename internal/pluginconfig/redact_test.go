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
	"strings"
	"testing"

	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// TestRedactQuotesNothingOfTheDocument: whatever is wrong with a document, Redact says where
// and what without a byte of the secret the document holds, and keeps the schema's words.
func TestRedactQuotesNothingOfTheDocument(t *testing.T) {
	const secret = "s3cr3t-Zq8vXw"
	for _, tt := range []struct {
		name, doc string
		want      []string
	}{
		{"a string, not a config", `"` + secret + `"`, []string{"<root>: Invalid value: config must be a JSON object"}},
		{"malformed", `{"plugins": [` + secret + `]}`, []string{"invalid JSON at line 1, column 14"}},
		{"trailing data", `{} ` + secret, []string{"<root>: Invalid value: config must be a JSON object"}},
		{"unknown top-level key", `{"` + secret + `": 1}`, []string{"<root>: unknown field"}},
		{"unknown plugin key", `{"plugins":[{"name":"a","type":"counter","` + secret + `":1}]}`, []string{"plugins[0]: unknown field"}},
		{"unknown type", `{"plugins":[{"name":"a","type":"` + secret + `"}]}`, []string{"plugins[0].type: Unsupported value: supported values:", `"counter"`}},
		{"wrong JSON type", `{"plugins":[{"name":"a","type":"counter","endpoint":["` + secret + `"]}]}`, []string{"plugins[0].endpoint: Invalid value: must be a string"}},
		{"bad duration", `{"plugins":[{"name":"a","type":"counter","connection":{"idle_timeout":"` + secret + `"}}]}`, []string{"plugins[0].connection.idle_timeout: Invalid value"}},
		{"bad option", `{"plugins":[{"name":"a","type":"counter","options":{"` + secret + `":"` + secret + `"}}]}`, []string{"plugins[0].options: "}},
		{"bad name", `{"plugins":[{"name":"` + secret + `!","type":"counter"}]}`, []string{"plugins[0].name: Invalid value"}},
		{"inline token", `{"plugins":[{"name":"a","type":"counter","auth":{"method":"bearer","token":"` + secret + `","token_file":"/x"}}]}`, []string{"plugins[0].auth.token_file: Forbidden"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pluginconfig.Parse([]byte(tt.doc), types)
			if err == nil {
				t.Fatal("Parse accepted the document")
			}
			got := pluginconfig.Redact(err)
			if strings.Contains(got, secret) || strings.Contains(got, secret[:6]) {
				t.Errorf("Redact(%q) = %q quotes the document (the parser said %q)", tt.doc, got, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("Redact = %q, want %q in it (the parser said %q)", got, w, err)
				}
			}
		})
	}
}
