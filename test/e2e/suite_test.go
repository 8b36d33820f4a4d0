//go:build e2e

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

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/hotreload/plugin-operator/controllers"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

const (
	hostName = "demo"      // the sample PluginHost
	counter1 = "counter-1" // sample Plugin, increment 1, no auth
	counter2 = "counter-2" // sample Plugin, increment 10, api-key from a Secret
	apiKey   = "change-me" // the sample Secret's api-key

	// reloadTimeout bounds one config change: without the nudge kubelet refreshes a
	// ConfigMap volume at its periodic pod sync (about a minute, plus its cache TTL).
	reloadTimeout = 3 * time.Minute
)

// TestE2E is the whole suite; its steps depend on each other, so it is one test.
func TestE2E(t *testing.T) {
	root, err := testutil.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cfg := ConfigFromEnv(os.Getenv, root)
	// Commands end 60s before `go test -timeout`, which leaves time to dump and clean up.
	deadline := time.Now().Add(time.Hour)
	if dl, ok := t.Deadline(); ok {
		deadline = dl.Add(-60 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancel) // registered first, so it runs after the dump and the cluster deletion
	dockerErr := DockerInfo(ctx, cfg.ContainerTool)
	provider, err := ChooseProvider(cfg, dockerErr)
	if err != nil {
		t.Fatal(err)
	}
	s := &suite{t: t, ctx: ctx, cfg: cfg}
	switch provider {
	case ProviderKind:
		if err := Prerequisites(cfg, exec.LookPath, func() error { return dockerErr }); err != nil {
			t.Fatalf("E2E_CLUSTER=kind: %v", err)
		}
		s.cluster = &kindCluster{s: s, kubeconfig: filepath.Join(t.TempDir(), "kubeconfig")}
	case ProviderLocal:
		// No silent skip: a machine that cannot run a node fails, naming what is missing.
		if err := LocalPrerequisites(cfg, os.Getuid(), exec.LookPath, os.Stat); err != nil {
			t.Fatal(err)
		}
		s.cluster = &localCluster{s: s}
	}
	if s.selected, err = StepFilter(cfg); err != nil {
		t.Fatal(err)
	}
	s.step("Cluster: %s", provider)
	s.kubeconfig = s.cluster.up()
	s.apiClients()
	// Cleanups run last-registered first: dump on a failure outside the steps (each step
	// dumps its own), then delete the cluster.
	t.Cleanup(func() {
		if t.Failed() && !s.dumped {
			s.dump()
		}
	})
	s.cluster.loadImage()

	if !s.sub("deploy with kustomize, then undeploy leaves nothing", s.testKustomizeDeploy) {
		return
	}
	s.helmInstall(true)
	s.applySamples()
	if !s.sub(mustRun+"seed walkthrough through the host's Service", s.testWalkthrough) {
		return
	}
	s.sub("idle CPU and memory as kubelet reports them", s.testIdleUsage)
	s.sub("Plugin edits served in place with the pod nudge", s.testEditsWithNudge)
	s.sub("pin an older revision, then unpin", s.testRollback)
	s.sub("a bad user ConfigMap: last good keeps serving", s.testBadUserConfig)
	s.sub("a plugin type from outside the module: the example host image", s.testExamplePlugin)
	s.sub("a rotated Secret reaches the running pod", s.testSecretRotation)
	s.sub("manager restarted in the middle of a rollout", s.testManagerRestart)
	s.sub("host pod deleted: a new pod restores the counters", s.testStateAcrossPods)
	s.sub("Plugin edits without the pod nudge", s.testEditsWithoutNudge)
	s.sub("PluginHost deleted: its children are collected", s.testGarbageCollection)
	s.sub("helm uninstall leaves nothing", s.testHelmUninstall)
	if s.cfg.Report != "" && !t.Failed() {
		s.must(WriteReport(s.cfg.Report, provider, s.cfg, s.results))
		t.Logf("wrote %s", s.cfg.Report)
	}
}

// cluster is where the suite runs.
type cluster interface {
	// up creates (or reuses) the cluster and returns its kubeconfig; it registers the
	// cluster's teardown with t.Cleanup.
	up() string
	// loadImage makes cfg.Image and ExampleImage available on the node, never pulled.
	loadImage()
	// baseURL returns a URL of a Service's port that this process can reach, for as long as
	// the test runs.
	baseURL(namespace, service string, port int) string
	// opsURL returns a URL of the operational port of host's pod (as it is now) that this
	// process can reach.
	opsURL(namespace, host string) string
	// nodeDir creates a directory on the node, writable by the host pods' user (65532).
	nodeDir(path string)
	// projectedAt returns when kubelet last swapped the "config" volume of the pod with
	// this UID (the mtime of its ..data link) if the volume holds config revision rev (ok
	// false if it holds another), or errNoNodeFiles where the test cannot read the node's
	// files.
	projectedAt(namespace, podUID, rev string) (at time.Time, ok bool, err error)
}

type suite struct {
	t          *testing.T
	ctx        context.Context
	cfg        Config
	cluster    cluster
	kubeconfig string
	// results are the measurements, in order (RESULT lines; E2E_REPORT writes them out).
	results [][2]string
	// client and keyed talk to the sample host through its Service; value is counter-1's
	// value from the walkthrough on, checked after every change.
	client, keyed *Client
	value         int64
	// hostBefore is the sample host's pod after the samples were applied.
	hostBefore podIdentity
	// dumped is set once the cluster's state has been logged for a failure.
	dumped bool
	// selected says whether a step runs (E2E_RUN).
	selected func(step string) bool
	// kube and dyn are client-go clients of kubeconfig (dyn for the CRDs).
	kube *kubernetes.Clientset
	dyn  *dynamic.DynamicClient
}

// mustRun marks a step that every later one needs: E2E_RUN does not leave it out.
const mustRun = "\x00"

// sub runs f as a subtest; inside it s.t is the subtest's (Fatal must be called from the
// goroutine of the test it fails). A step E2E_RUN does not select is not run, and said so.
func (s *suite) sub(name string, f func()) bool {
	name, required := strings.CutPrefix(name, mustRun)
	if !required && !s.selected(name) {
		s.t.Logf("=== not run (E2E_RUN=%q): %s", s.cfg.Run, name)
		return true
	}
	return s.t.Run(name, func(t *testing.T) {
		parent := s.t
		s.t = t
		defer func() {
			if t.Failed() {
				s.dump() // now, while the objects of the step still exist
			}
			s.t = parent
		}()
		f()
	})
}

// result records a measurement.
func (s *suite) result(what, value string) {
	s.t.Helper()
	s.t.Logf("RESULT %s: %s", what, value)
	s.results = append(s.results, [2]string{what, value})
}

func (s *suite) step(format string, args ...any) {
	s.t.Helper()
	s.t.Logf("=== "+format, args...)
}

// run runs a command, failing the test with its output if it fails; it returns stdout.
func (s *suite) run(name string, env []string, args ...string) string {
	s.t.Helper()
	out, err := s.tryRun(name, env, "", args...)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

func (s *suite) tryRun(name string, env []string, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(s.ctx, name, args...)
	cmd.Dir = s.cfg.RepoRoot
	cmd.Env = append(os.Environ(), env...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, tail(stderr.String()+stdout.String(), 40))
	}
	return stdout.String(), nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append([]string{"…"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

func (s *suite) kubectl(args ...string) string {
	s.t.Helper()
	return strings.TrimSpace(s.run(s.cfg.Kubectl, nil, append([]string{"--kubeconfig", s.kubeconfig}, args...)...))
}

func (s *suite) tryKubectl(args ...string) (string, error) {
	out, err := s.tryRun(s.cfg.Kubectl, nil, "", append([]string{"--kubeconfig", s.kubeconfig}, args...)...)
	return strings.TrimSpace(out), err
}

func (s *suite) kubectlStdin(stdin string, args ...string) {
	s.t.Helper()
	if _, err := s.tryRun(s.cfg.Kubectl, nil, stdin, append([]string{"--kubeconfig", s.kubeconfig}, args...)...); err != nil {
		s.t.Fatal(err)
	}
}

func (s *suite) helm(args ...string) {
	s.t.Helper()
	s.run(s.cfg.Helm, nil, append(args, "--kubeconfig", s.kubeconfig)...)
}

// eventually polls cond every interval until it returns nil or timeout passes.
func (s *suite) eventually(what string, timeout, interval time.Duration, cond func() error) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || s.ctx.Err() != nil {
			s.t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(interval)
	}
}

// restrictedNamespace creates (or updates) a namespace that enforces the restricted Pod
// Security Standard, so that every pod in it must meet it.
func (s *suite) restrictedNamespace(name string) {
	s.t.Helper()
	s.kubectlStdin(fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
`, name), "apply", "-f", "-")
}

// leftovers lists what an installation of the operator may leave behind: its CRDs, its
// namespace and its cluster-wide RBAC.
func (s *suite) leftovers() []string {
	s.t.Helper()
	var found []string
	for _, kind := range []string{"crd", "clusterrole", "clusterrolebinding", "namespace"} {
		out := s.kubectl("get", kind, "-o", "name")
		for _, name := range strings.Fields(out) {
			if strings.Contains(name, "hotreload.io") || strings.Contains(name, "plugin-operator") {
				found = append(found, name)
			}
		}
	}
	return found
}

// waitGone waits until leftovers lists nothing (namespaces terminate asynchronously).
func (s *suite) waitGone(what string) {
	s.t.Helper()
	s.eventually(what+" leaves nothing behind", 3*time.Minute, time.Second, func() error {
		if left := s.leftovers(); len(left) > 0 {
			return fmt.Errorf("left: %v", left)
		}
		return nil
	})
}

func (s *suite) testKustomizeDeploy() {
	s.step("make deploy IMG=%s (kustomize, config/default)", s.cfg.Image)
	if left := s.leftovers(); len(left) > 0 {
		s.t.Fatalf("the cluster already holds %v", left)
	}
	env := []string{"KUBECONFIG=" + s.kubeconfig, "IMG=" + s.cfg.Image, "KUBECTL=" + s.cfg.Kubectl}
	s.run("make", env, "--no-print-directory", "deploy", "IMG="+s.cfg.Image, "KUBECTL="+s.cfg.Kubectl)
	s.kubectl("-n", ReleaseNamespace, "rollout", "status", "deployment/plugin-operator-controller-manager", "--timeout=3m")
	for _, crd := range []string{"plugins.plugins.hotreload.io", "pluginhosts.plugins.hotreload.io"} {
		s.kubectl("wait", "--for=condition=Established", "crd/"+crd, "--timeout=1m")
	}
	s.step("make undeploy")
	s.run("make", env, "--no-print-directory", "undeploy", "IMG="+s.cfg.Image, "KUBECTL="+s.cfg.Kubectl)
	s.waitGone("make undeploy")
}

// helmInstall installs (or upgrades) the chart and waits until a manager pod of this
// configuration holds the leader Lease.
func (s *suite) helmInstall(nudge bool) {
	s.t.Helper()
	s.step("helm upgrade --install the chart (pod nudge %v) into %s, restricted", nudge, ReleaseNamespace)
	s.restrictedNamespace(ReleaseNamespace)
	s.helm(HelmInstallArgs(s.cfg.RepoRoot, s.cfg.Image, "--set", fmt.Sprintf("podNudge=%v", nudge))...)
	s.kubectl("-n", ReleaseNamespace, "rollout", "status", "deployment/"+Release+"-controller-manager", "--timeout=3m")
	s.waitNewLeader(fmt.Sprintf("--pod-nudge=%v", nudge))
}

func (s *suite) applySamples() {
	s.t.Helper()
	s.step("Apply config/samples into %s, which enforces the restricted Pod Security Standard", SamplesNamespace)
	s.restrictedNamespace(SamplesNamespace)
	start := time.Now()
	s.kubectl("-n", SamplesNamespace, "apply", "-k", filepath.Join(s.cfg.RepoRoot, "config", "samples"))
	s.kubectl("-n", SamplesNamespace, "wait", "--for=condition=Available", "pluginhost/"+hostName, "--timeout=5m")
	s.kubectl("-n", SamplesNamespace, "wait", "--for=condition=Ready", "plugin", "--all", "--timeout=3m")
	s.result("`kubectl apply -k config/samples` → host pod running, every Plugin Ready", time.Since(start).Round(time.Millisecond).String())

	svc, ns, port, err := ServiceFromURL(s.kubectl("-n", SamplesNamespace, "get", "pluginhost", hostName, "-o", "jsonpath={.status.url}"))
	if err != nil {
		s.t.Fatal(err)
	}
	s.client = &Client{BaseURL: s.cluster.baseURL(ns, svc, port), OpsURL: s.cluster.opsURL(ns, hostName)}
	s.keyed = &Client{BaseURL: s.client.BaseURL, Headers: map[string]string{"X-API-Key": apiKey}}
	s.waitServing(s.client, counter1)
	s.hostBefore = s.hostPod(SamplesNamespace, hostName)
	s.noProbeFailures(SamplesNamespace, s.hostBefore.name)
	s.t.Logf("host pod %s (uid %s), restarts %d, served at %s", s.hostBefore.name, s.hostBefore.uid, s.hostBefore.restarts, s.client.BaseURL)
}

func (s *suite) testWalkthrough() {
	s.step("The seed's walkthrough through the Service %s", s.client.BaseURL)
	s.must(s.client.Reset(s.ctx, counter1))
	s.expectValue(s.client.Increment, counter1, 5, 5)
	s.expectValue(getter(s.client), counter1, 0, 5)
	if _, err := s.client.Increment(s.ctx, counter2, 1); err == nil || !strings.Contains(err.Error(), "401") {
		s.t.Errorf("increment of %s without its API key: %v, want 401", counter2, err)
	}
	s.must(s.keyed.Reset(s.ctx, counter2))
	s.expectValue(s.keyed.Increment, counter2, 1, 10)
	// The seed's step 2: increment 1 -> 10 in place, then {"value": 1} takes 5 to 15.
	w := s.startEditWatch(counter1)
	defer w.stop()
	s.edit(w, counter1, 10, true, reloadTimeout)
	s.expectValue(s.client.Increment, counter1, 1, 15)
	s.value = 15
}

func (s *suite) testEditsWithNudge() {
	s.measureEdits(s.cfg.EditsWithNudge, 100, true, 0, "pod nudge on")
	s.measureEdits(s.cfg.EditsSpaced, 500, true, EditSpacing, fmt.Sprintf("pod nudge on, edits %v apart", EditSpacing))
}

func (s *suite) testEditsWithoutNudge() {
	if s.cfg.EditsWithoutNudge == 0 {
		s.t.Skip("no edits without the nudge asked for: E2E_EDITS_NO_NUDGE=0")
	}
	s.helmInstall(false)
	s.measureEdits(s.cfg.EditsWithoutNudge, 1000, false, 0, "pod nudge off (`--pod-nudge=false`)")
	s.helmInstall(true)
}

// waitServing waits until a new host answers for plugin through its Service: a pod turns
// Ready before kube-proxy has programmed its endpoint, and until then connections are refused.
func (s *suite) waitServing(c *Client, plugin string) {
	s.t.Helper()
	s.eventually("the Service answers for "+plugin, time.Minute, 100*time.Millisecond, func() error {
		_, err := c.Get(s.ctx, plugin)
		return err
	})
}

// noProbeFailures fails when kubelet reported a failed probe of a host pod that has just
// become Ready: a container that starts must not be probed before it can answer.
func (s *suite) noProbeFailures(namespace, pod string) {
	s.t.Helper()
	out := s.kubectl("-n", namespace, "get", "events", "--field-selector", "reason=Unhealthy,involvedObject.name="+pod,
		"-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}")
	if out != "" {
		s.t.Errorf("kubelet reported failed probes of the new host pod %s:\n%s", pod, out)
	}
}

// onlyWaitingProbeFailures fails when kubelet reported a failed probe of a replacement host
// pod other than readiness answered 503, or restarted it. Started while the pod it replaces
// still holds the state dir, the replacement listens at once: /healthz (startup and liveness
// probes) answers 200 and /readyz 503 until the old pod has saved its final snapshot and
// exited (docs/pluginhost.md, State). Whether it waited depends on how fast the old pod exits.
func (s *suite) onlyWaitingProbeFailures(namespace string, pod podIdentity) {
	s.t.Helper()
	out := s.kubectl("-n", namespace, "get", "events", "--field-selector", "reason=Unhealthy,involvedObject.name="+pod.name,
		"-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}")
	var other []string
	for _, m := range strings.Split(out, "\n") {
		if m != "" && m != "Readiness probe failed: HTTP probe failed with statuscode: 503" {
			other = append(other, m)
		}
	}
	if len(other) > 0 {
		s.t.Errorf("kubelet reported failed probes of the replacement host pod %s other than readiness 503 while it waits for the state dir:\n%s", pod.name, strings.Join(other, "\n"))
	}
	if pod.restarts != 0 {
		s.t.Errorf("the replacement host pod %s restarted %d times", pod.name, pod.restarts)
	}
	logs, err := s.tryKubectl("-n", namespace, "logs", pod.name)
	s.must(err)
	s.result("replacement host pod waited for the state dir (answering /healthz 200, /readyz 503)", fmt.Sprint(strings.Contains(logs, "Waiting for the state directory")))
}

// containerStats is one container's entry of kubelet's stats summary.
type containerStats struct {
	cpuNanos   uint64
	at         time.Time
	workingSet uint64
}

// kubeletStats reads kubelet's stats summary (through the API server's node proxy) for the
// first container of the pods whose name starts with prefix, in namespace.
func (s *suite) kubeletStats(namespace, prefix string) (containerStats, error) {
	var summary struct {
		Pods []struct {
			PodRef     struct{ Name, Namespace string } `json:"podRef"`
			Containers []struct {
				CPU struct {
					Time                 time.Time `json:"time"`
					UsageCoreNanoSeconds uint64    `json:"usageCoreNanoSeconds"`
				} `json:"cpu"`
				Memory struct {
					WorkingSetBytes uint64 `json:"workingSetBytes"`
				} `json:"memory"`
			} `json:"containers"`
		} `json:"pods"`
	}
	node, err := s.tryKubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}")
	if err != nil {
		return containerStats{}, err
	}
	out, err := s.tryKubectl("get", "--raw", "/api/v1/nodes/"+node+"/proxy/stats/summary")
	if err != nil {
		return containerStats{}, err
	}
	if err := json.Unmarshal([]byte(out), &summary); err != nil {
		return containerStats{}, err
	}
	for _, p := range summary.Pods {
		if p.PodRef.Namespace == namespace && strings.HasPrefix(p.PodRef.Name, prefix) && len(p.Containers) > 0 {
			c := p.Containers[0]
			return containerStats{cpuNanos: c.CPU.UsageCoreNanoSeconds, at: c.CPU.Time, workingSet: c.Memory.WorkingSetBytes}, nil
		}
	}
	return containerStats{}, fmt.Errorf("no stats for %s/%s* yet", namespace, prefix)
}

// testIdleUsage measures what host pods and the manager cost while nothing is asked of
// them, as kubelet reports it: the CPU time between two stats samples at least 60 s apart,
// and the working set, for all of them over the same window. Besides the samples' host (the
// operator's default 250 ms poll), a host polling every 100 ms runs the seed config for the
// measurement. Every host has converged, so the manager reads no /status meanwhile; kubelet
// probes the hosts (readiness every 5 s, liveness every 10 s).
func (s *suite) testIdleUsage() {
	s.kubectlStdin(fmt.Sprintf(seedConfig, indent(`{"plugins": [{"name": "idle-counter", "type": "counter"}]}`))+"---\n"+idleHost,
		"-n", SamplesNamespace, "apply", "-f", "-")
	s.kubectl("-n", SamplesNamespace, "wait", "--for=condition=Ready", "pluginhost/idle-100ms", "--timeout=3m")
	defer s.kubectl("-n", SamplesNamespace, "delete", "pluginhost", "idle-100ms", "--wait=true", "--timeout=2m")
	type target struct {
		what, namespace, prefix string
		first, last             containerStats
	}
	targets := []*target{
		{what: "idle host pod, poll 250 ms (the samples' `demo`)", namespace: SamplesNamespace, prefix: hostName + "-"},
		{what: "idle host pod, poll 100 ms", namespace: SamplesNamespace, prefix: "idle-100ms-"},
		{what: "idle manager pod", namespace: ReleaseNamespace, prefix: Release + "-controller-manager-"},
	}
	for _, tg := range targets {
		s.eventually("kubelet stats of "+tg.prefix, time.Minute, time.Second, func() (err error) {
			tg.first, err = s.kubeletStats(tg.namespace, tg.prefix)
			return err
		})
	}
	for _, tg := range targets {
		s.eventually("a second stats sample of "+tg.prefix+" 60 s later", 3*time.Minute, time.Second, func() (err error) {
			if tg.last, err = s.kubeletStats(tg.namespace, tg.prefix); err != nil {
				return err
			}
			if tg.last.at.Sub(tg.first.at) < 60*time.Second {
				return fmt.Errorf("samples %s apart", tg.last.at.Sub(tg.first.at))
			}
			return nil
		})
		window := tg.last.at.Sub(tg.first.at)
		cores := float64(tg.last.cpuNanos-tg.first.cpuNanos) / float64(window.Nanoseconds())
		s.result(tg.what+": CPU, working set", fmt.Sprintf("%.2f %% of a core over %s, %.1f MiB",
			100*cores, window.Round(time.Second), float64(tg.last.workingSet)/(1<<20)))
	}
}

// idleHost serves the seed-config ConfigMap with a 100 ms poll for testIdleUsage.
const idleHost = `apiVersion: plugins.hotreload.io/v1alpha1
kind: PluginHost
metadata:
  name: idle-100ms
spec:
  pluginSelector:
    matchLabels:
      e2e: idle
  configMapRef:
    name: seed-config
  pollInterval: 100ms
`

// checkHostUnchanged fails when the sample host's pod was replaced or restarted.
func (s *suite) checkHostUnchanged() {
	s.t.Helper()
	after := s.hostPod(SamplesNamespace, hostName)
	if after.name != s.hostBefore.name || after.uid != s.hostBefore.uid || after.restarts != s.hostBefore.restarts {
		s.t.Errorf("host pod changed: before %+v, after %+v; config changes must apply in place", s.hostBefore, after)
	}
}

const seededHost = `apiVersion: plugins.hotreload.io/v1alpha1
kind: PluginHost
metadata:
  name: seeded
spec:
  pluginSelector:
    matchLabels:
      e2e: seeded
  configMapRef:
    name: seed-config
  pollInterval: 250ms
`

const seedConfig = `apiVersion: v1
kind: ConfigMap
metadata:
  name: seed-config
  labels:
    plugins.hotreload.io/plugin-auth: "true"
data:
  config.json: |
%s
`

func indent(text string) string {
	return "    " + strings.ReplaceAll(strings.TrimSpace(text), "\n", "\n    ")
}

func (s *suite) testBadUserConfig() {
	good := `{"plugins": [{"name": "seed-counter", "type": "counter", "options": {"increment": 2}}]}`
	s.kubectlStdin(fmt.Sprintf(seedConfig, indent(good))+"---\n"+seededHost, "-n", SamplesNamespace, "apply", "-f", "-")
	s.kubectl("-n", SamplesNamespace, "wait", "--for=condition=Available", "pluginhost/seeded", "--timeout=3m")
	s.kubectl("-n", SamplesNamespace, "wait", "--for=condition=Degraded=False", "pluginhost/seeded", "--timeout=1m")
	svc, ns, port, err := ServiceFromURL(s.kubectl("-n", SamplesNamespace, "get", "pluginhost", "seeded", "-o", "jsonpath={.status.url}"))
	s.must(err)
	c := &Client{BaseURL: s.cluster.baseURL(ns, svc, port), OpsURL: s.cluster.opsURL(ns, "seeded")}
	s.waitServing(c, "seed-counter")
	good1 := s.kubectl("-n", SamplesNamespace, "get", "pluginhost", "seeded", "-o", "jsonpath={.status.configRevision}")
	s.expectValue(c.Increment, "seed-counter", 1, 2)

	s.step("Break the user ConfigMap (truncated JSON)")
	s.kubectlStdin(fmt.Sprintf(seedConfig, indent(`{"plugins": [`)), "-n", SamplesNamespace, "apply", "-f", "-")
	s.kubectl("-n", SamplesNamespace, "wait", "--for=condition=Degraded", "pluginhost/seeded", "--timeout=2m")
	reason := s.kubectl("-n", SamplesNamespace, "get", "pluginhost", "seeded", "-o", `jsonpath={.status.conditions[?(@.type=="Degraded")].reason}`)
	msg := s.kubectl("-n", SamplesNamespace, "get", "pluginhost", "seeded", "-o", `jsonpath={.status.conditions[?(@.type=="Degraded")].message}`)
	if reason != v1alpha1.ReasonConfigInvalid || !strings.Contains(msg, "seed-config") {
		s.t.Errorf("Degraded reason %q message %q: want %s naming seed-config", reason, msg, v1alpha1.ReasonConfigInvalid)
	}
	st, err := c.Status(s.ctx)
	s.must(err)
	if st.Revision != good1 {
		s.t.Errorf("the pod serves %s while the config is broken, want the last good %s", st.Revision, good1)
	}
	s.expectValue(c.Increment, "seed-counter", 1, 4)

	s.step("Fix it, in the seed's own style (a // comment), with a new increment")
	fixed := `{"plugins": [{"name": "seed-counter", "type": "counter",
  "options": {"increment": 3 // Changed from 2 to 3
  }}]}`
	s.kubectlStdin(fmt.Sprintf(seedConfig, indent(fixed)), "-n", SamplesNamespace, "apply", "-f", "-")
	s.kubectl("-n", SamplesNamespace, "wait", "--for=condition=Degraded=False", "pluginhost/seeded", "--timeout=2m")
	s.eventually("increment 3 served", time.Minute, 100*time.Millisecond, func() error {
		st, err := c.Status(s.ctx)
		if err != nil {
			return err
		}
		if got, ok := AppliedIncrement(st, "seed-counter"); !ok || got != 3 {
			return fmt.Errorf("applied increment %d (%v)", got, ok)
		}
		return nil
	})
	s.expectValue(c.Increment, "seed-counter", 1, 7)
	s.kubectl("-n", SamplesNamespace, "delete", "pluginhost", "seeded", "--wait=true", "--timeout=2m")
}

func (s *suite) testSecretRotation() {
	s.kubectl("-n", SamplesNamespace, "patch", "secret", "counter-2-api-key", "--type=merge", "-p", `{"stringData":{"api-key":"rotated"}}`)
	rotated := &Client{BaseURL: s.client.BaseURL, Headers: map[string]string{"X-API-Key": "rotated"}}
	start := time.Now()
	s.eventually("the rotated key accepted", 2*time.Minute, 100*time.Millisecond, func() error {
		_, err := rotated.Get(s.ctx, counter2)
		return err
	})
	s.result("Secret rotated → the running pod accepts the new key", time.Since(start).Round(time.Millisecond).String())
	if _, err := s.keyed.Get(s.ctx, counter2); err == nil || !strings.Contains(err.Error(), "401") {
		s.t.Errorf("the rotated-out key: %v, want 401", err)
	}
	s.expectValue(getter(rotated), counter2, 0, 10)
	s.kubectl("-n", SamplesNamespace, "patch", "secret", "counter-2-api-key", "--type=merge", "-p", `{"stringData":{"api-key":"`+apiKey+`"}}`)
	s.eventually("the original key accepted again", 2*time.Minute, 100*time.Millisecond, func() error {
		_, err := s.keyed.Get(s.ctx, counter2)
		return err
	})
	s.checkHostUnchanged()
}

func (s *suite) testManagerRestart() {
	inc := int64(7)
	s.step("Patch %s, then delete the manager pod at once", counter1)
	s.kubectl("-n", SamplesNamespace, "patch", "plugin", counter1, "--type=merge", "-p", fmt.Sprintf(`{"spec":{"options":{"increment":%d}}}`, inc))
	s.kubectl("-n", ReleaseNamespace, "delete", "pod", "-l", "control-plane=controller-manager", "--wait=false")
	s.kubectl("-n", ReleaseNamespace, "rollout", "status", "deployment/"+Release+"-controller-manager", "--timeout=3m")
	s.eventually("the change served after the manager's restart", reloadTimeout, 100*time.Millisecond, func() error {
		st, err := s.client.Status(s.ctx)
		if err != nil {
			return err
		}
		if got, _ := AppliedIncrement(st, counter1); got != inc {
			return fmt.Errorf("applied increment %d", got)
		}
		return nil
	})
	s.waitPluginReady(counter1, 2*time.Minute)
	s.value += inc
	s.expectValue(s.client.Increment, counter1, 1, s.value)
	s.checkHostUnchanged()
}

const statefulHost = `apiVersion: plugins.hotreload.io/v1alpha1
kind: PluginHost
metadata:
  name: stateful
spec:
  pluginSelector:
    matchLabels:
      e2e: stateful
  persistence:
    enabled: true
    size: 16Mi
    storageClassName: e2e-node-dir
    snapshotInterval: 1s
---
apiVersion: plugins.hotreload.io/v1alpha1
kind: Plugin
metadata:
  name: kept
  labels:
    e2e: stateful
spec:
  type: counter
  options:
    increment: 1
`

// A PersistentVolume on a node directory: the clusters of the suite have no provisioner.
const nodeDirPV = `apiVersion: v1
kind: PersistentVolume
metadata:
  name: e2e-stateful
spec:
  capacity:
    storage: 16Mi
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Delete
  storageClassName: e2e-node-dir
  hostPath:
    path: %s
    type: Directory
`

func (s *suite) testStateAcrossPods() {
	dir := "/var/tmp/plugin-operator-e2e-state"
	s.cluster.nodeDir(dir)
	s.kubectlStdin(fmt.Sprintf(nodeDirPV, dir), "apply", "-f", "-")
	s.t.Cleanup(func() {
		_, _ = s.tryKubectl("delete", "pv", "e2e-stateful", "--ignore-not-found", "--wait=false")
	})
	s.kubectlStdin(statefulHost, "-n", SamplesNamespace, "apply", "-f", "-")
	s.kubectl("-n", SamplesNamespace, "wait", "--for=condition=Available", "pluginhost/stateful", "--timeout=3m")
	s.kubectl("-n", SamplesNamespace, "wait", "--for=condition=Ready", "plugin/kept", "--timeout=2m")
	svc, ns, port, err := ServiceFromURL(s.kubectl("-n", SamplesNamespace, "get", "pluginhost", "stateful", "-o", "jsonpath={.status.url}"))
	s.must(err)
	c := &Client{BaseURL: s.cluster.baseURL(ns, svc, port)}
	s.waitServing(c, "kept")
	s.expectValue(c.Increment, "kept", 41, 41)
	first := s.hostPod(SamplesNamespace, "stateful")
	s.noProbeFailures(SamplesNamespace, first.name)

	s.step("Delete the host pod %s (graceful: the runtime saves its state)", first.name)
	start := time.Now()
	s.kubectl("-n", SamplesNamespace, "delete", "pod", first.name, "--wait=true", "--timeout=2m")
	s.eventually("a new host pod", 3*time.Minute, 500*time.Millisecond, func() error {
		out, err := s.tryKubectl("-n", SamplesNamespace, "get", "pods", "-l", v1alpha1.LabelHost+"=stateful",
			"-o", `jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		if err != nil {
			return err
		}
		f := strings.Fields(out)
		if len(f) != 2 || f[0] == first.name || f[1] != "True" {
			return fmt.Errorf("pods: %q", out)
		}
		return nil
	})
	s.waitServing(c, "kept")
	s.result("host pod deleted → its replacement serves the restored counter through the Service", time.Since(start).Round(time.Millisecond).String())
	s.expectValue(getter(c), "kept", 0, 41)
	s.onlyWaitingProbeFailures(SamplesNamespace, s.hostPod(SamplesNamespace, "stateful"))
	s.expectValue(c.Increment, "kept", 1, 42)
	s.kubectl("-n", SamplesNamespace, "delete", "pluginhost", "stateful", "--wait=true", "--timeout=2m")
	s.kubectl("-n", SamplesNamespace, "delete", "plugin", "kept", "--wait=true", "--timeout=1m")
}

func (s *suite) testGarbageCollection() {
	children := []string{"deployment/" + hostName, "service/" + hostName, "configmap/" + hostName + "-config"}
	for _, c := range children {
		s.kubectl("-n", SamplesNamespace, "get", c)
	}
	s.kubectl("-n", SamplesNamespace, "delete", "pluginhost", hostName, "--wait=true", "--timeout=2m")
	s.eventually("children collected", 2*time.Minute, 500*time.Millisecond, func() error {
		var left []string
		for _, c := range children {
			if _, err := s.tryKubectl("-n", SamplesNamespace, "get", c); err == nil {
				left = append(left, c)
			}
		}
		out, err := s.tryKubectl("-n", SamplesNamespace, "get", "pods", "-l", v1alpha1.LabelHost+"="+hostName, "-o", "name")
		if err != nil {
			return err
		}
		left = append(left, strings.Fields(out)...)
		if len(left) > 0 {
			return fmt.Errorf("still there: %v", left)
		}
		return nil
	})
	s.kubectl("delete", "namespace", SamplesNamespace, "--wait=true", "--timeout=3m")
}

func (s *suite) testHelmUninstall() {
	s.helm("uninstall", Release, "--namespace", ReleaseNamespace, "--wait", "--timeout", "3m")
	// The chart keeps its CRDs on uninstall (crds.keep, the default: deleting them deletes
	// every Plugin and PluginHost of the cluster); deleting them is the documented manual step.
	s.kubectl("delete", "crd", "plugins.plugins.hotreload.io", "pluginhosts.plugins.hotreload.io", "--wait=true")
	s.kubectl("delete", "namespace", ReleaseNamespace, "--wait=true", "--timeout=3m")
	s.waitGone("helm uninstall")
}

// portForward forwards a free local port to the target and returns it; the forward ends
// with the test.
func (s *suite) portForward(namespace, target string, port int) int {
	s.t.Helper()
	cmd := exec.CommandContext(s.ctx, s.cfg.Kubectl, "--kubeconfig", s.kubeconfig, "-n", namespace,
		"port-forward", target, fmt.Sprintf(":%d", port))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	type result struct {
		port int
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		p, err := WaitPortForward(stdout)
		ch <- result{p, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			s.t.Fatalf("%v; stderr: %s", r.err, stderr.String())
		}
		return r.port
	case <-time.After(30 * time.Second):
		s.t.Fatalf("kubectl port-forward %s reported no port within 30s; stderr: %s", target, stderr.String())
	}
	return 0
}

type podIdentity struct {
	name, uid, revision string
	restarts            int32
}

// hostPod returns the one live pod of a PluginHost.
func (s *suite) hostPod(namespace, host string) podIdentity {
	s.t.Helper()
	var list struct {
		Items []struct {
			Metadata struct {
				Name, UID         string
				Annotations       map[string]string
				DeletionTimestamp *string `json:"deletionTimestamp"`
			}
			Status struct {
				ContainerStatuses []struct{ RestartCount int32 } `json:"containerStatuses"`
			}
		}
	}
	out := s.kubectl("-n", namespace, "get", "pods", "-l", v1alpha1.LabelHost+"="+host, "-o", "json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		s.t.Fatal(err)
	}
	var ids []podIdentity
	for _, p := range list.Items {
		if p.Metadata.DeletionTimestamp != nil {
			continue
		}
		id := podIdentity{name: p.Metadata.Name, uid: p.Metadata.UID, revision: p.Metadata.Annotations[v1alpha1.ConfigRevisionAnnotation]}
		for _, cs := range p.Status.ContainerStatuses {
			id.restarts += cs.RestartCount
		}
		ids = append(ids, id)
	}
	if len(ids) != 1 {
		s.t.Fatalf("PluginHost %s/%s has %d live pods, want 1", namespace, host, len(ids))
	}
	return ids[0]
}

// waitPluginReady waits until the Plugin's Ready condition is True for its current
// generation (a Ready=True left from the previous generation does not count).
func (s *suite) waitPluginReady(plugin string, timeout time.Duration) {
	s.t.Helper()
	jsonpath := `jsonpath={.metadata.generation} {.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].observedGeneration} {.status.conditions[?(@.type=="Ready")].reason}`
	s.eventually("Plugin "+plugin+" Ready for its generation", timeout, 50*time.Millisecond, func() error {
		out, err := s.tryKubectl("-n", SamplesNamespace, "get", "plugin", plugin, "-o", jsonpath)
		if err != nil {
			return err
		}
		f := strings.Fields(out)
		if len(f) >= 3 && f[1] == "True" && f[2] == f[0] {
			return nil
		}
		return fmt.Errorf("generation, Ready, its observedGeneration, reason: %q", out)
	})
}

// waitNewLeader waits until a manager pod started with wantArg (and not being deleted)
// holds the leader Lease, so that measurements after `helm upgrade` neither include a leader
// hand-over nor run against the old manager.
func (s *suite) waitNewLeader(wantArg string) {
	s.t.Helper()
	s.eventually("a manager pod with "+wantArg+" leads", 3*time.Minute, time.Second, func() error {
		var pods []string
		var list struct {
			Items []struct {
				Metadata struct {
					Name              string
					DeletionTimestamp *string `json:"deletionTimestamp"`
				}
				Spec struct {
					Containers []struct {
						Name string
						Args []string
					}
				}
			}
		}
		out := s.kubectl("-n", ReleaseNamespace, "get", "pods", "-l", "control-plane=controller-manager", "-o", "json")
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return err
		}
		for _, p := range list.Items {
			for _, c := range p.Spec.Containers {
				if c.Name == "manager" && p.Metadata.DeletionTimestamp == nil && slices.Contains(c.Args, wantArg) {
					pods = append(pods, p.Metadata.Name)
				}
			}
		}
		holder, err := s.tryKubectl("-n", ReleaseNamespace, "get", "lease",
			"plugin-operator.plugins.hotreload.io", "-o", "jsonpath={.spec.holderIdentity}")
		for _, p := range pods {
			if err == nil && strings.HasPrefix(holder, p+"_") {
				s.t.Logf("manager pod %s (%s) is the leader", p, wantArg)
				return nil
			}
		}
		return fmt.Errorf("pods %q, lease holder %q (%v)", pods, holder, err)
	})
}

// dump logs what a person debugging a failure needs: objects, descriptions, events, logs.
func (s *suite) dump() {
	s.dumped = true
	s.t.Log("=== The suite failed; state of the cluster:")
	out, err := s.tryKubectl("get", "nodes,pv", "-o", "wide")
	s.t.Logf("$ kubectl get nodes,pv\n%s%v", out, errOrEmpty(err))
	for _, ns := range []string{ReleaseNamespace, SamplesNamespace} {
		for _, args := range [][]string{
			{"get", "all,plugins,pluginhosts,configmaps,leases,pvc", "-o", "wide"},
			{"describe", "pluginhosts,plugins,deployments,pods"},
			{"get", "events", "--sort-by=.lastTimestamp"},
			{"logs", "-l", "control-plane=controller-manager", "--all-containers", "--prefix", "--tail=300"},
			{"logs", "-l", v1alpha1.LabelHost, "--all-containers", "--prefix", "--tail=300"},
			{"logs", "-l", v1alpha1.LabelHost, "--all-containers", "--prefix", "--previous", "--tail=100"},
		} {
			if ns == ReleaseNamespace && slices.Contains(args, v1alpha1.LabelHost) {
				continue
			}
			out, err := s.tryKubectl(append([]string{"-n", ns}, args...)...)
			s.t.Logf("$ kubectl -n %s %s\n%s%v", ns, strings.Join(args, " "), out, errOrEmpty(err))
		}
	}
}

func errOrEmpty(err error) any {
	if err == nil {
		return ""
	}
	return err
}

func (s *suite) must(err error) {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
}

// counterOp is Client.Increment, or Client.Get through getter.
type counterOp func(ctx context.Context, plugin string, value int64) (int64, error)

func getter(c *Client) counterOp {
	return func(ctx context.Context, plugin string, _ int64) (int64, error) { return c.Get(ctx, plugin) }
}

// expectValue calls op(plugin, arg) and checks the counter value it returns.
func (s *suite) expectValue(op counterOp, plugin string, arg, want int64) {
	s.t.Helper()
	got, err := op(s.ctx, plugin, arg)
	if err != nil {
		s.t.Fatal(err)
	}
	if got != want {
		s.t.Fatalf("%s: value %d, want %d", plugin, got, want)
	}
}

// kindCluster is a kind cluster (Docker): the image is built with docker and loaded with
// `kind load`, Services are reached through `kubectl port-forward`.
type kindCluster struct {
	s          *suite
	kubeconfig string
}

func (k *kindCluster) up() string {
	s := k.s
	s.t.Helper()
	clusters := s.run(s.cfg.Kind, nil, "get", "clusters")
	if slices.Contains(strings.Fields(clusters), s.cfg.Cluster) {
		s.step("Reuse the kind cluster %s", s.cfg.Cluster)
		s.run(s.cfg.Kind, nil, "export", "kubeconfig", "--name", s.cfg.Cluster, "--kubeconfig", k.kubeconfig)
	} else {
		s.step("Create the kind cluster %s", s.cfg.Cluster)
		args := []string{"create", "cluster", "--name", s.cfg.Cluster, "--kubeconfig", k.kubeconfig, "--wait", "3m"}
		if s.cfg.NodeImage != "" {
			args = append(args, "--image", s.cfg.NodeImage)
		}
		s.run(s.cfg.Kind, nil, args...)
	}
	s.t.Cleanup(func() {
		if s.cfg.KeepCluster {
			s.t.Logf("E2E_KEEP_CLUSTER is set: the cluster stays. kubectl --kubeconfig %s …; delete it with: %s delete cluster --name %s",
				k.kubeconfig, s.cfg.Kind, s.cfg.Cluster)
			return
		}
		if _, err := s.tryRun(s.cfg.Kind, nil, "", "delete", "cluster", "--name", s.cfg.Cluster); err != nil {
			s.t.Errorf("deleting the kind cluster: %v", err)
		}
	})
	return k.kubeconfig
}

func (k *kindCluster) loadImage() {
	s := k.s
	s.step("Build the image %s with %s and load it into the kind node", s.cfg.Image, s.cfg.ContainerTool)
	s.run(s.cfg.ContainerTool, []string{"DOCKER_BUILDKIT=1"}, "build", "-t", s.cfg.Image, s.cfg.RepoRoot)
	s.run(s.cfg.Kind, nil, "load", "docker-image", s.cfg.Image, "--name", s.cfg.Cluster)
	s.step("Load the example host image %s (%s) into the kind node", ExampleImage, s.cfg.ExampleArchive)
	s.run(s.cfg.Kind, nil, "load", "image-archive", s.cfg.ExampleArchive, "--name", s.cfg.Cluster)
}

func (k *kindCluster) baseURL(namespace, service string, port int) string {
	return fmt.Sprintf("http://127.0.0.1:%d", k.s.portForward(namespace, "service/"+service, port))
}

func (k *kindCluster) opsURL(namespace, host string) string {
	return fmt.Sprintf("http://127.0.0.1:%d", k.s.portForward(namespace, "deployment/"+host, controllers.OpsPort))
}

// projectedAt: the kind node's files are inside its container; not measured there.
func (k *kindCluster) projectedAt(string, string, string) (time.Time, bool, error) {
	return time.Time{}, false, errNoNodeFiles
}

// errNoNodeFiles is projectedAt's where the node's files are out of the test's reach.
var errNoNodeFiles = errors.New("the node's files cannot be read from here")

func (k *kindCluster) nodeDir(path string) {
	s := k.s
	s.run(s.cfg.ContainerTool, nil, "exec", s.cfg.Cluster+"-control-plane", "sh", "-c",
		fmt.Sprintf("mkdir -p %[1]s && chown 65532:65532 %[1]s", path))
}

// localCluster is the real single-node cluster of hack/cluster.sh on this machine: the
// image is a docker-archive (make image) imported into its containerd, and Services are
// reached at their ClusterIP, through kube-proxy, from this machine. Its teardown must leave
// the machine as it found it: the suite compares the two.
type localCluster struct {
	s      *suite
	before string
	// dir is the cluster's directory (CLUSTER_DIR of hack/cluster.sh env).
	dir string
}

func (l *localCluster) script(env []string, args ...string) string {
	s := l.s
	s.t.Helper()
	env = append(env, "K8S_BIN_DIR="+s.cfg.K8sBinDir, "PAUSE_IMAGE_TAR="+s.cfg.PauseArchive)
	return s.run(filepath.Join(s.cfg.RepoRoot, ClusterScript), env, args...)
}

func (l *localCluster) up() string {
	s := l.s
	s.t.Helper()
	s.step("hack/cluster.sh: tear down a stale run, install what is missing, record the machine")
	l.script(nil, "down")
	l.script(nil, "prepare")
	l.before = l.script(nil, "snapshot")
	start := time.Now()
	s.t.Cleanup(func() {
		if s.cfg.KeepCluster {
			s.t.Logf("E2E_KEEP_CLUSTER is set: the cluster stays (`make cluster-down` stops it): %s",
				strings.TrimSpace(l.script(nil, "env")))
			return
		}
		l.script(nil, "down")
		if diff := SnapshotDiff(l.before, l.script(nil, "snapshot")); diff != "" {
			s.t.Errorf("hack/cluster.sh down did not restore the machine (- before up, + after down):\n%s", diff)
		}
	})
	l.script(nil, "up")
	s.result("`hack/cluster.sh up` → node Ready", time.Since(start).Round(time.Millisecond).String())
	kubeconfig := ""
	for _, line := range strings.Split(l.script(nil, "env"), "\n") {
		if v, ok := strings.CutPrefix(line, "export KUBECONFIG="); ok {
			kubeconfig = v
		}
		if v, ok := strings.CutPrefix(line, "export CLUSTER_DIR="); ok {
			l.dir = v
		}
	}
	if kubeconfig == "" || l.dir == "" {
		s.t.Fatal("hack/cluster.sh env printed no KUBECONFIG or CLUSTER_DIR")
	}
	return kubeconfig
}

func (l *localCluster) loadImage() {
	s := l.s
	s.step("Import %s (%s) and %s (%s) into the node's containerd", s.cfg.ImageArchive, s.cfg.Image, s.cfg.ExampleArchive, ExampleImage)
	l.script(nil, "load", s.cfg.ImageArchive, s.cfg.ExampleArchive)
}

func (l *localCluster) baseURL(namespace, service string, port int) string {
	ip := l.s.kubectl("-n", namespace, "get", "service", service, "-o", "jsonpath={.spec.clusterIP}")
	return fmt.Sprintf("http://%s:%d", ip, port)
}

// opsURL is the pod's IP: this process runs on the node, which reaches pod IPs.
func (l *localCluster) opsURL(namespace, host string) string {
	ip := l.s.kubectl("-n", namespace, "get", "pods", "-l", v1alpha1.LabelHost+"="+host,
		"--field-selector=status.phase=Running", "-o", "jsonpath={.items[0].status.podIP}")
	return "http://" + net.JoinHostPort(ip, strconv.Itoa(controllers.OpsPort))
}

func (l *localCluster) nodeDir(path string) {
	s := l.s
	s.must(os.MkdirAll(path, 0o700))
	s.must(os.Chown(path, 65532, 65532))
	s.t.Cleanup(func() { _ = os.RemoveAll(path) })
}

// projectedAt reads the volume in kubelet's root dir (hack/cluster.sh runs kubelet with
// --root-dir=$CLUSTER_DIR/kubelet/root). kubelet writes each update of a ConfigMap volume
// into a new timestamped directory and swaps it in by creating a ..data_tmp link to it and
// renaming that over ..data, so the link's mtime is when the pod could first read it.
func (l *localCluster) projectedAt(_, podUID, rev string) (time.Time, bool, error) {
	vol := filepath.Join(l.dir, "kubelet", "root", "pods", podUID, "volumes", "kubernetes.io~configmap", "config")
	fi, err := os.Lstat(filepath.Join(vol, "..data"))
	if err != nil {
		return time.Time{}, false, err
	}
	b, err := os.ReadFile(filepath.Join(vol, "..data", controllers.ConfigFileName))
	if err != nil {
		return time.Time{}, false, err
	}
	// The link is read again after the file: a swap between the first stat and the read
	// would pair the new content with the previous link's time (seen as a projection 1.1 s
	// before its edit while the test polled). Then the next poll tells.
	again, err := os.Lstat(filepath.Join(vol, "..data"))
	if err != nil {
		return time.Time{}, false, err
	}
	if pluginconfig.Revision(b) != rev || !again.ModTime().Equal(fi.ModTime()) {
		return time.Time{}, false, nil
	}
	return fi.ModTime(), true, nil
}
