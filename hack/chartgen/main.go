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

// Command chartgen keeps the Helm chart in sync with config/, which controller-gen generates
// from the Go markers (`make manifests`):
//
//   - each CRD of config/crd/bases/*.yaml becomes a template in
//     charts/plugin-operator/templates/crds/ (stale files there are removed): the same
//     object, rendered when crds.enabled, with the chart's labels and, when crds.keep,
//     `helm.sh/resource-policy: keep`. Templates rather than the chart's crds/ directory
//     because Helm never upgrades what crds/ holds (cert-manager's chart does the same);
//     the rule groups of config/components/alerts/prometheusrule.yaml are copied into
//     charts/plugin-operator/files/prometheus-rules.yaml (the chart's PrometheusRule reads
//     it with .Files.Get, so the alerts' {{ $labels }} are not taken for Helm templating);
//   - config/components/dashboard/plugin-operator.json (a Grafana dashboard) is copied into
//     charts/plugin-operator/files/grafana-dashboard.json;
//   - the rules of the ClusterRole manager-role in config/rbac/role.yaml become the rules of
//     charts/plugin-operator/templates/manager-role.yaml.
//
// Run it with `make chart` after `make manifests`. test/manifests fails when the chart is
// stale.
//
// Usage: go run ./hack/chartgen [-root DIR]
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	chartDir     = "charts/plugin-operator"
	crdSourceDir = "config/crd/bases"
	// crdTemplateDir holds the generated CRD templates, relative to the chart.
	crdTemplateDir = "templates/crds"
	// legacyCRDDir is the chart's crds/ directory of chart 0.1.0, which chartgen removes.
	legacyCRDDir = "crds"
	// rulesSource is the PrometheusRule of the kustomize tree; rulesFile its groups in the
	// chart, relative to the chart.
	rulesSource = "config/components/alerts/prometheusrule.yaml"
	rulesFile   = "files/prometheus-rules.yaml"
	// dashboardSource is the Grafana dashboard of the kustomize tree, copied byte for byte
	// into the chart (dashboardFile, relative to the chart).
	dashboardSource = "config/components/dashboard/plugin-operator.json"
	dashboardFile   = "files/grafana-dashboard.json"
	roleSource      = "config/rbac/role.yaml"
	managerRoleName = "manager-role"
	// managerRoleTemplate is the generated template, relative to the chart.
	managerRoleTemplate = "templates/manager-role.yaml"
)

func main() {
	root := flag.String("root", ".", "repository root")
	flag.Parse()
	if err := run(*root); err != nil {
		fmt.Fprintln(os.Stderr, "chartgen:", err)
		os.Exit(1)
	}
}

func run(root string) error {
	if err := syncCRDs(root); err != nil {
		return err
	}
	if err := syncRules(root); err != nil {
		return err
	}
	if err := syncDashboard(root); err != nil {
		return err
	}
	rules, err := ManagerRules(filepath.Join(root, roleSource))
	if err != nil {
		return err
	}
	tmpl, err := managerRoleTemplateFor(rules)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(root, chartDir, managerRoleTemplate), tmpl, 0o644)
}

func syncCRDs(root string) error {
	src := filepath.Join(root, crdSourceDir)
	dst := filepath.Join(root, chartDir, crdTemplateDir)
	srcFiles, err := filepath.Glob(filepath.Join(src, "*.yaml"))
	if err != nil {
		return err
	}
	if len(srcFiles) == 0 {
		return fmt.Errorf("no CRDs in %s: run `make manifests` first", src)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, f := range srcFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		name := filepath.Base(f)
		tmpl, err := CRDTemplate(filepath.ToSlash(filepath.Join(crdSourceDir, name)), b)
		if err != nil {
			return err
		}
		want[name] = true
		if err := os.WriteFile(filepath.Join(dst, name), tmpl, 0o644); err != nil {
			return err
		}
	}
	old, err := filepath.Glob(filepath.Join(dst, "*"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if !want[filepath.Base(f)] {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	// Chart 0.1.0 shipped the CRDs in crds/; both would install them twice.
	return os.RemoveAll(filepath.Join(root, chartDir, legacyCRDDir))
}

// crdDoc is what chartgen accepts in a CRD file: the spec is carried over as it is.
type crdDoc struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations,omitempty"`
		Labels      map[string]string `json:"labels,omitempty"`
	} `json:"metadata"`
	Spec map[string]any `json:"spec"`
}

// CRDTemplate turns one CRD file of controller-gen into a chart template that renders the
// same object when crds.enabled, with the chart's labels added and, when crds.keep, the
// annotation that keeps Helm from deleting it. source names the file in the header.
func CRDTemplate(source string, content []byte) ([]byte, error) {
	var docs [][]byte
	dec := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(content)))
	for {
		doc, err := dec.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
	if len(docs) != 1 {
		return nil, fmt.Errorf("%s: want exactly one CustomResourceDefinition, found %d documents", source, len(docs))
	}
	var crd crdDoc
	if err := yaml.UnmarshalStrict(docs[0], &crd); err != nil {
		return nil, fmt.Errorf("%s: %w (chartgen carries over only metadata.name, annotations and labels)", source, err)
	}
	if crd.Kind != "CustomResourceDefinition" || crd.APIVersion != "apiextensions.k8s.io/v1" || crd.Metadata.Name == "" || len(crd.Spec) == 0 {
		return nil, fmt.Errorf("%s: not an apiextensions.k8s.io/v1 CustomResourceDefinition with a name and a spec", source)
	}
	spec, err := yaml.Marshal(crd.Spec)
	if err != nil {
		return nil, err
	}
	if bytes.Contains(spec, []byte("{{")) || bytes.Contains(docs[0], []byte("{{")) {
		return nil, fmt.Errorf("%s contains '{{', which Helm would read as a template", source)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{{- /*
Generated by `+"`make chart`"+` (hack/chartgen) from %s, which `+"`make manifests`"+`
generates from api/. DO NOT EDIT.
*/ -}}
{{- if .Values.crds.enabled }}
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %s
  annotations:
`, source, crd.Metadata.Name)
	writeMap(&b, crd.Metadata.Annotations, 4)
	b.WriteString(`    {{- if .Values.crds.keep }}
    # helm uninstall, or crds.enabled=false, leaves this CRD and every object of it alone.
    helm.sh/resource-policy: keep
    {{- end }}
  labels:
`)
	writeMap(&b, crd.Metadata.Labels, 4)
	b.WriteString(`    {{- include "plugin-operator.labels" . | nindent 4 }}
spec:
`)
	for _, l := range strings.SplitAfter(strings.TrimRight(string(spec), "\n"), "\n") {
		b.WriteString("  " + l)
	}
	b.WriteString("\n{{- end }}\n")
	return b.Bytes(), nil
}

// writeMap writes a string map as YAML, indented.
func writeMap(b *bytes.Buffer, m map[string]string, indent int) {
	if len(m) == 0 {
		return
	}
	y, _ := yaml.Marshal(m) // a map of strings always marshals
	for _, l := range strings.SplitAfter(strings.TrimRight(string(y), "\n"), "\n") {
		b.WriteString(strings.Repeat(" ", indent) + l)
	}
	b.WriteString("\n")
}

// syncRules copies the rule groups of the kustomize tree's PrometheusRule into the chart.
func syncRules(root string) error {
	src := filepath.Join(root, rulesSource)
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var rule struct {
		Kind string `json:"kind"`
		Spec struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &rule); err != nil {
		return fmt.Errorf("%s: %w", rulesSource, err)
	}
	if rule.Kind != "PrometheusRule" || len(rule.Spec.Groups) == 0 {
		return fmt.Errorf("%s: want a PrometheusRule with spec.groups", rulesSource)
	}
	groups, err := yaml.Marshal(map[string]any{"groups": rule.Spec.Groups})
	if err != nil {
		return err
	}
	out := append([]byte("# Generated by `make chart` (hack/chartgen) from "+rulesSource+"'s spec. DO NOT EDIT.\n"+
		"# A Prometheus rule file: `promtool check rules` and `promtool test rules` read it as it is.\n"), groups...)
	dst := filepath.Join(root, chartDir, rulesFile)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, out, 0o644)
}

// syncDashboard copies the Grafana dashboard into the chart, after checking it is JSON.
func syncDashboard(root string) error {
	b, err := os.ReadFile(filepath.Join(root, dashboardSource))
	if err != nil {
		return err
	}
	if !json.Valid(b) {
		return fmt.Errorf("%s is not valid JSON", dashboardSource)
	}
	dst := filepath.Join(root, chartDir, dashboardFile)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// ManagerRules reads the rules of the ClusterRole manager-role from a controller-gen
// role.yaml. It fails if the file holds anything else, so that a namespaced Role added by a
// marker is not silently left out of the chart.
func ManagerRules(path string) ([]rbacv1.PolicyRule, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist: it is generated from the +kubebuilder:rbac markers of controllers/ by `make manifests`", path)
	}
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var found *rbacv1.ClusterRole
	for {
		doc, err := dec.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var role rbacv1.ClusterRole
		if err := yaml.UnmarshalStrict(doc, &role); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if role.Kind != "ClusterRole" || role.Name != managerRoleName || found != nil {
			return nil, fmt.Errorf("%s: want exactly one ClusterRole %s, found %s %s too: teach hack/chartgen and the chart about it",
				path, managerRoleName, role.Kind, role.Name)
		}
		found = &role
	}
	if found == nil {
		return nil, fmt.Errorf("%s: no ClusterRole %s", path, managerRoleName)
	}
	return found.Rules, nil
}

func managerRoleTemplateFor(rules []rbacv1.PolicyRule) ([]byte, error) {
	y, err := yaml.Marshal(rules)
	if err != nil {
		return nil, err
	}
	if bytes.Contains(y, []byte("{{")) {
		return nil, errors.New("manager rules contain '{{', which Helm would read as a template")
	}
	var b bytes.Buffer
	b.WriteString(`{{- /*
Generated by ` + "`make chart`" + ` (hack/chartgen) from config/rbac/role.yaml, which ` + "`make manifests`" + `
generates from the +kubebuilder:rbac markers of controllers/. DO NOT EDIT.
*/ -}}
{{- if .Values.rbac.create }}
# The manager's permissions, bound cluster-wide or in each of watchNamespaces (rbac.yaml).
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ include "plugin-operator.fullname" . }}-manager-role
  labels:
    {{- include "plugin-operator.labels" . | nindent 4 }}
rules:
`)
	b.Write(y)
	b.WriteString("{{- end }}\n")
	return b.Bytes(), nil
}

func stripComments(doc []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return []byte(strings.Join(out, "\n"))
}
