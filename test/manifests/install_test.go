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
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// managerDefaults are the manager's flag defaults (cmd/manager), for flags an installation
// may leave out.
var managerDefaults = map[string]string{
	"leader-elect":              "false",
	"leader-election-id":        "plugin-operator.plugins.hotreload.io",
	"metrics-bind-address":      ":8443",
	"metrics-secure":            "true",
	"health-probe-bind-address": ":8081",
	"pod-nudge":                 "true",
	"config-push":               "true",
	"default-host-image":        "",
	"zap-log-level":             "info",
}

// published is the image of config/manager's images: entry and of the chart's defaults.
type published struct{ repository, tag string }

func (p published) String() string { return p.repository + ":" + p.tag }

// publishedImage reads the chart's image.repository and appVersion.
func publishedImage(t *testing.T) published {
	t.Helper()
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	readYAML(t, "charts/plugin-operator/Chart.yaml", &chart)
	var values struct {
		Image struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"image"`
	}
	readYAML(t, "charts/plugin-operator/values.yaml", &values)
	if values.Image.Tag != "" {
		t.Errorf("values.yaml image.tag = %q, want empty (the chart's appVersion)", values.Image.Tag)
	}
	return published{repository: values.Image.Repository, tag: chart.AppVersion}
}

func readYAML(t *testing.T, rel string, into any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// installation describes what a rendered installation must hold.
type installation struct {
	// namespace of the manager; prefix of every name (the kustomize namePrefix, or the Helm
	// release's full name followed by "-").
	namespace, prefix string
	// image of the manager, and the default host image it is given.
	image, hostImage string
	// flags are the manager's expected effective flags (managerDefaults filled in); only
	// those listed are compared.
	flags map[string]string
	// metrics: the metrics Service exists and serves on this port (0: no metrics).
	metricsPort int32
}

// checkInstallation checks the invariants every installation must hold: the manager's
// Deployment and its flags, the restricted security context, references between objects
// (roleRefs, subjects, ServiceAccount, Service selector and port), and that every object
// lives in the manager's namespace (or is cluster-scoped) and carries the name prefix.
func checkInstallation(t *testing.T, objs []*unstructured.Unstructured, want installation) {
	t.Helper()
	dep := toTyped[appsv1.Deployment](t, mustFind(t, objs, "Deployment", want.prefix+"controller-manager"))
	if dep.Namespace != want.namespace {
		t.Errorf("Deployment namespace = %q, want %q", dep.Namespace, want.namespace)
	}
	c := managerContainer(t, dep)
	if c.Image != want.image {
		t.Errorf("manager image = %q, want %q", c.Image, want.image)
	}
	if len(c.Command) != 1 || c.Command[0] != "/manager" {
		t.Errorf("manager command = %q, want [/manager]", c.Command)
	}
	flags := managerFlags(t, c, managerDefaults)
	if flags["default-host-image"] != want.hostImage {
		t.Errorf("--default-host-image = %q, want %q", flags["default-host-image"], want.hostImage)
	}
	for k, v := range want.flags {
		if flags[k] != v {
			t.Errorf("--%s = %q, want %q (args %q)", k, flags[k], v, c.Args)
		}
	}
	if flags["leader-elect"] != "true" && dep.Spec.Replicas != nil && *dep.Spec.Replicas > 1 {
		t.Errorf("%d replicas without --leader-elect", *dep.Spec.Replicas)
	}
	checkManagerPod(t, dep, c, flags)

	// Names, namespaces and references.
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			continue
		}
		if o.GetKind() != "Namespace" && !strings.HasPrefix(o.GetName(), want.prefix) {
			t.Errorf("%s %s: name lacks the prefix %q", o.GetKind(), o.GetName(), want.prefix)
		}
	}
	saName := dep.Spec.Template.Spec.ServiceAccountName
	sa := find(objs, "ServiceAccount", saName)
	if sa == nil && saName != "existing-manager-sa" {
		t.Errorf("the Deployment runs as ServiceAccount %q, which is not rendered", saName)
	}
	for _, kind := range []string{"RoleBinding", "ClusterRoleBinding"} {
		for _, o := range ofKind(objs, kind) {
			b := toTyped[rbacv1.RoleBinding](t, o) // same fields as ClusterRoleBinding
			if find(objs, b.RoleRef.Kind, b.RoleRef.Name) == nil {
				t.Errorf("%s %s refers to %s %s, which is not rendered", kind, b.Name, b.RoleRef.Kind, b.RoleRef.Name)
			}
			for _, s := range b.Subjects {
				if s.Kind == "ServiceAccount" && strings.HasPrefix(s.Name, want.prefix) &&
					(s.Name != saName || s.Namespace != want.namespace) {
					t.Errorf("%s %s binds ServiceAccount %s/%s, want the manager's %s/%s", kind, b.Name, s.Namespace, s.Name, want.namespace, saName)
				}
			}
		}
	}

	svcObj := find(objs, "Service", want.prefix+"controller-manager-metrics-service")
	switch {
	case want.metricsPort == 0 && svcObj != nil:
		t.Errorf("metrics are off, yet Service %s is rendered", svcObj.GetName())
	case want.metricsPort != 0 && svcObj == nil:
		t.Errorf("no metrics Service %scontroller-manager-metrics-service", want.prefix)
	case svcObj != nil:
		svc := toTyped[corev1.Service](t, svcObj)
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(dep.Spec.Template.Labels)) {
			t.Errorf("metrics Service selector %v does not select the manager's pods %v", svc.Spec.Selector, dep.Spec.Template.Labels)
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != want.metricsPort {
			t.Fatalf("metrics Service ports = %+v, want one on %d", svc.Spec.Ports, want.metricsPort)
		}
		port := containerPort(c, svc.Spec.Ports[0].TargetPort)
		if port == nil || fmt.Sprintf(":%d", port.ContainerPort) != flags["metrics-bind-address"] {
			t.Errorf("metrics Service targets %s, not the container port of --metrics-bind-address=%s", svc.Spec.Ports[0].TargetPort.String(), flags["metrics-bind-address"])
		}
	}
}

// checkManagerPod checks the manager's pod: restricted security context, probes on the
// health port, resources.
func checkManagerPod(t *testing.T, dep *appsv1.Deployment, c *corev1.Container, flags map[string]string) {
	t.Helper()
	spec := dep.Spec.Template.Spec
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("manager container: readOnlyRootFilesystem is not true")
	}
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		t.Error("manager pod: runAsNonRoot is not true")
	}
	if spec.AutomountServiceAccountToken != nil && !*spec.AutomountServiceAccountToken {
		t.Error("manager pod: automountServiceAccountToken is false, but the manager talks to the API server")
	}
	for name, p := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name {
			t.Errorf("manager container: no HTTP probe on %s", name)
			continue
		}
		port := containerPort(c, p.HTTPGet.Port)
		if port == nil || fmt.Sprintf(":%d", port.ContainerPort) != flags["health-probe-bind-address"] {
			t.Errorf("probe %s targets port %s, not --health-probe-bind-address=%s", name, p.HTTPGet.Port.String(), flags["health-probe-bind-address"])
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("manager container: want cpu and memory requests and a memory limit, have %v", c.Resources)
	}
}

// containerPort returns the container port that a Service targetPort or probe port names.
func containerPort(c *corev1.Container, p intstr.IntOrString) *corev1.ContainerPort {
	for i := range c.Ports {
		cp := &c.Ports[i]
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp
		}
	}
	return nil
}
