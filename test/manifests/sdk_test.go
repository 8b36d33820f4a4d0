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

package manifests_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// exampleModule is the plugin written outside the operator's module, against the SDK.
const exampleModule = "examples/featureflags"

// forbiddenDeps are module paths a plugin author's build must not link: the operator's
// Kubernetes client machinery belongs to the manager, not to the runtime.
var forbiddenDeps = []string{"sigs.k8s.io/controller-runtime", "k8s.io/client-go", "k8s.io/api/"}

// TestExampleModuleUsesOnlyTheSDK builds and vets the example module offline (GOPROXY=off:
// its go.sum is complete and its modules are among the root module's, so the module cache
// the root module's build filled suffices), checks that its go.mod and go.sum are tidy, and
// checks what it links: nothing of controller-runtime, client-go or k8s.io/api, and of this
// repository only pkg/ (and what pkg/ links).
func TestExampleModuleUsesOnlyTheSDK(t *testing.T) {
	dir := filepath.Join(root, exampleModule)
	goCmd := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		env := append(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off")
		// `go mod tidy` loads the tests of the example's dependencies too (e.g. testify,
		// which prometheus/common's tests import), modules no build ever fetches: it may
		// use the module proxy the environment names; everything else runs offline.
		if args[0] != "mod" {
			env = append(env, "GOPROXY=off")
		}
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			stderr := ""
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("go %s in %s: %v\n%s%s", strings.Join(args, " "), exampleModule, err, out, stderr)
		}
		return string(out)
	}
	goCmd("build", "./...")
	goCmd("vet", "./...")
	// go.mod and go.sum are what `go mod tidy` writes (it prints the diff otherwise).
	goCmd("mod", "tidy", "-diff")

	rootGo, rootSum := goLineAndSums(t, root)
	exGo, exSum := goLineAndSums(t, dir)
	if exGo != rootGo {
		t.Errorf("%s/go.mod says %q, the root go.mod %q", exampleModule, exGo, rootGo)
	}
	for line := range exSum {
		if !rootSum[line] {
			t.Errorf("%s/go.sum has %q, which the root go.sum lacks: the example needs a module the root module does not", exampleModule, line)
		}
	}

	const self = "github.com/hotreload/plugin-operator/"
	var deps []string
	for _, line := range strings.Fields(goCmd("list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./...")) {
		deps = append(deps, line)
		for _, bad := range forbiddenDeps {
			if strings.HasPrefix(line, bad) {
				t.Errorf("the example links %s (forbidden: %s)", line, bad)
			}
		}
	}
	// The example's own packages import this repository's pkg/ only.
	for _, line := range strings.Split(strings.TrimSpace(goCmd("list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...")), "\n") {
		f := strings.Fields(line)
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, self) && !strings.HasPrefix(imp, self+"pkg/") && !strings.HasPrefix(imp, self+exampleModule) {
				t.Errorf("%s imports %s: an outside plugin can only use pkg/", f[0], imp)
			}
		}
	}
	if len(deps) < 5 {
		t.Fatalf("go list -deps listed only %q", deps)
	}
	t.Logf("%s links %d non-standard packages", exampleModule, len(deps))
}

// goLineAndSums reads the go directive of dir's go.mod and the lines of its go.sum.
func goLineAndSums(t *testing.T, dir string) (string, map[string]bool) {
	t.Helper()
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := ""
	for _, l := range strings.Split(string(mod), "\n") {
		if strings.HasPrefix(l, "go ") {
			goLine = l
		}
	}
	f, err := os.Open(filepath.Join(dir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sums := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			sums[l] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return goLine, sums
}
