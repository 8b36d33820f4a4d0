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

// Package local holds the local end-to-end tests: the whole system on this machine with real
// parts only (internal/testing/localcluster) — a real kube-apiserver and etcd with the CRDs, the real
// manager code, the real pluginhost binary as each host pod's process, its config directory
// projected from the generated ConfigMap exactly as kubelet writes it — driven with the real
// kubectl. They run in `make test`, which builds the control plane first.
package local

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/hostapi"
	"github.com/hotreload/plugin-operator/internal/testing/localcluster"
	"github.com/hotreload/plugin-operator/internal/testing/testenv"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// cluster is the one local cluster of the package, started in TestMain.
var cluster *localcluster.Cluster

// Namespaces with their own kubelet timing (see TestEndToEndLatencyWithoutNudge).
const (
	nudgeOffNamespace  = "latency-no-nudge"
	nudgeOffSyncPeriod = 2 * time.Second
)

// wait bounds every wait of these tests: long enough for a slow, loaded machine (-race on
// two cores), so that it bounds a hang and measures nothing.
const wait = 90 * time.Second

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run() // unit tests only: every test here skips
	}
	assets := os.Getenv(testenv.AssetsEnv)
	if assets == "" {
		fmt.Fprintln(os.Stderr, "FAIL: KUBEBUILDER_ASSETS is not set: the local end-to-end tests need kube-apiserver, etcd and kubectl. "+
			"Run them with `make test`, or build the binaries with `make k8s-binaries` and set "+
			"KUBEBUILDER_ASSETS=$PWD/bin/k8s/<version>-<os>-<arch>.")
		return 1
	}
	if fi, err := os.Stat(filepath.Join(assets, "kubectl")); err != nil || fi.IsDir() {
		fmt.Fprintf(os.Stderr, "FAIL: KUBEBUILDER_ASSETS=%s has no kubectl (%v): run `make k8s-binaries`.\n", assets, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	var err error
	cluster, err = localcluster.Start(ctx, localcluster.Options{
		// Kubelet's default periodic re-sync (60–90 s) everywhere but in one namespace: with the
		// nudge on, every change below reaches the pods through the pod update.
		SyncPeriodFor: func(ns string) time.Duration {
			if ns == nudgeOffNamespace || strings.HasPrefix(ns, nudgeOffNamespace+"-") { // namespace()'s later runs
				return nudgeOffSyncPeriod
			}
			return 0
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting the local cluster: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "local cluster started in %s (work dir %s)\n", time.Since(start).Round(time.Millisecond), cluster.WorkDir)
	code := m.Run()
	if err := cluster.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: stopping the local cluster: %v\n", err)
		return 1
	}
	return code
}

// kubectl runs the real kubectl against the cluster from the repository root, with stdin.
func kubectl(t testing.TB, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, cluster.Kubectl, args...)
	cmd.Dir = cluster.RepoRoot
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// mustKubectl runs kubectl and fails the test if it fails.
func mustKubectl(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := kubectl(t, stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// namespace creates a namespace with kubectl and, if the test fails, dumps its Plugins,
// PluginHosts, pods, the hosts' logs and the manager's and agent's logs. Every test calls it
// first; under -short (no cluster) it skips the test.
func namespace(t testing.TB, name string) string {
	t.Helper()
	if cluster == nil {
		t.Skip("local end-to-end test: not run under -short")
	}
	// A fresh namespace for each run of a test (go test -count=N): a test must not find the
	// objects, pods and state an earlier run left behind.
	namespaceRunsMu.Lock()
	namespaceRuns[name]++
	if n := namespaceRuns[name]; n > 1 {
		name = fmt.Sprintf("%s-%d", name, n)
	}
	namespaceRunsMu.Unlock()
	if _, _, err := kubectl(t, "", "get", "namespace", name); err != nil {
		mustKubectl(t, "", "create", "namespace", name)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dump(t, name)
		}
	})
	return name
}

var (
	namespaceRunsMu sync.Mutex
	namespaceRuns   = map[string]int{}
)

func dump(t testing.TB, ns string) {
	t.Helper()
	out, errOut, _ := kubectl(t, "", "get", "plugins,pluginhosts", "-n", ns, "-o", "yaml")
	t.Logf("Plugins and PluginHosts of %s:\n%s%s", ns, out, errOut)
	out, errOut, _ = kubectl(t, "", "get", "pods,deployments,configmaps,secrets", "-n", ns, "-o", "wide")
	t.Logf("Objects of %s:\n%s%s", ns, out, errOut)
	entries, _ := os.ReadDir(filepath.Join(cluster.WorkDir, ns))
	for _, e := range entries {
		t.Logf("pluginhost log of %s/%s (tail):\n%s", ns, e.Name(), tail(filepath.Join(cluster.WorkDir, ns, e.Name(), localcluster.LogFileName), 60))
	}
	t.Logf("manager log (tail):\n%s", tail(cluster.ManagerLog, 120))
	t.Logf("node agent log (tail):\n%s", tail(cluster.AgentLog, 60))
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitHost waits for the process of a PluginHost's pod to be ready.
func waitHost(t testing.TB, ns, host string) localcluster.Host {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	h, err := cluster.WaitForHost(ctx, ns, host)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// answer is a response of the runtime's plugin API.
type answer struct {
	Code  int
	Value int64
	Body  string
}

// call sends one request to a plugin of the host at url.
func call(t testing.TB, url, method, plugin, op, body string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url+"/plugins/"+plugin+"/"+op, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{Code: resp.StatusCode, Body: string(b)}
	var v struct{ Value int64 }
	_ = json.Unmarshal(b, &v)
	a.Value = v.Value
	return a
}

// mustCall is call that fails the test unless the answer has code want.
func mustCall(t testing.TB, want int, url, method, plugin, op, body string, header ...string) answer {
	t.Helper()
	a := call(t, url, method, plugin, op, body, header...)
	if a.Code != want {
		t.Fatalf("%s /plugins/%s/%s %s: %d %s, want %d", method, plugin, op, body, a.Code, a.Body, want)
	}
	return a
}

// hostStatus reads the runtime's GET /status; url is the host's OpsURL.
func hostStatus(url string) (*hostapi.Status, error) {
	resp, err := http.Get(url + "/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	st := &hostapi.Status{}
	if err := json.NewDecoder(resp.Body).Decode(st); err != nil {
		return nil, err
	}
	return st, nil
}

// waitPluginReady waits until the Plugin is Ready for its current generation: a Ready
// condition left over from the previous generation does not count.
func waitPluginReady(t testing.TB, ns, name string) *v1alpha1.Plugin {
	t.Helper()
	p := &v1alpha1.Plugin{}
	testutil.Eventually(t, wait, "Plugin "+ns+"/"+name+" Ready for its generation", func() error {
		return pluginReady(ns, name, p)
	})
	return p
}

func pluginReady(ns, name string, p *v1alpha1.Plugin) error {
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, p); err != nil {
		return err
	}
	c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
	if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != p.Generation {
		return fmt.Errorf("generation %d, Ready condition %+v", p.Generation, c)
	}
	return nil
}

// hostCondition waits until the PluginHost's condition has status (and reason, if set) for
// its current generation.
func hostCondition(t testing.TB, ns, name, typ string, status metav1.ConditionStatus, reason string) (*v1alpha1.PluginHost, *metav1.Condition) {
	t.Helper()
	h := &v1alpha1.PluginHost{}
	var cond *metav1.Condition
	testutil.Eventually(t, wait, fmt.Sprintf("PluginHost %s/%s %s=%s %s", ns, name, typ, status, reason), func() error {
		if err := cluster.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, h); err != nil {
			return err
		}
		cond = meta.FindStatusCondition(h.Status.Conditions, typ)
		if cond == nil || cond.Status != status || (reason != "" && cond.Reason != reason) || cond.ObservedGeneration != h.Generation {
			return fmt.Errorf("condition %+v", cond)
		}
		return nil
	})
	return h, cond
}

// podRestarts returns the restartCount of the host pod's container, as the API reports it.
func podRestarts(t testing.TB, ns, pod string) int32 {
	t.Helper()
	out := mustKubectl(t, "", "get", "pod", pod, "-n", ns, "-o", "jsonpath={.status.containerStatuses[0].restartCount}")
	var n int32
	if _, err := fmt.Sscan(out, &n); err != nil {
		t.Fatalf("restartCount %q: %v", out, err)
	}
	return n
}

func key(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }
