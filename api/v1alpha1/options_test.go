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

package v1alpha1_test

import (
	"encoding/json"
	"testing"

	"k8s.io/utils/ptr"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

func TestPluginOptionsJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want v1alpha1.PluginOptions
		out  string
	}{
		{name: "empty", in: `{}`, want: v1alpha1.PluginOptions{}, out: `{}`},
		{
			name: "increment only",
			in:   `{"increment": 5}`,
			want: v1alpha1.PluginOptions{Increment: ptr.To[int32](5)},
			out:  `{"increment":5}`,
		},
		{
			name: "null increment",
			in:   `{"increment": null}`,
			want: v1alpha1.PluginOptions{},
			out:  `{}`,
		},
		{
			name: "extra keys kept next to increment",
			in:   `{"label": "x", "increment": -3, "nested": {"a": [1, 2]}}`,
			want: v1alpha1.PluginOptions{
				Increment: ptr.To[int32](-3),
				Extra: map[string]json.RawMessage{
					"label":  json.RawMessage(`"x"`),
					"nested": json.RawMessage(`{"a": [1, 2]}`),
				},
			},
			out: `{"increment":-3,"label":"x","nested":{"a":[1,2]}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got v1alpha1.PluginOptions
			if err := json.Unmarshal([]byte(tt.in), &got); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tt.want)
			if string(gotJSON) != string(wantJSON) || string(gotJSON) != tt.out {
				t.Errorf("round trip of %s = %s, want %s", tt.in, gotJSON, tt.out)
			}
			// DeepCopy must not share Extra with the original.
			cp := got.DeepCopy()
			if len(cp.Extra) > 0 {
				for k := range cp.Extra {
					cp.Extra[k][0] = 'X'
				}
				again, _ := json.Marshal(got)
				if string(again) != tt.out {
					t.Errorf("DeepCopy shares memory: original became %s", again)
				}
			}
		})
	}
}

func TestPluginOptionsJSONRejects(t *testing.T) {
	for _, in := range []string{`[]`, `5`, `{"increment": 5.5}`, `{"increment": "5"}`, `{"increment": 2147483648}`} {
		var got v1alpha1.PluginOptions
		if err := json.Unmarshal([]byte(in), &got); err == nil {
			t.Errorf("Unmarshal(%s) = %+v, want an error", in, got)
		}
	}
}

func TestPluginOptionsExtraCannotShadowIncrement(t *testing.T) {
	o := v1alpha1.PluginOptions{Extra: map[string]json.RawMessage{"increment": json.RawMessage(`"7"`)}}
	got, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `{}` {
		t.Errorf("Marshal = %s, want {}", got)
	}
}
