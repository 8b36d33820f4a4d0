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
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
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
	// ManagerNamespace and ManagerPodLabels identify the manager's pods, which a host's
	// NetworkPolicy admits to the operational port.
	ManagerNamespace string
	ManagerPodLabels map[string]string
}

// Requests of the runtime container when spec.resources sets none: measured idle use of
// the runtime with ten counter plugins is about 5 % of a core and 14 MiB resident (18 MiB
// after 3000 requests); see docs/pluginhost.md.
var defaultRequests = corev1.ResourceList{
	corev1.ResourceCPU:    resource.MustParse("50m"),
	corev1.ResourceMemory: resource.MustParse("32Mi"),
}

// defaultEmptyDirSizeLimit bounds the state emptyDir when spec.persistence sets no limit.
var defaultEmptyDirSizeLimit = resource.MustParse("64Mi")

// objectMeta is the metadata of a child of host: its labels and a controller reference.
func objectMeta(host *v1alpha1.PluginHost, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:            name,
		Namespace:       host.Namespace,
		Labels:          childLabels(host),
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(host, v1alpha1.GroupVersion.WithKind("PluginHost"))},
	}
}

// renderConfigMap is <host>-config, holding the rendered config.json of revision rev and
// its delivery sequence (config_push.go), which its annotations repeat for the manager's
// metadata-only cache.
func renderConfigMap(host *v1alpha1.PluginHost, config []byte, rev string, seq uint64) *corev1.ConfigMap {
	meta := cachedChildMeta(host, configMapName(host))
	if meta.Annotations == nil {
		meta.Annotations = map[string]string{}
	}
	sequence := strconv.FormatUint(seq, 10)
	meta.Annotations[v1alpha1.ConfigRevisionAnnotation] = rev
	meta.Annotations[ConfigSequenceAnnotation] = sequence
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta,
		Data:       map[string]string{ConfigFileName: string(config), ConfigSequenceKey: sequence},
	}
}

// cachedChildMeta is objectMeta for a child ConfigMap or Secret: the manager's cache selects
// those kinds by the consent label (cacheOptions), so they carry it too, with
// ChildConsentValue, which consents to nothing: a Plugin or PluginHost that names one of
// them is refused as for an unmarked object.
func cachedChildMeta(host *v1alpha1.PluginHost, name string) metav1.ObjectMeta {
	m := objectMeta(host, name)
	m.Labels[v1alpha1.LabelPluginAuth] = ChildConsentValue
	return m
}

// renderCredentials is <host>-credentials: a copy of every Secret key the accepted Plugins'
// auth reads, under credentialKey (<plugin>.<key> for a name that fits). It always exists,
// possibly empty, because the pod always mounts it.
func renderCredentials(host *v1alpha1.PluginHost, data map[string][]byte) *corev1.Secret {
	if data == nil {
		data = map[string][]byte{}
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: cachedChildMeta(host, credentialsName(host)),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// renderStateClaim is <host>-state, or nil when persistence is disabled. With whenDeleted
// Retain it has no owner reference, so the garbage collector leaves it when the PluginHost
// goes; applying it without one removes the reference an earlier apply set.
func renderStateClaim(host *v1alpha1.PluginHost) *corev1.PersistentVolumeClaim {
	p := host.Spec.Persistence
	if p == nil || !p.Enabled {
		return nil
	}
	size := resource.MustParse("1Gi")
	if p.Size != nil {
		size = *p.Size
	}
	meta := objectMeta(host, stateClaimName(host))
	if p.WhenDeleted == v1alpha1.ClaimRetain {
		meta.OwnerReferences = nil
	}
	return &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: meta,
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

// PushTokenEnv sets the runtime's --push-token-file (pkg/pluginhost reads every flag from
// PLUGINHOST_<FLAG> too). An environment variable, not an argument: a host image built with
// an SDK older than config push ignores it (and answers pushes 404), where an unknown flag
// would stop it.
const PushTokenEnv = "PLUGINHOST_PUSH_TOKEN_FILE"

// hostEnv is the runtime's environment: the config push token file, in the mounted
// <host>-credentials.
func hostEnv(params workloadParams) []corev1.EnvVar {
	return []corev1.EnvVar{{Name: PushTokenEnv, Value: params.SecretsDir + "/" + PushTokenField}}
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
		fmt.Sprintf("--ops-addr=:%d", OpsPort),
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
	image := hostImage(host, params.DefaultImage)
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

	emptyDirLimit := defaultEmptyDirSizeLimit
	if p := host.Spec.Persistence; p != nil && p.EmptyDirSizeLimit != nil {
		emptyDirLimit = *p.EmptyDirSizeLimit
	}
	state := corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &emptyDirLimit}}
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
	// refused keeps running (and reports why) rather than being restarted, and so does the
	// replacement of a deleted pod waiting for the state dir that pod still holds (/readyz
	// 503 for up to its termination grace period, /healthz 200).
	startup := probe("/healthz", 1, StartupProbeSeconds)
	startup.InitialDelaySeconds = 1
	resources := *host.Spec.Resources.DeepCopy()
	if len(resources.Requests) == 0 && len(resources.Limits) == 0 {
		// Requests, never limits, so that a scheduler packing a shared node counts the host.
		// With limits only, Kubernetes sets the requests to the limits, as it always did.
		resources.Requests = defaultRequests.DeepCopy()
	}

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
						Env:             hostEnv(params),
						Ports: []corev1.ContainerPort{
							{Name: HTTPPortName, ContainerPort: HTTPPort, Protocol: corev1.ProtocolTCP},
							{Name: OpsPortName, ContainerPort: OpsPort, Protocol: corev1.ProtocolTCP},
						},
						Resources:      resources,
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

// renderNetworkPolicy is the NetworkPolicy <host>, or nil when spec.networkPolicy is not
// enabled. It selects the host's pods and admits ingress to the API port from the declared
// peers (every source when there are none) and to the operational port from the manager's
// pods only: the manager reads /status there. Kubelet's probes come from the node, which
// NetworkPolicy implementations admit to their own pods.
func renderNetworkPolicy(host *v1alpha1.PluginHost, params workloadParams) *networkingv1.NetworkPolicy {
	np := host.Spec.NetworkPolicy
	if np == nil || !np.Enabled {
		return nil
	}
	tcp := corev1.ProtocolTCP
	apiPort, opsPort := intstr.FromString(HTTPPortName), intstr.FromString(OpsPortName)
	manager := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: params.ManagerPodLabels}}
	if params.ManagerNamespace != "" {
		manager.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: params.ManagerNamespace}}
	}
	var from []networkingv1.NetworkPolicyPeer
	for i := range np.From {
		from = append(from, *np.From[i].DeepCopy())
	}
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: objectMeta(host, networkPolicyName(host)),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: selectorLabels(host)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &apiPort}}, From: from},
				{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &opsPort}}, From: []networkingv1.NetworkPolicyPeer{manager}},
			},
		},
	}
}

// renderBudget is the PodDisruptionBudget <host>, or nil when spec.podDisruptionBudget is
// not enabled. The host runs one pod (one writer per counter), so the only budget that
// never blocks a node drain is maxUnavailable 1; minAvailable 1 would refuse every
// eviction forever. Unhealthy pods may always be evicted: a crash-looping host must not
// hold a drain either.
func renderBudget(host *v1alpha1.PluginHost) *policyv1.PodDisruptionBudget {
	b := host.Spec.PodDisruptionBudget
	if b == nil || !b.Enabled {
		return nil
	}
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: objectMeta(host, budgetName(host)),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable:             ptr.To(intstr.FromInt32(1)),
			Selector:                   &metav1.LabelSelector{MatchLabels: selectorLabels(host)},
			UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
		},
	}
}
