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
)

// stallsPlugins are the reasons of a PluginHost's Stalled condition that stop its reconcile
// before it evaluates its Plugins, so that their Pending generations would wait for ever
// (ChildRefused does when the refused child is the credentials Secret or the ConfigMap).
var stallsPlugins = map[string]bool{
	v1alpha1.ReasonChildConflict:   true,
	v1alpha1.ReasonChildRefused:    true,
	v1alpha1.ReasonImageNotAllowed: true,
}

// stopsRollout are the reasons of a PluginHost's Stalled condition whose reconcile stops
// before it reads its pods, after it may have evaluated its Plugins: a Plugin waiting for
// those pods to apply it waits for ever.
var stopsRollout = map[string]bool{
	v1alpha1.ReasonChildConflict: true,
	v1alpha1.ReasonChildRefused:  true,
}

// stoppedBefore returns host's Stalled condition when it is True for the host's generation
// with a reason of stopsRollout, or nil.
func stoppedBefore(host *v1alpha1.PluginHost) *metav1.Condition {
	c := meta.FindStatusCondition(host.Status.Conditions, v1alpha1.ConditionStalled)
	if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != host.Generation || !stopsRollout[c.Reason] {
		return nil
	}
	return c
}

// setPluginStatus computes a Plugin's status from the PluginHosts of its namespace: the
// oldest host that selects it runs it, and that host's status.plugins entry and pod reports
// decide Accepted, Applied and Ready (and Reconciling and Stalled, from Ready's reason). It
// reads nothing else. status.observedGeneration moves to the Plugin's generation only once
// that generation has been evaluated: while its host has not evaluated it yet (Pending) the
// status describes an older one, and kstatus reports it InProgress.
func setPluginStatus(p *v1alpha1.Plugin, hosts []v1alpha1.PluginHost) {
	st, gen := &p.Status, p.Generation
	// Applied before, for this generation: appliedRevision then stays where it is.
	wasApplied := st.ObservedGeneration == gen && st.AppliedRevision != "" &&
		meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionApplied)
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		setStatusCondition(&st.Conditions, gen, typ, status, reason, msg)
	}
	setAll := func(accepted metav1.ConditionStatus, reason, msg string) {
		set(v1alpha1.ConditionAccepted, accepted, reason, msg)
		set(v1alpha1.ConditionApplied, metav1.ConditionFalse, reason, msg)
		setReadiness(&st.Conditions, gen, false, reason, "%s", msg)
	}

	owners := selectingHosts(hosts, p.Labels)
	if len(owners) == 0 {
		st.ObservedGeneration = gen
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
	if e == nil && host.Status.UnlistedPlugins > 0 {
		// The host lists its oldest Plugins and runs no other: a Plugin it does not list,
		// while it leaves some out, is one of them (a new Plugin is the youngest).
		st.ObservedGeneration = gen
		st.AppliedRevision = ""
		setAll(metav1.ConditionFalse, v1alpha1.ReasonHostFull, fmt.Sprintf(
			"PluginHost %s lists and runs the %d oldest Plugins that select it and none of the %d others, this one among them: "+
				"delete Plugins of this host, or select this Plugin with another PluginHost",
			host.Name, len(host.Status.Plugins), host.Status.UnlistedPlugins))
		return
	}
	if e == nil || e.Generation != gen || (e.UID != "" && e.UID != p.UID) {
		st.AppliedRevision = ""
		// A host stalled before it evaluates Plugins will not evaluate this generation until
		// someone acts: say so, as evaluated, rather than Pending forever. Other stalls (a pod
		// refusing another Plugin's change) do not stop the evaluation: Pending it is.
		if c := meta.FindStatusCondition(host.Status.Conditions, v1alpha1.ConditionStalled); c != nil &&
			c.Status == metav1.ConditionTrue && c.ObservedGeneration == host.Generation && stallsPlugins[c.Reason] {
			st.ObservedGeneration = gen
			msg := fmt.Sprintf("PluginHost %s is stalled (%s): %s", host.Name, c.Reason, c.Message)
			set(v1alpha1.ConditionAccepted, metav1.ConditionUnknown, v1alpha1.ReasonPending, msg)
			set(v1alpha1.ConditionApplied, metav1.ConditionFalse, c.Reason, msg)
			setReadiness(&st.Conditions, gen, false, c.Reason, "%s", msg)
			return
		}
		msg := fmt.Sprintf("PluginHost %s has not evaluated generation %d yet", host.Name, gen)
		set(v1alpha1.ConditionAccepted, metav1.ConditionUnknown, v1alpha1.ReasonPending, msg)
		set(v1alpha1.ConditionApplied, metav1.ConditionFalse, v1alpha1.ReasonPending, msg)
		setReadiness(&st.Conditions, gen, false, v1alpha1.ReasonPending, "%s", msg)
		return
	}
	st.ObservedGeneration = gen
	if e.Reason != v1alpha1.ReasonAccepted {
		st.AppliedRevision = ""
		// Awaiting the host's types, the spec is neither accepted nor refused yet.
		accepted := metav1.ConditionFalse
		if e.Reason == v1alpha1.ReasonAwaitingHostTypes {
			accepted = metav1.ConditionUnknown
			// A host stalled before it reads its pods will not learn its types until
			// someone acts on what its condition names: say that, as for an accepted Plugin.
			if c := stoppedBefore(host); c != nil {
				msg := fmt.Sprintf("PluginHost %s is stalled (%s): %s", host.Name, c.Reason, c.Message)
				set(v1alpha1.ConditionAccepted, accepted, e.Reason, e.Message)
				set(v1alpha1.ConditionApplied, metav1.ConditionFalse, c.Reason, msg)
				setReadiness(&st.Conditions, gen, false, c.Reason, "%s", msg)
				return
			}
		}
		setAll(accepted, e.Reason, e.Message)
		return
	}
	set(v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, acceptedMsg)
	if pin := host.Spec.PinnedRevision; pin != "" {
		// Whatever the pinned revision holds of it: this generation is not what the host
		// renders and serves until it is unpinned.
		st.AppliedRevision = ""
		msg := fmt.Sprintf("PluginHost %s serves the revision that spec.pinnedRevision %q names, not its Plugins' render; unset it to apply generation %d",
			host.Name, pin, gen)
		set(v1alpha1.ConditionApplied, metav1.ConditionFalse, v1alpha1.ReasonHostPinned, msg)
		setReadiness(&st.Conditions, gen, false, v1alpha1.ReasonHostPinned, "%s", msg)
		return
	}

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
	case stoppedBefore(host) != nil:
		// The host's reconcile stops before it reads its pods: waiting for them would be for
		// ever, until someone acts on what the host's condition names.
		c := stoppedBefore(host)
		st.AppliedRevision = ""
		set(v1alpha1.ConditionApplied, metav1.ConditionFalse, c.Reason,
			fmt.Sprintf("PluginHost %s is stalled (%s): %s", host.Name, c.Reason, c.Message))
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
		setReadiness(&st.Conditions, gen, false, c.Reason, "%s", c.Message)
	case p.Spec.Enabled != nil && !*p.Spec.Enabled:
		setReadiness(&st.Conditions, gen, false, v1alpha1.ReasonDisabled, "spec.enabled is false: the plugin is configured but does not serve requests")
	case ready < len(pods):
		setReadiness(&st.Conditions, gen, false, v1alpha1.ReasonHostUnavailable,
			"%d of %d pods of PluginHost %s are ready", ready, len(pods), host.Name)
	default:
		setReadiness(&st.Conditions, gen, true, v1alpha1.ReasonServing, "Served at %s", st.URL)
	}
}
