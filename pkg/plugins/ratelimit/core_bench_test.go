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

package ratelimit

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/hotreload/plugin-operator/pkg/plugin"
)

// BenchmarkTakeCore is a take without the JSON of Adapt: the limiter's own cost.
func BenchmarkTakeCore(b *testing.B) {
	inst, err := Factory{}.New(plugin.Spec{Options: json.RawMessage(`{"rate": 1e9, "burst": 1000000000}`)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	l := inst.(instance).l
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.take("user-1", 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReconfigure10k is a reload over 10 000 buckets: the settle holds the store's
// lock for this long.
func BenchmarkReconfigure10k(b *testing.B) {
	inst, err := Factory{}.New(plugin.Spec{Options: json.RawMessage(`{"rate": 1}`)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	l := inst.(instance).l
	for i := range DefaultMaxKeys {
		if _, err := l.take(fmt.Sprint("k", i), 1); err != nil {
			b.Fatal(err)
		}
	}
	spec := plugin.Spec{Options: json.RawMessage(`{"rate": 2}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Reconfigure(spec); err != nil {
			b.Fatal(err)
		}
	}
}
