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

package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// LogLevel is the minimum level of the runtime's log messages.
// +kubebuilder:validation:Enum=debug;info;warn;error
type LogLevel string

// Log levels.
const (
	// LogLevelDebug logs everything, including each reload step.
	LogLevelDebug LogLevel = "debug"
	// LogLevelInfo logs reloads and lifecycle events.
	LogLevelInfo LogLevel = "info"
	// LogLevelWarn logs warnings and errors only.
	LogLevelWarn LogLevel = "warn"
	// LogLevelError logs errors only.
	LogLevelError LogLevel = "error"
)

// DefaultConfigMapKey is the key of spec.configMapRef read when its key is
// empty.
const DefaultConfigMapKey = "config.json"

// PluginHostSpec is the desired state of a PluginHost.
type PluginHostSpec struct {
	// image is the container image of the plugin runtime. Empty means the
	// operator's default, set by the manager's `--default-host-image` flag.
	// Another image must be allowed by the manager's `--allowed-host-images`;
	// otherwise the PluginHost is Degraded (reason ImageNotAllowed) and nothing
	// is applied for it.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Image string `json:"image,omitempty"`

	// imagePullPolicy is the pull policy of image: `Always`, `Never` or
	// `IfNotPresent`. Empty means the Kubernetes default (`Always` for a
	// `:latest` tag, `IfNotPresent` otherwise).
	// +optional
	// +kubebuilder:validation:Enum=Always;Never;IfNotPresent
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// imagePullSecrets name Secrets, in the PluginHost's namespace, used to pull
	// image.
	// +optional
	// +listType=atomic
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// pluginSelector selects, by label, the Plugins of this namespace that the
	// host runs. `{}` selects every Plugin in the namespace. A Plugin should be
	// selected by one PluginHost only.
	// +required
	PluginSelector *metav1.LabelSelector `json:"pluginSelector"`

	// configMapRef names a ConfigMap, in the PluginHost's namespace, holding a
	// config.json in the runtime's own format (a `plugins` array). Its plugins
	// are merged with the selected Plugins; a name defined in both is a
	// conflict, and the Plugin is not run. The ConfigMap is read only if it
	// carries the label `plugins.hotreload.io/plugin-auth: "true"`, its owner's
	// consent; otherwise the PluginHost is Degraded (reason
	// ConfigMapNotConsented) and its message gives the command that marks it.
	// +optional
	ConfigMapRef *ConfigMapKeyReference `json:"configMapRef,omitempty"`

	// pollInterval is how often the runtime checks its mounted config.json for
	// changes, from `50ms` to `1m`. A change is applied about pollInterval/2
	// after kubelet updates the file. Defaults to `250ms`.
	// +optional
	// +kubebuilder:default="250ms"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule=`!self.matches(r'^([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$') || (duration(self) >= duration('50ms') && duration(self) <= duration('1m'))`,message="spec.pollInterval must be between 50ms and 1m"
	PollInterval *metav1.Duration `json:"pollInterval,omitempty"`

	// persistence keeps plugin state (counter values) across pod deletion on a
	// PersistentVolumeClaim. When it is disabled, state lives in an emptyDir
	// volume: it survives container restarts and configuration reloads, but not
	// the deletion or rescheduling of the pod.
	// +optional
	// +kubebuilder:default={}
	Persistence *PersistenceSpec `json:"persistence,omitempty"`

	// resources are the compute resources of the runtime container. When it
	// sets no requests, the operator requests `cpu: 50m` and `memory: 32Mi`
	// (the runtime idles at about 5 % of a core and 14–18 MiB resident with
	// ten plugins); no limits are set unless given here.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// nodeSelector constrains the host's pod to nodes with these labels.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations of the host's pod.
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// affinity scheduling rules of the host's pod.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// priorityClassName is the PriorityClass of the host's pod.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// serviceAccountName is the ServiceAccount the host's pod runs as. Empty
	// means the namespace's `default` ServiceAccount. The runtime needs no
	// Kubernetes API access.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// podAnnotations are added to the host's pod. The operator's own
	// annotations, such as `plugins.hotreload.io/config-revision`, take
	// precedence.
	// +optional
	PodAnnotations map[string]string `json:"podAnnotations,omitempty"`

	// podLabels are added to the host's pod. The operator's own labels take
	// precedence.
	// +optional
	PodLabels map[string]string `json:"podLabels,omitempty"`

	// service is the Service that exposes the plugins' HTTP API.
	// +optional
	// +kubebuilder:default={}
	Service *ServiceSpec `json:"service,omitempty"`

	// networkPolicy, when enabled, restricts who may connect to the host's
	// pods with a NetworkPolicy `<host>` (only enforced where the cluster's
	// network plugin implements NetworkPolicy).
	// +optional
	NetworkPolicy *NetworkPolicySpec `json:"networkPolicy,omitempty"`

	// podDisruptionBudget, when enabled, renders a PodDisruptionBudget `<host>`
	// for the host's pod. The host runs one pod, so the budget allows one
	// eviction (`maxUnavailable: 1`): it never blocks a node drain, which a
	// `minAvailable: 1` budget on one pod would do forever.
	// +optional
	PodDisruptionBudget *PodDisruptionBudgetSpec `json:"podDisruptionBudget,omitempty"`

	// logLevel is the minimum level of the runtime's logs: `debug`, `info`,
	// `warn` or `error`. Defaults to `info`.
	// +optional
	// +kubebuilder:default=info
	LogLevel LogLevel `json:"logLevel,omitempty"`

	// revisionHistoryLimit is how many configuration revisions the host keeps
	// as ControllerRevisions `<host>-<hash>` (each one config.json it served),
	// from 1 to 100. The oldest go first; the served revision and the pinned
	// one are never deleted. Defaults to 10.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	RevisionHistoryLimit *int32 `json:"revisionHistoryLimit,omitempty"`

	// pinnedRevision, when set, makes the host serve a recorded configuration
	// revision instead of its Plugins' render: its number (`7`, as in
	// status.history) or its hash (`sha256:` and at least 12 of its hex
	// digits). The pods get the revision's config.json byte for byte, with the
	// current credentials; an entry whose credentials have been withdrawn since
	// is left out. The Plugins are reported not applied (reason HostPinned)
	// until it is unset, which returns to their render. A revision that is not
	// recorded (never, or trimmed by revisionHistoryLimit) makes the host
	// Stalled (reason PinnedRevisionNotFound) and changes nothing it serves.
	// +optional
	// +kubebuilder:validation:MaxLength=71
	// +kubebuilder:validation:Pattern=`^([1-9][0-9]{0,17}|sha256:[0-9a-f]{12,64})$`
	PinnedRevision string `json:"pinnedRevision,omitempty"`
}

// DefaultRevisionHistoryLimit is spec.revisionHistoryLimit when unset.
const DefaultRevisionHistoryLimit = 10

// ConfigMapKeyReference names a key of a ConfigMap in the namespace of the
// referring object.
type ConfigMapKeyReference struct {
	// name is the name of the ConfigMap.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key is the ConfigMap key that holds the config.json. Defaults to
	// `config.json`.
	// +optional
	// +kubebuilder:default="config.json"
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// PersistenceSpec keeps plugin state on a PersistentVolumeClaim.
type PersistenceSpec struct {
	// enabled stores plugin state on a PersistentVolumeClaim that outlives the
	// pod. When false, state lives in an emptyDir: it survives container
	// restarts, not pod deletion. Defaults to false.
	// +optional
	// +kubebuilder:default=false
	Enabled bool `json:"enabled,omitempty"`

	// size is the requested size of the PersistentVolumeClaim. Defaults to
	// `1Gi`.
	// +optional
	// +kubebuilder:default="1Gi"
	// +kubebuilder:validation:XValidation:rule="!isQuantity(string(self)) || quantity(string(self)).isGreaterThan(quantity('0'))",message="spec.persistence.size must be greater than zero"
	Size *resource.Quantity `json:"size,omitempty"`

	// storageClassName is the StorageClass of the PersistentVolumeClaim. Unset
	// means the cluster's default StorageClass.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	StorageClassName *string `json:"storageClassName,omitempty"`

	// snapshotInterval is how long after a change the runtime writes plugin
	// state to its volume (and it always does on shutdown): the most a crash
	// can lose. An idle runtime writes nothing. A positive Go duration.
	// Defaults to `5s`.
	// +optional
	// +kubebuilder:default="5s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule=`!self.matches(r'^([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$') || (duration(self) > duration('0s'))`,message="spec.persistence.snapshotInterval must be a positive duration such as 5s"
	SnapshotInterval *metav1.Duration `json:"snapshotInterval,omitempty"`

	// whenDeleted decides what happens to the PersistentVolumeClaim
	// `<host>-state` when the PluginHost is deleted: `Delete` (the default)
	// lets the garbage collector delete it with the PluginHost; `Retain`
	// keeps it, with its state. A retained claim has no owner reference; a
	// PluginHost of the same name in the same namespace with persistence
	// enabled uses it again, counters included. Delete a retained claim with
	// `kubectl delete pvc <host>-state`.
	// +optional
	// +kubebuilder:default=Delete
	WhenDeleted ClaimRetentionPolicy `json:"whenDeleted,omitempty"`

	// emptyDirSizeLimit is the size limit of the emptyDir volume that holds
	// plugin state when enabled is false; kubelet evicts a pod whose state
	// outgrows it. Defaults to `64Mi` (a counter's state is a few dozen
	// bytes).
	// +optional
	// +kubebuilder:default="64Mi"
	// +kubebuilder:validation:XValidation:rule="!isQuantity(string(self)) || quantity(string(self)).isGreaterThan(quantity('0'))",message="spec.persistence.emptyDirSizeLimit must be greater than zero"
	EmptyDirSizeLimit *resource.Quantity `json:"emptyDirSizeLimit,omitempty"`
}

// ClaimRetentionPolicy is what happens to a PluginHost's state claim when the
// PluginHost is deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type ClaimRetentionPolicy string

// Claim retention policies.
const (
	// ClaimRetain keeps the claim, without an owner reference.
	ClaimRetain ClaimRetentionPolicy = "Retain"
	// ClaimDelete deletes the claim with the PluginHost.
	ClaimDelete ClaimRetentionPolicy = "Delete"
)

// NetworkPolicySpec is the NetworkPolicy the operator renders for a
// PluginHost.
type NetworkPolicySpec struct {
	// enabled renders a NetworkPolicy `<host>` that selects the host's pods
	// and admits ingress to the plugins' API port from the peers in from, and
	// to the operational port (`/status`, `/plugins`, `/metrics`) from the
	// operator's own pods only. Disabling it deletes the NetworkPolicy.
	// Defaults to false.
	// +optional
	// +kubebuilder:default=false
	Enabled bool `json:"enabled,omitempty"`

	// from are the clients admitted to the plugins' API port, as NetworkPolicy
	// peers (pod and namespace selectors, IP blocks). Empty admits every
	// source to the API port; the operational port stays closed to all but
	// the operator either way.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	From []networkingv1.NetworkPolicyPeer `json:"from,omitempty"`
}

// PodDisruptionBudgetSpec is the PodDisruptionBudget the operator renders for
// a PluginHost.
type PodDisruptionBudgetSpec struct {
	// enabled renders a PodDisruptionBudget `<host>` selecting the host's
	// pods with `maxUnavailable: 1`. Disabling it deletes the budget.
	// Defaults to false.
	// +optional
	// +kubebuilder:default=false
	Enabled bool `json:"enabled,omitempty"`
}

// ServiceSpec is the Service that exposes a PluginHost's HTTP API.
type ServiceSpec struct {
	// type is the Service type: `ClusterIP`, `NodePort` or `LoadBalancer`.
	// Defaults to `ClusterIP`.
	// +optional
	// +kubebuilder:default=ClusterIP
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	Type corev1.ServiceType `json:"type,omitempty"`

	// port is the Service port of the HTTP API, 1 to 65535. Defaults to 8080.
	// +optional
	// +kubebuilder:default=8080
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`
}

// PodStatus is what one pod of a PluginHost reports about its configuration.
type PodStatus struct {
	// name is the name of the pod.
	// +required
	Name string `json:"name"`

	// appliedRevision is the configuration revision the pod runs, as reported by
	// its `/status` endpoint.
	// +optional
	AppliedRevision string `json:"appliedRevision,omitempty"`

	// lastReloadError is the error of the pod's last failed reload, when the pod
	// refused a configuration and kept the previous one; empty after a
	// successful reload.
	// +optional
	LastReloadError string `json:"lastReloadError,omitempty"`

	// ready is true when the pod is Ready and answered its `/status` endpoint.
	// +optional
	Ready bool `json:"ready"`

	// lastChecked is when the operator last read the pod's `/status` endpoint.
	// +optional
	LastChecked metav1.Time `json:"lastChecked,omitempty"`

	// auditHead is the last record of the pod's hash-chained audit trail, as its
	// `/status` reports it: a witness outside the pod. The same chainID with a lower
	// sequence later, or another hash at a sequence seen before, means the trail was cut
	// or rewritten (the operator records an AuditTrailRegressed event); a new chainID is a
	// new trail.
	// +optional
	AuditHead *AuditHead `json:"auditHead,omitempty"`
}

// AuditHead is the head of a pod's audit trail (docs/pluginhost.md, "Audit").
type AuditHead struct {
	// chainID identifies the trail: random, with the pod's name, from its genesis record.
	// +required
	// +kubebuilder:validation:MaxLength=128
	ChainID string `json:"chainID"`

	// sequence is the sequence number of the trail's last record.
	// +required
	// +kubebuilder:validation:Minimum=0
	Sequence int64 `json:"sequence"`

	// hash is the SHA-256 (hex) of the trail's last record.
	// +required
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	Hash string `json:"hash"`

	// verified is true when the pod verified its trail at start without a break.
	// +optional
	Verified bool `json:"verified"`

	// brokenAt is the sequence of the first record that did not verify when the pod
	// started, when one did not.
	// +optional
	BrokenAt *int64 `json:"brokenAt,omitempty"`

	// brokenReason says how the trail broke there (edited, removed, truncated).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	BrokenReason string `json:"brokenReason,omitempty"`
}

// SelectedPluginStatus is what a PluginHost made of one Plugin its
// pluginSelector selects: whether the Plugin is in the host's configuration,
// and which generation of it the host's pods run. The Plugin's own status is
// computed from this record.
type SelectedPluginStatus struct {
	// name is the name of the Plugin, in the PluginHost's namespace.
	// +required
	Name string `json:"name"`

	// uid is the metadata.uid of the Plugin, so that a Plugin deleted and created
	// again with the same name is not mistaken for the old one.
	// +optional
	UID types.UID `json:"uid,omitempty"`

	// generation is the metadata.generation of the Plugin that the host last
	// evaluated.
	// +required
	Generation int64 `json:"generation"`

	// reason is `Accepted` when the Plugin is in the desired configuration;
	// otherwise why it is left out: `InvalidSpec`, `SecretNotFound`,
	// `NameConflict`, `PluginTooLarge`, `HostFull` and the other reasons of a
	// Plugin's Accepted condition.
	// +required
	Reason string `json:"reason"`

	// message explains reason in a sentence, at most 1 KiB.
	// +optional
	Message string `json:"message,omitempty"`

	// revision is the configuration revision (status.configRevision) that
	// contains generation of the Plugin; empty when the Plugin is left out, or
	// when this generation could not be rendered (the host's configMapRef is
	// invalid).
	// +optional
	Revision string `json:"revision,omitempty"`

	// appliedGeneration is the generation of the Plugin contained in
	// status.appliedRevision, the last revision every pod of the host applied;
	// 0 when that revision does not contain the Plugin.
	// +optional
	AppliedGeneration int64 `json:"appliedGeneration,omitempty"`
}

// PluginHostStatus is the observed state of a PluginHost.
type PluginHostStatus struct {
	// observedGeneration is the metadata.generation of the PluginHost that the
	// status describes; it moves once a reconcile has evaluated that generation
	// without a failed step.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions describe the host. `Ready` (a ready pod serves and every running
	// pod runs the desired configuration revision), `Reconciling` (not Ready yet,
	// and getting there) and `Stalled` (not Ready until someone changes
	// something) follow kstatus, as GitOps tools and `kubectl wait` read them;
	// all three carry Ready's reason. `Available` (a pod serves the plugins' API),
	// `Progressing` (a new configuration or workload is rolling out) and
	// `Degraded` (the configuration is invalid, a child's name is taken, or a pod
	// refused the configuration or cannot be reached) describe the pods.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// configRevision identifies the desired configuration: `sha256:` followed by
	// the 64 lowercase hex digits of the SHA-256 of the rendered config.json
	// bytes. It is also the pod annotation
	// `plugins.hotreload.io/config-revision`, and what pods report as applied.
	// +optional
	ConfigRevision string `json:"configRevision,omitempty"`

	// configRevisionTime is when the manager first rendered configRevision, to
	// the second. It changes only when configRevision does; a manager that
	// starts while that revision rolls out times the rollout
	// (`plugin_operator_config_apply_duration_seconds`) from it. Unset for a
	// revision rendered by an operator version that did not record it.
	// +optional
	ConfigRevisionTime *metav1.Time `json:"configRevisionTime,omitempty"`

	// appliedRevision is the last configuration revision that every running pod
	// of the host reported as applied. It equals configRevision once a rollout
	// is complete.
	// +optional
	AppliedRevision string `json:"appliedRevision,omitempty"`

	// The manager alone writes status, each list of it whole: plugins, pods and
	// types are listType=atomic, so that the API server tracks each list as one
	// field instead of every field of every entry. That halves the control plane's
	// CPU for a write of a 100-Plugin host's status (docs/performance.md).

	// plugins record, for each Plugin that pluginSelector selects, whether it is
	// in the configuration and which of its generations the pods run. Plugins
	// defined in configMapRef are not listed. At most 500 entries, each message
	// at most 1 KiB: the 500 oldest selected Plugins (by creationTimestamp,
	// then name). A host runs no Plugin it does not list: the younger ones are
	// counted in unlistedPlugins and are HostFull.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=500
	Plugins []SelectedPluginStatus `json:"plugins,omitempty"`

	// unlistedPlugins is the number of Plugins that pluginSelector selects
	// beyond the 500 that plugins lists. The host does not run them; each says
	// so in its own status (reason HostFull).
	// +optional
	UnlistedPlugins int32 `json:"unlistedPlugins,omitempty"`

	// pluginCount is the number of plugins in the desired configuration: the
	// selected Plugins plus those of configMapRef.
	// +optional
	PluginCount int32 `json:"pluginCount,omitempty"`

	// pods report the configuration each running pod of the host has applied,
	// as read from its `/status` endpoint.
	// +optional
	// +listType=atomic
	Pods []PodStatus `json:"pods,omitempty"`

	// url is the in-cluster URL of the host's Service, for example
	// `http://<service>.<namespace>.svc:8080`.
	// +optional
	URL string `json:"url,omitempty"`

	// types are the plugin types that the host's image carries, as a running
	// pod of typesImage advertised them on its `/status`: the Plugins' spec.type
	// and spec.options are checked against them before they are rendered.
	// Empty until such a pod has answered. At most 32 types, each options
	// schema at most 8 KiB and all of them at most 32 KiB together; a larger
	// advertisement is refused (reason HostTypesInvalid), not recorded.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Types []PluginTypeStatus `json:"types,omitempty"`

	// revision is the number of the ControllerRevision that holds the served
	// configuration (configRevision); 0 before one is recorded.
	// +optional
	Revision int64 `json:"revision,omitempty"`

	// pinnedRevision is the number of the revision served because
	// spec.pinnedRevision names it; 0 when not pinned, or when the pin names
	// no recorded revision.
	// +optional
	PinnedRevision int64 `json:"pinnedRevision,omitempty"`

	// history lists the recorded configuration revisions, newest first: at
	// most 10 (and at most spec.revisionHistoryLimit). The ControllerRevisions
	// `<host>-<hash>` hold the configurations themselves (`kubectl get
	// controllerrevisions -l plugins.hotreload.io/host=<host>`).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	History []RevisionHistoryEntry `json:"history,omitempty"`

	// typesImage is the container image of the pod that advertised types. When
	// spec.image changes, types no longer count until a pod of the new image
	// advertises its own.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	TypesImage string `json:"typesImage,omitempty"`
}

// RevisionHistoryEntry is one recorded configuration revision of a PluginHost.
type RevisionHistoryEntry struct {
	// revision is the revision's number; a later configuration has a larger
	// one, and a configuration served again gets a new one.
	// +required
	Revision int64 `json:"revision"`

	// hash is the revision's configRevision, shortened: `sha256:` and its
	// first 12 hex digits.
	// +required
	// +kubebuilder:validation:MaxLength=19
	Hash string `json:"hash"`

	// name is the name of the ControllerRevision that holds it.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// firstRendered is when the manager first rendered it.
	// +required
	FirstRendered metav1.Time `json:"firstRendered"`

	// plugins is the number of plugins in it.
	// +optional
	Plugins int32 `json:"plugins,omitempty"`

	// appliedPods is how many running pods last reported running it.
	// +optional
	AppliedPods int32 `json:"appliedPods,omitempty"`

	// refusedPods is how many pods last reported refusing it.
	// +optional
	RefusedPods int32 `json:"refusedPods,omitempty"`

	// appliedAt is when every running pod first ran it; unset if that never
	// happened.
	// +optional
	AppliedAt *metav1.Time `json:"appliedAt,omitempty"`
}

// PluginTypeStatus is one plugin type a host's image carries.
type PluginTypeStatus struct {
	// name is the type's name, what a Plugin's spec.type names.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// operations are the type's HTTP operations, served at
	// `/plugins/<plugin>/<operation>`.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Operations []PluginOperationStatus `json:"operations,omitempty"`

	// optionsSchema is the JSON Schema (draft 2020-12) that a Plugin's
	// spec.options must match; absent when the type takes no options.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	OptionsSchema *apiextensionsv1.JSON `json:"optionsSchema,omitempty"`
}

// PluginOperationStatus is one operation of a plugin type.
type PluginOperationStatus struct {
	// name is the operation's name, the last segment of its path.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// method is the HTTP method of the operation: `GET` or `POST`.
	// +required
	// +kubebuilder:validation:MaxLength=8
	Method string `json:"method"`

	// mutating is true when the operation changes the plugin's state.
	// +optional
	Mutating bool `json:"mutating,omitempty"`
}

// PluginHost runs the Plugins of its namespace selected by
// spec.pluginSelector in one pod, and applies changes to their configuration
// in place, without restarting it. Its pod mounts a generated ConfigMap
// holding the rendered config.json, and its Service exposes the plugins'
// HTTP API at `/plugins/<name>`.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ph,categories=hotreload
// +kubebuilder:printcolumn:name="Plugins",type=integer,JSONPath=`.status.pluginCount`
// +kubebuilder:printcolumn:name="Rev",type=integer,JSONPath=`.status.revision`
// +kubebuilder:printcolumn:name="Pinned",type=string,JSONPath=`.spec.pinnedRevision`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.configRevision`,priority=1
// +kubebuilder:printcolumn:name="Applied",type=string,JSONPath=`.status.appliedRevision`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Available",type=string,JSONPath=`.status.conditions[?(@.type=="Available")].status`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`,priority=1
// +kubebuilder:printcolumn:name="Types",type=string,JSONPath=`.status.types[*].name`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PluginHost struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the host.
	// +required
	Spec PluginHostSpec `json:"spec"`

	// status is the observed state of the host, written by the operator.
	// +optional
	Status PluginHostStatus `json:"status,omitempty"`
}

// PluginHostList is a list of PluginHosts.
//
// +kubebuilder:object:root=true
type PluginHostList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the PluginHosts.
	Items []PluginHost `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PluginHost{}, &PluginHostList{})
}
