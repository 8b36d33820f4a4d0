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
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/projection"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// computeStatus is what Flux and kpt conclude from an object: kstatus over its unstructured
// form, as read from the API server.
func computeStatus(t testing.TB, obj client.Object, kind string) *kstatus.Result {
	t.Helper()
	if err := get(t, obj, obj.GetNamespace(), obj.GetName()); err != nil {
		t.Fatal(err)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind(kind))
	res, err := kstatus.Compute(u)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// waitKstatus waits until kstatus computes want for the object: the operator's last status
// write for the current generation is what decides it.
func waitKstatus(t testing.TB, obj client.Object, kind string, want kstatus.Status) *kstatus.Result {
	t.Helper()
	var res *kstatus.Result
	testutil.Eventually(t, wait, fmt.Sprintf("kstatus of %s %s is %s", kind, obj.GetName(), want), func() error {
		res = computeStatus(t, obj, kind)
		if res.Status != want {
			return fmt.Errorf("%s: %s", res.Status, res.Message)
		}
		return nil
	})
	return res
}

// kubectlWait starts `kubectl wait --for=condition=Ready` on an object; the caller waits for
// the command.
func kubectlWait(t testing.TB, ns, obj, timeout string) *exec.Cmd {
	t.Helper()
	if env.Kubectl == "" {
		t.Fatal("no kubectl in KUBEBUILDER_ASSETS")
	}
	cmd := exec.Command(env.Kubectl, "--kubeconfig", env.Kubeconfig, "-n", ns, "wait", "--for=condition=Ready", obj, "--timeout="+timeout)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

func finish(t testing.TB, cmd *exec.Cmd) (string, error) {
	t.Helper()
	err := cmd.Wait()
	return fmt.Sprint(cmd.Stdout), err
}

// metric returns the value of a counter or gauge of controller-runtime's registry (which the
// manager serves at /metrics) with these labels, and whether the series exists.
func metric(t testing.TB, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	for _, m := range gather(t, name) {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// histogram returns the sample count and sum of an unlabelled histogram.
func histogram(t testing.TB, name string) (uint64, float64) {
	t.Helper()
	for _, m := range gather(t, name) {
		if h := m.GetHistogram(); h != nil {
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	return 0, 0
}

func gather(t testing.TB, name string) []*dto.Metric {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()
		}
	}
	return nil
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

// TestKstatusNeverRunningHostIsInProgress: a PluginHost whose pod never runs (no node) is
// not done, for kstatus as for `kubectl wait`.
func TestKstatusNeverRunningHostIsInProgress(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManager(t, ns, testOptions())
	host := newHost(ns, "never", "never")
	plugin := newPlugin(ns, "c", "never", 1)
	create(t, host, plugin)
	hostPod(t, ns, "never", "never-0", 8080) // created as the Deployment would, never scheduled

	hostCondition(t, ns, "never", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonWorkloadUnavailable)
	h := hostCondition(t, ns, "never", v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonWorkloadUnavailable)
	if h.Status.ObservedGeneration != h.Generation {
		t.Fatalf("observedGeneration %d of %d", h.Status.ObservedGeneration, h.Generation)
	}
	if res := computeStatus(t, host, "PluginHost"); res.Status != kstatus.InProgressStatus {
		t.Errorf("PluginHost: kstatus %s (%s), want InProgress", res.Status, res.Message)
	}
	// No pod has run to advertise the host's types: the Plugin waits for them.
	pluginCondition(t, ns, "c", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonAwaitingHostTypes)
	if res := computeStatus(t, plugin, "Plugin"); res.Status != kstatus.InProgressStatus {
		t.Errorf("Plugin: kstatus %s (%s), want InProgress", res.Status, res.Message)
	}
	// kubectl wait does not take it for Ready: it times out, saying so.
	out, err := finish(t, kubectlWait(t, ns, "pluginhost/never", "1s"))
	if err == nil || !strings.Contains(out, "timed out") {
		t.Errorf("kubectl wait on a host that never runs: %v %q, want a timeout", err, out)
	}
}

// TestKstatusBadSelectorIsFailed: a selector admission lets through but that cannot be
// parsed is Stalled, so kstatus reports Failed and a pipeline stops waiting.
func TestKstatusBadSelectorIsFailed(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManager(t, ns, testOptions())
	host := newHost(ns, "odd", "odd")
	host.Spec.PluginSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}}
	create(t, host)
	res := waitKstatus(t, host, "PluginHost", kstatus.FailedStatus)
	if !strings.Contains(res.Message, "spec.pluginSelector") {
		t.Errorf("kstatus message %q: want the field", res.Message)
	}
	h := hostCondition(t, ns, "odd", v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonConfigInvalid)
	if h.Status.ObservedGeneration != h.Generation {
		t.Errorf("observedGeneration %d of %d", h.Status.ObservedGeneration, h.Generation)
	}
	if err := condition(h.Status.Conditions, v1alpha1.ConditionReconciling, metav1.ConditionFalse, v1alpha1.ReasonConfigInvalid, h.Generation); err != nil {
		t.Error(err)
	}
}

// TestKstatusLifecycleAndMetrics drives a host with a real pluginhost process through kstatus
// InProgress → Current (with `kubectl wait` on both kinds) → Failed (a config the runtime
// refuses) → Current, and checks the manager's metrics along the way.
func TestKstatusLifecycleAndMetrics(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	secretsDir := testutil.ShortTempDir(t)
	opts := testOptions()
	opts.SecretsMountPath = secretsDir
	startManager(t, ns, opts)
	labels := map[string]string{"namespace": ns, "pluginhost": "ks"}

	host := newHost(ns, "ks", "ks")
	host.Spec.PollInterval = &metav1.Duration{Duration: 100 * time.Millisecond}
	counterA := newPlugin(ns, "counter-a", "ks", 2)
	create(t, host, counterA)
	// No pod has advertised the host's types yet: nothing is rendered, and both wait.
	hostCondition(t, ns, "ks", v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonWorkloadUnavailable)
	pluginCondition(t, ns, "counter-a", v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonAwaitingHostTypes)

	// kubectl wait started before any pod runs returns once both are Ready.
	waitHost := kubectlWait(t, ns, "pluginhost/ks", "60s")
	waitPlugin := kubectlWait(t, ns, "plugin/counter-a", "60s")
	pod := startPod(t, ns, "ks", "ks-0")
	for _, cmd := range []*exec.Cmd{waitHost, waitPlugin} {
		if out, err := finish(t, cmd); err != nil || !strings.Contains(out, "condition met") {
			t.Fatalf("%v: %v %q", cmd.Args, err, out)
		}
	}
	waitKstatus(t, host, "PluginHost", kstatus.CurrentStatus)
	waitKstatus(t, counterA, "Plugin", kstatus.CurrentStatus)
	if v, ok := metric(t, "plugin_operator_pluginhost_stale_pods", labels); !ok || v != 0 {
		t.Errorf("stale pods %v (exists %v), want 0", v, ok)
	}

	// An edit of a running host is timed once, from the new revision to every ready pod
	// applying it.
	h := hostCondition(t, ns, "ks", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRolledOut)
	oldRev := h.Status.ConfigRevision
	count, sum := histogram(t, "plugin_operator_config_apply_duration_seconds")
	update(t, counterA, func(p *v1alpha1.Plugin) { p.Spec.Options.Increment = ptr.To[int32](3) })
	testutil.Eventually(t, wait, "the edit rolled out", func() error {
		if err := get(t, h, ns, "ks"); err != nil {
			return err
		}
		if h.Status.ConfigRevision == oldRev || h.Status.AppliedRevision != h.Status.ConfigRevision {
			return fmt.Errorf("revision %s, applied %s", h.Status.ConfigRevision, h.Status.AppliedRevision)
		}
		return condition(h.Status.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRolledOut, h.Generation)
	})
	count2, sum2 := histogram(t, "plugin_operator_config_apply_duration_seconds")
	t.Logf("config apply duration of the edit: %.3fs (envtest, kubeletsim, a real pluginhost)", sum2-sum)
	if count2 != count+1 || sum2 <= sum {
		t.Errorf("config apply duration: count %d→%d, sum %v→%v; want one more sample, of more than 0s", count, count2, sum, sum2)
	}
	pluginCondition(t, ns, "counter-a", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)

	// A config the runtime refuses (counter-b's token file is not projected in the pod):
	// Failed for the host and for counter-b, counted once however often the pod is read.
	if v, _ := metric(t, "plugin_operator_config_refused_total", labels); v != 0 {
		t.Fatalf("refused before any refusal: %v", v)
	}
	create(t, authSecret(ns, "ks-token", map[string]string{"token": "s3cret"}))
	counterB := newPlugin(ns, "counter-b", "ks", 1)
	counterB.Spec.Auth = &v1alpha1.PluginAuth{Method: v1alpha1.AuthMethodBearer, SecretRef: &v1alpha1.SecretReference{Name: "ks-token"}}
	create(t, counterB)
	res := waitKstatus(t, host, "PluginHost", kstatus.FailedStatus)
	if !strings.Contains(res.Message, "counter-b.token") {
		t.Errorf("kstatus message %q: want the runtime's error", res.Message)
	}
	res = waitKstatus(t, counterB, "Plugin", kstatus.FailedStatus)
	if !strings.Contains(res.Message, "counter-b.token") {
		t.Errorf("Plugin kstatus message %q: want the runtime's error", res.Message)
	}
	waitKstatus(t, counterA, "Plugin", kstatus.CurrentStatus) // its generation still runs
	h = hostCondition(t, ns, "ks", v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonPodRefusedConfig)
	// Let the operator read the refusing pod at least twice more (lastChecked has a
	// one-second resolution).
	checked := h.Status.Pods[0].LastChecked
	for range 2 {
		testutil.Eventually(t, wait, "another read of the refusing pod", func() error {
			if err := get(t, h, ns, "ks"); err != nil {
				return err
			}
			if !h.Status.Pods[0].LastChecked.After(checked.Time) {
				return fmt.Errorf("lastChecked %v", h.Status.Pods[0].LastChecked)
			}
			return nil
		})
		checked = h.Status.Pods[0].LastChecked
	}
	if v, _ := metric(t, "plugin_operator_config_refused_total", labels); v != 1 {
		t.Errorf("refused revisions %v, want 1", v)
	}
	if v, _ := metric(t, "plugin_operator_pluginhost_stale_pods", labels); v != 1 {
		t.Errorf("stale pods %v, want 1 (the pod keeps the previous revision)", v)
	}

	// Recovery: kubelet projects the credentials; Current again, nothing stale.
	creds := &corev1.Secret{}
	if err := get(t, creds, ns, "ks-credentials"); err != nil {
		t.Fatal(err)
	}
	if _, err := projection.NewWriter(secretsDir).Write(creds.Data); err != nil {
		t.Fatal(err)
	}
	waitKstatus(t, host, "PluginHost", kstatus.CurrentStatus)
	waitKstatus(t, counterB, "Plugin", kstatus.CurrentStatus)
	if v, _ := metric(t, "plugin_operator_pluginhost_stale_pods", labels); v != 0 {
		t.Errorf("stale pods %v after recovery, want 0", v)
	}

	// The process dies while its pod still says Ready: reads fail and are counted; the host
	// is in progress (the operator keeps reading), not failed.
	pod.stop()
	poke(t, ns, "ks")
	hostCondition(t, ns, "ks", v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonPodsUnreachable)
	if v, _ := metric(t, "plugin_operator_status_probe_errors_total", labels); v < 1 {
		t.Errorf("status probe errors %v, want at least 1", v)
	}
	waitKstatus(t, host, "PluginHost", kstatus.InProgressStatus)

	// Deleting the host deletes its series.
	if err := env.Client.Delete(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, wait, "series deleted with the host", func() error {
		for _, name := range []string{"plugin_operator_pluginhost_stale_pods", "plugin_operator_config_refused_total", "plugin_operator_status_probe_errors_total"} {
			if _, ok := metric(t, name, labels); ok {
				return fmt.Errorf("%s still has a series for the host", name)
			}
		}
		return nil
	})
}

// TestFailedStepIsReported: a step the API server cannot complete for a reason that may pass
// by itself (here the Service: a validating webhook with failurePolicy Fail that nothing
// answers, 500 InternalError) sets Ready=False with ReconcileFailed and the error,
// Reconciling=True, and leaves observedGeneration unmoved; once the webhook goes the host
// carries on by itself. (A policy that denies a child is ChildRefused: refused_test.go.)
func TestFailedStepIsReported(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	ctx := context.Background()
	// Nothing listens on port 1 of the loopback address: every call is refused at once.
	url := "https://127.0.0.1:1/validate"
	webhook := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "unreachable-" + ns},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:         "unreachable.example.com",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"services"}},
			}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
		}}}
	create(t, webhook)
	t.Cleanup(func() { _ = env.Client.Delete(ctx, webhook) })
	// The API server calls a new webhook once its informer has it.
	testutil.Eventually(t, wait, "the webhook fails Services", func() error {
		probe := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
		if err := env.Client.Create(ctx, probe, client.DryRunAll); !apierrors.IsInternalError(err) {
			return fmt.Errorf("a dry-run Service got %v, want an internal error", err)
		}
		return nil
	})

	startManager(t, ns, testOptions())
	host := newHost(ns, "denied", "denied")
	create(t, host)
	h := hostCondition(t, ns, "denied", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonReconcileFailed)
	if msg := findCondition(h.Status.Conditions, v1alpha1.ConditionReady).Message; !strings.Contains(msg, "applying Service denied") ||
		!strings.Contains(msg, "failed calling webhook") {
		t.Errorf("Ready message %q: want the step and the API server's error", msg)
	}
	if err := condition(h.Status.Conditions, v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonReconcileFailed, h.Generation); err != nil {
		t.Error(err)
	}
	if h.Status.ObservedGeneration == h.Generation {
		t.Errorf("observedGeneration %d moved although the generation was not fully evaluated", h.Status.ObservedGeneration)
	}
	if res := computeStatus(t, host, "PluginHost"); res.Status != kstatus.InProgressStatus {
		t.Errorf("kstatus %s (%s), want InProgress", res.Status, res.Message)
	}

	if err := env.Client.Delete(ctx, webhook); err != nil {
		t.Fatal(err)
	}
	hostCondition(t, ns, "denied", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonWorkloadUnavailable)
	testutil.Eventually(t, wait, "observedGeneration", func() error {
		if err := get(t, h, ns, "denied"); err != nil {
			return err
		}
		if h.Status.ObservedGeneration != h.Generation {
			return fmt.Errorf("observedGeneration %d of %d", h.Status.ObservedGeneration, h.Generation)
		}
		return nil
	})
	if err := get(t, &corev1.Service{}, ns, "denied"); err != nil {
		t.Errorf("Service after the webhook went: %v", err)
	}
}
