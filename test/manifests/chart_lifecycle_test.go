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

package manifests_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/go-logr/logr"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/controllers"
	"github.com/hotreload/plugin-operator/internal/testing/testenv"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// ourCRDs are the names of the operator's CRDs.
var ourCRDs = []string{"plugins.plugins.hotreload.io", "pluginhosts.plugins.hotreload.io"}

// crdMode is what a chart scenario's crds values make of the CRDs.
type crdMode int

const (
	crdsKept    crdMode = iota // crds.enabled, crds.keep (the defaults)
	crdsNotKept                // crds.enabled, crds.keep=false
	crdsNone                   // crds.enabled=false
)

// chartLabels are the labels the chart adds to every object, CRDs included.
var chartLabels = []string{"helm.sh/chart", "app.kubernetes.io/name", "app.kubernetes.io/instance",
	"app.kubernetes.io/version", "app.kubernetes.io/managed-by"}

const keepAnnotation = "helm.sh/resource-policy"

// checkChartCRDs checks the CRDs a chart scenario renders: none with crds.enabled=false, else
// exactly those of config/crd/bases plus the chart's labels and, with crds.keep, the keep
// annotation.
func checkChartCRDs(t *testing.T, objs []*unstructured.Unstructured, mode crdMode) {
	t.Helper()
	if mode == crdsNone {
		if crds := ofKind(objs, "CustomResourceDefinition"); len(crds) > 0 {
			t.Errorf("crds.enabled=false renders CRDs: %s", describe(crds))
		}
		return
	}
	checkCRDs(t, objs, func(u *unstructured.Unstructured) {
		l := u.GetLabels()
		if l["app.kubernetes.io/managed-by"] != "Helm" || l["helm.sh/chart"] == "" {
			t.Errorf("CRD %s lacks the chart's labels: %v", u.GetName(), l)
		}
		for _, k := range chartLabels {
			delete(l, k)
		}
		if len(l) == 0 {
			unstructured.RemoveNestedField(u.Object, "metadata", "labels")
		} else {
			u.SetLabels(l)
		}
		a := u.GetAnnotations()
		if got, want := a[keepAnnotation], map[bool]string{true: "keep"}[mode == crdsKept]; got != want {
			t.Errorf("CRD %s: annotation %s = %q, want %q", u.GetName(), keepAnnotation, got, want)
		}
		delete(a, keepAnnotation)
		u.SetAnnotations(a)
	})
}

var crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// getCRD reads a CRD from e's API server.
func getCRD(e *testenv.Env, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(crdGVK)
	return u, e.Client.Get(context.Background(), client.ObjectKey{Name: name}, u)
}

// crdsGone returns nil once none of the operator's CRDs exists in e; otherwise what the API
// server's finalizer of the first one is at (its Terminating condition says).
func crdsGone(e *testenv.Env) error {
	for _, name := range ourCRDs {
		u, err := getCRD(e, name)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("CRD %s: %w", name, err)
		}
		conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		return fmt.Errorf("CRD %s still exists: deletionTimestamp %v, finalizers %v, conditions %v",
			name, u.GetDeletionTimestamp(), u.GetFinalizers(), conditions)
	}
	return nil
}

// deleteCRDs deletes the operator's CRDs from e and waits until they are gone.
func deleteCRDs(t *testing.T, e *testenv.Env) {
	t.Helper()
	for _, name := range ourCRDs {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(crdGVK)
		u.SetName(name)
		if err := e.Client.Delete(context.Background(), u); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting CRD %s: %v", name, err)
		}
	}
	// Not 2 minutes: a CRD deleted while the API server re-creates its storage (just after
	// the CRD changed) stays Terminating with InstanceDeletionFailed, "could not list
	// instances: storage is (re)initializing", until the finalizer's backed-off retry, which
	// can take minutes (operator-framework/operator-controller#1437; seen here once, under
	// the load of two test packages).
	testutil.Eventually(t, 5*time.Minute, "the CRDs are deleted", func() error { return crdsGone(e) })
}

// previousChart extracts into a temporary directory the chart as committed at the newest
// commit whose Chart.yaml has another version than the working tree's: the release users
// upgrade from. It returns the directory and that version.
func previousChart(t *testing.T) (string, string) {
	t.Helper()
	var cur struct {
		Version string `json:"version"`
	}
	readYAML(t, chartDir+"/Chart.yaml", &cur)
	commits := strings.Fields(string(mustRun(t, "git", "log", "--format=%H", "--", chartDir+"/Chart.yaml")))
	for _, c := range commits {
		out, _, err := runCmd("git", "show", c+":"+chartDir+"/Chart.yaml")
		if err != nil {
			continue
		}
		var prev struct {
			Version string `json:"version"`
		}
		if err := yaml.Unmarshal(out, &prev); err != nil || prev.Version == "" || prev.Version == cur.Version {
			continue
		}
		dir := t.TempDir()
		archive := filepath.Join(dir, "chart.tar")
		mustRun(t, "git", "archive", "--output", archive, c, chartDir)
		mustRun(t, "tar", "-xf", archive, "-C", dir)
		return filepath.Join(dir, chartDir), prev.Version
	}
	t.Fatalf("no commit in this clone's history has a %s/Chart.yaml of another version than %s (a shallow clone? fetch the history)", chartDir, cur.Version)
	return "", ""
}

// TestHelmUpgradeFromPreviousChart installs the previous chart version for real on a control
// plane without our CRDs, upgrades the release to the working tree's chart (CRDs as
// templates) the way docs/install.md says, and checks that Helm then owns and upgrades the
// CRDs, keeps them when crds.enabled turns off and on uninstall (crds.keep), and deletes them
// on uninstall with crds.keep=false. From chart 0.1.0, whose CRDs sat in crds/, the upgrade
// needs --take-ownership once (and fails, saying why, without it); from a later chart it is
// a plain helm upgrade.
func TestHelmUpgradeFromPreviousChart(t *testing.T) {
	h := helm(t)
	e := helmEnv(t)
	prev, prevVersion := previousChart(t)
	const release, ns = "upgrade", "upgrade-system"
	kc := []string{"--kubeconfig", e.Kubeconfig, "--namespace", ns}
	helmCmd := func(args ...string) []byte {
		t.Helper()
		return mustRun(t, h, append(args, kc...)...)
	}
	t.Cleanup(func() {
		_, _, _ = runCmd(h, append([]string{"uninstall", release}, kc...)...)
		deleteCRDs(t, e)
	})
	crdLabel := func(name, key string) string {
		t.Helper()
		u, err := getCRD(e, name)
		if err != nil {
			t.Fatalf("CRD %s: %v", name, err)
		}
		return u.GetLabels()[key]
	}

	helmCmd("install", release, prev, "--create-namespace")
	_, err := os.Stat(filepath.Join(prev, "crds"))
	legacy := err == nil
	for _, name := range ourCRDs {
		if got := crdLabel(name, "helm.sh/chart"); (got == "") != legacy {
			t.Fatalf("chart %s (crds/ directory: %v) installed CRD %s with label helm.sh/chart=%q", prevVersion, legacy, name, got)
		}
	}
	// An existing CR must survive every step.
	cr := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "plugins.hotreload.io/v1alpha1", "kind": "Plugin",
		"metadata": map[string]any{"name": "survivor", "namespace": ns},
		"spec":     map[string]any{"type": "counter", "transport": "http", "endpoint": "http://localhost:9001"},
	}}
	if err := e.Client.Create(context.Background(), cr); err != nil {
		t.Fatalf("creating a Plugin: %v", err)
	}

	if legacy {
		// Without --take-ownership Helm refuses CRDs it did not install, and says so.
		_, stderr, err := runCmd(h, append([]string{"upgrade", release, filepath.Join(root, chartDir)}, kc...)...)
		if err == nil || !strings.Contains(string(stderr), "invalid ownership metadata") {
			t.Errorf("upgrade from chart %s without --take-ownership: err %v, stderr %s; docs/install.md says it fails on the CRDs' ownership", prevVersion, err, stderr)
		}
		helmCmd("upgrade", release, filepath.Join(root, chartDir), "--take-ownership")
	} else {
		helmCmd("upgrade", release, filepath.Join(root, chartDir))
	}
	var cur struct {
		Version string `json:"version"`
	}
	readYAML(t, chartDir+"/Chart.yaml", &cur)
	var stored []*unstructured.Unstructured
	for _, name := range ourCRDs {
		if got, want := crdLabel(name, "helm.sh/chart"), "plugin-operator-"+cur.Version; got != want {
			t.Errorf("after the upgrade, CRD %s has helm.sh/chart=%q, want %q (Helm applied the chart's CRD)", name, got, want)
		}
		u, _ := getCRD(e, name)
		// The stored object carries server-set fields; compare what the chart renders.
		for _, f := range []string{"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"} {
			unstructured.RemoveNestedField(u.Object, "metadata", f)
		}
		unstructured.RemoveNestedField(u.Object, "status")
		// The API server's default, which controller-gen leaves out.
		if s, _, _ := unstructured.NestedString(u.Object, "spec", "conversion", "strategy"); s == "None" {
			unstructured.RemoveNestedField(u.Object, "spec", "conversion")
		}
		// Decoded like rendered objects (the client's JSON numbers are int64, YAML's float64).
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, decodeObjects(t, b)...)
	}
	// The stored CRDs equal config/crd/bases, with what the chart adds: Helm upgraded them.
	checkChartCRDs(t, stripHelmAnnotations(stored), crdsKept)

	// crds.enabled=false: Helm drops them from the release but keeps them (crds.keep).
	helmCmd("upgrade", release, filepath.Join(root, chartDir), "--set", "crds.enabled=false")
	for _, name := range ourCRDs {
		if _, err := getCRD(e, name); err != nil {
			t.Errorf("after crds.enabled=false, CRD %s: %v, want it kept", name, err)
		}
	}
	if err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(cr), cr.DeepCopy()); err != nil {
		t.Errorf("the Plugin did not survive the upgrades: %v", err)
	}

	// Back on, with crds.keep=false, then uninstall: now Helm deletes them.
	// The kept CRDs still carry this release's ownership, so no --take-ownership is needed.
	helmCmd("upgrade", release, filepath.Join(root, chartDir), "--set", "crds.keep=false")
	helmCmd("uninstall", release, "--wait")
	testutil.Eventually(t, 2*time.Minute, "helm uninstall with crds.keep=false deletes the CRDs", func() error { return crdsGone(e) })
}

// stripHelmAnnotations removes the release annotations Helm sets on the objects it owns.
func stripHelmAnnotations(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	for _, o := range objs {
		a := o.GetAnnotations()
		delete(a, "meta.helm.sh/release-name")
		delete(a, "meta.helm.sh/release-namespace")
		o.SetAnnotations(a)
	}
	return objs
}

// TestUmbrellaChart uses the chart as a dependency of an umbrella chart (test/umbrella), as
// a platform team would: `helm dependency build`, `helm lint --strict` and `helm template`
// with global values and values for the subchart, then dry-runs what it renders.
func TestUmbrellaChart(t *testing.T) {
	h := helm(t)
	// The umbrella refers to the chart as file://../../charts/plugin-operator: rebuild that
	// layout in a temporary directory, so that `helm dependency build` writes nothing here.
	tmp := t.TempDir()
	copyTree(t, filepath.Join(root, "test", "umbrella"), filepath.Join(tmp, "test", "umbrella"))
	copyTree(t, filepath.Join(root, chartDir), filepath.Join(tmp, chartDir))
	umbrella := filepath.Join(tmp, "test", "umbrella")
	mustRun(t, h, "dependency", "build", umbrella)
	mustRun(t, h, "lint", "--strict", umbrella)
	objs := helmTemplate(t, "platform", umbrella, "--namespace", "platform-system")
	want := installation{
		namespace: "platform-system", prefix: "platform-plugin-operator-",
		image: "registry.example.com/mirror/plugin-operator:v9.9.9", hostImage: "registry.example.com/mirror/plugin-operator:v9.9.9",
		metricsPort: 8443, flags: map[string]string{"zap-log-level": "debug"},
	}
	var platform []*unstructured.Unstructured
	for _, o := range objs {
		// The umbrella's own object is no part of the operator's installation.
		if o.GetKind() == "ConfigMap" && o.GetName() == "platform-info" {
			continue
		}
		platform = append(platform, o)
	}
	if len(platform) == len(objs) {
		t.Error("the umbrella's own ConfigMap platform-info is not rendered")
	}
	checkInstallation(t, platform, want)
	checkChartCRDs(t, platform, crdsKept)
	mustFind(t, platform, "PodMonitor", "platform-plugin-operator-pluginhost-monitor")
	checkPodSecurity(t, objs)
	dryRunApply(t, objs)

	// A misspelt subchart value still fails, naming it.
	_, stderr, err := runCmd(h, "template", "platform", umbrella, "--set", "plugin-operator.podNuge=false")
	if err == nil || !strings.Contains(string(stderr), "podNuge") {
		t.Errorf("umbrella with plugin-operator.podNuge: err %v, stderr %s; want the schema to name podNuge", err, stderr)
	}
}

// promtool returns the pinned promtool: $PROMTOOL (make test sets it), else the one of the
// Makefile, built with `make promtool` when missing (a few minutes, once).
func promtool(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds or runs promtool; not under -short")
	}
	p := os.Getenv("PROMTOOL")
	if p == "" {
		p = strings.TrimSpace(string(mustRun(t, "make", "--no-print-directory", "-s", "print-PROMTOOL")))
	}
	if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o111 != 0 {
		return p
	}
	t.Logf("%s is missing: building it with `make promtool` (a few minutes, once)", p)
	cmd := exec.Command("make", "--no-print-directory", "promtool", "PROMTOOL="+p)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make promtool: %v\n%s", err, out)
	}
	return p
}

// TestPrometheusRules checks the alerts with promtool: the rule file is valid, its unit tests
// (testdata/prometheus-rules.test.yaml) pass, and every alert has a test that expects it to
// fire.
func TestPrometheusRules(t *testing.T) {
	p := promtool(t)
	rules := filepath.Join(root, chartDir, "files", "prometheus-rules.yaml")
	tests := filepath.Join(root, "test", "manifests", "testdata", "prometheus-rules.test.yaml")
	mustRun(t, p, "check", "rules", rules)
	out := mustRun(t, p, "test", "rules", tests)
	if !strings.Contains(string(out), "SUCCESS") {
		t.Errorf("promtool test rules did not report SUCCESS:\n%s", out)
	}

	var file struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
			} `json:"rules"`
		} `json:"groups"`
	}
	readYAML(t, chartDir+"/files/prometheus-rules.yaml", &file)
	var testFile struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	readYAML(t, "test/manifests/testdata/prometheus-rules.test.yaml", &testFile)
	fires := map[string]bool{}
	for _, tc := range testFile.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	var alerts []string
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
				if !fires[r.Alert] {
					t.Errorf("alert %s has no promtool test that expects it to fire", r.Alert)
				}
			}
		}
	}
	if len(alerts) < 3 {
		t.Errorf("the rule file has alerts %q, want at least PluginHostConfigRefused, PluginHostRevisionStale, PluginOperatorStatusProbeErrors", alerts)
	}
}

// TestKustomizeMonitoring renders config/default with the network policy and the host
// monitoring components enabled, as its kustomization.yaml says to do, checks what they
// select, and dry-runs the result.
func TestKustomizeMonitoring(t *testing.T) {
	needEnv(t)
	tmp := t.TempDir()
	copyTree(t, filepath.Join(root, "config"), filepath.Join(tmp, "config"))
	kfile := filepath.Join(tmp, "config", "default", "kustomization.yaml")
	b, err := os.ReadFile(kfile)
	if err != nil {
		t.Fatal(err)
	}
	k := string(b)
	for _, line := range []string{"#- ../network-policy", "#components:", "#- ../components/podmonitor", "#- ../components/alerts", "#- ../components/dashboard"} {
		if !strings.Contains(k, "\n"+line+"\n") {
			t.Fatalf("config/default/kustomization.yaml no longer has the line %q", line)
		}
		k = strings.Replace(k, "\n"+line+"\n", "\n"+strings.TrimPrefix(line, "#")+"\n", 1)
	}
	if err := os.WriteFile(kfile, []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	objs := kustomize(t, filepath.Join(tmp, "config", "default"))
	checkNetworkPolicy(t, objs, mustFind(t, objs, "NetworkPolicy", kustomizePrefix+"allow-metrics-traffic"), kustomizePrefix+"controller-manager")
	mustFind(t, objs, "PodMonitor", kustomizePrefix+"pluginhost-monitor")
	rule := mustFind(t, objs, "PrometheusRule", kustomizePrefix+"alerts")
	var chartRules map[string]any
	readYAML(t, chartDir+"/files/prometheus-rules.yaml", &chartRules)
	if spec, _, _ := unstructured.NestedMap(rule.Object, "spec"); !reflect.DeepEqual(spec, chartRules) {
		t.Error("the kustomize PrometheusRule's spec differs from the chart's files/prometheus-rules.yaml: run `make chart`")
	}
	dash := mustFind(t, objs, "ConfigMap", kustomizePrefix+"grafana-dashboard")
	if dash.GetLabels()["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap labels %v lack grafana_dashboard=1", dash.GetLabels())
	}
	dryRunApply(t, objs)
}

// TestGrafanaDashboard checks the dashboard: valid JSON, every query valid PromQL (promtool
// checks them as recording rules) over metrics the manager or the hosts export, and the
// chart's ConfigMap holding the same JSON.
func TestGrafanaDashboard(t *testing.T) {
	p := promtool(t)
	const source = "config/components/dashboard/plugin-operator.json"
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	readYAML(t, source, &dash)
	known := []string{
		"plugin_operator_config_apply_duration_seconds_bucket", "plugin_operator_config_refused_total",
		"plugin_operator_pluginhost_stale_pods", "plugin_operator_status_probe_errors_total",
		"pluginhost_config_last_reload_successful", "pluginhost_config_reloads_total", "pluginhost_requests_total",
	}
	metric := regexp.MustCompile(`\b(plugin_operator_[a-z_]+|pluginhost_[a-z_]+)\b`)
	var rules strings.Builder
	rules.WriteString("groups:\n- name: dashboard\n  rules:\n")
	n := 0
	for _, panel := range dash.Panels {
		for _, target := range panel.Targets {
			n++
			for _, m := range metric.FindAllString(target.Expr, -1) {
				if !slices.Contains(known, m) {
					t.Errorf("panel %q queries %s, which neither the manager nor the hosts export", panel.Title, m)
				}
			}
			// Grafana's variable, as Prometheus would see it.
			expr := strings.ReplaceAll(target.Expr, "$__rate_interval", "5m")
			q, _ := json.Marshal(expr)
			fmt.Fprintf(&rules, "  - record: dashboard:q%d\n    expr: %s\n", n, q)
		}
	}
	if n == 0 {
		t.Fatal("the dashboard has no queries")
	}
	file := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, p, "check", "rules", file)

	objs := helmTemplate(t, "plugin-operator", filepath.Join(root, chartDir), "--set", "grafanaDashboard.enabled=true",
		"--set", "grafanaDashboard.namespace=monitoring")
	cm := toTyped[corev1.ConfigMap](t, mustFind(t, objs, "ConfigMap", "plugin-operator-grafana-dashboard"))
	if cm.Namespace != "monitoring" || cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap in %q with labels %v, want namespace monitoring and grafana_dashboard=1", cm.Namespace, cm.Labels)
	}
	var got, want any
	b, _ := os.ReadFile(filepath.Join(root, source))
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(cm.Data["plugin-operator.json"]), &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("the chart's dashboard differs from %s (%v): run `make chart`", source, err)
	}
}

// checkNetworkPolicy checks that the policy selects the manager's pods and admits only its
// metrics port.
func checkNetworkPolicy(t *testing.T, objs []*unstructured.Unstructured, np *unstructured.Unstructured, deployment string) {
	t.Helper()
	dep := mustFind(t, objs, "Deployment", deployment)
	podLabels, _, _ := unstructured.NestedStringMap(dep.Object, "spec", "template", "metadata", "labels")
	sel, _, _ := unstructured.NestedStringMap(np.Object, "spec", "podSelector", "matchLabels")
	if len(sel) == 0 || !subset(sel, podLabels) {
		t.Errorf("NetworkPolicy %s selects %v, not the manager's pods %v", np.GetName(), sel, podLabels)
	}
	ingress, _, _ := unstructured.NestedSlice(np.Object, "spec", "ingress")
	if len(ingress) != 1 {
		t.Fatalf("NetworkPolicy %s ingress = %v, want one rule (metrics)", np.GetName(), ingress)
	}
	ports, _, _ := unstructured.NestedSlice(ingress[0].(map[string]any), "ports")
	from, _, _ := unstructured.NestedSlice(ingress[0].(map[string]any), "from")
	if len(ports) != 1 || fmt.Sprint(ports[0].(map[string]any)["port"]) != "8443" || len(from) == 0 {
		t.Errorf("NetworkPolicy %s admits %v from %v, want the metrics port 8443 from the configured peers", np.GetName(), ports, from)
	}
}

func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestFindTool runs hack/find-tool.sh with kubectl and helm first on PATH: it takes them when
// their version is supported, says so, and falls back to the pinned path otherwise.
func TestFindTool(t *testing.T) {
	k, h := kubectl(t), helm(t)
	script := filepath.Join(root, "hack", "find-tool.sh")
	pinned := t.TempDir() // where the pinned tools would be; never built here
	run := func(path, tool string) (string, string) {
		t.Helper()
		cmd := exec.Command(script, tool, "1.37.2", pinned)
		cmd.Env = append(os.Environ(), "PATH="+path+string(os.PathListSeparator)+os.Getenv("PATH"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("find-tool.sh %s: %v\n%s", tool, err, stderr.String())
		}
		return strings.TrimSpace(string(out)), stderr.String()
	}

	onPath := t.TempDir()
	for name, target := range map[string]string{"kubectl": k, "helm": h} {
		if err := os.Symlink(target, filepath.Join(onPath, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tool := range []string{"kubectl", "helm"} {
		got, log := run(onPath, tool)
		if got != filepath.Join(onPath, tool) || !strings.Contains(log, "from PATH") {
			t.Errorf("with a supported %s first on PATH, find-tool.sh printed %q (%s), want %s", tool, got, log, filepath.Join(onPath, tool))
		}
	}

	// Too old: a kubectl and a helm that report old versions.
	old := t.TempDir()
	stubs := map[string]string{
		"kubectl": "#!/bin/sh\necho '{\"clientVersion\": {\"gitVersion\": \"v1.20.0\"}}'\n",
		"helm":    "#!/bin/sh\necho v3.10.0\n",
	}
	for name, body := range stubs {
		if err := os.WriteFile(filepath.Join(old, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tool := range []string{"helm", "kubectl"} {
		got, log := run(old, tool)
		if got != filepath.Join(pinned, tool) || !strings.Contains(log, "not supported") {
			t.Errorf("with an old %s on PATH, find-tool.sh printed %q (%s), want the pinned %s", tool, got, log, filepath.Join(pinned, tool))
		}
	}
}

// TestRelease runs hack/release.sh (make release) into a temporary directory and checks its
// artefacts: checksums, install.yaml with the image pinned (tag, and digest when given), the
// packaged chart's version, and that both install the same CRDs and that install.yaml passes
// the API server's dry-run.
func TestRelease(t *testing.T) {
	k, h := kubectl(t), helm(t)
	dist := t.TempDir()
	digest := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	mustRun(t, filepath.Join(root, "hack", "release.sh"), "--version", "9.8.7", "--kubectl", k, "--helm", h,
		"--dist", dist, "--digest", digest)
	files, _ := filepath.Glob(filepath.Join(dist, "*"))
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	if want := []string{"SHA256SUMS", "crds.yaml", "install.yaml", "plugin-operator-9.8.7.tgz"}; !slices.Equal(names, want) {
		t.Fatalf("dist holds %q, want %q", names, want)
	}
	cmd := exec.Command("sha256sum", "-c", "SHA256SUMS")
	cmd.Dir = dist
	if out, err := cmd.CombinedOutput(); err != nil || strings.Count(string(out), ": OK") != 3 {
		t.Errorf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
	}

	img := publishedImage(t)
	install := decodeObjects(t, mustRun(t, "cat", filepath.Join(dist, "install.yaml")))
	pinnedImg := img.repository + "@" + digest
	checkInstallation(t, install, installation{
		namespace: kustomizeNamespace, prefix: kustomizePrefix, image: pinnedImg, hostImage: pinnedImg, metricsPort: 8443,
	})
	checkCRDsMatchBases(t, install)
	crds := decodeObjects(t, mustRun(t, "cat", filepath.Join(dist, "crds.yaml")))
	if len(crds) != len(ofKind(crds, "CustomResourceDefinition")) {
		t.Errorf("crds.yaml holds more than CRDs: %s", describe(crds))
	}
	checkCRDsMatchBases(t, crds)
	dryRunApply(t, install)

	chartObjs := helmTemplate(t, "plugin-operator", filepath.Join(dist, "plugin-operator-9.8.7.tgz"), "--namespace", kustomizeNamespace)
	checkInstallation(t, chartObjs, installation{
		namespace: kustomizeNamespace, prefix: kustomizePrefix, image: pinnedImg, hostImage: pinnedImg, metricsPort: 8443,
	})
	checkChartCRDs(t, chartObjs, crdsKept)
	meta := mustRun(t, h, "show", "chart", filepath.Join(dist, "plugin-operator-9.8.7.tgz"))
	if !strings.Contains(string(meta), "\nversion: 9.8.7") || !strings.Contains(string(meta), "appVersion: v9.8.7") {
		t.Errorf("the packaged chart's Chart.yaml:\n%s\nwant version 9.8.7, appVersion v9.8.7", meta)
	}

	// Without a digest the image is the version's tag.
	dist2 := t.TempDir()
	mustRun(t, filepath.Join(root, "hack", "release.sh"), "--version", "9.8.7", "--kubectl", k, "--helm", h, "--dist", dist2)
	tagged := img.repository + ":v9.8.7"
	checkInstallation(t, decodeObjects(t, mustRun(t, "cat", filepath.Join(dist2, "install.yaml"))), installation{
		namespace: kustomizeNamespace, prefix: kustomizePrefix, image: tagged, hostImage: tagged, metricsPort: 8443,
	})

	if _, stderr, err := runCmd(filepath.Join(root, "hack", "release.sh"), "--version", "1.2", "--dist", t.TempDir()); err == nil ||
		!strings.Contains(string(stderr), "not a semantic version") {
		t.Errorf("release.sh --version 1.2: %v %s, want a refusal naming the version", err, stderr)
	}
}

// checkMonitoringScenario checks the optional objects of the "monitoring, …" chart scenario.
func checkMonitoringScenario(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	const prefix = "mon-plugin-operator-"
	dep := toTyped[appsv1.Deployment](t, mustFind(t, objs, "Deployment", prefix+"controller-manager"))
	podLabels := dep.Spec.Template.Labels
	spec := dep.Spec.Template.Spec
	c := managerContainer(t, dep)
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" && e.Value == "200MiB" }) {
		t.Errorf("extraEnv not in the manager's env: %+v", c.Env)
	}
	if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == "corp-ca" && v.ConfigMap != nil }) ||
		!slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "corp-ca" && m.MountPath == "/etc/ssl/corp" }) {
		t.Errorf("extraVolumes/extraVolumeMounts not applied: volumes %+v, mounts %+v", spec.Volumes, c.VolumeMounts)
	}
	if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == "tmp" }) {
		t.Error("extraVolumes replaced the manager's own tmp volume")
	}
	if len(spec.TopologySpreadConstraints) != 1 {
		t.Fatalf("topologySpreadConstraints = %+v, want one", spec.TopologySpreadConstraints)
	}
	tsc := spec.TopologySpreadConstraints[0]
	if sel, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector); err != nil || sel.Empty() || !sel.Matches(labels.Set(podLabels)) {
		t.Errorf("topology spread constraint %+v does not select the manager's pods %v (%v)", tsc, podLabels, err)
	}

	pdb := toTyped[policyv1.PodDisruptionBudget](t, mustFind(t, objs, "PodDisruptionBudget", prefix+"controller-manager"))
	if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || sel.Empty() || !sel.Matches(labels.Set(podLabels)) {
		t.Errorf("PodDisruptionBudget selector %+v does not select the manager's pods %v (%v)", pdb.Spec.Selector, podLabels, err)
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.MaxUnavailable != nil {
		t.Errorf("PodDisruptionBudget minAvailable %v maxUnavailable %v, want 1 and unset", pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
	}

	checkNetworkPolicy(t, objs, mustFind(t, objs, "NetworkPolicy", prefix+"allow-metrics-traffic"), prefix+"controller-manager")

	pm := mustFind(t, objs, "PodMonitor", prefix+"pluginhost-monitor")
	if pm.GetLabels()["release"] != "prom" {
		t.Errorf("PodMonitor labels %v lack release=prom", pm.GetLabels())
	}
	if nss, _, _ := unstructured.NestedStringSlice(pm.Object, "spec", "namespaceSelector", "matchNames"); !slices.Equal(nss, []string{"team-a"}) {
		t.Errorf("PodMonitor namespaces = %v, want [team-a] (podMonitor.namespaces)", nss)
	}
	rule := mustFind(t, objs, "PrometheusRule", prefix+"alerts")
	if rule.GetLabels()["release"] != "prom" {
		t.Errorf("PrometheusRule labels %v lack release=prom", rule.GetLabels())
	}
	var chartRules map[string]any
	readYAML(t, chartDir+"/files/prometheus-rules.yaml", &chartRules)
	if spec, _, _ := unstructured.NestedMap(rule.Object, "spec"); !reflect.DeepEqual(spec, chartRules) {
		t.Error("the rendered PrometheusRule's spec differs from files/prometheus-rules.yaml")
	}
}

// TestPodMonitorSelectsHostPods runs the operator's controllers against envtest, lets them
// create a PluginHost's Deployment, and checks that the PodMonitors of the chart and of
// config/components/podmonitor select exactly its pods, scrape a port the pods have, and
// take the label `pluginhost` from the label the operator sets.
func TestPodMonitorSelectsHostPods(t *testing.T) {
	needEnv(t)
	const ns = "podmonitor-test"
	ensureNamespaces(t, ns)
	startControllers(t, ns)
	host := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "plugins.hotreload.io/v1alpha1", "kind": "PluginHost",
		"metadata": map[string]any{"name": "scraped", "namespace": ns},
		"spec":     map[string]any{"pluginSelector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/part-of": "scraped"}}},
	}}
	if err := env.Client.Create(context.Background(), host); err != nil {
		t.Fatalf("creating PluginHost: %v", err)
	}
	dep := &appsv1.Deployment{}
	testutil.Eventually(t, 2*time.Minute, "the operator creates the host's Deployment", func() error {
		return env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "scraped"}, dep)
	})
	podLabels := dep.Spec.Template.Labels
	var ports []string
	for _, c := range dep.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			ports = append(ports, p.Name)
		}
	}
	// The label Prometheus exposes for the pod label v1alpha1.LabelHost.
	hostLabel := "__meta_kubernetes_pod_label_" + strings.NewReplacer(".", "_", "/", "_", "-", "_").Replace(v1alpha1.LabelHost)

	chartObjs := helmTemplate(t, "plugin-operator", filepath.Join(root, chartDir), "--set", "podMonitor.enabled=true")
	monitors := map[string]*unstructured.Unstructured{
		"chart":     mustFind(t, chartObjs, "PodMonitor", "plugin-operator-pluginhost-monitor"),
		"kustomize": decodeObjects(t, mustRun(t, "cat", filepath.Join(root, "config", "components", "podmonitor", "podmonitor.yaml")))[0],
	}
	for from, pm := range monitors {
		var sel metav1.LabelSelector
		m, _, _ := unstructured.NestedMap(pm.Object, "spec", "selector")
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &sel); err != nil {
			t.Fatal(err)
		}
		s, err := metav1.LabelSelectorAsSelector(&sel)
		if err != nil || s.Empty() || !s.Matches(labels.Set(podLabels)) {
			t.Errorf("%s PodMonitor selector %s does not select the host's pods %v (%v)", from, s, podLabels, err)
		}
		// Nor the manager's own pods.
		if s.Matches(labels.Set(map[string]string{"app.kubernetes.io/name": "plugin-operator", "control-plane": "controller-manager"})) {
			t.Errorf("%s PodMonitor selector %s also selects the manager's pods", from, s)
		}
		if anyNS, _, _ := unstructured.NestedBool(pm.Object, "spec", "namespaceSelector", "any"); !anyNS {
			t.Errorf("%s PodMonitor does not watch every namespace by default", from)
		}
		eps, _, _ := unstructured.NestedSlice(pm.Object, "spec", "podMetricsEndpoints")
		if len(eps) != 1 {
			t.Fatalf("%s PodMonitor endpoints = %v, want one", from, eps)
		}
		ep := eps[0].(map[string]any)
		if port, _ := ep["port"].(string); !slices.Contains(ports, port) {
			t.Errorf("%s PodMonitor scrapes port %q; the host pods' ports are %q", from, port, ports)
		}
		relabel := fmt.Sprint(ep["relabelings"])
		if !strings.Contains(relabel, hostLabel) || !strings.Contains(relabel, "targetLabel:pluginhost") {
			t.Errorf("%s PodMonitor relabelings %s do not copy %s into pluginhost", from, relabel, hostLabel)
		}
	}
}

// startControllers runs the operator's reconcilers in-process against env, watching only
// namespace ns, until the test ends.
func startControllers(t *testing.T, ns string) {
	t.Helper()
	opts := controllers.DefaultOptions()
	opts.DefaultHostImage = "example.com/pluginhost:test"
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := controllers.NewManager(ctx, env.Config, controllers.ManagerOptions{
		Logger:                 logr.Discard(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WatchNamespaces:        []string{ns},
		Controllers:            opts,
		// Other tests of this process build managers too.
		SkipNameValidation: true,
	})
	if err != nil {
		cancel()
		t.Fatalf("creating manager: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}

// TestChartNotes renders NOTES.txt (helm install --dry-run against the API server) with and
// without crds.enabled, and checks that its commands name things that exist: the release's
// crds.yaml (TestRelease checks that make release writes it), config/samples at the app version, the manager's
// Deployment — and no folder URL, which kubectl cannot apply.
func TestChartNotes(t *testing.T) {
	h := helm(t)
	e := helmEnv(t)
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	readYAML(t, chartDir+"/Chart.yaml", &chart)
	for _, tc := range []struct {
		set       string
		want, not []string
	}{
		{"crds.enabled=true", []string{"upgraded by `helm upgrade`", "kubectl delete crd plugins.plugins.hotreload.io pluginhosts.plugins.hotreload.io"}, []string{"crds.yaml"}},
		{"crds.enabled=false", []string{"/releases/download/" + chart.AppVersion + "/crds.yaml"}, []string{"upgraded by `helm upgrade`"}},
	} {
		t.Run(tc.set, func(t *testing.T) {
			out := string(mustRun(t, h, "install", "notes", filepath.Join(root, chartDir), "--dry-run", "--namespace", "notes-system",
				"--kubeconfig", e.Kubeconfig, "--set", tc.set))
			notes := out[strings.Index(out, "NOTES:"):]
			want := append([]string{
				"deployment/notes-plugin-operator-controller-manager",
				"//config/samples?ref=" + chart.AppVersion,
			}, tc.want...)
			for _, w := range want {
				if !strings.Contains(notes, w) {
					t.Errorf("NOTES lack %q:\n%s", w, notes)
				}
			}
			for _, n := range append([]string{"/crds/", "<version>"}, tc.not...) {
				if strings.Contains(notes, n) {
					t.Errorf("NOTES contain %q:\n%s", n, notes)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(root, "config", "samples", "kustomization.yaml")); err != nil {
		t.Errorf("NOTES apply config/samples, which has no kustomization.yaml: %v", err)
	}
}
