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

package controllers

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// reasonConstants parses api/v1alpha1 and returns its condition reasons (the string
// constants named Reason*), by value.
func reasonConstants(t *testing.T) map[string]string {
	t.Helper()
	dir := filepath.Join("..", "api", "v1alpha1")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Reason") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Errorf("%s: %s is not a string literal", file, name.Name)
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					reasons[v] = name.Name
				}
			}
		}
	}
	if len(reasons) < 10 {
		t.Fatalf("found %d reason constants in %s; the parser is looking in the wrong place", len(reasons), dir)
	}
	return reasons
}

// TestEveryReasonIsClassified: each reason constant has its kstatus class in
// reasonReadiness, and the table names no value that is not a constant, so a new reason
// cannot silently fall back to the default.
func TestEveryReasonIsClassified(t *testing.T) {
	reasons := reasonConstants(t)
	for value, name := range reasons {
		if _, ok := reasonReadiness[value]; !ok {
			t.Errorf("v1alpha1.%s (%q) is not in reasonReadiness: say whether it is settled, reconciling or stalled", name, value)
		}
	}
	for value := range reasonReadiness {
		if _, ok := reasons[value]; !ok {
			t.Errorf("reasonReadiness has %q, which is no reason constant of api/v1alpha1", value)
		}
	}
}

// TestTroubleshootingCoversEveryReason: docs/troubleshooting.md has one row per reason
// constant, no row for anything else, and each row's kstatus column is what the operator
// does with that reason.
func TestTroubleshootingCoversEveryReason(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "troubleshooting.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `([A-Za-z]+)` \\|[^|]*\\| ([A-Za-z]+) \\|")
	documented := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if _, dup := documented[m[1]]; dup {
			t.Errorf("troubleshooting.md lists %s twice", m[1])
		}
		documented[m[1]] = m[2]
	}
	reasons := reasonConstants(t)
	for value, name := range reasons {
		class, ok := documented[value]
		if !ok {
			t.Errorf("docs/troubleshooting.md has no row for %s (v1alpha1.%s)", value, name)
			continue
		}
		if want := string(readinessOf(value)); class != want {
			t.Errorf("docs/troubleshooting.md says %s is %s; the operator makes it %s", value, class, want)
		}
	}
	var extra []string
	for value := range documented {
		if _, ok := reasons[value]; !ok {
			extra = append(extra, value)
		}
	}
	slices.Sort(extra)
	if len(extra) > 0 {
		t.Errorf("docs/troubleshooting.md has rows for %v, which are no reason constants of api/v1alpha1", extra)
	}
}
