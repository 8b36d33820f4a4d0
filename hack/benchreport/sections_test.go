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

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestLoadSections runs the load, reload-under-load and fault sections in quick mode
// against a freshly built binary and prints their markdown. It takes about a minute, so it
// runs only with BENCHREPORT_SECTIONS=1 (make bench runs the real thing);
// BENCHREPORT_FULL=1 runs them at full length. The figures go to docs/img/.
func TestLoadSections(t *testing.T) {
	if os.Getenv("BENCHREPORT_SECTIONS") == "" {
		t.Skip("a report generator, not a check: make bench runs it (or set BENCHREPORT_SECTIONS=1)")
	}
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "pluginhost"), "../../cmd/pluginhost").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Chdir("../..") // the report's paths are relative to the repository root
	r := &report{quick: os.Getenv("BENCHREPORT_FULL") == "", bin: bin, started: time.Now()}
	for _, s := range []func() error{r.load, r.reloadUnderLoad, r.faults} {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
	t.Log("\n" + r.markdown())
}

// TestIdleSection runs the idle-CPU section against a freshly built binary and prints its
// markdown (BENCHREPORT_SECTIONS=1; BENCHREPORT_FULL=1 for the full 30 s windows).
func TestIdleSection(t *testing.T) {
	if os.Getenv("BENCHREPORT_SECTIONS") == "" {
		t.Skip("a report generator, not a check: make bench runs it (or set BENCHREPORT_SECTIONS=1)")
	}
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "pluginhost"), "../../cmd/pluginhost").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Chdir("../..")
	r := &report{quick: os.Getenv("BENCHREPORT_FULL") == "", bin: bin, started: time.Now()}
	if err := r.idleCPU(); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + r.markdown())
}
