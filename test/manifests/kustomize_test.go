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
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

const (
	kustomizeNamespace = "plugin-operator-system"
	kustomizePrefix    = "plugin-operator-"
)

// TestKustomizeDefault renders config/default (what `kubectl apply -k config/default` and
// `make deploy` install) and dry-runs it against the API server.
func TestKustomizeDefault(t *testing.T) {
	objs := kustomize(t, "config/default")
	img := publishedImage(t)

	wantObjects := map[string][]string{
		"Namespace":                {kustomizeNamespace},
		"CustomResourceDefinition": {"plugins.plugins.hotreload.io", "pluginhosts.plugins.hotreload.io"},
		"ServiceAccount":           {"controller-manager"},
		"Deployment":               {"controller-manager"},
		"Service":                  {"controller-manager-metrics-service"},
		"Role":                     {"leader-election-role"},
		"RoleBinding":              {"leader-election-rolebinding"},
		"ClusterRole": {"manager-role", "metrics-auth-role", "metrics-reader",
			"plugin-editor-role", "plugin-viewer-role", "pluginhost-editor-role", "pluginhost-viewer-role"},
		"ClusterRoleBinding": {"manager-rolebinding", "metrics-auth-rolebinding"},
	}
	n := 0
	for kind, names := range wantObjects {
		for _, name := range names {
			if kind != "Namespace" && kind != "CustomResourceDefinition" {
				name = kustomizePrefix + name
			}
			mustFind(t, objs, kind, name)
			n++
		}
	}
	if len(objs) != n {
		t.Errorf("config/default renders %d objects, want %d: %s", len(objs), n, describe(objs))
	}
	for _, o := range objs {
		if ns := o.GetNamespace(); ns != "" && ns != kustomizeNamespace {
			t.Errorf("%s %s is in namespace %s, want %s", o.GetKind(), o.GetName(), ns, kustomizeNamespace)
		}
	}
	ns := toTyped[corev1.Namespace](t, mustFind(t, objs, "Namespace", kustomizeNamespace))
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("Namespace %s labels %v: want pod-security.kubernetes.io/enforce=restricted", ns.Name, ns.Labels)
	}

	checkInstallation(t, objs, installation{
		namespace: kustomizeNamespace, prefix: kustomizePrefix,
		image: img.String(), hostImage: img.String(),
		flags: map[string]string{
			"leader-elect": "true", "metrics-bind-address": ":8443", "metrics-secure": "true",
			"health-probe-bind-address": ":8081", "pod-nudge": "true",
		},
		metricsPort: 8443,
	})
	checkCRDsMatchBases(t, objs)
	checkPodSecurity(t, objs)
	dryRunApply(t, objs)
}

// checkCRDsMatchBases checks that the rendered CRDs are those of config/crd/bases, unchanged.
func checkCRDsMatchBases(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	checkCRDs(t, objs, nil)
}

// checkCRDs checks that the rendered CRDs are those of config/crd/bases; strip, when not nil,
// first removes from each rendered CRD what the installer adds on purpose (and checks it).
func checkCRDs(t *testing.T, objs []*unstructured.Unstructured, strip func(*unstructured.Unstructured)) {
	t.Helper()
	bases, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(bases) == 0 {
		t.Fatalf("no CRDs in config/crd/bases (%v)", err)
	}
	for _, f := range bases {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		if err := yaml.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		name, _, _ := unstructured.NestedString(want, "metadata", "name")
		got := find(objs, "CustomResourceDefinition", name)
		if got == nil {
			t.Errorf("CRD %s (%s) is not rendered", name, filepath.Base(f))
			continue
		}
		if strip != nil {
			got = got.DeepCopy()
			strip(got)
		}
		if !reflect.DeepEqual(got.Object, want) {
			t.Errorf("rendered CRD %s differs from %s", name, filepath.Base(f))
		}
	}
	if got := len(ofKind(objs, "CustomResourceDefinition")); got != len(bases) {
		t.Errorf("rendered %d CRDs, config/crd/bases has %d", got, len(bases))
	}
}

// TestKustomizePrometheus renders config/default with the optional ServiceMonitor enabled,
// as its kustomization.yaml says to do, and dry-runs it (with the Prometheus Operator's
// ServiceMonitor CRD installed).
func TestKustomizePrometheus(t *testing.T) {
	needEnv(t)
	tmp := t.TempDir()
	copyTree(t, filepath.Join(root, "config"), filepath.Join(tmp, "config"))
	kfile := filepath.Join(tmp, "config", "default", "kustomization.yaml")
	b, err := os.ReadFile(kfile)
	if err != nil {
		t.Fatal(err)
	}
	const commented = "#- ../prometheus"
	if !strings.Contains(string(b), commented) {
		t.Fatalf("config/default/kustomization.yaml no longer has the line %q that enables the ServiceMonitor", commented)
	}
	if err := os.WriteFile(kfile, []byte(strings.Replace(string(b), commented, "- ../prometheus", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	objs := kustomize(t, filepath.Join(tmp, "config", "default"))
	checkServiceMonitor(t, objs, mustFind(t, objs, "ServiceMonitor", kustomizePrefix+"controller-manager-metrics-monitor"),
		kustomizePrefix+"controller-manager-metrics-service", "https")
	dryRunApply(t, objs)
}

// checkServiceMonitor checks that the ServiceMonitor selects the metrics Service (and only
// it) in its namespace, on a port the Service has, with the scheme the manager serves.
func checkServiceMonitor(t *testing.T, objs []*unstructured.Unstructured, sm *unstructured.Unstructured, service, scheme string) {
	t.Helper()
	svc := toTyped[corev1.Service](t, mustFind(t, objs, "Service", service))
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	if len(sel) == 0 || !labels.SelectorFromSet(sel).Matches(labels.Set(svc.Labels)) {
		t.Errorf("ServiceMonitor selector %v does not match Service %s labels %v", sel, svc.Name, svc.Labels)
	}
	for _, o := range ofKind(objs, "Service") {
		if o.GetName() != service && labels.SelectorFromSet(sel).Matches(labels.Set(o.GetLabels())) {
			t.Errorf("ServiceMonitor selector %v also matches Service %s", sel, o.GetName())
		}
	}
	if sm.GetNamespace() != svc.Namespace {
		if nss, _, _ := unstructured.NestedStringSlice(sm.Object, "spec", "namespaceSelector", "matchNames"); len(nss) != 1 || nss[0] != svc.Namespace {
			t.Errorf("ServiceMonitor in %s does not select namespace %s", sm.GetNamespace(), svc.Namespace)
		}
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(eps) != 1 {
		t.Fatalf("ServiceMonitor endpoints = %v, want one", eps)
	}
	ep := eps[0].(map[string]any)
	if len(svc.Spec.Ports) != 1 || ep["port"] != svc.Spec.Ports[0].Name {
		t.Errorf("ServiceMonitor endpoint port %v is not the Service's port %+v", ep["port"], svc.Spec.Ports)
	}
	if ep["scheme"] != scheme {
		t.Errorf("ServiceMonitor endpoint scheme = %v, want %s", ep["scheme"], scheme)
	}
	_, hasToken := ep["bearerTokenFile"]
	if hasToken != (scheme == "https") {
		t.Errorf("ServiceMonitor endpoint bearerTokenFile set = %v, want %v (secure metrics need a token)", hasToken, scheme == "https")
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRenderDeploy checks hack/render-deploy.sh, behind `make deploy IMG=…`: the manager and
// the default host image both become IMG, whatever its form, and no tracked file changes.
func TestRenderDeploy(t *testing.T) {
	k := kubectl(t)
	digest := "sha256:" + strings.Repeat("ab", 32)
	for img, want := range map[string]string{
		"example.com/team/plugin-operator:v1.2.3": "example.com/team/plugin-operator:v1.2.3",
		"localhost:5000/po":                       "localhost:5000/po:latest",
		"localhost:5000/po:dev":                   "localhost:5000/po:dev",
		"registry.example.com/po@" + digest:       "registry.example.com/po@" + digest,
	} {
		t.Run(img, func(t *testing.T) {
			objs := decodeObjects(t, mustRun(t, filepath.Join(root, "hack", "render-deploy.sh"), img, k))
			checkInstallation(t, objs, installation{
				namespace: kustomizeNamespace, prefix: kustomizePrefix,
				image: want, hostImage: want, metricsPort: 8443,
			})
		})
	}
	if _, _, err := runCmd(filepath.Join(root, "hack", "render-deploy.sh"), "", k); err == nil {
		t.Error("render-deploy.sh with an empty IMAGE succeeded")
	}
	left, _ := filepath.Glob(filepath.Join(root, "bin", "deploy-overlay.*"))
	if len(left) > 0 {
		t.Errorf("render-deploy.sh left its overlay behind: %q", left)
	}
}
