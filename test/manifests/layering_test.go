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
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	module      = "github.com/hotreload/plugin-operator"
	testSupport = module + "/internal/testing"
)

// isProduct reports whether a package of the module ships: everything but test support,
// the test tiers and the hack/ tools.
func isProduct(path string) bool {
	for _, prefix := range []string{testSupport, module + "/test/", module + "/hack/"} {
		if path == strings.TrimSuffix(prefix, "/") || strings.HasPrefix(path, prefix) {
			return false
		}
	}
	return true
}

// The layering rule of CONTRIBUTING.md: product packages never import test support (their
// own _test files may), and the shipped binaries link neither test support nor envtest.
func TestProductPackagesDoNotImportTestSupport(t *testing.T) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath string
		Imports    []string
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	products := 0
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if !isProduct(p.ImportPath) {
			continue
		}
		products++
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, testSupport) || strings.HasPrefix(imp, module+"/test/") {
				t.Errorf("product package %s imports test support %s", p.ImportPath, imp)
			}
		}
	}
	if products < 5 {
		t.Fatalf("found %d product packages in go list output; the listing is broken", products)
	}

	deps := exec.Command("go", "list", "-deps", "./cmd/manager", "./cmd/pluginhost")
	deps.Dir = root
	out, err = deps.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, testSupport) || strings.Contains(dep, "controller-runtime/pkg/envtest") {
			t.Errorf("a shipped binary links %s", dep)
		}
	}
}

// Every package with non-test files says what it is for (a package doc comment), test
// support and tools included.
func TestEveryPackageHasADocComment(t *testing.T) {
	cmd := exec.Command("go", "list", "-tags", "e2e", "-f", "{{if .GoFiles}}{{.ImportPath}}\t{{.Doc}}{{end}}", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 10 {
		t.Fatalf("go list listed %d packages; the listing is broken", len(lines))
	}
	for _, line := range lines {
		if line == "" {
			continue // a package of test files only; its doc comment is in a _test.go file
		}
		path, doc, _ := strings.Cut(line, "\t")
		if strings.TrimSpace(doc) == "" {
			t.Errorf("package %s has no package doc comment", path)
		}
	}
}

// Every Go file carries the project's licence header (hack/boilerplate.go.txt), after an
// optional build constraint.
func TestEveryGoFileHasTheLicenceHeader(t *testing.T) {
	header, err := os.ReadFile(filepath.Join(root, "hack", "boilerplate.go.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(string(header))
	cmd := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard", "*.go")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	files := strings.Fields(string(out))
	if len(files) < 50 {
		t.Fatalf("git listed %d Go files; the listing is broken", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree, not yet committed
		} else if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		if strings.HasPrefix(src, "//go:build") {
			_, src, _ = strings.Cut(src, "\n")
			src = strings.TrimLeft(src, "\n")
		}
		if !strings.HasPrefix(src, want) {
			t.Errorf("%s does not start with the licence header of hack/boilerplate.go.txt", f)
		}
	}
}

// The manager learns plugin types from what each host's pods advertise (issue #19): it links
// no plugin type, so a type added to a host image never needs a new manager.
func TestManagerLinksNoPluginType(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./cmd/manager")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, module+"/controllers") {
		t.Fatalf("go list -deps ./cmd/manager lists no %s/controllers; the listing is broken", module)
	}
	for _, dep := range deps {
		if strings.HasPrefix(dep, module+"/pkg/plugins/") {
			t.Errorf("the manager links plugin type %s", dep)
		}
	}
}
