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

// Package e2e is the end-to-end suite (`make test-e2e`, files with the build tag e2e). It
// runs on a kind cluster where Docker runs, and otherwise on a real single-node cluster on
// this machine (hack/cluster.sh: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kube-proxy, kubelet, containerd), with E2E_CLUSTER=kind|local to choose.
// It builds the image (docker build for kind; go-containerregistry, no daemon, for the local
// node), installs the operator with kustomize and with Helm, applies the samples under the
// restricted Pod Security Standard, drives the counter API through the host's Service,
// changes Plugins and measures how long the running pod takes to serve each change, with and
// without the pod nudge, runs the example plugin host (examples/featureflags, built from its
// own module) as a PluginHost's spec.image, and checks bad configs, credential rotation, a manager restart in
// the middle of a rollout, state across a pod deletion, garbage collection and clean
// uninstalls. On the local node it also proves that `hack/cluster.sh down` restores the
// machine: the machine's state before `up` and after `down` must be equal.
//
// The untagged files hold what the suite does before it needs a cluster — configuration,
// prerequisites, the Helm command line, parsing — so that `go test ./...` checks them
// everywhere, and test/manifests renders and dry-runs the exact Helm install of the suite.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hotreload/plugin-operator/internal/hostapi"
)

// Defaults of Config.
const (
	DefaultCluster = "plugin-operator-e2e"
	DefaultImage   = "example.com/plugin-operator:e2e"
	// ExampleImage is the example plugin host's image (examples/featureflags, `make
	// example-image`), which testdata/e2e-values.yaml allows (--allowed-host-images) and
	// the Makefile's test-e2e builds under this name.
	ExampleImage     = "localhost/plugin-operator/featureflags:e2e"
	Release          = "plugin-operator"
	ReleaseNamespace = "plugin-operator-system"
	// SamplesNamespace is where the suite applies config/samples. It enforces the
	// "restricted" Pod Security Standard, so the host pods the operator creates must meet it.
	SamplesNamespace = "e2e-samples"
	// ChartDir and ValuesFile are relative to the repository root.
	ChartDir   = "charts/plugin-operator"
	ValuesFile = "test/e2e/testdata/e2e-values.yaml"
	// ClusterScript runs the local single-node cluster.
	ClusterScript = "hack/cluster.sh"

	// ProviderKind and ProviderLocal are the clusters the suite runs on.
	ProviderKind  = "kind"
	ProviderLocal = "local"

	// Plugin edits measured by default with the pod nudge (each takes about a second) and
	// without it (each waits for kubelet's periodic sync, 60–90 s).
	DefaultEditsWithNudge    = 30
	DefaultEditsWithoutNudge = 3
	// DefaultEditsSpaced are edits with the nudge made more than EditSpacing apart.
	DefaultEditsSpaced = 10

	// EditSpacing separates the spaced edits: a little more than kubelet's PLEG relist period
	// (1 s). Kubelet's pod worker does not sync a pod again before its pod cache is newer
	// than the pod's last sync (pod_workers.go, podCache.GetNewerThan), which only a relist
	// makes it: an edit that reaches a pod synced less than a second before waits for the
	// next relist. Back-to-back edits measure that worst case; spaced ones, an edit made
	// alone.
	EditSpacing = 1100 * time.Millisecond
)

// Config is what the suite runs with, from the environment `make test-e2e` sets.
type Config struct {
	// Provider is ProviderKind, ProviderLocal or empty (choose: kind where Docker runs).
	Provider string
	// Kind, Kubectl, Helm are binaries; ContainerTool is docker (or a compatible CLI).
	Kind, Kubectl, Helm, ContainerTool string
	// Cluster is the kind cluster's name; Image the image built and loaded into it.
	Cluster, Image string
	// NodeImage is the kind node image; empty means kind's default.
	NodeImage string
	// K8sBinDir holds the cluster binaries of the local node (hack/install-k8s-binaries.sh
	// --with-node); PauseArchive and ImageArchive are the docker-archive tarballs of the
	// pod sandbox image and of Image (`make image`); ExampleArchive is ExampleImage's
	// (`make example-image`), loaded on kind and on the local node alike.
	K8sBinDir, PauseArchive, ImageArchive, ExampleArchive string
	// KeepCluster leaves the cluster (and everything in it) after the suite, for debugging.
	KeepCluster bool
	// EditsWithNudge and EditsWithoutNudge are how many Plugin edits are measured back to
	// back (each as soon as the previous one is Ready); EditsSpaced how many with the nudge,
	// EditSpacing apart.
	EditsWithNudge, EditsWithoutNudge, EditsSpaced int
	// Report, if set, is a markdown file the suite writes its measurements to when it
	// passes (`make bench-cluster`).
	Report string
	// Run, if set, is a regular expression: only the steps whose names it matches run,
	// besides the cluster, the Helm install, the samples and the walkthrough, which every
	// step needs (E2E_RUN, to iterate on one step). It cannot be combined with Report.
	Run string
	// RepoRoot is the repository root.
	RepoRoot string
}

// ConfigFromEnv reads E2E_CLUSTER, KIND, KUBECTL, HELM, CONTAINER_TOOL, KIND_CLUSTER,
// E2E_IMAGE, KIND_NODE_IMAGE, K8S_BIN_DIR, PAUSE_IMAGE_TAR, E2E_IMAGE_TAR,
// E2E_EXAMPLE_IMAGE_TAR, E2E_KEEP_CLUSTER, E2E_EDITS, E2E_EDITS_NO_NUDGE, E2E_EDITS_SPACED, E2E_REPORT and
// E2E_RUN;
// unset binaries are looked up on PATH.
func ConfigFromEnv(getenv func(string) string, repoRoot string) Config {
	or := func(v, def string) string {
		if v != "" {
			return v
		}
		return def
	}
	count := func(name string, def int) int {
		if n, err := strconv.Atoi(getenv(name)); err == nil && n >= 0 {
			return n
		}
		return def
	}
	keep, _ := strconv.ParseBool(getenv("E2E_KEEP_CLUSTER"))
	return Config{
		Provider:          getenv("E2E_CLUSTER"),
		Kind:              or(getenv("KIND"), "kind"),
		Kubectl:           or(getenv("KUBECTL"), "kubectl"),
		Helm:              or(getenv("HELM"), "helm"),
		ContainerTool:     or(getenv("CONTAINER_TOOL"), "docker"),
		Cluster:           or(getenv("KIND_CLUSTER"), DefaultCluster),
		Image:             or(getenv("E2E_IMAGE"), DefaultImage),
		NodeImage:         getenv("KIND_NODE_IMAGE"),
		K8sBinDir:         getenv("K8S_BIN_DIR"),
		PauseArchive:      or(getenv("PAUSE_IMAGE_TAR"), filepath.Join(repoRoot, "bin", "pause.tar")),
		ImageArchive:      or(getenv("E2E_IMAGE_TAR"), filepath.Join(repoRoot, "bin", "image.tar")),
		ExampleArchive:    or(getenv("E2E_EXAMPLE_IMAGE_TAR"), filepath.Join(repoRoot, "bin", "example-image.tar")),
		KeepCluster:       keep,
		EditsWithNudge:    count("E2E_EDITS", DefaultEditsWithNudge),
		EditsWithoutNudge: count("E2E_EDITS_NO_NUDGE", DefaultEditsWithoutNudge),
		EditsSpaced:       count("E2E_EDITS_SPACED", DefaultEditsSpaced),
		Report:            getenv("E2E_REPORT"),
		Run:               getenv("E2E_RUN"),
		RepoRoot:          repoRoot,
	}
}

// StepFilter returns whether a step of the suite runs, from cfg.Run; it fails on a Run that
// is not a regular expression, or that is combined with Report (a report holds the whole
// suite's figures).
func StepFilter(cfg Config) (func(step string) bool, error) {
	if cfg.Run == "" {
		return func(string) bool { return true }, nil
	}
	if cfg.Report != "" {
		return nil, fmt.Errorf("E2E_RUN=%q with E2E_REPORT=%q: a report holds the whole suite's figures; unset one of them", cfg.Run, cfg.Report)
	}
	re, err := regexp.Compile(cfg.Run)
	if err != nil {
		return nil, fmt.Errorf("E2E_RUN=%q: %w", cfg.Run, err)
	}
	return re.MatchString, nil
}

// ChooseProvider returns the cluster to run on: cfg.Provider when set, else kind when the
// Docker daemon answers (dockerErr nil), else the local node.
func ChooseProvider(cfg Config, dockerErr error) (string, error) {
	switch cfg.Provider {
	case ProviderKind, ProviderLocal:
		return cfg.Provider, nil
	case "":
		if dockerErr == nil {
			return ProviderKind, nil
		}
		return ProviderLocal, nil
	default:
		return "", fmt.Errorf("E2E_CLUSTER=%q: want %q or %q (or unset: kind where Docker runs, else local)", cfg.Provider, ProviderKind, ProviderLocal)
	}
}

// Prerequisites returns nil when everything the kind suite needs is there, else an error
// saying exactly what is missing and how to get it. containerInfo runs `<ContainerTool> info`.
func Prerequisites(cfg Config, lookPath func(string) (string, error), containerInfo func() error) error {
	var missing []string
	if err := containerInfo(); err != nil {
		missing = append(missing, fmt.Sprintf("a running Docker daemon: `%s info` failed (%v); start Docker, or set CONTAINER_TOOL to a Docker-compatible CLI", cfg.ContainerTool, err))
	}
	if _, err := lookPath(cfg.Kind); err != nil {
		missing = append(missing, fmt.Sprintf("kind: %q not found; run `make kind` (builds the pinned kind into bin/) or put kind on PATH, or set KIND", cfg.Kind))
	}
	missing = append(missing, missingTools(cfg, lookPath)...)
	if len(missing) == 0 {
		return nil
	}
	return errors.New("the kind e2e suite needs:\n  - " + strings.Join(missing, "\n  - "))
}

// LocalPrerequisites returns nil when the suite can run on a local node here: root, the
// cluster binaries, the image archives, kubectl and helm. The node's Debian packages
// (containerd, runc, CNI plugins, nftables) are installed by hack/cluster.sh itself.
func LocalPrerequisites(cfg Config, uid int, lookPath func(string) (string, error), stat func(string) (os.FileInfo, error)) error {
	var missing []string
	if uid != 0 {
		missing = append(missing, fmt.Sprintf("root: a real node creates namespaces, cgroups, mounts and nftables rules (running as uid %d); run as root, or with Docker and E2E_CLUSTER=kind", uid))
	}
	if cfg.K8sBinDir == "" {
		missing = append(missing, "K8S_BIN_DIR: the directory of the cluster binaries; run through `make test-e2e`, which builds them (hack/install-k8s-binaries.sh --with-node)")
	} else {
		for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet"} {
			if _, err := stat(filepath.Join(cfg.K8sBinDir, b)); err != nil {
				missing = append(missing, fmt.Sprintf("%s in %s; run `make cluster-binaries`", b, cfg.K8sBinDir))
			}
		}
	}
	for _, a := range []struct{ what, path, how string }{
		{"the pod sandbox image", cfg.PauseArchive, "make pause-image"},
		{"the project's image", cfg.ImageArchive, "make image IMG=" + cfg.Image},
		{"the example plugin host's image", cfg.ExampleArchive, "make example-image EXAMPLE_IMG=" + ExampleImage},
	} {
		if _, err := stat(a.path); err != nil {
			missing = append(missing, fmt.Sprintf("%s %s; run `%s`", a.what, a.path, a.how))
		}
	}
	missing = append(missing, missingTools(cfg, lookPath)...)
	if len(missing) == 0 {
		return nil
	}
	return errors.New("the e2e suite on a local node needs:\n  - " + strings.Join(missing, "\n  - "))
}

func missingTools(cfg Config, lookPath func(string) (string, error)) []string {
	var missing []string
	for _, tool := range []struct{ name, path string }{{"kubectl", cfg.Kubectl}, {"helm", cfg.Helm}} {
		if _, err := lookPath(tool.path); err != nil {
			missing = append(missing, fmt.Sprintf("%s: %q not found; run `make k8s-binaries`, or set %s", tool.name, tool.path, strings.ToUpper(tool.name)))
		}
	}
	return missing
}

// DockerInfo runs `<tool> info` with a timeout; the error carries its output.
func DockerInfo(ctx context.Context, tool string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, tool, "info").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, lastLine(out))
	}
	return nil
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// SplitImage splits repo[:tag] into repository and tag ("latest" when there is none). A ':'
// before the last '/' belongs to a registry host:port.
func SplitImage(image string) (repository, tag string) {
	slash := strings.LastIndex(image, "/")
	if i := strings.LastIndex(image, ":"); i > slash {
		return image[:i], image[i+1:]
	}
	return image, "latest"
}

// HelmInstallArgs is the `helm` command line that installs (or upgrades) the chart for the
// suite, with image as the manager image and extra appended (e.g. "--set", "podNudge=false").
func HelmInstallArgs(repoRoot, image string, extra ...string) []string {
	repo, tag := SplitImage(image)
	args := []string{
		"upgrade", "--install", Release, filepath.Join(repoRoot, ChartDir),
		"--namespace", ReleaseNamespace, "--create-namespace",
		"--values", filepath.Join(repoRoot, ValuesFile),
		"--set", "image.repository=" + repo,
		"--set", "image.tag=" + tag,
		"--wait", "--timeout", "5m",
	}
	return append(args, extra...)
}

// HelmTemplateArgs turns HelmInstallArgs into the equivalent `helm template` command line
// (the flags that only make sense against a cluster dropped), for checks without a cluster.
func HelmTemplateArgs(installArgs []string) []string {
	out := []string{"template"}
	for i := 1; i < len(installArgs); i++ {
		switch a := installArgs[i]; a {
		case "--install", "--create-namespace", "--wait", "--reuse-values":
		case "--timeout":
			i++
		default:
			out = append(out, a)
		}
	}
	return out
}

var portForwardLine = regexp.MustCompile(`^Forwarding from 127\.0\.0\.1:(\d+) -> \d+`)

// ParsePortForward reads the local port from a line of `kubectl port-forward` output, such
// as "Forwarding from 127.0.0.1:41823 -> 8080".
func ParsePortForward(line string) (int, bool) {
	m := portForwardLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		return 0, false
	}
	p, err := strconv.Atoi(m[1])
	return p, err == nil && p > 0 && p < 65536
}

// WaitPortForward reads `kubectl port-forward` stdout until it reports the local port.
func WaitPortForward(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	var seen []string
	for sc.Scan() {
		if p, ok := ParsePortForward(sc.Text()); ok {
			go func() { _, _ = io.Copy(io.Discard, r) }() // keep the pipe drained
			return p, nil
		}
		seen = append(seen, sc.Text())
	}
	return 0, fmt.Errorf("kubectl port-forward ended without a local port; output: %q", seen)
}

// ServiceFromURL reads the Service name, namespace and port from a PluginHost's status.url
// (http://<service>.<namespace>.svc:<port>).
func ServiceFromURL(raw string) (name, namespace string, port int, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", 0, err
	}
	labels := strings.Split(u.Hostname(), ".")
	if len(labels) < 3 || labels[2] != "svc" {
		return "", "", 0, fmt.Errorf("status.url %q is not http://<service>.<namespace>.svc:<port>", raw)
	}
	port = 80
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return "", "", 0, err
		}
	}
	return labels[0], labels[1], port, nil
}

// Stats summarizes latency samples.
type Stats struct {
	N                          int
	Min, Median, P95, P99, Max time.Duration
}

// Summarize returns the minimum, median, 95th and 99th percentiles (nearest rank) and
// maximum of samples.
func Summarize(samples []time.Duration) Stats {
	if len(samples) == 0 {
		return Stats{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	rank := func(p int) time.Duration { return s[(p*len(s)+99)/100-1] } // ceil(p n / 100), 1-based
	return Stats{N: len(s), Min: s[0], Median: med, P95: rank(95), P99: rank(99), Max: s[len(s)-1]}
}

func (s Stats) String() string {
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("n=%d min=%s p50=%s p95=%s p99=%s max=%s", s.N, r(s.Min), r(s.Median), r(s.P95), r(s.P99), r(s.Max))
}

// Client talks to a plugin host's HTTP API (the seed's counter API plus /status).
type Client struct {
	BaseURL string
	// OpsURL is the base URL of the host's operational endpoints (/status), which rendered
	// pods serve on their "ops" port, not on the Service; BaseURL when empty.
	OpsURL string
	HTTP   *http.Client
	// Headers are sent with every request (e.g. an api-key header).
	Headers map[string]string
}

// valueBody is the body of a successful plugin operation.
type valueBody struct {
	Plugin    string `json:"plugin"`
	Operation string `json:"operation"`
	Value     int64  `json:"value"`
}

// Increment POSTs {"value": value} to /plugins/<name>/increment and returns the new value.
func (c *Client) Increment(ctx context.Context, name string, value int64) (int64, error) {
	body := fmt.Sprintf(`{"value": %d}`, value)
	return c.value(ctx, http.MethodPost, "/plugins/"+url.PathEscape(name)+"/increment", body)
}

// Get returns the counter's value.
func (c *Client) Get(ctx context.Context, name string) (int64, error) {
	return c.value(ctx, http.MethodGet, "/plugins/"+url.PathEscape(name)+"/get", "")
}

func (c *Client) value(ctx context.Context, method, path, body string) (int64, error) {
	b, err := c.do(ctx, method, path, body)
	if err != nil {
		return 0, err
	}
	var v valueBody
	if err := json.Unmarshal(b, &v); err != nil {
		return 0, fmt.Errorf("%s %s: decoding %q: %w", method, path, b, err)
	}
	return v.Value, nil
}

// Reset POSTs to /plugins/<name>/reset.
func (c *Client) Reset(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodPost, "/plugins/"+url.PathEscape(name)+"/reset", "")
	return err
}

// Status returns GET /status.
func (c *Client) Status(ctx context.Context) (*hostapi.Status, error) {
	ops := *c
	if c.OpsURL != "" {
		ops.BaseURL = c.OpsURL
	}
	b, err := ops.do(ctx, http.MethodGet, "/status", "")
	if err != nil {
		return nil, err
	}
	var s hostapi.Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("GET /status: decoding %q: %w", b, err)
	}
	return &s, nil
}

// AwaitStatus long-polls GET /status?after=<after>&wait=<wait>: the host answers when its
// applied revision differs from after, when it or the last reload error changes, or after
// wait. It fails when the host does not serve the long-poll (an answer without
// hostapi.LongPollHeader), since the caller would then be polling in a tight loop.
func (c *Client) AwaitStatus(ctx context.Context, after string, wait time.Duration) (*hostapi.Status, error) {
	ops := *c
	if c.OpsURL != "" {
		ops.BaseURL = c.OpsURL
	}
	if ops.HTTP == nil {
		ops.HTTP = &http.Client{Timeout: wait + 10*time.Second}
	}
	q := url.Values{"after": {after}, "wait": {wait.String()}}
	b, h, err := ops.doHeader(ctx, http.MethodGet, "/status?"+q.Encode(), "")
	if err != nil {
		return nil, err
	}
	if h.Get(hostapi.LongPollHeader) != "1" {
		return nil, fmt.Errorf("GET /status?%s: no %s header: the host does not serve the long-poll", q.Encode(), hostapi.LongPollHeader)
	}
	var s hostapi.Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("GET /status: decoding %q: %w", b, err)
	}
	return &s, nil
}

func (c *Client) do(ctx context.Context, method, path, body string) ([]byte, error) {
	b, _, err := c.doHeader(ctx, method, path, body)
	return b, err
}

func (c *Client) doHeader(ctx context.Context, method, path, body string) ([]byte, http.Header, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.Headers {
		req.Header.Set(k, v)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	return b, resp.Header, nil
}

// AppliedIncrement returns options.increment of the plugin as the host applied it, from
// /status, and whether the plugin is there.
func AppliedIncrement(s *hostapi.Status, plugin string) (int64, bool) {
	for _, p := range s.Plugins {
		if p.Name != plugin {
			continue
		}
		v, ok := p.Options["increment"]
		if !ok {
			return 1, true // the counter's default
		}
		switch n := v.(type) {
		case float64:
			return int64(n), true
		case json.Number:
			i, err := n.Int64()
			return i, err == nil
		}
		return 0, false
	}
	return 0, false
}

// SnapshotDiff compares two outputs of `hack/cluster.sh snapshot`, section by section (a
// section starts with a "## name" line), and returns the lines only in before ("- ") and only
// in after ("+ "), or "" when they hold the same lines.
func SnapshotDiff(before, after string) string {
	sections := func(text string) map[string]map[string]bool {
		out := map[string]map[string]bool{}
		section := ""
		for _, line := range strings.Split(text, "\n") {
			if name, ok := strings.CutPrefix(line, "## "); ok {
				section = name
				out[section] = map[string]bool{}
				continue
			}
			if strings.TrimSpace(line) == "" {
				continue
			}
			if out[section] == nil {
				out[section] = map[string]bool{}
			}
			out[section][line] = true
		}
		return out
	}
	b, a := sections(before), sections(after)
	names := map[string]bool{}
	for n := range b {
		names[n] = true
	}
	for n := range a {
		names[n] = true
	}
	var diff []string
	for _, n := range slices.Sorted(maps.Keys(names)) {
		var lines []string
		for _, l := range slices.Sorted(maps.Keys(b[n])) {
			if !a[n][l] {
				lines = append(lines, "- "+l)
			}
		}
		for _, l := range slices.Sorted(maps.Keys(a[n])) {
			if !b[n][l] {
				lines = append(lines, "+ "+l)
			}
		}
		if len(lines) > 0 {
			diff = append(diff, "## "+n)
			diff = append(diff, lines...)
		}
	}
	return strings.Join(diff, "\n")
}

// WriteReport writes the suite's measurements as a markdown page.
func WriteReport(path, provider string, cfg Config, results [][2]string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Performance on a real node\n\n")
	fmt.Fprintf(&b, "Generated by `make bench-cluster` (the e2e suite, `E2E_REPORT=%s`) on %s, on the %s cluster: ",
		filepath.Base(path), time.Now().UTC().Format("2006-01-02"), provider)
	fmt.Fprintf(&b, "%d CPUs (%s/%s), %d Plugin edits with the pod nudge back to back, %d with it %v apart, and %d without. "+
		"Every figure is one run of the suite on this machine, measured from the test's side. "+
		"Plugin edits are written with client-go and timed from the moment the patch is sent, "+
		"each stage as it reached the test: watch events (started before the edit) for the "+
		"ConfigMap, the pod, the PluginHost and the Plugin, the host's own `appliedAt`, the "+
		"ConfigMap volume's `..data` link on the node, and a long-poll of the host's `/status` "+
		"for served. The other steps are timed from a `kubectl` command to the state read back "+
		"over HTTP or from the API. What the stages show: "+
		"[performance.md, \"A Plugin edit on a real node, stage by stage\"]"+
		"(performance.md#a-plugin-edit-on-a-real-node-stage-by-stage).\n\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, cfg.EditsWithNudge, cfg.EditsSpaced, EditSpacing, cfg.EditsWithoutNudge)
	b.WriteString("| measurement | result |\n| --- | --- |\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s |\n", r[0], r[1])
	}
	b.WriteString("\nReproduce: `make bench-cluster` (root; builds the node and the image; about 12 minutes; " +
		"`BENCH_CLUSTER_EDITS` edits, 100 by default). " +
		"What the cluster is and what it changes on the machine: [cluster.md](cluster.md).\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
