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
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// workloadParams are the manager-wide settings the workload depends on.
type workloadParams struct {
	// DefaultImage is the runtime image when spec.image is empty.
	DefaultImage string
	// SecretsDir is where <host>-credentials is mounted.
	SecretsDir string
}

// objectMeta is the metadata of a child of host: its labels and a controller reference.
func objectMeta(host *v1alpha1.PluginHost, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:            name,
		Namespace:       host.Namespace,
		Labels:          childLabels(host),
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(host, v1alpha1.GroupVersion.WithKind("PluginHost"))},
	}
}

// renderConfigMap is <host>-config, holding the rendered config.json.
func renderConfigMap(host *v1alpha1.PluginHost, config []byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: objectMeta(host, configMapName(host)),
		Data:       map[string]string{ConfigFileName: string(config)},
	}
}

// renderCredentials is <host>-credentials: a copy of every Secret key the accepted Plugins'
// auth reads, as <plugin>.<key>. It always exists, possibly empty, because the pod always
// mounts it.
func renderCredentials(host *v1alpha1.PluginHost, data map[string][]byte) *corev1.Secret {
	if data == nil {
		data = map[string][]byte{}
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: objectMeta(host, credentialsName(host)),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// renderStateClaim is <host>-state, or nil when persistence is disabled.
func renderStateClaim(host *v1alpha1.PluginHost) *corev1.PersistentVolumeClaim {
	p := host.Spec.Persistence
	if p == nil || !p.Enabled {
		return nil
	}
	size := resource.MustParse("1Gi")
	if p.Size != nil {
		size = *p.Size
	}
	return &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: objectMeta(host, stateClaimName(host)),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: p.StorageClassName,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: size},
			},
		},
	}
}

// renderService is the Service <host> in front of the runtime's HTTP port.
func renderService(host *v1alpha1.PluginHost) *corev1.Service {
	typ := corev1.ServiceTypeClusterIP
	if s := host.Spec.Service; s != nil && s.Type != "" {
		typ = s.Type
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(host, serviceName(host)),
		Spec: corev1.ServiceSpec{
			Type:     typ,
			Selector: selectorLabels(host),
			Ports: []corev1.ServicePort{{
				Name:       HTTPPortName,
				Protocol:   corev1.ProtocolTCP,
				Port:       servicePort(host),
				TargetPort: intstr.FromString(HTTPPortName),
			}},
		},
	}
}

// hostArgs are the runtime's command-line arguments.
func hostArgs(host *v1alpha1.PluginHost) []string {
	poll := defaultPollInterval
	if host.Spec.PollInterval != nil {
		poll = host.Spec.PollInterval.Duration
	}
	snapshot := defaultSnapshotInterval
	if p := host.Spec.Persistence; p != nil && p.SnapshotInterval != nil {
		snapshot = p.SnapshotInterval.Duration
	}
	level := v1alpha1.LogLevelInfo
	if host.Spec.LogLevel != "" {
		level = host.Spec.LogLevel
	}
	return []string{
		"--config=" + ConfigMountPath + "/" + ConfigFileName,
		fmt.Sprintf("--listen=:%d", HTTPPort),
		"--poll-interval=" + poll.String(),
		"--state-dir=" + StateMountPath,
		"--snapshot-interval=" + snapshot.String(),
		"--log-format=json",
		"--log-level=" + string(level),
	}
}

// renderDeployment is the Deployment <host>: one pod (a counter has one writer), replaced
// with the Recreate strategy. Its pod template depends on the PluginHost's spec only — never
// on Plugins, Secrets or the user ConfigMap — so configuration changes never restart it.
func renderDeployment(host *v1alpha1.PluginHost, params workloadParams) *appsv1.Deployment {
	image := host.Spec.Image
	if image == "" {
		image = params.DefaultImage
	}
	podLabels := maps.Clone(host.Spec.PodLabels)
	if podLabels == nil {
		podLabels = map[string]string{}
	}
	maps.Copy(podLabels, childLabels(host))
	podAnnotations := maps.Clone(host.Spec.PodAnnotations)
	// The operator stamps the revision on pods, never in the template.
	delete(podAnnotations, v1alpha1.ConfigRevisionAnnotation)
	if len(podAnnotations) == 0 {
		podAnnotations = nil
	}

	state := corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	if claim := renderStateClaim(host); claim != nil {
		state = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim.Name}}
	}
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString(HTTPPortName), Scheme: corev1.URISchemeHTTP},
			},
			PeriodSeconds:    period,
			TimeoutSeconds:   1,
			FailureThreshold: failures,
			SuccessThreshold: 1,
		}
	}
	// kubelet probes readiness the moment it sees the container running, before the process
	// listens: every start logged a failed probe and the pod became Ready one readiness
	// period (5 s) later. The startup probe waits a second, then checks that the process
	// serves every second for up to StartupProbeSeconds; its success makes kubelet probe
	// readiness at once. It checks /healthz, not /readyz: a host whose first config is
	// refused keeps running (and reports why) rather than being restarted.
	startup := probe("/healthz", 1, StartupProbeSeconds)
	startup.InitialDelaySeconds = 1

	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta(host, deploymentName(host)),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: selectorLabels(host)},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: podAnnotations},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
					ServiceAccountName:           host.Spec.ServiceAccountName,
					ImagePullSecrets:             host.Spec.ImagePullSecrets,
					NodeSelector:                 host.Spec.NodeSelector,
					Tolerations:                  host.Spec.Tolerations,
					Affinity:                     host.Spec.Affinity,
					PriorityClassName:            host.Spec.PriorityClassName,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](RunAsID),
						RunAsGroup:     ptr.To[int64](RunAsID),
						FSGroup:        ptr.To[int64](RunAsID),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:            ContainerName,
						Image:           image,
						ImagePullPolicy: host.Spec.ImagePullPolicy,
						Command:         []string{"/pluginhost"},
						Args:            hostArgs(host),
						Ports: []corev1.ContainerPort{{
							Name: HTTPPortName, ContainerPort: HTTPPort, Protocol: corev1.ProtocolTCP,
						}},
						Resources:      host.Spec.Resources,
						StartupProbe:   startup,
						LivenessProbe:  probe("/healthz", 10, 3),
						ReadinessProbe: probe("/readyz", 5, 3),
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							RunAsNonRoot:             ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "config", MountPath: ConfigMountPath, ReadOnly: true},
							{Name: "credentials", MountPath: params.SecretsDir, ReadOnly: true},
							{Name: "state", MountPath: StateMountPath},
							{Name: "tmp", MountPath: "/tmp"},
						},
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
					}},
					Volumes: []corev1.Volume{
						{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: configMapName(host)},
							DefaultMode:          ptr.To[int32](0o444),
						}}},
						{Name: "credentials", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
							SecretName:  credentialsName(host),
							DefaultMode: ptr.To[int32](0o440),
						}}},
						{Name: "state", VolumeSource: state},
						{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
							SizeLimit: ptr.To(resource.MustParse("16Mi")),
						}}},
					},
				},
			},
		},
	}
}
