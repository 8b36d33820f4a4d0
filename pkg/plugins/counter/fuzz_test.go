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

package counter

import "testing"

// The allocation-free parser and encoding/json must agree on every body: same value when
// both accept, and the fast path never accepts what the strict path refuses.
func FuzzDecodeValue(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"value": 5}`, ` {"value":-9223372036854775808} `, `{"value": 1.5}`, `{"value": "5"}`,
		`{"valeu": 1}`, `{"value": 1}{}`, `{"value": 01}`, `{"value": 9223372036854775808}`, `{"value": -0}`, `{"\u0076alue": 2}`, `[1]`, `{"value":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		slow, slowErr := slowValue(body)
		fast, ok := fastValue(body)
		if ok && slowErr != nil {
			t.Fatalf("fast path accepted %q (%d) which the strict path refuses: %v", body, fast, slowErr)
		}
		if ok && fast != slow {
			t.Fatalf("fast %d != slow %d for %q", fast, slow, body)
		}
		got, err := DecodeValue(body)
		if (err == nil) != (slowErr == nil) || (err == nil && got != slow) {
			t.Fatalf("DecodeValue(%q) = %d, %v; strict path %d, %v", body, got, err, slow, slowErr)
		}
	})
}
