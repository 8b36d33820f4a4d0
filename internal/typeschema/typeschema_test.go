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

package typeschema

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/hotreload/plugin-operator/internal/hostapi"
)

var limiter = hostapi.TypeInfo{
	Name:       "limiter",
	Operations: []hostapi.Operation{{Name: "take", Method: "POST", Mutating: true}},
	OptionsSchema: json.RawMessage(`{
		"type": "object",
		"properties": {
			"rate": {"type": "number", "exclusiveMinimum": 0},
			"burst": {"type": "integer", "minimum": 1},
			"limits": {"type": "object", "additionalProperties": {"type": "integer"}}
		},
		"required": ["rate"],
		"additionalProperties": false
	}`),
}

func TestValidateOptionsNamesTheField(t *testing.T) {
	set, err := Compile([]hostapi.TypeInfo{limiter, {Name: "bare", Operations: []hostapi.Operation{{Name: "get", Method: "GET"}}}})
	if err != nil {
		t.Fatal(err)
	}
	path := field.NewPath("spec", "options")
	for _, tc := range []struct {
		name, typ string
		options   map[string]any
		want      []string // each must appear in the aggregated message
	}{
		{name: "valid", typ: "limiter", options: map[string]any{"rate": json.Number("2.5"), "burst": json.Number("3")}},
		{name: "valid from Go values", typ: "limiter", options: map[string]any{"rate": 2.5, "burst": 3}},
		{name: "wrong type", typ: "limiter", options: map[string]any{"rate": "fast"}, want: []string{`spec.options.rate: Invalid value: "fast": must be a number`}},
		{name: "below minimum", typ: "limiter", options: map[string]any{"rate": 1, "burst": 0}, want: []string{"spec.options.burst: Invalid value: 0: must be at least 1"}},
		{name: "not an integer", typ: "limiter", options: map[string]any{"rate": 1, "burst": 1.5}, want: []string{"spec.options.burst"}},
		{name: "unknown key", typ: "limiter", options: map[string]any{"rate": 1, "bogus": true}, want: []string{`spec.options.bogus: Unsupported value: "bogus": supported values: "burst", "limits", "rate"`}},
		{name: "missing required", typ: "limiter", options: map[string]any{}, want: []string{"spec.options.rate: Required"}},
		{name: "nil options and a required key", typ: "limiter", want: []string{"spec.options.rate: Required"}},
		{name: "nested", typ: "limiter", options: map[string]any{"rate": 1, "limits": map[string]any{"a": "x"}}, want: []string{"spec.options.limits.a"}},
		{name: "no schema takes no options", typ: "bare", options: map[string]any{"x": 1}, want: []string{"spec.options.x: Forbidden"}},
		{name: "no schema, no options", typ: "bare"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			known, errs := set.ValidateOptions(tc.typ, tc.options, path)
			if !known {
				t.Fatalf("type %q unknown", tc.typ)
			}
			if len(tc.want) == 0 {
				if len(errs) > 0 {
					t.Fatalf("unexpected errors: %v", errs)
				}
				return
			}
			msg := errs.ToAggregate().Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
	if known, _ := set.ValidateOptions("nope", nil, path); known {
		t.Error("an unknown type is reported known")
	}
	if got := strings.Join(set.TypeNames(), ","); got != "bare,limiter" {
		t.Errorf("TypeNames = %s", got)
	}
}

func TestCompileRefusesBadDeclarations(t *testing.T) {
	op := []hostapi.Operation{{Name: "get", Method: "GET"}}
	for _, tc := range []struct {
		name string
		typ  hostapi.TypeInfo
		want string
	}{
		{"bad name", hostapi.TypeInfo{Name: "Counter", Operations: op}, "lower-case"},
		{"no operations", hostapi.TypeInfo{Name: "x"}, "0 operations"},
		{"bad method", hostapi.TypeInfo{Name: "x", Operations: []hostapi.Operation{{Name: "get", Method: "PUT"}}}, "must be GET or POST"},
		{"bad operation name", hostapi.TypeInfo{Name: "x", Operations: []hostapi.Operation{{Name: "a/b", Method: "GET"}}}, `operation "a/b"`},
		{"duplicate operation", hostapi.TypeInfo{Name: "x", Operations: []hostapi.Operation{{Name: "a", Method: "GET"}, {Name: "a", Method: "POST"}}}, "declared twice"},
		{"schema not JSON", hostapi.TypeInfo{Name: "x", Operations: op, OptionsSchema: json.RawMessage(`{`)}, "not JSON"},
		{"schema too big", hostapi.TypeInfo{Name: "x", Operations: op, OptionsSchema: json.RawMessage(`"` + strings.Repeat("a", MaxSchemaBytes) + `"`)}, "over the"},
		{"invalid schema", hostapi.TypeInfo{Name: "x", Operations: op, OptionsSchema: json.RawMessage(`{"type": 5}`)}, "options schema"},
		{"file ref", hostapi.TypeInfo{Name: "x", Operations: op, OptionsSchema: json.RawMessage(`{"$ref": "file:///etc/passwd"}`)}, "self-contained"},
		{"http ref", hostapi.TypeInfo{Name: "x", Operations: op, OptionsSchema: json.RawMessage(`{"$ref": "http://198.18.0.1/s.json"}`)}, "self-contained"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile([]hostapi.TypeInfo{tc.typ})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	big := json.RawMessage(`{"description": "` + strings.Repeat("a", MaxSchemaBytes-100) + `"}`)
	var many []hostapi.TypeInfo
	for i := range MaxTotalSchemaBytes/len(big) + 1 {
		many = append(many, hostapi.TypeInfo{Name: fmt.Sprintf("t%d", i), Operations: op, OptionsSchema: big})
	}
	if _, err := Compile(many); err == nil || !strings.Contains(err.Error(), "together, over the 32768-byte limit") {
		t.Errorf("schemas over MaxTotalSchemaBytes together: err = %v", err)
	}
	if _, err := Compile(many[:len(many)-1]); err != nil {
		t.Errorf("schemas within MaxTotalSchemaBytes together: %v", err)
	}
	if _, err := Compile([]hostapi.TypeInfo{limiter, limiter}); err == nil || !strings.Contains(err.Error(), "declared twice") {
		t.Errorf("a duplicate type: err = %v", err)
	}
}
