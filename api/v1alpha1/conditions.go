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

// Names shared by the operator, the objects it creates and the runtime.
const (
	// FieldOwner is the field manager of every server-side apply and status patch the operator
	// makes.
	FieldOwner = "plugin-operator"

	// LabelHost is set, on every object the operator creates for a PluginHost (ConfigMap,
	// workload, pods, Service), to the PluginHost's name.
	LabelHost = "plugins.hotreload.io/host"

	// LabelPluginAuth is the consent label. With the value "true" it marks a Secret as meant
	// for Plugins' auth (spec.auth.secretRef): the operator copies the keys of a marked Secret
	// only into the pods of the PluginHost that runs the Plugin. It marks a ConfigMap, with
	// the same value, as meant for a PluginHost's spec.configMapRef: the operator reads no
	// other ConfigMap of the namespace. The operator's own ConfigMaps and Secrets carry it
	// with another value, which marks nothing; the manager caches (the metadata of) the
	// ConfigMaps and Secrets that carry the key, and no others.
	LabelPluginAuth = "plugins.hotreload.io/plugin-auth"

	// ConfigRevisionAnnotation is set on a host's pods to the configuration revision they
	// should run (PluginHost status.configRevision). Updating it makes kubelet refresh the
	// pod's projected config.json at once instead of at its next periodic sync.
	ConfigRevisionAnnotation = "plugins.hotreload.io/config-revision"
	// CredentialsRevisionAnnotation is set on a host's pods, with the nudge, to a keyed digest
	// of the credentials Secret ("hmac-sha256:" and 64 hex digits, keyed by a random key the
	// Secret itself keeps), so that a rotated Secret is re-projected at once too, and whoever
	// may read pods learns nothing of the credentials.
	CredentialsRevisionAnnotation = "plugins.hotreload.io/credentials-revision"

	// RevisionAppliedPodsAnnotation, RevisionRefusedPodsAnnotation, RevisionAppliedAtAnnotation
	// and RevisionRefusalAnnotation are set on a host's ControllerRevisions, whose data is
	// immutable, to what happened to the revision later: how many running pods last reported
	// running it, how many refused it, when every running pod first ran it (RFC 3339), and a
	// pod's refusal (at most 1 KiB).
	RevisionAppliedPodsAnnotation = "plugins.hotreload.io/applied-pods"
	RevisionRefusedPodsAnnotation = "plugins.hotreload.io/refused-pods"
	RevisionAppliedAtAnnotation   = "plugins.hotreload.io/applied-at"
	RevisionRefusalAnnotation     = "plugins.hotreload.io/refusal"

	// ConfigRevisionPrefix starts every configuration revision; the 64 lowercase hex digits of
	// the SHA-256 of the rendered config.json bytes follow it.
	ConfigRevisionPrefix = "sha256:"
)

// Condition types of a Plugin.
const (
	// ConditionAccepted is True when the Plugin's spec is valid, its Secret exists and is
	// marked for plugin auth (LabelPluginAuth), no other plugin of its host has its name, and
	// a PluginHost selects it.
	ConditionAccepted = "Accepted"

	// ConditionApplied is True when every pod of the Plugin's host has applied a configuration
	// revision that contains the Plugin's current generation.
	ConditionApplied = "Applied"

	// ConditionReady is True when the Plugin is enabled, Applied, and served by a ready pod at
	// status.url. On a PluginHost it is True when a ready pod serves and every running pod
	// runs the desired configuration revision. Its reason says what is awaited or wrong.
	ConditionReady = "Ready"
)

// Condition types of both kinds that follow kstatus (sigs.k8s.io/cli-utils/pkg/kstatus), as
// Flux, Argo CD, kpt and `kubectl wait` read them. Both are always present, True or False,
// with the reason and message of Ready: at most one of them is True.
const (
	// ConditionReconciling is True while the object is not Ready and the operator expects it
	// to become Ready without anyone's help: a rollout in flight, pods starting, a step to
	// retry.
	ConditionReconciling = "Reconciling"

	// ConditionStalled is True when the object cannot become Ready until someone changes
	// something (its spec, a referenced object, a conflicting object): retrying cannot help.
	ConditionStalled = "Stalled"
)

// Condition types of a PluginHost.
const (
	// ConditionAvailable is True when a ready pod of the host serves the plugins' HTTP API.
	ConditionAvailable = "Available"

	// ConditionProgressing is True while the host's pods have not all applied the desired
	// configuration revision, or its workload is rolling out.
	ConditionProgressing = "Progressing"

	// ConditionDegraded is True when the host cannot reach the desired state by waiting: its
	// configuration is invalid, a pod refused it, or pods cannot be reached.
	ConditionDegraded = "Degraded"
)

// Condition reasons of a Plugin.
const (
	// ReasonAccepted (Accepted=True): the Plugin is valid and a PluginHost selects it.
	ReasonAccepted = "Accepted"

	// ReasonInvalidSpec (Accepted=False): the spec fails a check that admission cannot make;
	// the message says which field.
	ReasonInvalidSpec = "InvalidSpec"

	// ReasonNameConflict (Accepted=False): a plugin of the same name is defined in the host's
	// configMapRef. In a PluginHost's status.plugins it also marks a Plugin that another,
	// older PluginHost selects too: a counter has one writer, so the oldest selecting
	// PluginHost (by creationTimestamp, then name) runs the Plugin and the others leave it
	// out; the Plugin's own Accepted condition names them.
	ReasonNameConflict = "NameConflict"

	// ReasonNoHost (Accepted=False, Applied=False, Ready=False): no PluginHost selects the
	// Plugin.
	ReasonNoHost = "NoHost"

	// ReasonSecretNotFound (Accepted=False): the Secret of spec.auth.secretRef, or a key its
	// method reads, does not exist.
	ReasonSecretNotFound = "SecretNotFound"

	// ReasonSecretNotMarked (Accepted=False): the Secret of spec.auth.secretRef exists but
	// lacks the label plugins.hotreload.io/plugin-auth=true (LabelPluginAuth); the message
	// says how to add it. Adding it makes the Plugin Accepted without an edit.
	ReasonSecretNotMarked = "SecretNotMarked"

	// ReasonPending (Accepted=Unknown, Applied=False, Ready=False): the Plugin's PluginHost has
	// not evaluated its current generation yet.
	ReasonPending = "Pending"

	// ReasonApplied (Applied=True): every pod of the host runs a revision containing the
	// Plugin's current generation.
	ReasonApplied = "Applied"

	// ReasonReloadFailed (Applied=False, Ready=False): a pod of the host refused the
	// configuration that contains this generation and kept the previous one.
	ReasonReloadFailed = "ReloadFailed"

	// ReasonDisabled (Ready=False): spec.enabled is false.
	ReasonDisabled = "Disabled"

	// ReasonServing (Ready=True): the Plugin is applied and a ready pod serves it at
	// status.url.
	ReasonServing = "Serving"

	// ReasonUnknownPluginType (Accepted=False): the Plugin's PluginHost does not carry
	// spec.type: its image did not advertise that type (status.types of the host). The
	// message names the types it carries. Fix spec.type or the host's spec.image.
	ReasonUnknownPluginType = "UnknownPluginType"

	// ReasonInvalidOptions (Accepted=False): spec.options do not match the options schema
	// that the host advertised for spec.type; the message names the option at fault.
	ReasonInvalidOptions = "InvalidOptions"

	// ReasonAwaitingHostTypes (Accepted=Unknown, Ready=False; the PluginHost's Ready when a
	// pod is ready):
	// no running pod of the host's current image has advertised its plugin types yet, so
	// the Plugins cannot be checked and are not rendered (the pods keep the last rendered
	// configuration). It clears once such a pod answers /status; a pod that answers
	// without a version runs an image built before the plugin SDK, which never advertises.
	ReasonAwaitingHostTypes = "AwaitingHostTypes"

	// ReasonHostUnavailable (Ready=False): the Plugin is applied but no pod of its host is
	// ready.
	ReasonHostUnavailable = "HostUnavailable"

	// ReasonPluginTooLarge (Accepted=False): the Plugin's entry of the host's configuration
	// (its spec.options above all) is over the limit of one Plugin, 64 KiB of JSON. The host
	// leaves it out alone and renders the others; after an edit, the last accepted entry of
	// the Plugin keeps serving, as for InvalidOptions. Make spec.options smaller.
	ReasonPluginTooLarge = "PluginTooLarge"

	// ReasonHostFull (Accepted=False): the Plugin's PluginHost has no room for it. Either
	// the host already lists 500 older Plugins in status.plugins (it runs no Plugin it does
	// not list; status.unlistedPlugins counts the others, which are not checked further), or
	// the Plugin is valid but with it the rendered configuration would be over the 1 MiB
	// limit of a ConfigMap, or the copied credentials over the 1 MiB limit of a Secret. The
	// host admits its Plugins oldest first (by creationTimestamp, then name), so older
	// Plugins keep their place and the host keeps rolling out. Delete or shrink Plugins of
	// the host, or select this Plugin with another PluginHost.
	ReasonHostFull = "HostFull"
)

// Condition reasons of a PluginHost; ReasonRollingOut is also used by Plugins.
const (
	// ReasonRollingOut (Progressing=True, Ready=False): pods have not yet applied the
	// desired configuration revision.
	ReasonRollingOut = "RollingOut"

	// ReasonRolledOut (Progressing=False; PluginHost Ready=True): every running pod runs the
	// desired revision, and for Ready at least one of them is ready.
	ReasonRolledOut = "RolledOut"

	// ReasonWorkloadAvailable (Available=True): a pod of the host is ready.
	ReasonWorkloadAvailable = "WorkloadAvailable"

	// ReasonWorkloadUnavailable (Available=False, Ready=False): no pod of the host is ready.
	ReasonWorkloadUnavailable = "WorkloadUnavailable"

	// ReasonAsExpected (Degraded=False): nothing is wrong.
	ReasonAsExpected = "AsExpected"

	// ReasonConfigInvalid (Degraded=True): the ConfigMap of spec.configMapRef does not hold a
	// valid config.json, or merging it with the selected Plugins fails validation. The host
	// keeps running its last rendered configuration. Plugins use it too (Applied=False) for a
	// generation that cannot roll out for that reason.
	ReasonConfigInvalid = "ConfigInvalid"

	// ReasonConfigMapNotFound (Degraded=True): the ConfigMap or key of spec.configMapRef does
	// not exist.
	ReasonConfigMapNotFound = "ConfigMapNotFound"

	// ReasonConfigMapNotConsented (Degraded=True): the ConfigMap of spec.configMapRef lacks
	// the label plugins.hotreload.io/plugin-auth=true (LabelPluginAuth), so the operator does
	// not read it; the message gives the kubectl command that marks it. The host keeps
	// running its last rendered configuration.
	ReasonConfigMapNotConsented = "ConfigMapNotConsented"

	// ReasonImageNotAllowed (Degraded=True): spec.image is not among the manager's allowed
	// host images (--allowed-host-images); nothing is rendered or applied for the host, and
	// its last accepted workload keeps running.
	ReasonImageNotAllowed = "ImageNotAllowed"

	// ReasonPodRefusedConfig (Degraded=True): a pod reported a reload error for the desired
	// revision and kept its previous configuration.
	ReasonPodRefusedConfig = "PodRefusedConfig"

	// ReasonPodsUnreachable (Degraded=True): the `/status` endpoint of a ready pod cannot be
	// read.
	ReasonPodsUnreachable = "PodsUnreachable"

	// ReasonChildConflict (PluginHost Ready=False, Stalled=True, Degraded=True; Plugin
	// Ready=False): an object with the name of one of the host's children (credentials
	// Secret, ConfigMap, state PVC, Deployment, Service, NetworkPolicy, PodDisruptionBudget)
	// exists and is not controlled by this PluginHost — including one created while the
	// operator created that child, and one whose controller reference names an earlier
	// PluginHost of the same name that the operator did not write. The operator writes none
	// of the children until it is gone; the message names kind and name.
	ReasonChildConflict = "ChildConflict"

	// ReasonChildRefused (PluginHost Ready=False, Stalled=True, Degraded=True; a Plugin not
	// applied yet Ready=False, Stalled=True): the API server refused to
	// write one of the host's children as Invalid (422: the object fails validation, or an
	// admission policy denies it) or Forbidden (403: an admission webhook, a ResourceQuota,
	// the operator's RBAC). Retrying does not change that answer; the message names the kind,
	// the child's name and the API server's message. The operator writes the child again
	// every 10 s and recovers by itself once the refusal goes.
	ReasonChildRefused = "ChildRefused"

	// ReasonHostTypesInvalid (PluginHost Ready=False, Stalled=True, Degraded=True; its
	// Plugins too): a pod of the host's image advertised plugin types the manager refuses
	// (over a limit of internal/typeschema, an options schema that does not compile); they
	// are not recorded and the Plugins are not rendered. The image must be fixed.
	ReasonHostTypesInvalid = "HostTypesInvalid"

	// ReasonPinnedRevisionNotFound (PluginHost Ready=False, Stalled=True, Degraded=True):
	// spec.pinnedRevision names no revision the host has recorded (never, or trimmed by
	// spec.revisionHistoryLimit), or one recorded without its configuration; the host keeps
	// serving what it served. The message names it and the recorded revisions.
	ReasonPinnedRevisionNotFound = "PinnedRevisionNotFound"

	// ReasonHostPinned (Plugin Applied=False, Ready=False, Stalled=True): the Plugin's
	// PluginHost serves a pinned revision (spec.pinnedRevision), not the Plugins' render;
	// the Plugin's spec is not what runs until someone unpins the host.
	ReasonHostPinned = "HostPinned"

	// ReasonReconcileFailed (PluginHost Ready=False, Reconciling=True): a step of the
	// reconcile failed for a reason that may pass by itself (a conflict, a timeout, an API
	// server or webhook unavailable); it is retried with backoff and the message names the
	// step and the error. A child refused as Invalid or Forbidden is ChildRefused instead.
	ReasonReconcileFailed = "ReconcileFailed"
)

// Reasons of the Events the operator records, on transitions only.
const (
	// EventRevisionRolledOut (Normal, on a PluginHost): every running pod of the host now runs a
	// new configuration revision.
	EventRevisionRolledOut = "RevisionRolledOut"

	// EventPluginRejected (Warning, on a Plugin, related to its PluginHost): the host left the
	// Plugin out of its configuration; the note says why.
	EventPluginRejected = "PluginRejected"

	// EventPodRefusedConfig (Warning, on a PluginHost, related to the pod): a pod refused the
	// desired configuration revision and kept its previous one; the note has its error.
	EventPodRefusedConfig = "PodRefusedConfig"

	// EventChildConflict (Warning, on a PluginHost): an object that the host would create
	// exists and belongs to someone else; the note names it.
	EventChildConflict = "ChildConflict"

	// EventChildRefused (Warning, on a PluginHost): the API server refused to write one of
	// the host's children (Invalid or Forbidden); the note names it and has the API server's
	// message.
	EventChildRefused = "ChildRefused"

	// EventAuditTrailBroken (Warning, on a PluginHost, related to the pod): a pod found its
	// audit trail broken at start; the note has the sequence and how.
	EventAuditTrailBroken = "AuditTrailBroken"

	// EventAuditTrailRegressed (Warning, on a PluginHost, related to the pod): a pod's audit
	// trail head went backwards in the same chain, or its hash at a sequence changed: the
	// trail was cut or rewritten.
	EventAuditTrailRegressed = "AuditTrailRegressed"
)
