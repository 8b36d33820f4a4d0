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

package v1alpha1_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// TestSamples creates every object of config/samples/kustomization.yaml.
func TestSamples(t *testing.T) {
	needEnv(t)
	dir := filepath.Join(env.RepoRoot, "config", "samples")
	var kustomization struct {
		Resources []string `json:"resources"`
	}
	readYAML(t, filepath.Join(dir, "kustomization.yaml"), &kustomization)
	if len(kustomization.Resources) < 3 {
		t.Fatalf("config/samples/kustomization.yaml lists %d resources, want at least 3", len(kustomization.Resources))
	}
	ns := newNamespace(t)
	kinds := map[string]int{}
	for _, file := range kustomization.Resources {
		for _, obj := range readObjects(t, filepath.Join(dir, file)) {
			obj.SetNamespace(ns)
			if err := env.Client.Create(context.Background(), obj); err != nil {
				t.Errorf("%s: creating %s %s: %v", file, obj.GetKind(), obj.GetName(), err)
			}
			kinds[obj.GetKind()]++
		}
	}
	if kinds["Plugin"] < 2 || kinds["PluginHost"] < 1 || kinds["Secret"] < 1 {
		t.Errorf("samples hold %v, want at least 2 Plugins, 1 PluginHost and 1 Secret", kinds)
	}
}

// TestSamplesLeaveChildNamesFree: no sample object other than a Plugin or PluginHost takes a
// name that a PluginHost named after a sample Plugin or PluginHost would give a child of its
// kind (<name>, <name>-config, <name>-credentials, <name>-state); the operator would refuse to take it over
// (ChildConflict), and a user copying the samples would meet that.
func TestSamplesLeaveChildNamesFree(t *testing.T) {
	dir := filepath.Join("..", "..", "config", "samples")
	var kustomization struct {
		Resources []string `json:"resources"`
	}
	readYAML(t, filepath.Join(dir, "kustomization.yaml"), &kustomization)
	var objs []*unstructured.Unstructured
	for _, file := range kustomization.Resources {
		objs = append(objs, readObjects(t, filepath.Join(dir, file))...)
	}
	taken := map[string]string{}
	for _, o := range objs {
		if o.GetKind() != "Plugin" && o.GetKind() != "PluginHost" {
			taken[o.GetName()] = o.GetKind()
		}
	}
	// The child of each name, by kind.
	children := map[string]string{"": "Deployment Service", "-config": "ConfigMap", "-credentials": "Secret", "-state": "PersistentVolumeClaim"}
	for _, o := range objs {
		if o.GetKind() != "Plugin" && o.GetKind() != "PluginHost" {
			continue
		}
		for suffix, kinds := range children {
			if kind, ok := taken[o.GetName()+suffix]; ok && strings.Contains(kinds, kind) {
				t.Errorf("%s %s takes the name of a child of a PluginHost named %s", kind, o.GetName()+suffix, o.GetName())
			}
		}
	}
}

// TestKubectl applies the samples with kustomize and reads `kubectl explain`, through a
// real kubectl and the admin kubeconfig.
func TestKubectl(t *testing.T) {
	needEnv(t)
	if env.Kubectl == "" {
		t.Fatal("no kubectl in KUBEBUILDER_ASSETS; `make k8s-binaries` builds it")
	}
	ns := newNamespace(t)
	out := kubectl(t, "apply", "--server-side", "--field-manager=samples-test", "-n", ns, "-k", filepath.Join(env.RepoRoot, "config", "samples"))
	for _, want := range []string{"pluginhost.plugins.hotreload.io/demo", "plugin.plugins.hotreload.io/counter-1", "plugin.plugins.hotreload.io/counter-2"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply -k output lacks %q:\n%s", want, out)
		}
	}
	out = kubectl(t, "get", "hotreload", "-n", ns)
	for _, want := range []string{"counter-1", "counter-2", "demo", "TYPE", "ENABLED", "READY", "REASON", "PLUGINS", "AVAILABLE"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get hotreload output lacks %q:\n%s", want, out)
		}
	}
	explain := []struct{ field, want string }{
		{"plg.spec.auth.method", "`basic` requires HTTP basic authentication with the Secret's `username` and `password`"},
		{"plg.spec.auth", "the runtime checks them on each incoming request"},
		{"plugins.spec.connection.idleTimeout", "Go duration"},
		{"plugins.spec.options", "passed through unchanged"},
		{"ph.spec.persistence", "emptyDir"},
		{"pluginhosts.status.configRevision", "sha256:"},
	}
	for _, e := range explain {
		if out := kubectl(t, "explain", e.field); !strings.Contains(strings.Join(strings.Fields(out), " "), e.want) {
			t.Errorf("kubectl explain %s lacks %q:\n%s", e.field, e.want, out)
		}
	}
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(env.Kubectl, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func readObjects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}
