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
	"path/filepath"
	"strings"
	"testing"
)

const role = `---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: manager-role
rules:
- apiGroups:
  - ""
  resources:
  - pods
  verbs:
  - get
`

func TestManagerRules(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "role.yaml")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	rules, err := ManagerRules(write(role))
	if err != nil || len(rules) != 1 || rules[0].Resources[0] != "pods" {
		t.Fatalf("ManagerRules = %+v, %v", rules, err)
	}
	tmpl, err := managerRoleTemplateFor(rules)
	if err != nil || !strings.Contains(string(tmpl), "rules:\n- apiGroups:\n  - \"\"\n  resources:\n  - pods\n") ||
		!strings.HasSuffix(string(tmpl), "{{- end }}\n") {
		t.Errorf("template:\n%s\n%v", tmpl, err)
	}

	for name, tc := range map[string]struct{ content, want string }{
		"extra Role":  {role + "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: manager-role\n  namespace: x\n", "exactly one ClusterRole"},
		"other name":  {strings.Replace(role, "manager-role", "other", 1), "exactly one ClusterRole"},
		"empty":       {"# nothing\n", "no ClusterRole manager-role"},
		"unknown key": {role + "extra: 1\n", "unknown field"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ManagerRules(write(tc.content))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ManagerRules = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := ManagerRules(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "make manifests") {
		t.Errorf("missing file: %v, want a hint to run make manifests", err)
	}
}
