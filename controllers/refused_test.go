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

package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// denyLabel is the pod label that the test policy refuses on a Deployment's pod template.
const denyLabel = "refusal-test/deny"

// denyDeployments creates a ValidatingAdmissionPolicy and its binding that deny, in namespace
// ns only, Deployments whose pod template has the label denyLabel, and waits until the API
// server enforces them. It returns the binding; deleting it lifts the refusal.
func denyDeployments(t *testing.T, ns string) *admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	t.Helper()
	ctx := context.Background()
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "deny-labelled-" + ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
				}}}},
			Validations: []admissionregistrationv1.Validation{{
				Expression: fmt.Sprintf("!has(object.spec.template.metadata.labels) || !(%q in object.spec.template.metadata.labels)", denyLabel),
				Message:    "pods labelled " + denyLabel + " are not allowed here (test policy)",
			}},
		}}
	binding := denyBinding(policy.Name, ns)
	create(t, policy, binding)
	t.Cleanup(func() {
		_ = env.Client.Delete(ctx, binding)
		_ = env.Client.Delete(ctx, policy)
	})
	waitAdmission(t, ns, "the policy denies labelled Deployments", map[string]string{denyLabel: "true"}, apierrors.IsInvalid)
	return binding
}

func denyBinding(policy, ns string) *admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: policy},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}},
		}}
}

// waitAdmission waits until a dry-run creation of a Deployment with these pod labels in ns
// fails as refused says: admission plugins (policies, quotas) act once their informers have
// the new object.
func waitAdmission(t *testing.T, ns, what string, labels map[string]string, refused func(error) bool) {
	t.Helper()
	testutil.Eventually(t, wait, what, func() error {
		sel := map[string]string{"app": "probe"}
		tmpl := map[string]string{"app": "probe"}
		for k, v := range labels {
			tmpl[k] = v
		}
		probe := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe"}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: tmpl},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/probe:1"}}}},
		}}
		err := env.Client.Create(context.Background(), probe, client.DryRunAll)
		if !refused(err) {
			return fmt.Errorf("a dry-run Deployment got %v", err)
		}
		return nil
	})
}

// checkRefused checks that host is Ready=False, Stalled=True and Degraded=True with reason
// ChildRefused for its current generation, with a message naming want (the child) and
// apiMessage (the API server's words); that kstatus computes Failed; and that a Warning
// event says so.
func checkRefused(t *testing.T, host *v1alpha1.PluginHost, want, apiMessage string) *v1alpha1.PluginHost {
	t.Helper()
	ns, name := host.Namespace, host.Name
	h := hostCondition(t, ns, name, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonChildRefused)
	for _, typ := range []string{v1alpha1.ConditionReady, v1alpha1.ConditionStalled, v1alpha1.ConditionDegraded, v1alpha1.ConditionReconciling} {
		status := metav1.ConditionTrue
		switch typ {
		case v1alpha1.ConditionReady, v1alpha1.ConditionReconciling:
			status = metav1.ConditionFalse
		}
		c := findCondition(h.Status.Conditions, typ)
		if c == nil || c.Status != status || c.Reason != v1alpha1.ReasonChildRefused || c.ObservedGeneration != h.Generation ||
			!strings.Contains(c.Message, want) || !strings.Contains(c.Message, apiMessage) {
			t.Errorf("%s = %+v, want %s/ChildRefused for generation %d naming %q and %q", typ, c, status, h.Generation, want, apiMessage)
		}
	}
	if h.Status.ObservedGeneration != h.Generation {
		t.Errorf("observedGeneration %d of %d: a refused child is an evaluated generation", h.Status.ObservedGeneration, h.Generation)
	}
	if res := computeStatus(t, host, "PluginHost"); res.Status != kstatus.FailedStatus || !strings.Contains(res.Message, want) {
		t.Errorf("kstatus %s %q, want Failed naming %q", res.Status, res.Message, want)
	}
	waitEvent(t, ns, v1alpha1.EventChildRefused, name, want)
	return h
}

// TestChildRefusedByPolicy: a ValidatingAdmissionPolicy (422 Invalid) refuses the Deployment
// of a running host after an edit of its pod labels. The host is Stalled (kstatus Failed)
// naming the Deployment and the policy's message, while its pod keeps serving what it
// counted; once the binding goes, the host applies the edit and is Ready again by itself.
func TestChildRefusedByPolicy(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	ctx := context.Background()
	binding := denyDeployments(t, ns)
	startManager(t, ns, testOptions())
	host := newHost(ns, "refused", "refused")
	plugin := newPlugin(ns, "c", "refused", 1)
	create(t, host, plugin)
	pod := startPod(t, ns, "refused", "refused-0")
	hostCondition(t, ns, "refused", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRolledOut)
	if code, v := pod.call(t, http.MethodPost, "c", "increment", `{"value":5}`, ""); code != http.StatusOK || v != 5 {
		t.Fatalf("increment: %d %d", code, v)
	}

	// The edit that the policy refuses.
	update(t, host, func(h *v1alpha1.PluginHost) { h.Spec.PodLabels = map[string]string{denyLabel: "true"} })
	h := checkRefused(t, host, "apply Deployment refused", "pods labelled "+denyLabel+" are not allowed here")
	if c := findCondition(h.Status.Conditions, v1alpha1.ConditionReady); !strings.Contains(c.Message, "(Invalid)") {
		t.Errorf("Ready message %q: want the API server's reason", c.Message)
	}
	refusedGen := h.Generation

	// Nothing already running is lost: the Deployment is as before, the pod serves its count
	// and the Plugin, applied before, stays Ready.
	deploy := &appsv1.Deployment{}
	if err := get(t, deploy, ns, "refused"); err != nil {
		t.Fatal(err)
	}
	if _, ok := deploy.Spec.Template.Labels[denyLabel]; ok {
		t.Errorf("the refused label is in the Deployment: %v", deploy.Spec.Template.Labels)
	}
	if code, v := pod.call(t, http.MethodGet, "c", "get", "", ""); code != http.StatusOK || v != 5 {
		t.Errorf("get while refused: %d %d, want 200 5", code, v)
	}
	pluginCondition(t, ns, "c", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)

	// The binding goes: the host applies the edit and is Ready again, with no edit of its own.
	if err := env.Client.Delete(ctx, binding); err != nil {
		t.Fatal(err)
	}
	h = hostCondition(t, ns, "refused", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRolledOut)
	if h.Generation != refusedGen {
		t.Errorf("generation %d → %d: the host recovered through an edit", refusedGen, h.Generation)
	}
	if err := condition(h.Status.Conditions, v1alpha1.ConditionStalled, metav1.ConditionFalse, v1alpha1.ReasonRolledOut, h.Generation); err != nil {
		t.Error(err)
	}
	if err := condition(h.Status.Conditions, v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected, h.Generation); err != nil {
		t.Error(err)
	}
	testutil.Eventually(t, wait, "the edit in the Deployment", func() error {
		if err := get(t, deploy, ns, "refused"); err != nil {
			return err
		}
		if deploy.Spec.Template.Labels[denyLabel] != "true" {
			return fmt.Errorf("pod labels %v", deploy.Spec.Template.Labels)
		}
		return nil
	})
	waitKstatus(t, host, "PluginHost", kstatus.CurrentStatus)
	if code, v := pod.call(t, http.MethodGet, "c", "get", "", ""); code != http.StatusOK || v != 5 {
		t.Errorf("get after recovery: %d %d, want 200 5", code, v)
	}
}

// TestChildRefusedByQuota: a ResourceQuota that allows no Deployment refuses the new host's
// Deployment (403 Forbidden, "exceeded quota"). The host is Stalled naming it, and so is its
// Plugin; once the quota goes, the host creates its Deployment and is Ready once its pod runs, with no edit.
func TestChildRefusedByQuota(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	ctx := context.Background()
	quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "no-deployments"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/deployments.apps": resource.MustParse("0")}}}
	create(t, quota)
	// envtest runs no quota controller: write the usage it would compute, without which the
	// quota admission plugin refuses everything as "status unknown".
	quota.Status = corev1.ResourceQuotaStatus{Hard: quota.Spec.Hard, Used: corev1.ResourceList{"count/deployments.apps": resource.MustParse("0")}}
	if err := env.Client.Status().Update(ctx, quota); err != nil {
		t.Fatal(err)
	}
	waitAdmission(t, ns, "the quota refuses Deployments", nil, func(err error) bool {
		return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota")
	})

	startManager(t, ns, testOptions())
	host := newHost(ns, "capped", "capped")
	create(t, host, newPlugin(ns, "c", "capped", 1))
	h := checkRefused(t, host, "apply Deployment capped", "exceeded quota: no-deployments")
	if c := findCondition(h.Status.Conditions, v1alpha1.ConditionReady); !strings.Contains(c.Message, "(Forbidden)") {
		t.Errorf("Ready message %q: want the API server's reason", c.Message)
	}
	refusedGen := h.Generation
	// The Plugin, rendered but waiting for pods the host no longer reads, says so.
	pluginCondition(t, ns, "c", v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonChildRefused)
	if err := get(t, &appsv1.Deployment{}, ns, "capped"); !apierrors.IsNotFound(err) {
		t.Errorf("Deployment capped: %v, want none while the quota refuses it", err)
	}
	// The children before it were written: the configuration is rendered, without c,
	// whose host has no pod to advertise its types.
	configMapData(t, ns, "capped", contains(`"plugins"`))

	if err := env.Client.Delete(ctx, quota); err != nil {
		t.Fatal(err)
	}
	hostCondition(t, ns, "capped", v1alpha1.ConditionStalled, metav1.ConditionFalse, v1alpha1.ReasonWorkloadUnavailable)
	startPod(t, ns, "capped", "capped-0")
	h = hostCondition(t, ns, "capped", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRolledOut)
	if h.Generation != refusedGen {
		t.Errorf("generation %d → %d: the host recovered through an edit", refusedGen, h.Generation)
	}
	waitKstatus(t, host, "PluginHost", kstatus.CurrentStatus)
	pluginCondition(t, ns, "c", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
}
