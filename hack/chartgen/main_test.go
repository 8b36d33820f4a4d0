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

	rbacv1 "k8s.io/api/rbac/v1"
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
  - patch
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
	if err != nil || !strings.Contains(string(tmpl), "rules:\n- apiGroups:\n  - \"\"\n  resources:\n  - pods\n  verbs:\n  - get\n"+
		"{{- if $.Values.podNudge }}\n  - patch\n{{- end }}\n") ||
		!strings.Contains(string(tmpl), "{{- range $ns := .Values.watchNamespaces | default (list \"\") }}") ||
		!strings.HasSuffix(string(tmpl), "{{- end }}\n{{- end }}\n") {
		t.Errorf("template:\n%s\n%v", tmpl, err)
	}
	// The pod nudge's permission must stay recognisable, or podNudge=false would still grant it.
	noPatch := rules[0]
	noPatch.Verbs = []string{"get"}
	if _, err := managerRoleTemplateFor([]rbacv1.PolicyRule{noPatch}); err == nil || !strings.Contains(err.Error(), "pod nudge") {
		t.Errorf("rules without pods patch: %v, want an error about the pod nudge", err)
	}
	nsRole, err := namespacedRoleFor(rules)
	if err != nil || !strings.Contains(string(nsRole), "kind: Role\nmetadata:\n  name: manager-role\nrules:\n") || strings.Contains(string(nsRole), "namespace:") {
		t.Errorf("namespaced Role:\n%s\n%v", nsRole, err)
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

const crd = `---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  annotations:
    controller-gen.kubebuilder.io/version: v0.23.0
  name: things.example.com
spec:
  group: example.com
  names:
    kind: Thing
    plural: things
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
`

func TestCRDTemplate(t *testing.T) {
	tmpl, err := CRDTemplate("config/crd/bases/things.yaml", []byte(crd))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"{{- if .Values.crds.enabled }}\n",
		"  name: things.example.com\n",
		"    controller-gen.kubebuilder.io/version: v0.23.0\n",
		"    {{- if .Values.crds.keep }}\n",
		"    helm.sh/resource-policy: keep\n",
		"    {{- include \"plugin-operator.labels\" . | nindent 4 }}\n",
		"spec:\n  group: example.com\n",
		"      openAPIV3Schema:\n        type: object\n",
		"from config/crd/bases/things.yaml",
	} {
		if !strings.Contains(string(tmpl), want) {
			t.Errorf("template lacks %q:\n%s", want, tmpl)
		}
	}
	if !strings.HasSuffix(string(tmpl), "\n{{- end }}\n") {
		t.Errorf("template does not end the crds.enabled block:\n%s", tmpl)
	}

	for name, tc := range map[string]struct{ content, want string }{
		"two documents":   {crd + crd, "exactly one CustomResourceDefinition"},
		"not a CRD":       {strings.Replace(crd, "kind: CustomResourceDefinition", "kind: ConfigMap", 1), "not an apiextensions.k8s.io/v1 CustomResourceDefinition"},
		"template braces": {strings.Replace(crd, "type: object", "type: object\n        description: '{{ x }}'", 1), "'{{'"},
		"other metadata":  {strings.Replace(crd, "  name: things", "  namespace: x\n  name: things", 1), "unknown field"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := CRDTemplate("x.yaml", []byte(tc.content))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CRDTemplate = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}
