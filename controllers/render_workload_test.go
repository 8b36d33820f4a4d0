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
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/psa"
)

var params = workloadParams{DefaultImage: "example.com/pluginhost:v1", SecretsDir: DefaultSecretsMountPath}

func TestRenderDeployment(t *testing.T) {
	host := testHost("demo", time.Hour, matchApp("demo"))
	host.Spec.PollInterval = &metav1.Duration{Duration: 100 * time.Millisecond}
	host.Spec.LogLevel = v1alpha1.LogLevelDebug
	host.Spec.PodLabels = map[string]string{"team": "a", v1alpha1.LabelHost: "spoofed"}
	host.Spec.PodAnnotations = map[string]string{"note": "x", v1alpha1.ConfigRevisionAnnotation: "sha256:spoofed"}
	d := renderDeployment(&host, params)

	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != "Recreate" {
		t.Errorf("replicas %d strategy %s: want 1 and Recreate", *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	if ref := d.OwnerReferences; len(ref) != 1 || ref[0].Kind != "PluginHost" || !*ref[0].Controller || ref[0].UID != host.UID {
		t.Errorf("owner references %+v", ref)
	}
	tmpl := d.Spec.Template
	if tmpl.Labels[v1alpha1.LabelHost] != "demo" || tmpl.Labels["team"] != "a" {
		t.Errorf("pod labels %v: want the operator's host label over the user's", tmpl.Labels)
	}
	if d.Spec.Selector.MatchLabels[v1alpha1.LabelHost] != "demo" || len(d.Spec.Selector.MatchLabels) != 1 {
		t.Errorf("selector %v", d.Spec.Selector.MatchLabels)
	}
	if _, ok := tmpl.Annotations[v1alpha1.ConfigRevisionAnnotation]; ok || tmpl.Annotations["note"] != "x" {
		t.Errorf("template annotations %v: the revision never goes into the template", tmpl.Annotations)
	}
	c := tmpl.Spec.Containers[0]
	wantArgs := []string{"--config=/var/run/plugins/config/config.json", "--listen=:8080", "--poll-interval=100ms",
		"--state-dir=/var/lib/pluginhost", "--snapshot-interval=5s", "--log-format=json", "--log-level=debug"}
	if !slices.Equal(c.Command, []string{"/pluginhost"}) || !slices.Equal(c.Args, wantArgs) {
		t.Errorf("command %q args %q, want /pluginhost %q", c.Command, c.Args, wantArgs)
	}
	if c.Image != params.DefaultImage {
		t.Errorf("image %q, want the default", c.Image)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("ports %+v", c.Ports)
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" ||
		c.LivenessProbe.HTTPGet.Port.StrVal != "http" || c.ReadinessProbe.HTTPGet.Port.StrVal != "http" {
		t.Errorf("probes %+v %+v", c.LivenessProbe.HTTPGet, c.ReadinessProbe.HTTPGet)
	}
	// No probe before the process can listen, and a restart only for a process that never
	// serves /healthz (a refused config is no reason).
	if sp := c.StartupProbe; sp == nil || sp.HTTPGet.Path != "/healthz" || sp.InitialDelaySeconds < 1 || sp.PeriodSeconds != 1 ||
		sp.FailureThreshold*sp.PeriodSeconds < 30 {
		t.Errorf("startup probe %+v: want /healthz after 1s, every second, for at least 30s", sp)
	}
	sc, psc := c.SecurityContext, tmpl.Spec.SecurityContext
	if !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		!*psc.RunAsNonRoot || *psc.RunAsUser != 65532 || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault ||
		*tmpl.Spec.AutomountServiceAccountToken {
		t.Errorf("security context %+v / %+v", sc, psc)
	}
	if v := psa.CheckRestricted(&tmpl.ObjectMeta, &tmpl.Spec); len(v) > 0 {
		t.Errorf("the pod template violates the restricted Pod Security Standard: %v", v)
	}

	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		if m.SubPath != "" || m.SubPathExpr != "" {
			t.Errorf("mount %s uses subPath: kubelet never updates those", m.Name)
		}
		mounts[m.Name] = m
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range tmpl.Spec.Volumes {
		volumes[v.Name] = v
	}
	if mounts["config"].MountPath != "/var/run/plugins/config" || volumes["config"].ConfigMap.Name != "demo-config" {
		t.Errorf("config volume %+v mount %+v", volumes["config"], mounts["config"])
	}
	if mounts["credentials"].MountPath != "/var/run/plugins/secrets" || volumes["credentials"].Secret.SecretName != "demo-credentials" {
		t.Errorf("credentials volume %+v mount %+v", volumes["credentials"], mounts["credentials"])
	}
	if mounts["state"].MountPath != "/var/lib/pluginhost" || volumes["state"].EmptyDir == nil {
		t.Errorf("state volume %+v: want an emptyDir without persistence", volumes["state"])
	}

	host.Spec.Persistence = &v1alpha1.PersistenceSpec{Enabled: true, Size: ptr.To(resource.MustParse("2Gi")),
		StorageClassName: ptr.To("fast"), SnapshotInterval: &metav1.Duration{Duration: time.Second}}
	host.Spec.Image = "example.com/custom:v2"
	d = renderDeployment(&host, params)
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "state" && (v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "demo-state") {
			t.Errorf("state volume %+v: want the PVC demo-state", v)
		}
	}
	if c := d.Spec.Template.Spec.Containers[0]; c.Image != "example.com/custom:v2" || !slices.Contains(c.Args, "--snapshot-interval=1s") {
		t.Errorf("image %q args %q", c.Image, c.Args)
	}
	claim := renderStateClaim(&host)
	if claim.Name != "demo-state" || *claim.Spec.StorageClassName != "fast" ||
		claim.Spec.Resources.Requests.Storage().String() != "2Gi" || len(claim.OwnerReferences) != 1 {
		t.Errorf("claim %+v", claim)
	}
	host.Spec.Persistence.Enabled = false
	if renderStateClaim(&host) != nil {
		t.Error("a claim without persistence")
	}
}

// TestDeploymentIgnoresConfiguration: the Deployment is a function of the PluginHost alone;
// the configuration a host runs (its status, its Plugins) never reaches the pod template.
func TestDeploymentIgnoresConfiguration(t *testing.T) {
	host := testHost("demo", time.Hour, matchApp("demo"))
	before := renderDeployment(&host, params)
	host.Status = v1alpha1.PluginHostStatus{ConfigRevision: "sha256:abc", PluginCount: 3,
		Plugins: []v1alpha1.SelectedPluginStatus{{Name: "p", Generation: 4, Reason: v1alpha1.ReasonAccepted}}}
	if after := renderDeployment(&host, params); !equality.Semantic.DeepEqual(before, after) {
		t.Error("the Deployment depends on the host's status")
	}
}

func TestRenderService(t *testing.T) {
	host := testHost("demo", time.Hour, matchApp("demo"))
	s := renderService(&host)
	if s.Spec.Type != corev1.ServiceTypeClusterIP || s.Spec.Ports[0].Port != 8080 || s.Spec.Ports[0].TargetPort.StrVal != "http" ||
		s.Spec.Selector[v1alpha1.LabelHost] != "demo" {
		t.Errorf("service %+v", s.Spec)
	}
	host.Spec.Service = &v1alpha1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Port: 9090}
	if s := renderService(&host); s.Spec.Type != corev1.ServiceTypeNodePort || s.Spec.Ports[0].Port != 9090 {
		t.Errorf("service %+v", s.Spec)
	}
	if got := pluginURL(&host, "c1"); got != "http://demo.ns.svc:9090/plugins/c1" {
		t.Errorf("plugin URL %q", got)
	}
}

func TestApplyPrunesNulls(t *testing.T) {
	m := map[string]any{"metadata": map[string]any{"creationTimestamp": nil, "name": "x"},
		"spec": map[string]any{"emptyDir": map[string]any{}, "list": []any{map[string]any{"a": nil, "b": 1}}}}
	pruneNulls(m)
	md := m["metadata"].(map[string]any)
	if _, ok := md["creationTimestamp"]; ok {
		t.Error("null creationTimestamp kept")
	}
	spec := m["spec"].(map[string]any)
	if _, ok := spec["emptyDir"]; !ok {
		t.Error("empty object removed: emptyDir: {} means something")
	}
	if _, ok := spec["list"].([]any)[0].(map[string]any)["a"]; ok {
		t.Error("null in a list element kept")
	}
}
