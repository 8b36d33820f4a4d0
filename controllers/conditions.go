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

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// podFact is what one reconcile learned about a running host pod.
type podFact struct {
	Name string
	// Err is set when the pod's /status could not be read.
	Err error
	// Ready is the pod's Ready condition.
	Ready bool
	// Applied is the revision the pod reports as applied.
	Applied string
	// Refused is the pod's reload error for the desired revision.
	Refused string
}

// hostFacts is what the PluginHost conditions are computed from.
type hostFacts struct {
	// ConfigReason and ConfigMessage are set when the configuration cannot be rendered
	// (ConfigInvalid, ConfigMapNotFound): the host keeps its last rendered configuration.
	ConfigReason, ConfigMessage string
	// DesiredRevision is status.configRevision.
	DesiredRevision string
	// Pods counts the host's pods that are not being deleted; ReadyPods those that are Ready.
	Pods, ReadyPods int
	// DeploymentAvailable is the Deployment's Available condition.
	DeploymentAvailable bool
	// Running are the facts of the running pods.
	Running []podFact
}

// converged reports whether every running pod runs the desired revision: nothing is left to
// poll for. With no running pod there is nothing to poll either; pod events bring the next
// reconcile.
func (f hostFacts) converged() bool {
	for _, p := range f.Running {
		if p.Err != nil || p.Applied != f.DesiredRevision {
			return false
		}
	}
	return true
}

// awaitingApply reports whether every running pod answers and at least one has not applied
// the desired revision yet (none refused it): the change is in flight and lands within about
// one poll interval of the host.
func (f hostFacts) awaitingApply() bool {
	waiting := false
	for _, p := range f.Running {
		if p.Err != nil || p.Refused != "" {
			return false
		}
		if p.Applied != f.DesiredRevision {
			waiting = true
		}
	}
	return waiting
}

// rolledOut reports whether at least one pod runs and all running pods run the desired
// revision.
func (f hostFacts) rolledOut() bool {
	return f.DesiredRevision != "" && len(f.Running) > 0 && f.converged()
}

func short(rev string) string {
	if rev == "" {
		return "(none)"
	}
	return pluginconfig.RevisionPrefix + pluginconfig.ShortRevision(rev)
}

func setCondition(conds *[]metav1.Condition, gen int64, typ string, ok bool, reason, format string, args ...any) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: fmt.Sprintf(format, args...), ObservedGeneration: gen,
	})
}

// setHostConditions sets Available, Progressing and Degraded from f.
func setHostConditions(host *v1alpha1.PluginHost, f hostFacts) {
	conds, gen := &host.Status.Conditions, host.Generation

	if f.ReadyPods > 0 || f.DeploymentAvailable {
		setCondition(conds, gen, v1alpha1.ConditionAvailable, true, v1alpha1.ReasonWorkloadAvailable,
			"%d of %d pods ready", f.ReadyPods, f.Pods)
	} else {
		setCondition(conds, gen, v1alpha1.ConditionAvailable, false, v1alpha1.ReasonWorkloadUnavailable,
			"%d of %d pods ready", f.ReadyPods, f.Pods)
	}

	applied := 0
	for _, p := range f.Running {
		if p.Err == nil && p.Applied == f.DesiredRevision {
			applied++
		}
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
			"%d of %d running pods run revision %s", applied, len(f.Running), short(f.DesiredRevision))
	}

	var refused, unreachable []string
	for _, p := range f.Running {
		switch {
		case p.Refused != "":
			refused = append(refused, fmt.Sprintf("pod %s: %s", p.Name, p.Refused))
		case p.Err != nil && p.Ready:
			unreachable = append(unreachable, fmt.Sprintf("pod %s: %v", p.Name, p.Err))
		}
	}
	switch {
	case f.ConfigReason != "":
		setCondition(conds, gen, v1alpha1.ConditionDegraded, true, f.ConfigReason, "%s", f.ConfigMessage)
	case len(refused) > 0:
		setCondition(conds, gen, v1alpha1.ConditionDegraded, true, v1alpha1.ReasonPodRefusedConfig,
			"Refused revision %s and kept the previous one: %s", short(f.DesiredRevision), strings.Join(refused, "; "))
	case len(unreachable) > 0:
		setCondition(conds, gen, v1alpha1.ConditionDegraded, true, v1alpha1.ReasonPodsUnreachable,
			"Cannot read /status: %s", strings.Join(unreachable, "; "))
	default:
		setCondition(conds, gen, v1alpha1.ConditionDegraded, false, v1alpha1.ReasonAsExpected, "Nothing is wrong")
	}
}

// findEntry returns the status.plugins entry of a Plugin in host, or nil.
func findEntry(host *v1alpha1.PluginHost, name string) *v1alpha1.SelectedPluginStatus {
	for i := range host.Status.Plugins {
		if host.Status.Plugins[i].Name == name {
			return &host.Status.Plugins[i]
		}
	}
	return nil
}

// setPluginStatus computes a Plugin's status from the PluginHosts of its namespace: the
// oldest host that selects it runs it, and that host's status.plugins entry and pod reports
// decide Accepted, Applied and Ready. It reads nothing else.
func setPluginStatus(p *v1alpha1.Plugin, hosts []v1alpha1.PluginHost) {
	st, gen := &p.Status, p.Generation
	// Applied before, for this generation: appliedRevision then stays where it is.
	wasApplied := st.ObservedGeneration == gen && st.AppliedRevision != "" &&
		meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionApplied)
	st.ObservedGeneration = gen
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: gen,
		})
	}
	setAll := func(accepted metav1.ConditionStatus, reason, msg string) {
		set(v1alpha1.ConditionAccepted, accepted, reason, msg)
		set(v1alpha1.ConditionApplied, metav1.ConditionFalse, reason, msg)
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	}

	owners := selectingHosts(hosts, p.Labels)
	if len(owners) == 0 {
		st.Host, st.URL, st.AppliedRevision = "", "", ""
		setAll(metav1.ConditionFalse, v1alpha1.ReasonNoHost, "No PluginHost in this namespace selects this Plugin's labels")
		return
	}
	host := owners[0]
	st.Host, st.URL = host.Name, pluginURL(host, p.Name)
	acceptedMsg := fmt.Sprintf("Runs on PluginHost %s", host.Name)
	if len(owners) > 1 {
		others := make([]string, 0, len(owners)-1)
		for _, o := range owners[1:] {
			others = append(others, o.Name)
		}
		which := "PluginHost %s, which leaves"
		if len(others) > 1 {
			which = "PluginHosts %s, which leave"
		}
		acceptedMsg += fmt.Sprintf("; also selected by "+which+" it out: a Plugin runs on the oldest PluginHost that selects it",
			strings.Join(others, ", "))
	}

	e := findEntry(host, p.Name)
	if e == nil || e.Generation != gen || (e.UID != "" && e.UID != p.UID) {
		st.AppliedRevision = ""
		msg := fmt.Sprintf("PluginHost %s has not evaluated generation %d yet", host.Name, gen)
		set(v1alpha1.ConditionAccepted, metav1.ConditionUnknown, v1alpha1.ReasonPending, msg)
		set(v1alpha1.ConditionApplied, metav1.ConditionFalse, v1alpha1.ReasonPending, msg)
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonPending, msg)
		return
	}
	if e.Reason != v1alpha1.ReasonAccepted {
		st.AppliedRevision = ""
		setAll(metav1.ConditionFalse, e.Reason, e.Message)
		return
	}
	set(v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, acceptedMsg)

	pods := host.Status.Pods
	applied := len(pods) > 0 && e.AppliedGeneration == gen && host.Status.AppliedRevision != ""
	ready := 0
	var refused []string
	for _, pod := range pods {
		if pod.AppliedRevision != host.Status.AppliedRevision {
			applied = false
		}
		if pod.Ready {
			ready++
		}
		if pod.LastReloadError != "" && e.Revision != "" && e.Revision == host.Status.ConfigRevision {
			refused = append(refused, fmt.Sprintf("pod %s: %s", pod.Name, pod.LastReloadError))
		}
	}
	switch {
	case applied:
		// The revision that first delivered this generation. Later revisions that change only
		// other plugins do not move it, so that editing one Plugin does not rewrite the
		// status of every Plugin of its host.
		if !wasApplied {
			st.AppliedRevision = host.Status.AppliedRevision
		}
		set(v1alpha1.ConditionApplied, metav1.ConditionTrue, v1alpha1.ReasonApplied,
			fmt.Sprintf("Every pod of PluginHost %s runs generation %d (since revision %s)", host.Name, gen, short(st.AppliedRevision)))
	case len(refused) > 0:
		st.AppliedRevision = ""
		set(v1alpha1.ConditionApplied, metav1.ConditionFalse, v1alpha1.ReasonReloadFailed,
			fmt.Sprintf("The pods of PluginHost %s refused the configuration with generation %d: %s", host.Name, gen, strings.Join(refused, "; ")))
	case e.Revision == "":
		st.AppliedRevision = ""
		set(v1alpha1.ConditionApplied, metav1.ConditionFalse, v1alpha1.ReasonConfigInvalid,
			fmt.Sprintf("PluginHost %s cannot render a configuration with generation %d (see its Degraded condition); its pods keep the last one", host.Name, gen))
	case len(pods) == 0:
		st.AppliedRevision = ""
		set(v1alpha1.ConditionApplied, metav1.ConditionFalse, v1alpha1.ReasonRollingOut,
			fmt.Sprintf("No running pod of PluginHost %s reports its configuration yet", host.Name))
	default:
		// No revision or pod count in the message: it would change at every revision of the
		// host and rewrite this status for nothing.
		st.AppliedRevision = ""
		set(v1alpha1.ConditionApplied, metav1.ConditionFalse, v1alpha1.ReasonRollingOut,
			fmt.Sprintf("Waiting for the pods of PluginHost %s to apply generation %d", host.Name, gen))
	}

	switch c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionApplied); {
	case c.Status != metav1.ConditionTrue:
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, c.Reason, c.Message)
	case p.Spec.Enabled != nil && !*p.Spec.Enabled:
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDisabled, "spec.enabled is false: the plugin is configured but does not serve requests")
	case ready < len(pods):
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonHostUnavailable,
			fmt.Sprintf("%d of %d pods of PluginHost %s are ready", ready, len(pods), host.Name))
	default:
		set(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing, "Served at "+st.URL)
	}
}
