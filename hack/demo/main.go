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

// Command demo runs the whole system on this machine in the foreground, for a person to try:
// a real kube-apiserver and etcd with the CRDs, the manager, a node agent that runs each host
// pod as a real pluginhost process, and config/samples applied with kubectl. It prints the
// kubeconfig, kubectl and curl commands to try and where the logs are; Ctrl-C stops
// everything. `make demo` builds what it needs and runs it; see docs/local.md.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/controllers"
	"github.com/hotreload/plugin-operator/internal/testing/localcluster"
	"github.com/hotreload/plugin-operator/internal/testing/testenv"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// marker is the file that makes a work directory the demo's own, so that the next run may
// empty it.
const marker = ".plugin-operator-demo"

type flags struct {
	workDir, namespace, samples, pluginhost string
	nudge                                   bool
	syncPeriod                              time.Duration
	controlPlaneOutput                      bool
}

func parseFlags(args []string, stderr io.Writer) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.workDir, "workdir", filepath.Join(os.TempDir(), "plugin-operator-demo"),
		"directory for the kubeconfig, logs and the host pods' files; emptied at start, kept at exit")
	fs.StringVar(&f.namespace, "namespace", "default", "namespace to apply the samples in")
	fs.StringVar(&f.samples, "samples", "config/samples", "kustomization applied with kubectl apply -k (relative to the repository)")
	fs.StringVar(&f.pluginhost, "pluginhost", "", "pluginhost binary the host pods run (default: go build ./cmd/pluginhost)")
	fs.BoolVar(&f.nudge, "pod-nudge", true, "the manager's --pod-nudge: annotate host pods so that kubelet re-projects the config at once")
	fs.DurationVar(&f.syncPeriod, "sync-period", 0, "the stand-in kubelet's periodic volume re-sync (default kubelet's 60s, jittered to 60-90s)")
	fs.BoolVar(&f.controlPlaneOutput, "control-plane-output", false, "show kube-apiserver's and etcd's output")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return f, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	root, err := testutil.RepoRoot()
	if err != nil {
		return fmt.Errorf("run the demo from the repository (make demo): %w", err)
	}
	assets, err := controlPlane(root)
	if err != nil {
		return err
	}
	if err := claimWorkDir(f.workDir); err != nil {
		return err
	}
	defer os.Remove(filepath.Join(f.workDir, marker+".pid"))

	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	say("Starting the local stack: kube-apiserver and etcd from %s, the manager, the node agent…", assets)
	var announced atomic.Bool
	opts := controllers.DefaultOptions()
	opts.PodNudge = f.nudge
	started := time.Now()
	c, err := localcluster.Start(ctx, localcluster.Options{
		PluginhostBinary: f.pluginhost, WorkDir: f.workDir, KeepWorkDir: true, Controllers: &opts,
		SyncPeriod: f.syncPeriod, AttachControlPlaneOutput: f.controlPlaneOutput,
		OnHostReady: func(h localcluster.Host) {
			if announced.Load() {
				say("» host %s/%s ready at %s (pod %s, pid %d, restarts %d)", h.Namespace, h.Name, h.URL, h.Pod, h.PID, h.Restarts)
			}
		},
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil // Ctrl-C while starting; Start stopped what it had started
		}
		return err
	}
	defer func() {
		say("\nStopping: manager, host processes, control plane…")
		if err := c.Stop(); err != nil {
			fmt.Fprintln(stderr, "demo: stopping:", err)
		}
		say("Stopped. The logs stay in %s until the next `make demo`.", f.workDir)
	}()
	say("Control plane and manager up in %s.", time.Since(started).Round(100*time.Millisecond))

	kubectl := func(args ...string) error {
		say("$ kubectl %s", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, c.Kubectl, args...)
		cmd.Dir = c.RepoRoot
		cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig)
		out, errOut := &lineIndenter{w: stdout}, &lineIndenter{w: stderr}
		cmd.Stdout, cmd.Stderr = out, errOut
		defer out.flush()
		defer errOut.flush()
		return cmd.Run()
	}
	if err := kubectl("apply", "-k", f.samples, "-n", f.namespace); err != nil {
		if ctx.Err() != nil {
			return nil // Ctrl-C while starting
		}
		return fmt.Errorf("applying the samples: %w", err)
	}
	if err := kubectl("wait", "--for=condition=Ready", "plugins", "--all", "-n", f.namespace, "--timeout=120s"); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("waiting for the sample Plugins: %w (see %s)", err, c.ManagerLog)
	}
	hosts := &v1alpha1.PluginHostList{}
	if err := c.Client.List(ctx, hosts); err != nil {
		return err
	}
	var running []localcluster.Host
	for _, h := range hosts.Items {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		host, err := c.WaitForHost(wctx, h.Namespace, h.Name)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		running = append(running, host)
	}
	if len(running) == 0 {
		return errors.New("the samples have no PluginHost")
	}

	printGuide(stdout, c, f, running)
	announced.Store(true)
	<-ctx.Done()
	return nil
}

// printGuide prints what to try.
func printGuide(w io.Writer, c *localcluster.Cluster, f *flags, hosts []localcluster.Host) {
	h := hosts[0]
	ns := ""
	if f.namespace != "default" {
		ns = " -n " + f.namespace
	}
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("")
	p("The local stack is running. In another terminal:")
	p("")
	p("  export KUBECONFIG=%s", c.Kubeconfig)
	p("  export PATH=%s:$PATH    # kubectl %s, matching the API server", filepath.Dir(c.Kubectl), kubernetesVersion())
	p("")
	p("  kubectl get plugins,pluginhosts%s", ns)
	p("  kubectl patch plugin counter-1%s --type=merge -p '{\"spec\":{\"options\":{\"increment\":10}}}'", ns)
	p("  kubectl wait --for=condition=Ready plugin/counter-1%s", ns)
	p("  kubectl get pluginhost %s%s -o yaml", h.Name, ns)
	p("  kubectl get pods,deployments,configmaps%s -o wide", ns)
	p("")
	p("PluginHost %s/%s runs as the real pluginhost binary (pid %d) at %s — the seed's walkthrough:", h.Namespace, h.Name, h.PID, h.URL)
	p("")
	p("  curl -X POST %s/plugins/counter-1/increment -H \"Content-Type: application/json\" -d '{\"value\": 5}'", h.URL)
	p("  curl %s/plugins/counter-1/get", h.URL)
	p("  curl -X POST %s/plugins/counter-1/reset", h.URL)
	p("  curl -X POST %s/plugins/counter-2/increment -H \"Content-Type: application/json\" -H \"X-API-Key: change-me\" -d '{\"value\": 1}'", h.URL)
	p("  curl %s/status    # the operational port (--ops-addr)", h.OpsURL)
	p("")
	p("(the Plugins' status.url is the in-cluster Service address; nothing routes it here.)")
	for _, o := range hosts[1:] {
		p("PluginHost %s/%s: %s", o.Namespace, o.Name, o.URL)
	}
	p("")
	p("Files and logs:")
	file := func(what, path string) { p("  %-26s %s", what+":", path) }
	file("manager log", c.ManagerLog)
	file("node agent log", c.AgentLog)
	for _, o := range hosts {
		file("host "+o.Name+" log", o.Log)
		file("host "+o.Name+" config.json", filepath.Join(o.Dir, "config", "config.json"))
	}
	p("  (config/ is projected from ConfigMap <host>-config the way kubelet does it)")
	p("")
	p("Ctrl-C stops everything.")
}

// controlPlane returns the directory of kube-apiserver, etcd and kubectl: KUBEBUILDER_ASSETS,
// or bin/k8s/<version>-<os>-<arch> as `make k8s-binaries` builds it.
func controlPlane(root string) (string, error) {
	dir := os.Getenv(testenv.AssetsEnv)
	if dir == "" {
		dir = filepath.Join(root, "bin", "k8s", kubernetesVersion()+"-"+runtime.GOOS+"-"+runtime.GOARCH)
		if err := os.Setenv(testenv.AssetsEnv, dir); err != nil {
			return "", err
		}
	}
	for _, bin := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return "", fmt.Errorf("no %s in %s: build the control plane with `make k8s-binaries` (or run `make demo`)", bin, dir)
		}
	}
	return dir, nil
}

// kubernetesVersion is the Kubernetes version of the k8s.io/api module this binary was built
// with (v0.37.2 -> 1.37.2), the version `make k8s-binaries` builds.
func kubernetesVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "k8s.io/api" {
				return strings.Replace(strings.TrimPrefix(dep.Version, "v"), "0.", "1.", 1)
			}
		}
	}
	return "unknown"
}

// claimWorkDir makes dir the demo's: it empties a directory an earlier demo left (refusing
// while that demo still runs) and refuses any other non-empty directory.
func claimWorkDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case len(entries) == 0:
	default:
		if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
			return fmt.Errorf("%s is not empty and not a demo work directory; choose another with --workdir", dir)
		}
		if b, err := os.ReadFile(filepath.Join(dir, marker+".pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == nil {
				return fmt.Errorf("another demo (pid %d) uses %s; stop it or choose another --workdir", pid, dir)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, marker), nil, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, marker+".pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

// lineIndenter writes each complete line it is given to w, indented by four spaces.
type lineIndenter struct {
	w   io.Writer
	buf []byte
}

func (l *lineIndenter) Write(b []byte) (int, error) {
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		if _, err := fmt.Fprintf(l.w, "    %s\n", l.buf[:i]); err != nil {
			return 0, err
		}
		l.buf = l.buf[i+1:]
	}
}

// flush writes a last line that had no newline.
func (l *lineIndenter) flush() {
	if len(l.buf) > 0 {
		fmt.Fprintf(l.w, "    %s\n", l.buf)
		l.buf = nil
	}
}
