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
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/internal/testing/psa"
	"github.com/hotreload/plugin-operator/internal/testing/testenv"
)

const howToGetTools = "run the tests with `make test` (it builds kube-apiserver, etcd, kubectl and helm " +
	"into bin/k8s with `make k8s-binaries` and sets KUBEBUILDER_ASSETS to that directory)"

// kubectl returns the kubectl of KUBEBUILDER_ASSETS; the test fails without it.
func kubectl(t *testing.T) string {
	t.Helper()
	needEnv(t)
	if env.Kubectl == "" {
		t.Fatalf("no kubectl in %s=%s: %s", testenv.AssetsEnv, os.Getenv(testenv.AssetsEnv), howToGetTools)
	}
	return env.Kubectl
}

// helm returns the helm of KUBEBUILDER_ASSETS; the test fails without it.
func helm(t *testing.T) string {
	t.Helper()
	needEnv(t)
	p := filepath.Join(os.Getenv(testenv.AssetsEnv), "helm")
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("no helm in %s=%s: %s", testenv.AssetsEnv, os.Getenv(testenv.AssetsEnv), howToGetTools)
	}
	return p
}

// runCmd runs a command in the repository root and returns its stdout and stderr.
func runCmd(name string, args ...string) (stdout, stderr []byte, err error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = root
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, e.Bytes())
	}
	return o.Bytes(), e.Bytes(), err
}

// mustRun runs a command and fails the test if it fails.
func mustRun(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, _, err := runCmd(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// decodeObjects splits a multi-document YAML stream into objects, skipping empty documents.
func decodeObjects(t *testing.T, stream []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(stream), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("decoding rendered YAML: %v", err)
		}
		if len(u.Object) == 0 {
			continue
		}
		objs = append(objs, u)
	}
	if len(objs) == 0 {
		t.Fatal("rendered no objects")
	}
	return objs
}

// kustomize renders a kustomization directory with `kubectl kustomize`.
func kustomize(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	return decodeObjects(t, mustRun(t, kubectl(t), "kustomize", dir))
}

// helmTemplate renders the chart with `helm template` and the given arguments.
func helmTemplate(t *testing.T, args ...string) []*unstructured.Unstructured {
	t.Helper()
	return decodeObjects(t, mustRun(t, helm(t), append([]string{"template"}, args...)...))
}

// restrictedLabels make a namespace enforce, audit and warn at the "restricted" Pod Security
// Standard, latest version.
var restrictedLabels = map[string]string{
	"pod-security.kubernetes.io/enforce":         "restricted",
	"pod-security.kubernetes.io/enforce-version": "latest",
	"pod-security.kubernetes.io/warn":            "restricted",
	"pod-security.kubernetes.io/warn-version":    "latest",
	"pod-security.kubernetes.io/audit":           "restricted",
}

// ensureNamespaces creates namespaces that enforce the restricted Pod Security Standard.
func ensureNamespaces(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: restrictedLabels}}
		if err := env.Client.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating namespace %s: %v", n, err)
		}
	}
}

// namespacesOf returns the namespaces the objects live in (and Namespace objects they
// create), sorted.
func namespacesOf(objs []*unstructured.Unstructured) []string {
	set := map[string]bool{}
	for _, o := range objs {
		if o.GetNamespace() != "" {
			set[o.GetNamespace()] = true
		}
		if o.GetKind() == "Namespace" {
			set[o.GetName()] = true
		}
	}
	var out []string
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

var appliedLine = regexp.MustCompile(`^(\S+) serverside-applied \(server dry run\)$`)

// dryRunApply applies the objects with `kubectl apply --server-side --dry-run=server` as an
// administrator, after creating their namespaces (enforcing the restricted Pod Security
// Standard). The API server validates each one completely (schemas, CEL rules, admission,
// Pod Security of pod templates) and persists nothing. Any warning fails the test: the API
// server warns, among others, about pod templates that would violate Pod Security and
// about deprecated APIs.
func dryRunApply(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	ensureNamespaces(t, namespacesOf(objs)...)
	var buf bytes.Buffer
	for _, o := range objs {
		b, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	// Not t.TempDir(): its name comes from the test's, and kubectl -f splits paths at commas.
	dir, err := os.MkdirTemp("", "manifests-dry-run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	file := filepath.Join(dir, "objects.json")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runCmd(kubectl(t), "--kubeconfig", env.Kubeconfig, "apply",
		"--server-side", "--force-conflicts", "--field-manager=plugin-operator-manifests-test",
		"--dry-run=server", "-f", file)
	if err != nil {
		t.Fatalf("the API server refused the rendered objects: %v", err)
	}
	if w := strings.TrimSpace(string(stderr)); w != "" {
		t.Errorf("the API server warned about the rendered objects:\n%s", w)
	}
	applied := 0
	for _, l := range strings.Split(strings.TrimSpace(string(stdout)), "\n") {
		if appliedLine.MatchString(l) {
			applied++
		}
	}
	if applied != len(objs) {
		t.Errorf("dry-run applied %d objects, want %d:\n%s", applied, len(objs), stdout)
	}
}

// find returns the object of this kind and name, or nil.
func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// mustFind returns the object of this kind and name, or fails the test.
func mustFind(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	if o := find(objs, kind, name); o != nil {
		return o
	}
	t.Fatalf("no %s %s among the rendered objects: %s", kind, name, describe(objs))
	return nil
}

// ofKind returns the objects of a kind.
func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func describe(objs []*unstructured.Unstructured) string {
	var s []string
	for _, o := range objs {
		id := o.GetKind() + " " + o.GetName()
		if o.GetNamespace() != "" {
			id = o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
		}
		s = append(s, id)
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// checkPodSecurity evaluates every pod template among the objects against the restricted
// Pod Security Standard, and fails the test if there is none.
func checkPodSecurity(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	templates := 0
	for _, o := range objs {
		violations, ok, err := psa.CheckObject(o)
		if err != nil {
			t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
			continue
		}
		if !ok {
			continue
		}
		templates++
		if len(violations) > 0 {
			t.Errorf("%s %s violates the restricted Pod Security Standard:\n  %s", o.GetKind(), o.GetName(), strings.Join(violations, "\n  "))
		}
	}
	if templates == 0 {
		t.Errorf("no pod template among the rendered objects (%s)", describe(objs))
	}
}

// toTyped converts an unstructured object into a typed one, rejecting unknown fields.
func toTyped[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	var out T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &out, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return &out
}

// managerContainer returns the Deployment's container "manager".
func managerContainer(t *testing.T, d *appsv1.Deployment) *corev1.Container {
	t.Helper()
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == "manager" {
			return c
		}
	}
	t.Fatalf("Deployment %s has no container named manager", d.Name)
	return nil
}

// envVarRef matches $(VAR) references, which the kubelet expands in args from the
// container's env.
var envVarRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// managerFlags returns the manager's effective command-line flags: args parsed as
// --name=value (a bare --name is "true"), $(VAR) references expanded from the container's
// env as the kubelet does, then defaults filled in for flags that are not given.
func managerFlags(t *testing.T, c *corev1.Container, defaults map[string]string) map[string]string {
	t.Helper()
	vars := map[string]string{}
	for _, e := range c.Env {
		vars[e.Name] = e.Value
	}
	flags := map[string]string{}
	for _, a := range c.Args {
		if !strings.HasPrefix(a, "--") {
			t.Fatalf("manager arg %q is not --flag[=value]", a)
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !hasValue {
			value = "true"
		}
		value = envVarRef.ReplaceAllStringFunc(value, func(ref string) string {
			v, ok := vars[ref[2:len(ref)-1]]
			if !ok {
				t.Errorf("manager arg %q refers to %s, which the container's env does not define", a, ref)
			}
			return v
		})
		if _, dup := flags[name]; dup {
			t.Errorf("manager flag --%s is given twice", name)
		}
		flags[name] = value
	}
	for k, v := range defaults {
		if _, ok := flags[k]; !ok {
			flags[k] = v
		}
	}
	return flags
}

// apply creates or updates an object for real, with server-side apply.
func apply(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	err := env.Client.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
		client.FieldOwner("plugin-operator-manifests-test"), client.ForceOwnership)
	if err != nil {
		t.Fatalf("applying %s %s: %v", o.GetKind(), o.GetName(), err)
	}
}
