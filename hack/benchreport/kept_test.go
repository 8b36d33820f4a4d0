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

package main

import "testing"

// TestKeptSections: a full run keeps the previous report's sections that no step wrote, in
// their order and whole, and drops those it wrote again.
func TestKeptSections(t *testing.T) {
	r := &report{sections: []section{{title: "Idle CPU"}}}
	old := "# Performance\n\nheader\n\n## Idle CPU\n\nold idle\n\n## Memory on a busy cluster\n\n| a | b |\n\n## Ready as soon as served\n\nfigures\n"
	want := "\n## Memory on a busy cluster\n\n| a | b |\n\n## Ready as soon as served\n\nfigures\n"
	if got := r.keptSections(old); got != want {
		t.Errorf("keptSections:\n%q\nwant\n%q", got, want)
	}
	if got := r.keptSections("# Performance\n\nno sections\n"); got != "" {
		t.Errorf("keptSections of a report without sections: %q", got)
	}
}
