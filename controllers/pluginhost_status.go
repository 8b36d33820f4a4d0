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
	"strings"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// setHostConditions sets a PluginHost's conditions from the facts its reconcile gathered, and
// nothing else: Ready, Reconciling and Stalled (kstatus) always; Available, Progressing and
// Degraded when the reconcile read the pods, since they describe the pods (a conflict and a
// refused child also set Degraded). All carry the host's generation.
func setHostConditions(host *v1alpha1.PluginHost, f hostFacts) {
	conds, gen := &host.Status.Conditions, host.Generation
	var refused, unreachable []string
	refusedWhat := "revision " + short(f.DesiredRevision)
	if host.Status.PinnedRevision != 0 {
		// A pinned revision the current runtime refuses (its image changed since, say):
		// Stalled until someone pins another revision or unpins.
		refusedWhat = fmt.Sprintf("the pinned revision %d (%s, spec.pinnedRevision)", host.Status.PinnedRevision, short(f.DesiredRevision))
	}
	for _, p := range f.Running {
		switch {
		case p.Refused != "":
			refused = append(refused, fmt.Sprintf("pod %s: %s", p.Name, p.Refused))
		case p.Err != nil && p.Ready:
			unreachable = append(unreachable, fmt.Sprintf("pod %s: %v", p.Name, p.Err))
		}
	}

	switch {
	case len(f.Conflicts) > 0:
		msg := fmt.Sprintf("Not applying any child: %s; delete or rename it, or rename the PluginHost",
			strings.Join(f.Conflicts, "; "))
		setReadiness(conds, gen, false, v1alpha1.ReasonChildConflict, "%s", msg)
		setCondition(conds, gen, v1alpha1.ConditionDegraded, true, v1alpha1.ReasonChildConflict, "%s", msg)
		return
	case f.Refusal != "":
		setReadiness(conds, gen, false, v1alpha1.ReasonChildRefused, "%s", f.Refusal)
		setCondition(conds, gen, v1alpha1.ConditionDegraded, true, v1alpha1.ReasonChildRefused, "%s", f.Refusal)
		return
	case f.FailedStep != "":
		setReadiness(conds, gen, false, v1alpha1.ReasonReconcileFailed, "%s; retrying", f.FailedStep)
		return
	case f.ConfigReason != "":
		setReadiness(conds, gen, false, f.ConfigReason, "%s", f.ConfigMessage)
	case f.TypesReason == v1alpha1.ReasonHostTypesInvalid:
		setReadiness(conds, gen, false, f.TypesReason, "%s", f.TypesMessage)
	case len(refused) > 0:
		setReadiness(conds, gen, false, v1alpha1.ReasonPodRefusedConfig,
			"Refused %s and kept the previous one: %s", refusedWhat, strings.Join(refused, "; "))
	case len(unreachable) > 0:
		setReadiness(conds, gen, false, v1alpha1.ReasonPodsUnreachable, "Cannot read /status: %s", strings.Join(unreachable, "; "))
	case f.ReadyPods == 0:
		setReadiness(conds, gen, false, v1alpha1.ReasonWorkloadUnavailable, "No pod is ready (%d pods)", f.Pods)
	case f.TypesReason != "":
		// A ready pod that has not advertised: its image is older than the SDK, or the
		// pods of a new image are not ready yet.
		setReadiness(conds, gen, false, f.TypesReason, "%s", f.TypesMessage)
	case !f.rolledOut():
		setReadiness(conds, gen, false, v1alpha1.ReasonRollingOut, "%d of %d running pods run revision %s",
			appliedPods(f), len(f.Running), short(f.DesiredRevision))
	case host.Status.PinnedRevision != 0:
		setReadiness(conds, gen, true, v1alpha1.ReasonRolledOut, "%d of %d pods ready; all %d running pods run revision %s, pinned by spec.pinnedRevision (revision %d)",
			f.ReadyPods, f.Pods, len(f.Running), short(f.DesiredRevision), host.Status.PinnedRevision)
	default:
		setReadiness(conds, gen, true, v1alpha1.ReasonRolledOut, "%d of %d pods ready; all %d running pods run revision %s",
			f.ReadyPods, f.Pods, len(f.Running), short(f.DesiredRevision))
	}

	if f.ReadyPods > 0 || f.DeploymentAvailable {
		setCondition(conds, gen, v1alpha1.ConditionAvailable, true, v1alpha1.ReasonWorkloadAvailable,
			"%d of %d pods ready", f.ReadyPods, f.Pods)
	} else {
		setCondition(conds, gen, v1alpha1.ConditionAvailable, false, v1alpha1.ReasonWorkloadUnavailable,
			"%d of %d pods ready", f.ReadyPods, f.Pods)
	}

	switch {
	case f.rolledOut():
		setCondition(conds, gen, v1alpha1.ConditionProgressing, false, v1alpha1.ReasonRolledOut,
			"All %d running pods run revision %s", len(f.Running), short(f.DesiredRevision))
	case len(f.Running) == 0:
		setCondition(conds, gen, v1alpha1.ConditionProgressing, true, v1alpha1.ReasonRollingOut,
			"Waiting for a running pod (%d pods) to apply revision %s", f.Pods, short(f.DesiredRevision))
	default:
		setCondition(conds, gen, v1alpha1.ConditionProgressing, true, v1alpha1.ReasonRollingOut,
			"%d of %d running pods run revision %s", appliedPods(f), len(f.Running), short(f.DesiredRevision))
	}

	switch {
	case f.ConfigReason != "":
		setCondition(conds, gen, v1alpha1.ConditionDegraded, true, f.ConfigReason, "%s", f.ConfigMessage)
	case f.TypesReason == v1alpha1.ReasonHostTypesInvalid:
		setCondition(conds, gen, v1alpha1.ConditionDegraded, true, f.TypesReason, "%s", f.TypesMessage)
	case len(refused) > 0:
		setCondition(conds, gen, v1alpha1.ConditionDegraded, true, v1alpha1.ReasonPodRefusedConfig,
			"Refused %s and kept the previous one: %s", refusedWhat, strings.Join(refused, "; "))
	case len(unreachable) > 0:
		setCondition(conds, gen, v1alpha1.ConditionDegraded, true, v1alpha1.ReasonPodsUnreachable,
			"Cannot read /status: %s", strings.Join(unreachable, "; "))
	default:
		setCondition(conds, gen, v1alpha1.ConditionDegraded, false, v1alpha1.ReasonAsExpected, "Nothing is wrong")
	}
}

// appliedPods counts the running pods that run the desired revision.
func appliedPods(f hostFacts) int {
	n := 0
	for _, p := range f.Running {
		if p.Err == nil && p.Applied == f.DesiredRevision {
			n++
		}
	}
	return n
}
