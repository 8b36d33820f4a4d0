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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// readiness is what a reason of a Ready condition means for kstatus
// (sigs.k8s.io/cli-utils/pkg/kstatus), which GitOps tools use to decide whether a rollout is
// done: InProgress (Reconciling=True), Failed (Stalled=True) or Current (neither).
type readiness string

const (
	// settled: nothing is in flight. Ready=True, or Ready=False by the user's choice
	// (a disabled Plugin).
	settled readiness = "Current"
	// reconciling: not Ready yet, and the operator gets there without anyone's help.
	reconciling readiness = "Reconciling"
	// stalled: not Ready, and waiting or retrying cannot fix it; someone has to change an
	// object.
	stalled readiness = "Stalled"
)

// reasonReadiness classifies every condition reason of api/v1alpha1. A reason that is never
// the reason of a Ready condition is settled. TestEveryReasonIsClassified fails when a reason
// constant is missing here, and docs/troubleshooting.md repeats the class of each reason
// (checked by TestTroubleshootingCoversEveryReason).
//
// Missing references are split by what GitOps tools do: they apply Secrets and ConfigMaps
// before custom resources, so a missing one will not appear by waiting (Stalled); but a
// Plugin may be applied before the PluginHost that selects it, so NoHost is Reconciling.
var reasonReadiness = map[string]readiness{
	// Plugin.
	v1alpha1.ReasonAccepted:        settled,
	v1alpha1.ReasonApplied:         settled,
	v1alpha1.ReasonServing:         settled,
	v1alpha1.ReasonDisabled:        settled,
	v1alpha1.ReasonPending:         reconciling,
	v1alpha1.ReasonNoHost:          reconciling,
	v1alpha1.ReasonHostUnavailable: reconciling,
	v1alpha1.ReasonInvalidSpec:     stalled,
	v1alpha1.ReasonNameConflict:    stalled,
	v1alpha1.ReasonSecretNotFound:  stalled,
	v1alpha1.ReasonReloadFailed:    stalled,
	v1alpha1.ReasonSecretNotMarked: stalled,
	// A Plugin of a type its host does not carry, or with options its type's schema
	// refuses: someone must change the Plugin or the host's image.
	v1alpha1.ReasonUnknownPluginType: stalled,
	v1alpha1.ReasonInvalidOptions:    stalled,
	// A Plugin too large for one entry, or for the room left in its host: someone must
	// shrink it or others, or move it to another host.
	v1alpha1.ReasonPluginTooLarge: stalled,
	v1alpha1.ReasonHostFull:       stalled,
	// The host's pods of the current image come up and advertise without anyone's help; an
	// image built before the SDK never does, which the message says.
	v1alpha1.ReasonAwaitingHostTypes: reconciling,

	// PluginHost (some also reach Plugins).
	v1alpha1.ReasonRolledOut:             settled,
	v1alpha1.ReasonWorkloadAvailable:     settled,
	v1alpha1.ReasonAsExpected:            settled,
	v1alpha1.ReasonRollingOut:            reconciling,
	v1alpha1.ReasonWorkloadUnavailable:   reconciling,
	v1alpha1.ReasonPodsUnreachable:       reconciling,
	v1alpha1.ReasonReconcileFailed:       reconciling,
	v1alpha1.ReasonConfigInvalid:         stalled,
	v1alpha1.ReasonConfigMapNotFound:     stalled,
	v1alpha1.ReasonConfigMapNotConsented: stalled,
	v1alpha1.ReasonPodRefusedConfig:      stalled,
	v1alpha1.ReasonChildConflict:         stalled,
	v1alpha1.ReasonChildRefused:          stalled,
	v1alpha1.ReasonImageNotAllowed:       stalled,
	v1alpha1.ReasonHostTypesInvalid:      stalled,
	// A pin that names no usable revision waits for someone to fix spec.pinnedRevision.
	v1alpha1.ReasonPinnedRevisionNotFound: stalled,
	// A Plugin not applied because its host serves a pinned revision: its spec is not what
	// runs until someone unpins the host. Not settled like Disabled (kstatus would read it
	// Current, as it reads only Reconciling and Stalled): Disabled is the Plugin's own spec,
	// a pin overrides it from elsewhere, and a health check should say so.
	v1alpha1.ReasonHostPinned: stalled,
}

// readinessOf returns the class of a reason; an unknown one counts as reconciling, which
// never reports a failure that may not be one.
func readinessOf(reason string) readiness {
	if r, ok := reasonReadiness[reason]; ok {
		return r
	}
	return reconciling
}

// setReadiness sets Ready, and Reconciling and Stalled as kstatus reads them, for generation
// gen. Reconciling and Stalled carry Ready's reason and message; which one is True follows
// from the reason (reasonReadiness), so a new reason only needs a line in that table.
func setReadiness(conds *[]metav1.Condition, gen int64, ready bool, reason, format string, args ...any) {
	setCondition(conds, gen, v1alpha1.ConditionReady, ready, reason, format, args...)
	class := readinessOf(reason)
	if ready {
		class = settled
	}
	setCondition(conds, gen, v1alpha1.ConditionReconciling, class == reconciling, reason, format, args...)
	setCondition(conds, gen, v1alpha1.ConditionStalled, class == stalled, reason, format, args...)
}
