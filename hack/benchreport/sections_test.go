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
		t.Skip("set BENCHREPORT_SECTIONS=1")
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
		t.Skip("set BENCHREPORT_SECTIONS=1")
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
