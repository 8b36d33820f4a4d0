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

	// Conflicts name the children ("Service victim") that exist and are not controlled by
	// this PluginHost: the reconcile applied nothing and read no pods.
	Conflicts []string
	// Refusal is set when the API server refused to write a child as Invalid or Forbidden:
	// the condition message. The reconcile stopped there and read no pods.
	Refusal string
	// FailedStep is set when a step of the reconcile failed: what it did and the error. The
	// pods were not read.
	FailedStep string
	// TypesReason and TypesMessage are set when the plugin types of the host's image are not
	// known (AwaitingHostTypes) or were refused (HostTypesInvalid): the Plugins are not
	// rendered.
	TypesReason, TypesMessage string
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

// MaxStatusMessageBytes bounds every message the manager writes into a status: each
// condition's message and each status.plugins[].message of a PluginHost. A longer one is cut
// at a rune boundary and ends with "… (truncated)". Messages quote what users and pods wrote
// (option values, unknown option keys, admission messages, pods' reload errors): without a
// cap, one Plugin with thousands of unknown option keys could push its host's status past
// the API server's limit on an object.
const MaxStatusMessageBytes = MaxReportedTextBytes

// statusMessage is msg as written into a status: at most MaxStatusMessageBytes.
func statusMessage(msg string) string { return truncateText(msg, MaxStatusMessageBytes) }

// setCondition sets a condition, its message cut to MaxStatusMessageBytes.
func setCondition(conds *[]metav1.Condition, gen int64, typ string, ok bool, reason, format string, args ...any) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	setStatusCondition(conds, gen, typ, status, reason, fmt.Sprintf(format, args...))
}

// setStatusCondition is meta.SetStatusCondition with the message cut to
// MaxStatusMessageBytes: every condition the manager writes goes through it.
func setStatusCondition(conds *[]metav1.Condition, gen int64, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: statusMessage(msg), ObservedGeneration: gen,
	})
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
