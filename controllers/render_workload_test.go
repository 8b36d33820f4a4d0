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
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
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
	wantArgs := []string{"--config=/var/run/plugins/config/config.json", "--listen=:8080", "--ops-addr=:8081", "--poll-interval=100ms",
		"--state-dir=/var/lib/pluginhost", "--snapshot-interval=5s", "--log-format=json", "--log-level=debug"}
	if !slices.Equal(c.Command, []string{"/pluginhost"}) || !slices.Equal(c.Args, wantArgs) {
		t.Errorf("command %q args %q, want /pluginhost %q", c.Command, c.Args, wantArgs)
	}
	if len(c.Env) != 1 || c.Env[0].Name != "PLUGINHOST_PUSH_TOKEN_FILE" || c.Env[0].Value != DefaultSecretsMountPath+"/_push-token" {
		t.Errorf("env %+v, want PLUGINHOST_PUSH_TOKEN_FILE=%s/_push-token only", c.Env, DefaultSecretsMountPath)
	}
	if c.Image != params.DefaultImage {
		t.Errorf("image %q, want the default", c.Image)
	}
	if len(c.Ports) != 2 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 || c.Ports[1].Name != "ops" || c.Ports[1].ContainerPort != 8081 {
		t.Errorf("ports %+v: want http 8080 (the API) and ops 8081 (--ops-addr)", c.Ports)
	}
	// Requests so that a shared node's scheduler counts the host; no limits by default.
	if r := c.Resources; r.Requests.Cpu().String() != "50m" || r.Requests.Memory().String() != "32Mi" || len(r.Limits) != 0 {
		t.Errorf("default resources %+v: want requests cpu 50m memory 32Mi, no limits", r)
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" ||
		c.LivenessProbe.HTTPGet.Port.StrVal != "http" || c.ReadinessProbe.HTTPGet.Port.StrVal != "http" {
		t.Errorf("probes %+v %+v", c.LivenessProbe.HTTPGet, c.ReadinessProbe.HTTPGet)
	}
	// No probe before the process can listen, and a restart only for a process that never
	// serves /healthz (a refused config is no reason, nor waiting for the state dir its
	// predecessor holds: /readyz answers 503 meanwhile, /healthz 200).
	if sp := c.StartupProbe; sp == nil || sp.HTTPGet.Path != "/healthz" || sp.HTTPGet.Port.StrVal != "http" || sp.InitialDelaySeconds < 1 || sp.PeriodSeconds != 1 ||
		sp.FailureThreshold*sp.PeriodSeconds < 30 {
		t.Errorf("startup probe %+v: want /healthz on port http after 1s, every second, for at least 30s", sp)
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
	if mounts["state"].MountPath != "/var/lib/pluginhost" || volumes["state"].EmptyDir == nil ||
		volumes["state"].EmptyDir.SizeLimit == nil || volumes["state"].EmptyDir.SizeLimit.String() != "64Mi" {
		t.Errorf("state volume %+v: want an emptyDir limited to 64Mi without persistence", volumes["state"])
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

// Given resources are kept as they are; the default requests apply only when none are set.
func TestRenderDeploymentResourcesAndStateLimit(t *testing.T) {
	host := testHost("demo", time.Hour, matchApp("demo"))
	host.Spec.Persistence = &v1alpha1.PersistenceSpec{EmptyDirSizeLimit: ptr.To(resource.MustParse("8Mi"))}
	for _, tc := range []struct {
		name string
		in   corev1.ResourceRequirements
	}{
		{"requests", corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}},
		// Kubernetes sets the requests to the limits; the operator adds nothing below them.
		{"limits only", corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}}},
	} {
		host.Spec.Resources = tc.in
		c := renderDeployment(&host, params).Spec.Template.Spec.Containers[0]
		if !equality.Semantic.DeepEqual(c.Resources, tc.in) {
			t.Errorf("%s: resources %+v, want %+v unchanged", tc.name, c.Resources, tc.in)
		}
	}
	for _, v := range renderDeployment(&host, params).Spec.Template.Spec.Volumes {
		if v.Name == "state" && (v.EmptyDir == nil || v.EmptyDir.SizeLimit.String() != "8Mi") {
			t.Errorf("state volume %+v: want spec.persistence.emptyDirSizeLimit 8Mi", v)
		}
	}
}

// A retained claim has no owner reference, so deleting the PluginHost leaves it.
func TestStateClaimRetention(t *testing.T) {
	host := testHost("demo", time.Hour, matchApp("demo"))
	host.Spec.Persistence = &v1alpha1.PersistenceSpec{Enabled: true, WhenDeleted: v1alpha1.ClaimRetain}
	c := renderStateClaim(&host)
	if len(c.OwnerReferences) != 0 || c.Labels[v1alpha1.LabelHost] != "demo" {
		t.Errorf("retained claim: owner references %+v labels %v; want none and the host label", c.OwnerReferences, c.Labels)
	}
	for _, policy := range []v1alpha1.ClaimRetentionPolicy{v1alpha1.ClaimDelete, ""} {
		host.Spec.Persistence.WhenDeleted = policy
		if c := renderStateClaim(&host); len(c.OwnerReferences) != 1 || c.OwnerReferences[0].UID != host.UID {
			t.Errorf("whenDeleted %q: owner references %+v, want the PluginHost", policy, c.OwnerReferences)
		}
	}
}

func TestRenderNetworkPolicy(t *testing.T) {
	host := testHost("demo", time.Hour, matchApp("demo"))
	if renderNetworkPolicy(&host, params) != nil {
		t.Fatal("a NetworkPolicy without spec.networkPolicy")
	}
	host.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{Enabled: false}
	if renderNetworkPolicy(&host, params) != nil {
		t.Fatal("a NetworkPolicy with enabled: false")
	}
	clients := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}}}
	host.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{Enabled: true, From: []networkingv1.NetworkPolicyPeer{clients}}
	p := params
	p.ManagerNamespace, p.ManagerPodLabels = "operator-system", map[string]string{"control-plane": "controller-manager"}
	np := renderNetworkPolicy(&host, p)
	if np.Name != "demo" || len(np.OwnerReferences) != 1 || !equality.Semantic.DeepEqual(np.Spec.PodSelector.MatchLabels, selectorLabels(&host)) ||
		!slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) || len(np.Spec.Ingress) != 2 {
		t.Fatalf("NetworkPolicy %+v", np)
	}
	api, ops := np.Spec.Ingress[0], np.Spec.Ingress[1]
	if len(api.Ports) != 1 || api.Ports[0].Port.StrVal != "http" || !equality.Semantic.DeepEqual(api.From, []networkingv1.NetworkPolicyPeer{clients}) {
		t.Errorf("API rule %+v: want port http from the declared clients", api)
	}
	if len(ops.Ports) != 1 || ops.Ports[0].Port.StrVal != "ops" || len(ops.From) != 1 ||
		ops.From[0].NamespaceSelector.MatchLabels[corev1.LabelMetadataName] != "operator-system" ||
		ops.From[0].PodSelector.MatchLabels["control-plane"] != "controller-manager" {
		t.Errorf("ops rule %+v: want port ops from the manager's pods only", ops)
	}
	// No declared clients: the API port admits everyone (an empty from), the ops port still
	// only the manager; without a namespace, the manager's labels in the host's namespace.
	host.Spec.NetworkPolicy.From = nil
	p.ManagerNamespace = ""
	np = renderNetworkPolicy(&host, p)
	if api, ops := np.Spec.Ingress[0], np.Spec.Ingress[1]; len(api.From) != 0 || len(ops.From) != 1 || ops.From[0].NamespaceSelector != nil ||
		len(ops.From[0].PodSelector.MatchLabels) == 0 {
		t.Errorf("rules %+v", np.Spec.Ingress)
	}
}

func TestRenderBudget(t *testing.T) {
	host := testHost("demo", time.Hour, matchApp("demo"))
	if renderBudget(&host) != nil {
		t.Fatal("a PodDisruptionBudget without spec.podDisruptionBudget")
	}
	host.Spec.PodDisruptionBudget = &v1alpha1.PodDisruptionBudgetSpec{Enabled: true}
	b := renderBudget(&host)
	// One pod: only maxUnavailable 1 lets a drain evict it; minAvailable would block forever.
	if b.Name != "demo" || b.Spec.MinAvailable != nil || b.Spec.MaxUnavailable.IntValue() != 1 ||
		*b.Spec.UnhealthyPodEvictionPolicy != policyv1.AlwaysAllow || !equality.Semantic.DeepEqual(b.Spec.Selector.MatchLabels, selectorLabels(&host)) {
		t.Errorf("budget %+v", b.Spec)
	}
	if d := renderDeployment(&host, params); *d.Spec.Replicas != 1 {
		t.Errorf("replicas %d: the budget above assumes one pod", *d.Spec.Replicas)
	}
}

// podAddress reads /status on the ops port, or on http in pods rendered before it existed.
func TestPodAddressPrefersTheOpsPort(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "pluginhost", Ports: []corev1.ContainerPort{
		{Name: "http", ContainerPort: 8080}, {Name: "ops", ContainerPort: 8081}}}}}, Status: corev1.PodStatus{PodIP: "10.0.0.1"}}
	if a, err := podAddress(pod); err != nil || a != "10.0.0.1:8081" {
		t.Errorf("podAddress = %q, %v; want the ops port", a, err)
	}
	pod.Spec.Containers[0].Ports = pod.Spec.Containers[0].Ports[:1]
	if a, err := podAddress(pod); err != nil || a != "10.0.0.1:8080" {
		t.Errorf("podAddress of an older pod = %q, %v; want the http port", a, err)
	}
	pod.Spec.Containers[0].Ports = nil
	if _, err := podAddress(pod); err == nil || !strings.Contains(err.Error(), `"ops"`) {
		t.Errorf("no port: %v", err)
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
