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
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/hotreload/plugin-operator/test/e2e"
)

const chartDir = "charts/plugin-operator"

// chartScenario is one `helm template` of the chart.
type chartScenario struct {
	name string
	// args follow `helm template`; the chart and --namespace are included.
	args []string
	want installation
	// crds is what the scenario's crds values make of the CRDs.
	crds crdMode
	// check makes scenario-specific checks.
	check func(t *testing.T, objs []*unstructured.Unstructured)
}

func chartScenarios(t *testing.T) []chartScenario {
	img := publishedImage(t)
	chart := filepath.Join(root, chartDir)
	digest := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	return []chartScenario{
		{
			name: "defaults",
			args: []string{"plugin-operator", chart, "--namespace", "plugin-operator-system"},
			want: installation{
				namespace: "plugin-operator-system", prefix: "plugin-operator-",
				image: img.String(), hostImage: img.String(), metricsPort: 8443,
				flags: map[string]string{
					"leader-elect": "true", "metrics-bind-address": ":8443", "metrics-secure": "true",
					"health-probe-bind-address": ":8081", "pod-nudge": "true", "zap-encoder": "json",
				},
			},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				mustFind(t, objs, "ClusterRoleBinding", "plugin-operator-manager-rolebinding")
				if sm := ofKind(objs, "ServiceMonitor"); len(sm) > 0 {
					t.Error("a ServiceMonitor is rendered by default")
				}
			},
		},
		{
			// Exactly what test/e2e installs into kind, after its `helm upgrade` that turns
			// the pod nudge off.
			name: "kind e2e",
			args: e2e.HelmTemplateArgs(e2e.HelmInstallArgs(root, e2e.DefaultImage, "--set", "podNudge=false"))[1:],
			want: installation{
				namespace: e2e.ReleaseNamespace, prefix: e2e.Release + "-",
				image: e2e.DefaultImage, hostImage: e2e.DefaultImage, metricsPort: 8443,
				flags: map[string]string{"pod-nudge": "false", "zap-log-level": "debug", "status-poll-interval": "1s",
					"allowed-host-images": e2e.ExampleImage},
			},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				dep := toTyped[appsv1.Deployment](t, mustFind(t, objs, "Deployment", e2e.Release+"-controller-manager"))
				if p := managerContainer(t, dep).ImagePullPolicy; p != "Never" {
					t.Errorf("imagePullPolicy = %q, want Never: kind loads the image, nothing may pull it", p)
				}
			},
		},
		{
			name: "watch namespaces, plain HTTP metrics, ServiceMonitor",
			args: []string{"scoped", chart, "--namespace", "scoped-system",
				"--set", "watchNamespaces={team-a,team-b}", "--set", "metrics.secure=false", "--set", "metrics.port=8080",
				"--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.serviceMonitor.labels.release=prom"},
			want: installation{
				namespace: "scoped-system", prefix: "scoped-plugin-operator-",
				image: img.String(), hostImage: img.String(), metricsPort: 8080,
				flags: map[string]string{"watch-namespaces": "team-a,team-b", "metrics-secure": "false", "metrics-bind-address": ":8080"},
			},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				if b := find(objs, "ClusterRoleBinding", "scoped-plugin-operator-manager-rolebinding"); b != nil {
					t.Error("with watchNamespaces the manager role must not be bound cluster-wide")
				}
				if r := find(objs, "ClusterRole", "scoped-plugin-operator-manager-role"); r != nil {
					t.Error("with watchNamespaces the manager's rules must be Roles in those namespaces, not a ClusterRole")
				}
				for _, ns := range []string{"team-a", "team-b"} {
					found := false
					for _, b := range ofKind(objs, "RoleBinding") {
						if b.GetNamespace() == ns && b.GetName() == "scoped-plugin-operator-manager-rolebinding" {
							found = toTyped[rbacv1.RoleBinding](t, b).RoleRef.Kind == "Role"
						}
					}
					if !found {
						t.Errorf("no manager RoleBinding of a Role in watched namespace %s", ns)
					}
					role := false
					for _, r := range ofKind(objs, "Role") {
						role = role || r.GetNamespace() == ns && r.GetName() == "scoped-plugin-operator-manager-role"
					}
					if !role {
						t.Errorf("no manager Role in watched namespace %s", ns)
					}
				}
				if find(objs, "ClusterRole", "scoped-plugin-operator-metrics-auth-role") != nil {
					t.Error("plain HTTP metrics need no TokenReview/SubjectAccessReview permissions")
				}
				sm := mustFind(t, objs, "ServiceMonitor", "scoped-plugin-operator-controller-manager-metrics-monitor")
				if sm.GetLabels()["release"] != "prom" {
					t.Errorf("ServiceMonitor labels %v lack release=prom", sm.GetLabels())
				}
				checkServiceMonitor(t, objs, sm, "scoped-plugin-operator-controller-manager-metrics-service", "http")
			},
		},
		{
			name: "HA, pinned digest, secure ServiceMonitor, tuning",
			args: []string{"ha", chart, "--namespace", "ha-system",
				"--set", "replicaCount=2", "--set", "image.digest=" + digest,
				"--set", "defaultHostImage=example.com/custom-host:v9", "--set", "leaderElection.id=ha.plugins.hotreload.io",
				"--set", "metrics.serviceMonitor.enabled=true",
				"--set-json", `metrics.readerSubjects=[{"kind":"ServiceAccount","name":"prometheus-k8s","namespace":"monitoring"}]`,
				"--set", "statusPollInterval=2s", "--set", "statusTimeout=3s", "--set", "maxConcurrentProbes=8",
				"--set", "logLevel=debug", "--set", "logEncoder=console", "--set", "extraArgs={--max-concurrent-reconciles=4}",
				"--set", "nodeSelector.kubernetes\\.io/os=linux", "--set", "podAnnotations.example\\.com/team=plugins",
				"--set", "priorityClassName=system-cluster-critical",
				"--set", "security.allowedHostImages={example.com/team/*,example.com/other:v1}", "--set", "security.maxStatusBytes=1048576"},
			want: installation{
				namespace: "ha-system", prefix: "ha-plugin-operator-",
				image: "ghcr.io/hotreload/plugin-operator@" + digest, hostImage: "example.com/custom-host:v9", metricsPort: 8443,
				flags: map[string]string{
					"leader-elect": "true", "leader-election-id": "ha.plugins.hotreload.io",
					"status-poll-interval": "2s", "status-timeout": "3s", "max-concurrent-probes": "8",
					"max-concurrent-reconciles": "4", "zap-log-level": "debug", "zap-encoder": "console",
					"allowed-host-images": "example.com/team/*,example.com/other:v1", "max-status-bytes": "1048576",
				},
			},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				dep := toTyped[appsv1.Deployment](t, mustFind(t, objs, "Deployment", "ha-plugin-operator-controller-manager"))
				if *dep.Spec.Replicas != 2 || dep.Spec.Template.Spec.NodeSelector["kubernetes.io/os"] != "linux" ||
					dep.Spec.Template.Annotations["example.com/team"] != "plugins" || dep.Spec.Template.Spec.PriorityClassName != "system-cluster-critical" {
					t.Errorf("replicas, nodeSelector, podAnnotations or priorityClassName not applied: %+v", dep.Spec)
				}
				rb := toTyped[rbacv1.ClusterRoleBinding](t, mustFind(t, objs, "ClusterRoleBinding", "ha-plugin-operator-metrics-reader-rolebinding"))
				if len(rb.Subjects) != 1 || rb.Subjects[0].Name != "prometheus-k8s" || rb.RoleRef.Name != "ha-plugin-operator-metrics-reader" {
					t.Errorf("metrics reader binding = %+v", rb)
				}
				checkServiceMonitor(t, objs, mustFind(t, objs, "ServiceMonitor", "ha-plugin-operator-controller-manager-metrics-monitor"),
					"ha-plugin-operator-controller-manager-metrics-service", "https")
			},
		},
		{
			name: "monitoring, network policy, PDB, spread, extra env and volumes, CRDs not kept",
			args: []string{"mon", chart, "--namespace", "mon-system",
				"--set", "replicaCount=2", "--set", "podDisruptionBudget.enabled=true",
				"--set", "podMonitor.enabled=true", "--set", "podMonitor.labels.release=prom", "--set", "podMonitor.namespaces={team-a}",
				"--set", "prometheusRule.enabled=true", "--set", "prometheusRule.labels.release=prom",
				"--set", "networkPolicy.enabled=true",
				"--set-json", `topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"ScheduleAnyway"}]`,
				"--set-json", `extraEnv=[{"name":"GOMEMLIMIT","value":"200MiB"}]`,
				"--set-json", `extraVolumes=[{"name":"corp-ca","configMap":{"name":"corp-ca"}}]`,
				"--set-json", `extraVolumeMounts=[{"name":"corp-ca","mountPath":"/etc/ssl/corp","readOnly":true}]`,
				"--set", "global.imageRegistry=registry.example.com", "--set", "crds.keep=false"},
			want: installation{
				namespace: "mon-system", prefix: "mon-plugin-operator-",
				image: img.String(), hostImage: img.String(), metricsPort: 8443,
			},
			crds:  crdsNotKept,
			check: checkMonitoringScenario,
		},
		{
			name: "CRDs managed elsewhere",
			args: []string{"nocrds", chart, "--namespace", "nocrds-system", "--set", "crds.enabled=false"},
			want: installation{
				namespace: "nocrds-system", prefix: "nocrds-plugin-operator-",
				image: img.String(), hostImage: img.String(), metricsPort: 8443,
			},
			crds: crdsNone,
		},
		{
			name: "minimal: no metrics, no leader election, no RBAC, existing ServiceAccount",
			args: []string{"min", chart, "--namespace", "min-system",
				"--set", "metrics.enabled=false", "--set", "leaderElection.enabled=false",
				"--set", "rbac.create=false", "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=existing-manager-sa",
				"--set", "podNudge=false"},
			want: installation{
				namespace: "min-system", prefix: "min-plugin-operator-",
				image: img.String(), hostImage: img.String(),
				flags: map[string]string{"leader-elect": "false", "metrics-bind-address": "0", "pod-nudge": "false"},
			},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				for _, kind := range []string{"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "Service", "ServiceMonitor"} {
					if o := ofKind(objs, kind); len(o) > 0 {
						t.Errorf("unexpected %s: %s", kind, describe(o))
					}
				}
			},
		},
	}
}

// TestHelmLint runs `helm lint --strict` with the default values and those of every scenario.
func TestHelmLint(t *testing.T) {
	h := helm(t)
	mustRun(t, h, "lint", "--strict", filepath.Join(root, chartDir))
	for _, sc := range chartScenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			// lint takes the chart and value flags, not the release name.
			args := []string{"lint", "--strict"}
			args = append(args, sc.args[1:]...)
			mustRun(t, h, args...)
		})
	}
}

// TestChart renders each scenario with `helm template --include-crds` and dry-runs the
// objects against the API server.
func TestChart(t *testing.T) {
	for _, sc := range chartScenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			objs := helmTemplate(t, append(slices.Clone(sc.args), "--include-crds")...)
			for _, o := range objs {
				// The manager's Role and RoleBinding live in each watched namespace.
				if ns := o.GetNamespace(); ns != "" && ns != sc.want.namespace && o.GetKind() != "RoleBinding" && o.GetKind() != "Role" {
					t.Errorf("%s %s is in namespace %s, want the release namespace %s", o.GetKind(), o.GetName(), ns, sc.want.namespace)
				}
			}
			checkInstallation(t, objs, sc.want)
			checkChartCRDs(t, objs, sc.crds)
			if sc.check != nil {
				sc.check(t, objs)
			}
			checkPodSecurity(t, objs)
			dryRunApply(t, objs)
		})
	}
}

// TestChartRefusesBadValues checks that mistakes fail at `helm install` with a message.
func TestChartRefusesBadValues(t *testing.T) {
	h := helm(t)
	chart := filepath.Join(root, chartDir)
	for name, tc := range map[string]struct {
		set  []string
		want string
	}{
		"replicas without leader election": {[]string{"replicaCount=3", "leaderElection.enabled=false"}, "needs leaderElection.enabled=true"},
		"misspelt key":                     {[]string{"podNuge=false"}, "podNuge"},
		"bad pull policy":                  {[]string{"image.pullPolicy=Sometimes"}, "pullPolicy"},
		"bad duration":                     {[]string{"statusTimeout=soon"}, "statusTimeout"},
		"no ServiceAccount":                {[]string{"serviceAccount.create=false"}, "serviceAccount.name is required"},
		"PDB that blocks every drain":      {[]string{"podDisruptionBudget.enabled=true"}, "would block every voluntary eviction"},
		"PDB with both bounds":             {[]string{"podDisruptionBudget.enabled=true", "replicaCount=3", "podDisruptionBudget.maxUnavailable=1"}, "not both"},
		"PDB bad percentage":               {[]string{"podDisruptionBudget.enabled=true", "replicaCount=3", "podDisruptionBudget.minAvailable=half"}, "minAvailable"},
		"crds misspelt":                    {[]string{"crds.keeep=false"}, "keeep"},
		"spread without topologyKey":       {[]string{"topologySpreadConstraints[0].maxSkew=1"}, "topologyKey"},
		"two images in one entry":          {[]string{"security.allowedHostImages={a.example/x:1 b.example/y:2}"}, "allowedHostImages"},
		"negative status bound":            {[]string{"security.maxStatusBytes=-1"}, "maxStatusBytes"},
	} {
		t.Run(name, func(t *testing.T) {
			args := []string{"template", "x", chart}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			_, stderr, err := runCmd(h, args...)
			if err == nil {
				t.Fatalf("helm template --set %v succeeded", tc.set)
			}
			if !strings.Contains(string(stderr), tc.want) {
				t.Errorf("helm template --set %v: error %q does not mention %q", tc.set, stderr, tc.want)
			}
		})
	}
}

// TestChartInSyncWithConfig checks that the chart installs what config/ installs: the same
// CRD files, byte for byte; the same RBAC rules (manager-role generated from role.yaml, and
// every other Role and ClusterRole); the same manager Deployment (image, flags, ports,
// probes, security contexts, resources, volumes); the same version.
func TestChartInSyncWithConfig(t *testing.T) {
	const fixChart = "run `make chart` (after `make manifests`) to sync charts/plugin-operator with config/"

	// CRDs: one generated template per file of config/crd/bases (TestChart checks that each
	// renders that CRD), and no crds/ directory, whose CRDs Helm would never upgrade.
	bases, _ := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	chartCRDs, _ := filepath.Glob(filepath.Join(root, chartDir, "templates", "crds", "*"))
	names := func(files []string) []string {
		var out []string
		for _, f := range files {
			out = append(out, filepath.Base(f))
		}
		return out
	}
	if len(bases) == 0 || !slices.Equal(names(bases), names(chartCRDs)) {
		t.Errorf("chart templates/crds/ holds %q, config/crd/bases %q: %s", names(chartCRDs), names(bases), fixChart)
	}
	// Everything hack/chartgen writes, byte for byte: run it on a copy and compare.
	tmp := t.TempDir()
	copyTree(t, filepath.Join(root, "config"), filepath.Join(tmp, "config"))
	copyTree(t, filepath.Join(root, chartDir), filepath.Join(tmp, chartDir))
	mustRun(t, "go", "run", "./hack/chartgen", "-root", tmp)
	for _, rel := range append(names(bases), "../manager-role.yaml", "../../files/prometheus-rules.yaml", "../../files/grafana-dashboard.json") {
		rel = filepath.Join(chartDir, "templates", "crds", rel)
		want, err := os.ReadFile(filepath.Join(tmp, rel))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(root, rel)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale (%v): %s", filepath.Clean(rel), err, fixChart)
		}
	}
	if _, err := os.Stat(filepath.Join(root, chartDir, "crds")); err == nil {
		t.Errorf("the chart has a crds/ directory: Helm would install those CRDs besides templates/crds/ and never upgrade them: %s", fixChart)
	}

	// Alerts: the chart's rule file holds the groups of config/components/alerts.
	var rule struct {
		Spec map[string]any `json:"spec"`
	}
	readYAML(t, "config/components/alerts/prometheusrule.yaml", &rule)
	var chartRules map[string]any
	readYAML(t, chartDir+"/files/prometheus-rules.yaml", &chartRules)
	if len(rule.Spec) == 0 || !reflect.DeepEqual(rule.Spec, chartRules) {
		t.Errorf("%s/files/prometheus-rules.yaml differs from spec of config/components/alerts/prometheusrule.yaml: %s", chartDir, fixChart)
	}

	if _, err := os.Stat(filepath.Join(root, "config", "rbac", "role.yaml")); err != nil {
		t.Fatalf("config/rbac/role.yaml is missing: it is generated by `make manifests` from the +kubebuilder:rbac markers of controllers/ (%v)", err)
	}
	kust := kustomize(t, "config/default")
	chart := helmTemplate(t, "plugin-operator", filepath.Join(root, chartDir), "--namespace", kustomizeNamespace)

	// Same RBAC: every Role and ClusterRole of config/ has a chart twin of the same name (the
	// release "plugin-operator" gives the chart the kustomize prefix) and the same rules.
	for _, kind := range []string{"Role", "ClusterRole"} {
		for _, k := range ofKind(kust, kind) {
			c := find(chart, kind, k.GetName())
			if c == nil {
				t.Errorf("config/ installs %s %s, the chart does not", kind, k.GetName())
				continue
			}
			kr, cr := toTyped[rbacv1.ClusterRole](t, k).Rules, toTyped[rbacv1.ClusterRole](t, c).Rules
			if !reflect.DeepEqual(kr, cr) {
				hint := ""
				if k.GetName() == kustomizePrefix+"manager-role" {
					hint = ": " + fixChart
				}
				t.Errorf("%s %s: chart rules differ from config/%s\n config: %+v\n chart:  %+v", kind, k.GetName(), hint, kr, cr)
			}
			if !reflect.DeepEqual(aggregationLabels(k), aggregationLabels(c)) {
				t.Errorf("%s %s: aggregation labels differ: config %v, chart %v", kind, k.GetName(), aggregationLabels(k), aggregationLabels(c))
			}
		}
		if nk, nc := len(ofKind(kust, kind)), len(ofKind(chart, kind)); nk != nc {
			t.Errorf("config/ installs %d %ss, the chart %d: config %s; chart %s", nk, kind, nc, describe(ofKind(kust, kind)), describe(ofKind(chart, kind)))
		}
	}
	for _, kind := range []string{"RoleBinding", "ClusterRoleBinding"} {
		for _, k := range ofKind(kust, kind) {
			c := find(chart, kind, k.GetName())
			if c == nil {
				t.Errorf("config/ installs %s %s, the chart does not", kind, k.GetName())
				continue
			}
			kb, cb := toTyped[rbacv1.ClusterRoleBinding](t, k), toTyped[rbacv1.ClusterRoleBinding](t, c)
			if !reflect.DeepEqual(kb.RoleRef, cb.RoleRef) || !reflect.DeepEqual(kb.Subjects, cb.Subjects) {
				t.Errorf("%s %s: chart binds %+v to %+v, config/ %+v to %+v", kind, k.GetName(), cb.RoleRef, cb.Subjects, kb.RoleRef, kb.Subjects)
			}
		}
	}

	// Same manager Deployment.
	kd := toTyped[appsv1.Deployment](t, mustFind(t, kust, "Deployment", kustomizePrefix+"controller-manager"))
	cd := toTyped[appsv1.Deployment](t, mustFind(t, chart, "Deployment", kustomizePrefix+"controller-manager"))
	kc, cc := managerContainer(t, kd), managerContainer(t, cd)
	kf, cf := managerFlags(t, kc, managerDefaults), managerFlags(t, cc, managerDefaults)
	if !reflect.DeepEqual(kf, cf) {
		t.Errorf("manager flags differ:\n config: %v\n chart:  %v", kf, cf)
	}
	same := func(what string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			t.Errorf("manager %s differs:\n config: %+v\n chart:  %+v", what, a, b)
		}
	}
	same("image", kc.Image, cc.Image)
	same("command", kc.Command, cc.Command)
	same("container securityContext", kc.SecurityContext, cc.SecurityContext)
	same("pod securityContext", kd.Spec.Template.Spec.SecurityContext, cd.Spec.Template.Spec.SecurityContext)
	same("resources", kc.Resources, cc.Resources)
	same("liveness probe", kc.LivenessProbe, cc.LivenessProbe)
	same("readiness probe", kc.ReadinessProbe, cc.ReadinessProbe)
	same("volume mounts", kc.VolumeMounts, cc.VolumeMounts)
	same("volumes", kd.Spec.Template.Spec.Volumes, cd.Spec.Template.Spec.Volumes)
	same("replicas", kd.Spec.Replicas, cd.Spec.Replicas)
	same("terminationGracePeriodSeconds", kd.Spec.Template.Spec.TerminationGracePeriodSeconds, cd.Spec.Template.Spec.TerminationGracePeriodSeconds)
	same("service account", kd.Spec.Template.Spec.ServiceAccountName, cd.Spec.Template.Spec.ServiceAccountName)
	portsOf := func(c []int32) []int32 { slices.Sort(c); return c }
	var kp, cp []int32
	for _, p := range kc.Ports {
		kp = append(kp, p.ContainerPort)
	}
	for _, p := range cc.Ports {
		cp = append(cp, p.ContainerPort)
	}
	same("container ports", portsOf(kp), portsOf(cp))
}

func aggregationLabels(o *unstructured.Unstructured) map[string]string {
	out := map[string]string{}
	for k, v := range o.GetLabels() {
		if strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-") {
			out[k] = v
		}
	}
	return out
}

// TestVersionsAgree checks that config/manager publishes the image the chart does.
func TestVersionsAgree(t *testing.T) {
	img := publishedImage(t)
	var k struct {
		Images []struct {
			Name    string `json:"name"`
			NewName string `json:"newName"`
			NewTag  string `json:"newTag"`
		} `json:"images"`
	}
	readYAML(t, "config/manager/kustomization.yaml", &k)
	if len(k.Images) != 1 || k.Images[0].NewName != img.repository || k.Images[0].NewTag != img.tag {
		t.Errorf("config/manager/kustomization.yaml images = %+v, want %s:%s (the chart's image.repository and appVersion)", k.Images, img.repository, img.tag)
	}
}
