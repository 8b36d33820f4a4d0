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
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

const (
	hostName = "demo"      // the sample PluginHost
	counter1 = "counter-1" // sample Plugin, increment 1, no auth
	counter2 = "counter-2" // sample Plugin, increment 10, api-key from a Secret
	apiKey   = "change-me" // the sample Secret's api-key

	// reloadTimeout bounds one config change: without the nudge kubelet refreshes a
	// ConfigMap volume at its periodic pod sync (about a minute, plus its cache TTL).
	reloadTimeout = 3 * time.Minute
	// Config changes measured with and without the nudge.
	samplesWithNudge    = 3
	samplesWithoutNudge = 2
)

// TestKind is the whole suite; its steps depend on each other, so it is one test.
func TestKind(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cfg := ConfigFromEnv(os.Getenv, root)
	// Commands end 30s before `go test -timeout`, which leaves time to dump and clean up.
	deadline := time.Now().Add(time.Hour)
	if dl, ok := t.Deadline(); ok {
		deadline = dl.Add(-30 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancel) // registered first, so it runs after the dump and the cluster deletion
	if err := Prerequisites(cfg, exec.LookPath, func() error { return DockerInfo(ctx, cfg.ContainerTool) }); err != nil {
		t.Skipf("skipping the kind e2e suite: %v", err)
	}

	s := &suite{t: t, ctx: ctx, cfg: cfg, kubeconfig: filepath.Join(t.TempDir(), "kubeconfig")}
	s.createCluster()
	// Cleanups run last-registered first: dump on failure, then delete the cluster.
	t.Cleanup(func() {
		if t.Failed() {
			s.dump()
		}
	})

	s.step("Build the image %s and load it into the kind node", cfg.Image)
	s.run(cfg.ContainerTool, []string{"DOCKER_BUILDKIT=1"}, "build", "-t", cfg.Image, root)
	s.run(cfg.Kind, nil, "load", "docker-image", cfg.Image, "--name", cfg.Cluster)

	s.step("helm install the chart (pod nudge on)")
	s.helm(HelmInstallArgs(root, cfg.Image)...)
	s.kubectl("-n", ReleaseNamespace, "rollout", "status", "deployment/"+Release+"-controller-manager", "--timeout=3m")

	s.step("Apply config/samples into %s, which enforces the restricted Pod Security Standard", SamplesNamespace)
	s.kubectlStdin(fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
`, SamplesNamespace), "apply", "-f", "-")
	s.kubectl("-n", SamplesNamespace, "apply", "-k", filepath.Join(root, "config", "samples"))
	s.kubectl("-n", SamplesNamespace, "wait", "--for=condition=Available", "pluginhost/"+hostName, "--timeout=5m")
	s.kubectl("-n", SamplesNamespace, "wait", "--for=condition=Ready", "plugin", "--all", "--timeout=3m")

	svc, ns, port, err := ServiceFromURL(s.kubectl("-n", SamplesNamespace, "get", "pluginhost", hostName, "-o", "jsonpath={.status.url}"))
	if err != nil {
		t.Fatal(err)
	}
	local := s.portForward(ns, "service/"+svc, port)
	c := &Client{BaseURL: fmt.Sprintf("http://127.0.0.1:%d", local)}
	keyed := &Client{BaseURL: c.BaseURL, Headers: map[string]string{"X-API-Key": apiKey}}
	before := s.hostPod()
	t.Logf("host pod %s (uid %s), restarts %d", before.name, before.uid, before.restarts)

	s.step("Use the counter API through the port-forward (the seed's walkthrough)")
	s.must(c.Reset(ctx, counter1))
	s.expectValue(c.Increment, counter1, 5, 5)
	s.expectValue(getter(c), counter1, 0, 5)
	if _, err := c.Increment(ctx, counter2, 1); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("increment of %s without its API key: %v, want 401", counter2, err)
	}
	s.must(keyed.Reset(ctx, counter2))
	s.expectValue(keyed.Increment, counter2, 1, 10)
	value := int64(5) // counter-1's value from here on: checked after every change

	s.step("Change %s's increment %d times with the pod nudge on", counter1, samplesWithNudge)
	var withNudge, withoutNudge []time.Duration
	for i := range samplesWithNudge {
		inc := int64(2 + i)
		withNudge = append(withNudge, s.reload(c, counter1, inc, true))
		value += inc
		s.expectValue(c.Increment, counter1, 1, value)
	}

	s.step("helm upgrade --set podNudge=false")
	s.helm(HelmInstallArgs(root, cfg.Image, "--set", "podNudge=false")...)
	s.kubectl("-n", ReleaseNamespace, "rollout", "status", "deployment/"+Release+"-controller-manager", "--timeout=3m")
	s.waitNewLeader("--pod-nudge=false")

	s.step("Change %s's increment %d times with the pod nudge off", counter1, samplesWithoutNudge)
	for i := range samplesWithoutNudge {
		inc := int64(10 + i)
		withoutNudge = append(withoutNudge, s.reload(c, counter1, inc, false))
		value += inc
		s.expectValue(c.Increment, counter1, 1, value)
	}

	s.step("Check that the host pod never restarted")
	after := s.hostPod()
	if after.name != before.name || after.uid != before.uid || after.restarts != before.restarts {
		t.Errorf("host pod changed: before %+v, after %+v; config changes must apply in place", before, after)
	}
	s.expectValue(getter(keyed), counter2, 0, 10)

	t.Logf("Time from `kubectl patch plugin` until the pod serves the new increment:\n"+
		"  pod nudge on:  %s\n  pod nudge off: %s", Summarize(withNudge), Summarize(withoutNudge))
}

type suite struct {
	t          *testing.T
	ctx        context.Context
	cfg        Config
	kubeconfig string
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

// createCluster creates the kind cluster, or reuses one of that name, and registers its
// deletion (unless E2E_KEEP_CLUSTER).
func (s *suite) createCluster() {
	s.t.Helper()
	clusters := s.run(s.cfg.Kind, nil, "get", "clusters")
	exists := false
	for _, c := range strings.Fields(clusters) {
		exists = exists || c == s.cfg.Cluster
	}
	if exists {
		s.step("Reuse the kind cluster %s", s.cfg.Cluster)
		s.run(s.cfg.Kind, nil, "export", "kubeconfig", "--name", s.cfg.Cluster, "--kubeconfig", s.kubeconfig)
		// A clean slate for the samples; the chart is upgraded in place.
		s.kubectl("delete", "namespace", SamplesNamespace, "--ignore-not-found", "--wait", "--timeout=2m")
	} else {
		s.step("Create the kind cluster %s", s.cfg.Cluster)
		args := []string{"create", "cluster", "--name", s.cfg.Cluster, "--kubeconfig", s.kubeconfig, "--wait", "3m"}
		if s.cfg.NodeImage != "" {
			args = append(args, "--image", s.cfg.NodeImage)
		}
		s.run(s.cfg.Kind, nil, args...)
	}
	s.t.Cleanup(func() {
		if s.cfg.KeepCluster {
			s.t.Logf("E2E_KEEP_CLUSTER is set: the cluster stays. kubectl --kubeconfig %s …; delete it with: %s delete cluster --name %s",
				s.kubeconfig, s.cfg.Kind, s.cfg.Cluster)
			return
		}
		if _, err := s.tryRun(s.cfg.Kind, nil, "", "delete", "cluster", "--name", s.cfg.Cluster); err != nil {
			s.t.Errorf("deleting the kind cluster: %v", err)
		}
	})
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

// hostPod returns the one pod of the sample PluginHost.
func (s *suite) hostPod() podIdentity {
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
	out := s.kubectl("-n", SamplesNamespace, "get", "pods", "-l", v1alpha1.LabelHost+"="+hostName, "-o", "json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		s.t.Fatal(err)
	}
	if len(list.Items) != 1 {
		s.t.Fatalf("PluginHost %s has %d pods, want 1", hostName, len(list.Items))
	}
	p := list.Items[0]
	id := podIdentity{name: p.Metadata.Name, uid: p.Metadata.UID, revision: p.Metadata.Annotations[v1alpha1.ConfigRevisionAnnotation]}
	for _, cs := range p.Status.ContainerStatuses {
		id.restarts += cs.RestartCount
	}
	return id
}

// reload changes options.increment of a Plugin and returns the time until the pod's /status
// shows it applied. It also checks that the PluginHost reports the pod at the new revision,
// that the Plugin becomes Ready for its new generation, and whether the pod was annotated
// (nudged) with the revision.
func (s *suite) reload(c *Client, plugin string, increment int64, nudge bool) time.Duration {
	s.t.Helper()
	patch := fmt.Sprintf(`{"spec":{"options":{"increment":%d}}}`, increment)
	start := time.Now()
	s.kubectl("-n", SamplesNamespace, "patch", "plugin", plugin, "--type=merge", "-p", patch)
	var took time.Duration
	for took == 0 {
		if time.Since(start) > reloadTimeout {
			s.t.Fatalf("the host did not apply %s increment=%d within %s", plugin, increment, reloadTimeout)
		}
		if st, err := c.Status(s.ctx); err == nil {
			if got, ok := AppliedIncrement(st, plugin); ok && got == increment {
				took = time.Since(start)
				break
			}
		} else {
			s.t.Logf("GET /status: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Logf("%s increment=%d served after %s (pod nudge %v)", plugin, increment, took.Round(time.Millisecond), nudge)

	s.waitPluginReady(plugin, time.Minute)
	rev := s.kubectl("-n", SamplesNamespace, "get", "pluginhost", hostName, "-o", "jsonpath={.status.configRevision}")
	deadline := time.Now().Add(time.Minute)
	for {
		applied := s.kubectl("-n", SamplesNamespace, "get", "pluginhost", hostName, "-o", "jsonpath={.status.pods[0].appliedRevision}")
		if applied == rev {
			break
		}
		if time.Now().After(deadline) {
			s.t.Errorf("PluginHost %s reports the pod at revision %q, want %q", hostName, applied, rev)
			break
		}
		time.Sleep(time.Second)
	}
	if annotated := s.hostPod().revision; (annotated == rev) != nudge {
		s.t.Errorf("pod nudge %v, yet the pod's %s annotation is %q with desired revision %q", nudge, v1alpha1.ConfigRevisionAnnotation, annotated, rev)
	}
	return took
}

// waitPluginReady waits until the Plugin's Ready condition is True for its current
// generation (a Ready=True left from the previous generation does not count).
func (s *suite) waitPluginReady(plugin string, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var p struct {
			Metadata struct{ Generation int64 }
			Status   struct {
				Conditions []struct {
					Type, Status       string
					ObservedGeneration int64 `json:"observedGeneration"`
					Reason, Message    string
				}
			}
		}
		if err := json.Unmarshal([]byte(s.kubectl("-n", SamplesNamespace, "get", "plugin", plugin, "-o", "json")), &p); err != nil {
			s.t.Fatal(err)
		}
		for _, c := range p.Status.Conditions {
			if c.Type != "Ready" {
				continue
			}
			if c.Status == "True" && c.ObservedGeneration == p.Metadata.Generation {
				return
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("Plugin %s is not Ready for generation %d within %s: Ready=%s for generation %d (%s: %s)",
					plugin, p.Metadata.Generation, timeout, c.Status, c.ObservedGeneration, c.Reason, c.Message)
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("Plugin %s has no Ready condition after %s", plugin, timeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitNewLeader waits until a manager pod started with wantArg (and not being deleted)
// holds the leader Lease, so that measurements after `helm upgrade` neither include a leader
// hand-over nor run against the old manager.
func (s *suite) waitNewLeader(wantArg string) {
	s.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
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
			s.t.Fatal(err)
		}
		for _, p := range list.Items {
			for _, c := range p.Spec.Containers {
				if c.Name == "manager" && p.Metadata.DeletionTimestamp == nil && slicesContain(c.Args, wantArg) {
					pods = append(pods, p.Metadata.Name)
				}
			}
		}
		holder, err := s.tryRun(s.cfg.Kubectl, nil, "", "--kubeconfig", s.kubeconfig, "-n", ReleaseNamespace, "get", "lease",
			"plugin-operator.plugins.hotreload.io", "-o", "jsonpath={.spec.holderIdentity}")
		for _, p := range pods {
			if err == nil && strings.HasPrefix(holder, p+"_") {
				s.t.Logf("manager pod %s (%s) is the leader", p, wantArg)
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no manager pod with %s (%q) became leader within 2m (holder %q, %v)", wantArg, pods, holder, err)
		}
		time.Sleep(time.Second)
	}
}

// dump logs what a person debugging a failure needs: objects, descriptions, events, logs.
func (s *suite) dump() {
	s.t.Log("=== The suite failed; state of the cluster:")
	for _, ns := range []string{ReleaseNamespace, SamplesNamespace} {
		for _, args := range [][]string{
			{"get", "all,plugins,pluginhosts,configmaps,leases", "-o", "wide"},
			{"describe", "pluginhosts,plugins,deployments,pods"},
			{"get", "events", "--sort-by=.lastTimestamp"},
			{"logs", "-l", "control-plane=controller-manager", "--all-containers", "--prefix", "--tail=300"},
			{"logs", "-l", v1alpha1.LabelHost, "--all-containers", "--prefix", "--tail=300"},
			{"logs", "-l", v1alpha1.LabelHost, "--all-containers", "--prefix", "--previous", "--tail=100"},
		} {
			if ns == ReleaseNamespace && slicesContain(args, v1alpha1.LabelHost) {
				continue
			}
			full := append([]string{"--kubeconfig", s.kubeconfig, "-n", ns}, args...)
			out, err := s.tryRun(s.cfg.Kubectl, nil, "", full...)
			s.t.Logf("$ kubectl -n %s %s\n%s%v", ns, strings.Join(args, " "), out, errOrEmpty(err))
		}
	}
}

func slicesContain(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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
