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

// Unit tests of the suite's helpers: they run in `go test ./...`, with or without Docker.
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotreload/plugin-operator/internal/host"
	"github.com/hotreload/plugin-operator/internal/hostapi"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
	"github.com/hotreload/plugin-operator/pkg/plugins/counter"
)

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{"KIND": "/bin/kind-x", "E2E_KEEP_CLUSTER": "true", "KIND_NODE_IMAGE": "kindest/node:v1.37.0",
		"E2E_CLUSTER": "local", "K8S_BIN_DIR": "/k8s", "E2E_EDITS": "5", "E2E_EDITS_NO_NUDGE": "x", "E2E_EDITS_SPACED": "0", "E2E_RUN": "nudge"}
	cfg := ConfigFromEnv(func(k string) string { return env[k] }, "/repo")
	want := Config{Provider: "local", Kind: "/bin/kind-x", Kubectl: "kubectl", Helm: "helm", ContainerTool: "docker",
		Cluster: DefaultCluster, Image: DefaultImage, NodeImage: "kindest/node:v1.37.0", K8sBinDir: "/k8s",
		PauseArchive: "/repo/bin/pause.tar", ImageArchive: "/repo/bin/image.tar", ExampleArchive: "/repo/bin/example-image.tar", KeepCluster: true,
		EditsWithNudge: 5, EditsWithoutNudge: DefaultEditsWithoutNudge, EditsSpaced: 0, Run: "nudge", RepoRoot: "/repo"}
	if cfg != want {
		t.Errorf("ConfigFromEnv = %+v, want %+v", cfg, want)
	}
}

func TestStepFilter(t *testing.T) {
	all, err := StepFilter(Config{Report: "r.md"})
	if err != nil || !all("anything") {
		t.Errorf("StepFilter without E2E_RUN: %v; want every step", err)
	}
	only, err := StepFilter(Config{Run: "with the pod nudge$"})
	if err != nil || !only("Plugin edits served in place with the pod nudge") || only("Plugin edits without the pod nudge") {
		t.Errorf("StepFilter(E2E_RUN) selects the wrong steps (%v)", err)
	}
	if _, err := StepFilter(Config{Run: "("}); err == nil || !strings.Contains(err.Error(), "E2E_RUN") {
		t.Errorf("StepFilter(bad regexp) = %v, want an error naming E2E_RUN", err)
	}
	if _, err := StepFilter(Config{Run: "nudge", Report: "r.md"}); err == nil || !strings.Contains(err.Error(), "E2E_REPORT") {
		t.Errorf("StepFilter(E2E_RUN with E2E_REPORT) = %v, want an error", err)
	}
}

func TestChooseProvider(t *testing.T) {
	noDocker := errors.New("Cannot connect to the Docker daemon")
	for _, tt := range []struct {
		set       string
		dockerErr error
		want      string
	}{
		{"", nil, ProviderKind},
		{"", noDocker, ProviderLocal},
		{"local", nil, ProviderLocal},
		{"kind", noDocker, ProviderKind},
	} {
		got, err := ChooseProvider(Config{Provider: tt.set}, tt.dockerErr)
		if err != nil || got != tt.want {
			t.Errorf("ChooseProvider(%q, %v) = %q, %v; want %q", tt.set, tt.dockerErr, got, err, tt.want)
		}
	}
	if _, err := ChooseProvider(Config{Provider: "minikube"}, nil); err == nil || !strings.Contains(err.Error(), "E2E_CLUSTER") {
		t.Errorf("unknown provider: %v, want an error naming E2E_CLUSTER", err)
	}
}

func TestLocalPrerequisites(t *testing.T) {
	cfg := ConfigFromEnv(func(k string) string { return map[string]string{"K8S_BIN_DIR": "/k8s"}[k] }, "/repo")
	found := func(string) (string, error) { return "/usr/bin/x", nil }
	exists := func(string) (os.FileInfo, error) { return nil, nil }
	if err := LocalPrerequisites(cfg, 0, found, exists); err != nil {
		t.Errorf("all present: %v", err)
	}
	missing := func(p string) (os.FileInfo, error) {
		if strings.HasSuffix(p, "kubelet") || strings.HasSuffix(p, "image.tar") {
			return nil, os.ErrNotExist
		}
		return nil, nil
	}
	err := LocalPrerequisites(cfg, 1000, found, missing)
	if err == nil {
		t.Fatal("not root, no kubelet, no image: nil error")
	}
	for _, w := range []string{"root", "uid 1000", "kubelet in /k8s", "make cluster-binaries", "/repo/bin/image.tar", "make image",
		"/repo/bin/example-image.tar", "make example-image EXAMPLE_IMG=" + ExampleImage} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if err := LocalPrerequisites(Config{}, 0, found, exists); err == nil || !strings.Contains(err.Error(), "K8S_BIN_DIR") {
		t.Errorf("no K8S_BIN_DIR: %v", err)
	}
}

func TestPrerequisites(t *testing.T) {
	cfg := ConfigFromEnv(func(string) string { return "" }, "/repo")
	found := func(string) (string, error) { return "/usr/bin/x", nil }
	notFound := func(name string) func(string) (string, error) {
		return func(p string) (string, error) {
			if p == name {
				return "", errors.New("not found")
			}
			return "/usr/bin/" + p, nil
		}
	}
	dockerOK := func() error { return nil }
	dockerDown := func() error {
		return errors.New("exit status 1: Cannot connect to the Docker daemon at unix:///var/run/docker.sock")
	}

	if err := Prerequisites(cfg, found, dockerOK); err != nil {
		t.Errorf("all present: %v", err)
	}
	tests := []struct {
		name   string
		look   func(string) (string, error)
		docker func() error
		want   []string
	}{
		{"no docker daemon", found, dockerDown, []string{"a running Docker daemon", "`docker info` failed", "Cannot connect"}},
		{"no kind", notFound("kind"), dockerOK, []string{"kind:", "make kind"}},
		{"no helm", notFound("helm"), dockerOK, []string{"helm:", "make k8s-binaries", "HELM"}},
		{"nothing", func(string) (string, error) { return "", errors.New("no") }, dockerDown, []string{"Docker daemon", "kind:", "kubectl:", "helm:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Prerequisites(cfg, tt.look, tt.docker)
			if err == nil {
				t.Fatal("Prerequisites = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestSplitImage(t *testing.T) {
	for in, want := range map[string][2]string{
		"example.com/plugin-operator:e2e": {"example.com/plugin-operator", "e2e"},
		"localhost:5000/po":               {"localhost:5000/po", "latest"},
		"localhost:5000/po:v1":            {"localhost:5000/po", "v1"},
		"po":                              {"po", "latest"},
	} {
		repo, tag := SplitImage(in)
		if repo != want[0] || tag != want[1] {
			t.Errorf("SplitImage(%q) = %q, %q; want %q, %q", in, repo, tag, want[0], want[1])
		}
	}
}

func TestHelmArgs(t *testing.T) {
	install := HelmInstallArgs("/repo", "example.com/po:e2e", "--reuse-values", "--set", "podNudge=false")
	for _, w := range []string{"upgrade", "--install", Release, "/repo/" + ChartDir, "image.repository=example.com/po", "image.tag=e2e", "/repo/" + ValuesFile, "podNudge=false", "--wait"} {
		if !slices.Contains(install, w) {
			t.Errorf("HelmInstallArgs = %q, missing %q", install, w)
		}
	}
	tmpl := HelmTemplateArgs(install)
	if tmpl[0] != "template" || tmpl[1] != Release {
		t.Errorf("HelmTemplateArgs = %q, want template %s …", tmpl, Release)
	}
	for _, bad := range []string{"upgrade", "--install", "--wait", "--timeout", "5m", "--create-namespace", "--reuse-values"} {
		if slices.Contains(tmpl, bad) {
			t.Errorf("HelmTemplateArgs = %q, still has %q", tmpl, bad)
		}
	}
	if !slices.Contains(tmpl, "podNudge=false") {
		t.Errorf("HelmTemplateArgs = %q, lost the extra --set", tmpl)
	}
}

func TestParsePortForward(t *testing.T) {
	if p, ok := ParsePortForward("Forwarding from 127.0.0.1:41823 -> 8080"); !ok || p != 41823 {
		t.Errorf("ParsePortForward = %d, %v", p, ok)
	}
	for _, l := range []string{"Forwarding from [::1]:41823 -> 8080", "Handling connection for 41823", ""} {
		if _, ok := ParsePortForward(l); ok {
			t.Errorf("ParsePortForward(%q) ok, want not", l)
		}
	}
	p, err := WaitPortForward(strings.NewReader("Forwarding from 127.0.0.1:5555 -> 8080\nForwarding from [::1]:5555 -> 8080\n"))
	if err != nil || p != 5555 {
		t.Errorf("WaitPortForward = %d, %v", p, err)
	}
	if _, err := WaitPortForward(strings.NewReader("error: services \"x\" not found\n")); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("WaitPortForward on an error = %v, want the output in the error", err)
	}
}

func TestServiceFromURL(t *testing.T) {
	name, ns, port, err := ServiceFromURL("http://demo.e2e-samples.svc:8080")
	if err != nil || name != "demo" || ns != "e2e-samples" || port != 8080 {
		t.Errorf("ServiceFromURL = %q %q %d %v", name, ns, port, err)
	}
	if _, _, _, err := ServiceFromURL("http://demo:8080"); err == nil {
		t.Error("ServiceFromURL(http://demo:8080) = nil error")
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize([]time.Duration{3 * time.Second, time.Second, 2 * time.Second, 10 * time.Second})
	if s.N != 4 || s.Min != time.Second || s.Max != 10*time.Second || s.Median != 2500*time.Millisecond || s.P99 != 10*time.Second {
		t.Errorf("Summarize = %+v", s)
	}
	var hundred []time.Duration
	for i := 100; i >= 1; i-- {
		hundred = append(hundred, time.Duration(i)*time.Millisecond)
	}
	if s := Summarize(hundred); s.P99 != 99*time.Millisecond || s.P95 != 95*time.Millisecond || s.Median != 50500*time.Microsecond {
		t.Errorf("Summarize(1..100 ms) = %+v, want p95 95ms, p99 99ms, median 50.5ms", s)
	}
	// 30 samples: nearest rank puts p95 at the 29th and p99 at the 30th.
	if s := Summarize(hundred[70:]); s.P95 != 29*time.Millisecond || s.P99 != 30*time.Millisecond {
		t.Errorf("Summarize(1..30 ms) = %+v, want p95 29ms, p99 30ms", s)
	}
	if got := Summarize(nil); got.N != 0 {
		t.Errorf("Summarize(nil) = %+v", got)
	}
}

// TestClient runs the client against a fake host that speaks the runtime's API.
func TestClient(t *testing.T) {
	var value, step int64 = 0, 3
	mux := http.NewServeMux()
	mux.HandleFunc("POST /plugins/counter-1/increment", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-API-Key") != "k" {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		var in struct{ Value int64 }
		_ = json.NewDecoder(r.Body).Decode(&in)
		value += in.Value * step
		fmt.Fprintf(w, `{"plugin":"counter-1","operation":"increment","value":%d}`, value)
	})
	mux.HandleFunc("GET /plugins/counter-1/get", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"plugin":"counter-1","operation":"get","value":%d}`, value)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(hostapi.Status{Revision: "sha256:x", Plugins: []hostapi.PluginStatus{
			{Name: "counter-1", Type: "counter", Options: map[string]any{"increment": step}},
			{Name: "counter-2", Type: "counter"},
		}})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := context.Background()
	c := &Client{BaseURL: srv.URL, Headers: map[string]string{"X-API-Key": "k"}}
	if v, err := c.Increment(ctx, "counter-1", 5); err != nil || v != 15 {
		t.Fatalf("Increment = %d, %v; want 15", v, err)
	}
	if v, err := c.Get(ctx, "counter-1"); err != nil || v != 15 {
		t.Fatalf("Get = %d, %v; want 15", v, err)
	}
	if _, err := c.Get(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Get(nope) = %v, want a 404 error", err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if inc, ok := AppliedIncrement(st, "counter-1"); !ok || inc != 3 {
		t.Errorf("AppliedIncrement(counter-1) = %d, %v; want 3", inc, ok)
	}
	if inc, ok := AppliedIncrement(st, "counter-2"); !ok || inc != 1 {
		t.Errorf("AppliedIncrement(counter-2) = %d, %v; want the default 1", inc, ok)
	}
	if _, ok := AppliedIncrement(st, "counter-3"); ok {
		t.Error("AppliedIncrement(counter-3) found a plugin that is not there")
	}

	// With OpsURL, /status is read there (a rendered pod's ops port), the plugins' API on
	// BaseURL still.
	api := http.NewServeMux()
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"not here"}`, http.StatusNotFound)
	})
	apiSrv := httptest.NewServer(api)
	defer apiSrv.Close()
	split := &Client{BaseURL: apiSrv.URL, OpsURL: srv.URL}
	if st, err := split.Status(ctx); err != nil || st.Revision != "sha256:x" {
		t.Errorf("Status via OpsURL = %+v, %v", st, err)
	}
	if _, err := split.Get(ctx, "counter-1"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Get went to OpsURL: %v", err)
	}
}

func TestSnapshotDiff(t *testing.T) {
	before := "## sysctl\nkernel.panic = 0\nvm.overcommit_memory = 0\n## links\nlo: <LOOPBACK>\n"
	if d := SnapshotDiff(before, before); d != "" {
		t.Errorf("equal snapshots: %q", d)
	}
	after := "## sysctl\nvm.overcommit_memory = 1\nkernel.panic = 0\n## links\nlo: <LOOPBACK>\npocluster0: <UP>\n## mounts\n/var/lib/kubelet rw\n"
	want := "## links\n+ pocluster0: <UP>\n## mounts\n+ /var/lib/kubelet rw\n## sysctl\n- vm.overcommit_memory = 0\n+ vm.overcommit_memory = 1"
	if d := SnapshotDiff(before, after); d != want {
		t.Errorf("SnapshotDiff =\n%s\nwant\n%s", d, want)
	}
}

// TestExampleImageAgrees checks that the Makefile builds, and the suite's Helm values allow,
// the example host image the suite runs.
func TestExampleImageAgrees(t *testing.T) {
	root, err := testutil.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"Makefile": "E2E_EXAMPLE_IMAGE := " + ExampleImage + "\n",
		ValuesFile: "  - " + ExampleImage + "\n",
	} {
		b, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %q", file, want)
		}
	}
}

// An edit the host applied before kubelet projected it (or with no projection timed) came by
// the manager's push and counts there; one applied after, in the host's projection interval.
func TestAppliedIntervalsSplitByPath(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	edit := func(configMap, projected, applied int) EditTiming {
		var e EditTiming
		e.Set(StageConfigMap, ms(configMap))
		if projected > 0 {
			e.Set(StageProjected, ms(projected))
		}
		e.Set(StageApplied, ms(applied))
		return e
	}
	rows := map[string]string{}
	for _, r := range StageSummaries("", []EditTiming{edit(20, 900, 30), edit(20, 0, 40), edit(20, 150, 160)}) {
		rows[r[0]] = r[1]
	}
	if g := rows["manager and host: ConfigMap written → applied, pushed (PUT /config)"]; g != "n=2 min=10ms p50=15ms p95=20ms p99=20ms max=20ms" {
		t.Errorf("pushed: %q", g)
	}
	if g := rows["host: volume projected → applied (its config poll, then the apply)"]; g != "n=1 min=10ms p50=10ms p95=10ms p99=10ms max=10ms" {
		t.Errorf("projected: %q", g)
	}
}

func TestStageSummaries(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var edits []EditTiming
	for i := 1; i <= 4; i++ {
		e := EditTiming{Increment: int64(100 + i)}
		e.Set(StageWritten, ms(2))
		e.Set(StageConfigMap, ms(10*i))
		e.Set(StageServed, ms(100*i))
		e.Set(StageReady, ms(100*i+5*i))
		if i != 2 { // no projection time for one edit: its intervals leave it out
			e.Set(StageProjected, ms(50*i))
		}
		edits = append(edits, e)
	}
	rows := StageSummaries("nudge: ", edits)
	got := map[string]string{}
	var order []string
	for _, r := range rows {
		got[r[0]] = r[1]
		order = append(order, r[0])
	}
	want := []string{
		"nudge: API write → " + stageNames[StageWritten],
		"nudge: API write → " + stageNames[StageConfigMap],
		"nudge: API write → " + stageNames[StageProjected],
		"nudge: API write → " + stageNames[StageServed],
		"nudge: API write → " + stageNames[StageReady],
		"nudge: Ready − served, per edit",
	}
	if !slices.Equal(order, want) {
		t.Fatalf("rows %q\nwant %q (stages and intervals never recorded are left out)", order, want)
	}
	if g := got["nudge: API write → "+stageNames[StageProjected]]; g != "n=3 min=50ms p50=150ms p95=200ms p99=200ms max=200ms" {
		t.Errorf("projected: %s", g)
	}
	if g := got["nudge: Ready − served, per edit"]; g != "n=4 min=5ms p50=13ms p95=20ms p99=20ms max=20ms" {
		t.Errorf("Ready − served: %s", g)
	}

	if m := edits[1].Missing([]Stage{StageConfigMap, StageProjected, StageApplied}); !slices.Equal(m, []Stage{StageProjected, StageApplied}) {
		t.Errorf("Missing = %v", m)
	}
	slow := Slowest(edits, StageProjected, 2)
	if len(slow) != 2 || slow[0].Increment != 104 || slow[1].Increment != 103 {
		t.Errorf("Slowest by projected = %v", slow)
	}
	if s := slow[0].String(); s != "increment 104: written 2ms, configmap 40ms, projected 200ms, served 400ms, ready 420ms" {
		t.Errorf("String = %q", s)
	}
	if s := Slowest(edits, StageAnnotated, 3); len(s) != 0 {
		t.Errorf("Slowest by a stage never recorded = %v", s)
	}
}

// TestAwaitStatus long-polls the runtime's own ops handler: it answers at once for a revision
// that is not the applied one, and otherwise when a reload applies, with the new increment.
func TestAwaitStatus(t *testing.T) {
	cfg := func(inc int) []byte {
		return fmt.Appendf(nil, `{"plugins":[{"name":"counter-1","type":"counter","options":{"increment":%d}}]}`, inc)
	}
	h := host.New(host.Options{Registry: host.MustRegistry(counter.Factory{})})
	if _, err := h.Apply(cfg(1)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.OpsHandler())
	defer srv.Close()
	ctx := context.Background()
	c := &Client{BaseURL: "http://unused.invalid", OpsURL: srv.URL}
	first := h.Status().Revision
	// A wait longer than the test's timeout: only an immediate answer passes.
	st, err := c.AwaitStatus(ctx, "", host.MaxStatusWait)
	if err != nil || st.Revision != first {
		t.Fatalf("AwaitStatus(after none) = %+v, %v; want revision %s at once", st, err, first)
	}

	type answer struct {
		st  *hostapi.Status
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		st, err := c.AwaitStatus(ctx, first, host.MaxStatusWait)
		ch <- answer{st, err}
	}()
	// Whether the reload lands while the long-poll is held or before it arrives, the answer
	// must carry the new revision.
	if _, err := h.Apply(cfg(7)); err != nil {
		t.Fatal(err)
	}
	a := <-ch
	if a.err != nil {
		t.Fatal(a.err)
	}
	if inc, ok := AppliedIncrement(a.st, "counter-1"); !ok || inc != 7 || a.st.Revision == first || a.st.AppliedAt == nil {
		t.Errorf("AwaitStatus after a reload = revision %s appliedAt %v increment %d (%v); want a new revision with increment 7", a.st.Revision, a.st.AppliedAt, inc, ok)
	}

	// A host without the long-poll answers without the header: an error, not a busy loop.
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(hostapi.Status{Revision: first})
	}))
	defer old.Close()
	if _, err := (&Client{BaseURL: old.URL}).AwaitStatus(ctx, first, time.Second); err == nil || !strings.Contains(err.Error(), hostapi.LongPollHeader) {
		t.Errorf("AwaitStatus against a host without the long-poll = %v, want an error naming %s", err, hostapi.LongPollHeader)
	}
}

func TestWriteReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "performance-real-node.md")
	rows := [][2]string{{"pod nudge on: Ready − served, per edit", "n=100 min=5ms p50=20ms p95=30ms p99=40ms max=41ms"}}
	if err := WriteReport(path, ProviderLocal, Config{EditsWithNudge: 100, EditsSpaced: 100, EditsWithoutNudge: 3}, rows); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"100 Plugin edits with the pod nudge back to back, 100 with it 1.1s apart, and 3 without",
		"| pod nudge on: Ready − served, per edit | n=100 min=5ms p50=20ms p95=30ms p99=40ms max=41ms |",
		"(performance.md#a-plugin-edit-on-a-real-node-stage-by-stage)",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the report lacks %q:\n%s", want, b)
		}
	}
}
