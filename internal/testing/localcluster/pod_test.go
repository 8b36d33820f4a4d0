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

package localcluster

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/hotreload/plugin-operator/internal/testing/kubeletsim"
)

// deployment is shaped like the manager's rendered Deployment of a host.
func deployment() *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "demo", UID: "uid-1",
			Labels: map[string]string{"plugins.hotreload.io/host": "demo"}},
		Spec: appsv1.DeploymentSpec{
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      map[string]string{"plugins.hotreload.io/host": "demo", "team": "a"},
					Annotations: map[string]string{"example.com/note": "x"},
				},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name:    "pluginhost",
						Command: []string{"/pluginhost"},
						Args: []string{"--config=/var/run/plugins/config/config.json", "--listen=:8080", "--poll-interval=250ms",
							"--state-dir=/var/lib/pluginhost", "--snapshot-interval=5s", "--log-format=json", "-v", "positional"},
						Env: []corev1.EnvVar{{Name: "PLUGINHOST_LOG_LEVEL", Value: "debug"},
							{Name: "PLUGINHOST_PUSH_TOKEN_FILE", Value: "../secrets/_push-token"}, {Name: "ELSEWHERE", Value: "/etc/x"}},
						Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9090}, {Name: "http", ContainerPort: 8080}},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "config", MountPath: "/var/run/plugins/config"},
							{Name: "credentials", MountPath: "../secrets"},
							{Name: "state", MountPath: "/var/lib/pluginhost"},
							{Name: "tmp", MountPath: "/tmp"},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: "demo-config"}, DefaultMode: ptr.To[int32](0o444)}}},
						{Name: "credentials", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
							SecretName: "demo-credentials", DefaultMode: ptr.To[int32](0o440)}}},
						{Name: "state", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "demo-state"}}},
						{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					},
				},
			},
		},
	}
}

func TestNewPod(t *testing.T) {
	d := deployment()
	rs := kubeletsim.NewReplicaSet(d, 1)
	rs.UID = "rs-uid"
	pod, err := newPod(rs, 40123)
	if err != nil {
		t.Fatal(err)
	}
	hash := templateHash(&d.Spec.Template)
	// The ReplicaSet, as the Deployment controller names, labels and owns it.
	if rs.Name != "demo-"+hash || rs.Labels[podTemplateHashLabel] != hash || rs.Spec.Template.Labels[podTemplateHashLabel] != hash ||
		rs.Spec.Selector.MatchLabels[podTemplateHashLabel] != hash || rs.Labels["plugins.hotreload.io/host"] != "demo" {
		t.Errorf("ReplicaSet %s: labels %v, template labels %v, selector %v", rs.Name, rs.Labels, rs.Spec.Template.Labels, rs.Spec.Selector)
	}
	if ref := metav1.GetControllerOf(rs); ref == nil || ref.Kind != "Deployment" || ref.Name != "demo" || ref.UID != "uid-1" {
		t.Errorf("ReplicaSet controller %+v", ref)
	}
	if !strings.HasPrefix(pod.Name, "demo-"+hash+"-") || len(pod.Name) != len("demo-")+len(hash)+6 {
		t.Errorf("name %q, want demo-%s-<5 chars>", pod.Name, hash)
	}
	if pod.Labels["team"] != "a" || pod.Labels["plugins.hotreload.io/host"] != "demo" || pod.Labels[podTemplateHashLabel] != hash {
		t.Errorf("labels %v", pod.Labels)
	}
	if pod.Annotations["example.com/note"] != "x" {
		t.Errorf("annotations %v", pod.Annotations)
	}
	if ref := metav1.GetControllerOf(pod); ref == nil || ref.Kind != "ReplicaSet" || ref.Name != rs.Name || ref.UID != "rs-uid" {
		t.Errorf("controller %+v", ref)
	}
	if pod.Spec.NodeName != NodeName {
		t.Errorf("nodeName %q", pod.Spec.NodeName)
	}
	if p := pod.Spec.Containers[0].Ports; p[0].ContainerPort != 9090 || p[1].ContainerPort != 40123 {
		t.Errorf("ports %+v: want only the http port set to 40123", p)
	}
	if d.Spec.Template.Spec.Containers[0].Ports[1].ContainerPort != 8080 || d.Spec.Template.Labels[podTemplateHashLabel] != "" ||
		rs.Spec.Template.Spec.Containers[0].Ports[1].ContainerPort != 8080 {
		t.Error("newPod or NewReplicaSet changed the Deployment's or the ReplicaSet's template")
	}
	if templateHash(&d.Spec.Template) != hash {
		t.Error("templateHash is not stable")
	}
	d.Spec.Template.Spec.Containers[0].Args[2] = "--poll-interval=1s"
	if templateHash(&d.Spec.Template) == hash {
		t.Error("a changed template kept its hash")
	}

	// The runtime's ops port (--ops-addr) gets a free port of its own, and the process binds it.
	withOps := deployment()
	oc := &withOps.Spec.Template.Spec.Containers[0]
	oc.Ports = append(oc.Ports, corev1.ContainerPort{Name: "ops", ContainerPort: 8081})
	oc.Args = append(oc.Args, "--ops-addr=:8081")
	opsPod, err := newPod(kubeletsim.NewReplicaSet(withOps, 1), 40123)
	if err != nil {
		t.Fatal(err)
	}
	ops := opsPod.Spec.Containers[0].Ports[2].ContainerPort
	if ops == 8081 || ops == 40123 || ops <= 0 {
		t.Errorf("ops port %d: want a free port of its own", ops)
	}
	vols, err := localVolumes(&opsPod.Spec, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	proc, err := containerProcess(&opsPod.Spec.Containers[0], vols, 40123)
	if want := fmt.Sprintf("--ops-addr=127.0.0.1:%d", ops); err != nil || !slices.Contains(proc.args, want) || !slices.Contains(proc.args, "--listen=127.0.0.1:40123") {
		t.Errorf("args %q, %v: want %s and the listen address", proc.args, err, want)
	}

	d.Spec.Template.Spec.Containers[0].Ports = d.Spec.Template.Spec.Containers[0].Ports[:1]
	if _, err := newPod(kubeletsim.NewReplicaSet(d, 1), 1); err == nil || !strings.Contains(err.Error(), `port named "http"`) {
		t.Errorf("a container without an http port: %v", err)
	}
}

func TestLocalVolumesAndProcess(t *testing.T) {
	d := deployment()
	vols, err := localVolumes(&d.Spec.Template.Spec, "/w/ns/demo")
	if err != nil {
		t.Fatal(err)
	}
	want := []localVolume{
		{name: "config", kind: volumeConfigMap, object: "demo-config", mode: 0o444, dir: "/w/ns/demo/config", podScoped: true},
		{name: "credentials", kind: volumeSecret, object: "demo-credentials", mode: 0o440, dir: "/w/ns/demo/secrets", podScoped: true},
		{name: "state", kind: volumeDir, dir: "/w/ns/demo/state"},
		{name: "tmp", kind: volumeDir, dir: "/w/ns/demo/tmp", podScoped: true},
	}
	if !slices.Equal(vols, want) {
		t.Errorf("volumes\n got %+v\nwant %+v", vols, want)
	}

	proc, err := containerProcess(&d.Spec.Template.Spec.Containers[0], vols, 40123)
	if err != nil {
		t.Fatal(err)
	}
	wantArgs := []string{"--config=/w/ns/demo/config/config.json", "--listen=127.0.0.1:40123", "--poll-interval=250ms",
		"--state-dir=/w/ns/demo/state", "--snapshot-interval=5s", "--log-format=json", "-v", "positional"}
	if !slices.Equal(proc.args, wantArgs) {
		t.Errorf("args\n got %q\nwant %q", proc.args, wantArgs)
	}
	if wantEnv := []string{"TMPDIR=/w/ns/demo/tmp", "PLUGINHOST_LOG_LEVEL=debug", "PLUGINHOST_PUSH_TOKEN_FILE=/w/ns/demo/secrets/_push-token", "ELSEWHERE=/etc/x"}; !slices.Equal(proc.env, wantEnv) {
		t.Errorf("env %q, want %q", proc.env, wantEnv)
	}
	// The credential paths the manager renders (../secrets/<file>, relative to the config
	// file) land in the secrets volume.
	if got := filepath.Join(filepath.Dir("/w/ns/demo/config/config.json"), "../secrets/counter-2.api-key"); got != "/w/ns/demo/secrets/counter-2.api-key" {
		t.Errorf("credential path resolves to %s", got)
	}

	// No --listen: one is added.
	c := d.Spec.Template.Spec.Containers[0].DeepCopy()
	c.Args = []string{"--config=/var/run/plugins/config/other.json"}
	if proc, err = containerProcess(c, vols, 1); err != nil || !slices.Equal(proc.args, []string{"--config=/w/ns/demo/config/other.json", "--listen=127.0.0.1:1"}) {
		t.Errorf("args %q, %v", proc.args, err)
	}

	for name, mutate := range map[string]func(*corev1.PodSpec){
		"hostPath volume": func(s *corev1.PodSpec) {
			s.Volumes[3].VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}
		},
		"subPath":   func(s *corev1.PodSpec) { s.Containers[0].VolumeMounts[0].SubPath = "config.json" },
		"valueFrom": func(s *corev1.PodSpec) { s.Containers[0].Env[0].ValueFrom = &corev1.EnvVarSource{} },
		"unknown mount": func(s *corev1.PodSpec) {
			s.Containers[0].VolumeMounts = append(s.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "nope", MountPath: "/x"})
		},
	} {
		spec := d.Spec.Template.Spec.DeepCopy()
		mutate(spec)
		vols, err := localVolumes(spec, "/w")
		if err == nil {
			_, err = containerProcess(&spec.Containers[0], vols, 1)
		}
		if err == nil {
			t.Errorf("%s: runs locally, want an error", name)
		}
	}
}
