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

package psa_test

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/hotreload/plugin-operator/internal/testing/psa"
)

// compliant is the smallest pod spec that the restricted profile admits.
func compliant() *corev1.PodSpec {
	return &corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name:  "app",
			Image: "example.com/app:v1",
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}},
	}
}

func TestCheckRestricted(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.PodSpec)
		want   []string // substrings, one per expected violation
	}{
		{name: "compliant", mutate: func(*corev1.PodSpec) {}},
		{
			name: "privilege escalation allowed",
			mutate: func(s *corev1.PodSpec) {
				s.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
			},
			want: []string{"allowPrivilegeEscalation != false"},
		},
		{
			name: "capabilities kept",
			mutate: func(s *corev1.PodSpec) {
				s.Containers[0].SecurityContext.Capabilities = nil
			},
			want: []string{"unrestricted capabilities"},
		},
		{
			name: "may run as root, no seccomp",
			mutate: func(s *corev1.PodSpec) {
				s.SecurityContext = nil
			},
			want: []string{"runAsNonRoot != true", "seccompProfile"},
		},
		{
			name: "root user",
			mutate: func(s *corev1.PodSpec) {
				s.SecurityContext.RunAsUser = ptr.To[int64](0)
			},
			want: []string{"runAsUser=0"},
		},
		{
			name: "hostPath and host network",
			mutate: func(s *corev1.PodSpec) {
				s.HostNetwork = true
				s.Volumes = []corev1.Volume{{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
			},
			// restricted replaces the baseline hostPath check with its volume-type allowlist.
			want: []string{"host namespaces", "restricted volume types"},
		},
		{
			name: "init container is checked too",
			mutate: func(s *corev1.PodSpec) {
				s.InitContainers = []corev1.Container{{Name: "init", Image: "x"}}
			},
			want: []string{"allowPrivilegeEscalation != false", "unrestricted capabilities"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := compliant()
			tt.mutate(spec)
			got := psa.CheckRestricted(&metav1.ObjectMeta{Name: "p"}, spec)
			if len(got) != len(tt.want) {
				t.Fatalf("violations = %q, want %d matching %q", got, len(tt.want), tt.want)
			}
			for _, w := range tt.want {
				if !containsSubstring(got, w) {
					t.Errorf("violations %q: none mentions %q", got, w)
				}
			}
		})
	}
}

func TestCheckRestrictedNilSpec(t *testing.T) {
	if got := psa.CheckRestricted(nil, nil); len(got) != 1 {
		t.Fatalf("CheckRestricted(nil, nil) = %q, want one violation", got)
	}
}

func TestCheckObject(t *testing.T) {
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "d"},
		Spec:       appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: *compliant()}},
	}
	dep.Spec.Template.Spec.Containers[0].SecurityContext.Privileged = ptr.To(true)

	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(dep)
	if err != nil {
		t.Fatal(err)
	}
	for name, obj := range map[string]runtime.Object{"typed": dep, "unstructured": &unstructured.Unstructured{Object: raw}} {
		t.Run(name, func(t *testing.T) {
			got, ok, err := psa.CheckObject(obj)
			if err != nil || !ok {
				t.Fatalf("CheckObject: ok=%v err=%v", ok, err)
			}
			if !containsSubstring(got, "privileged") {
				t.Errorf("violations = %q, want one about privileged", got)
			}
		})
	}

	cm := &unstructured.Unstructured{}
	cm.SetAPIVersion("v1")
	cm.SetKind("ConfigMap")
	if _, ok, err := psa.CheckObject(cm); ok || err != nil {
		t.Errorf("CheckObject(ConfigMap): ok=%v err=%v, want ok=false", ok, err)
	}
}

func containsSubstring(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
