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

// Package localcluster runs the whole system on one machine with real parts only, for the
// local end-to-end tests (test/local) and `make demo`:
//
//   - a real kube-apiserver and etcd (envtest, internal/testing/testenv) with the CRDs
//     installed;
//   - the real manager code in-process: controllers.NewManager, as cmd/manager builds it;
//   - a node agent that stands in for the Deployment and ReplicaSet controllers, kubelet and
//     the garbage collector: for each Deployment labelled plugins.hotreload.io/host it
//     creates a ReplicaSet that the Deployment controls and the Pod, controlled by that
//     ReplicaSet, from the pod template (the owner chain the manager trusts), projects the pod's ConfigMap and Secret volumes into local
//     directories exactly as kubelet does (internal/kubeletsim), runs the container as the
//     real pluginhost binary listening on a free local port (which it writes into the pod
//     as the containerPort named http), and reports the pod Running and Ready when the
//     process answers its readiness probe, so the manager's status feedback runs for real.
//
// Each pod gets a directory <WorkDir>/<namespace>/<host>/ holding config/ (the ConfigMap
// volume), secrets/ (the credentials Secret volume), the other volumes by name (state/,
// tmp/) and the process's output, pluginhost.log. The manager runs with SecretsMountPath
// "../secrets", which the runtime resolves from the config file's directory.
//
// See docs/local.md for what the node agent models and what it does not.
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/controllers"
	"github.com/hotreload/plugin-operator/internal/testing/testenv"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// SecretsMountPath is the manager's Options.SecretsMountPath here: relative, so that the
// credential files in config.json resolve from <pod dir>/config to <pod dir>/secrets.
const SecretsMountPath = "../secrets"

// Options configure Start. The zero value is ready to use.
type Options struct {
	// PluginhostBinary is the runtime binary that runs each host pod. Empty: Start builds
	// ./cmd/pluginhost with `go build` into WorkDir.
	PluginhostBinary string
	// WorkDir holds the pods' directories, the logs and the kubeconfig. Empty: a new
	// directory under os.TempDir(), removed by Stop unless KeepWorkDir. Keep it short: the
	// runtime refuses config paths that Argus cannot report (over 109 bytes).
	WorkDir string
	// KeepWorkDir keeps a WorkDir that Start created.
	KeepWorkDir bool
	// Controllers are the manager's options; nil means controllers.DefaultOptions(). An
	// empty or default (in-pod) SecretsMountPath becomes SecretsMountPath.
	Controllers *controllers.Options
	// SyncPeriod is the simulated kubelet's periodic volume re-sync (kubelet's
	// syncFrequency), always jittered by up to +50 % as kubelet does. Zero means kubelet's
	// default, 60 s (so 60–90 s).
	SyncPeriod time.Duration
	// SyncPeriodFor, if set, gives the sync period of the pods of a namespace (zero: use
	// SyncPeriod), so that a test can watch the periodic re-sync alone in its namespace. It
	// applies to pods created afterwards.
	SyncPeriodFor func(namespace string) time.Duration
	// OnHostReady, if set, is called each time a host process turns ready (first start,
	// restarts, new pods), before Host, WaitForHost or the pod's status show it ready. It
	// must not block.
	OnHostReady func(Host)
	// AttachControlPlaneOutput copies kube-apiserver's and etcd's output to this process's.
	AttachControlPlaneOutput bool
}

// Cluster is a running local system.
type Cluster struct {
	// Config connects to the API server as an administrator.
	Config *rest.Config
	// Client is an uncached client with the client-go and v1alpha1 types.
	Client client.Client
	// Scheme is Client's scheme.
	Scheme *runtime.Scheme
	// Kubeconfig is an administrator's kubeconfig file, for kubectl.
	Kubeconfig string
	// Kubectl is the kubectl of KUBEBUILDER_ASSETS, or empty if there is none.
	Kubectl string
	// RepoRoot is the repository's directory.
	RepoRoot string
	// WorkDir holds the pods' directories and the logs.
	WorkDir string
	// ManagerLog and AgentLog are the log files of the manager and of the node agent.
	ManagerLog, AgentLog string
	// PluginhostBinary is the binary the host pods run.
	PluginhostBinary string

	env        *testenv.Env
	agent      *agent
	ownWorkDir bool
	keep       bool
	logFiles   []*os.File
	managerLog logr.Logger

	mu          sync.Mutex
	stopManager func() error
	stopAgent   func() error
	stopOnce    sync.Once
	stopErr     error
}

// Start starts the control plane, the node agent and the manager. ctx bounds the start
// only; the cluster runs until Stop.
func Start(ctx context.Context, opts Options) (_ *Cluster, retErr error) {
	c := &Cluster{WorkDir: opts.WorkDir, keep: opts.KeepWorkDir}
	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, c.Stop())
		}
	}()
	root, err := testutil.RepoRoot()
	if err != nil {
		return nil, err
	}
	c.RepoRoot = root
	if c.WorkDir == "" {
		if c.WorkDir, err = os.MkdirTemp("", "lc-"); err != nil {
			return nil, err
		}
		c.ownWorkDir = true
	} else if err := os.MkdirAll(c.WorkDir, 0o755); err != nil {
		return nil, err
	}
	if c.WorkDir, err = filepath.Abs(c.WorkDir); err != nil {
		return nil, err
	}

	c.PluginhostBinary = opts.PluginhostBinary
	if c.PluginhostBinary == "" {
		c.PluginhostBinary = filepath.Join(c.WorkDir, ".bin", "pluginhost")
		if err := build(ctx, root, "./cmd/pluginhost", c.PluginhostBinary); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(c.PluginhostBinary); err != nil {
		return nil, fmt.Errorf("pluginhost binary: %w", err)
	}

	managerOut, err := c.openLog("manager.log")
	if err != nil {
		return nil, err
	}
	agentOut, err := c.openLog("agent.log")
	if err != nil {
		return nil, err
	}
	c.ManagerLog, c.AgentLog = managerOut.Name(), agentOut.Name()
	managerHandler := newLogHandler(managerOut)
	c.managerLog = logr.FromSlogHandler(managerHandler)
	// controller-runtime's and client-go's package-level loggers: into the manager's log.
	useProcessLog(managerHandler)

	c.env, err = testenv.Start(testenv.Options{AttachControlPlaneOutput: opts.AttachControlPlaneOutput})
	if err != nil {
		return nil, err
	}
	c.Config, c.Client, c.Scheme, c.Kubectl = c.env.Config, c.env.Client, c.env.Scheme, c.env.Kubectl
	kubeconfig, err := os.ReadFile(c.env.Kubeconfig)
	if err != nil {
		return nil, err
	}
	c.Kubeconfig = filepath.Join(c.WorkDir, "kubeconfig.yaml")
	if err := os.WriteFile(c.Kubeconfig, kubeconfig, 0o600); err != nil {
		return nil, err
	}

	if err := c.startAgent(opts, newLogger(agentOut)); err != nil {
		return nil, err
	}
	mopts := controllers.DefaultOptions()
	if opts.Controllers != nil {
		mopts = *opts.Controllers
	}
	if err := c.RestartManager(mopts); err != nil {
		return nil, err
	}
	return c, nil
}

// build runs `go build -o out pkg` in the repository.
func build(ctx context.Context, root, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %w\n%s", pkg, err, b)
	}
	return nil
}

func (c *Cluster) openLog(name string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(c.WorkDir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	c.logFiles = append(c.logFiles, f)
	return f, nil
}

// newLogger writes text lines (time, level, message, key=value) to w.
func newLogger(w io.Writer) logr.Logger {
	return logr.FromSlogHandler(newLogHandler(w))
}

func newLogHandler(w io.Writer) slog.Handler {
	return slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})
}

// hostLabelSelector keeps the operator's own objects, as the manager's cache does.
func hostLabelSelector() labels.Selector {
	req, err := labels.NewRequirement(v1alpha1.LabelHost, selection.Exists, nil)
	if err != nil {
		panic(err)
	}
	return labels.NewSelector().Add(*req)
}

// startAgent runs the node agent in a controller-runtime manager of its own, so that the
// operator's manager can be restarted with other options while pods keep running.
func (c *Cluster) startAgent(opts Options, log logr.Logger) error {
	owned := cache.ByObject{Label: hostLabelSelector()}
	mgr, err := ctrl.NewManager(c.Config, ctrl.Options{
		Scheme:                 c.Scheme,
		Logger:                 log,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}: owned,
			&appsv1.ReplicaSet{}: owned,
			&corev1.Pod{}:        owned,
		}},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return fmt.Errorf("creating the node agent: %w", err)
	}
	direct, err := client.NewWithWatch(c.Config, client.Options{Scheme: c.Scheme})
	if err != nil {
		return err
	}
	period := func(ns string) time.Duration {
		if opts.SyncPeriodFor != nil {
			if d := opts.SyncPeriodFor(ns); d > 0 {
				return d
			}
		}
		return opts.SyncPeriod
	}
	c.agent = &agent{
		cached: mgr.GetClient(), c: direct, binary: c.PluginhostBinary, workDir: c.WorkDir,
		syncPeriod: period, onReady: opts.OnHostReady, log: log, pods: map[types.NamespacedName]*hostPod{},
	}
	if err := c.agent.setup(mgr); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.stopAgent = runManager(ctx, cancel, mgr, log)
	return nil
}

// runManager starts mgr until cancel and returns the function that stops it and returns its
// error.
func runManager(ctx context.Context, cancel context.CancelFunc, mgr ctrl.Manager, log logr.Logger) func() error {
	done := make(chan error, 1)
	go func() {
		err := mgr.Start(ctx)
		if err != nil {
			log.Error(err, "Manager stopped")
		}
		done <- err
	}()
	return func() error {
		cancel()
		return <-done
	}
}

// RestartManager stops the running manager, if any, and starts the manager code again with
// opts. An empty or default (in-pod) SecretsMountPath becomes SecretsMountPath. Host pods
// keep running.
func (c *Cluster) RestartManager(opts controllers.Options) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopManager != nil {
		if err := c.stopManager(); err != nil {
			return fmt.Errorf("stopping the manager: %w", err)
		}
		c.stopManager = nil
	}
	if opts.SecretsMountPath == "" || opts.SecretsMountPath == controllers.DefaultSecretsMountPath {
		opts.SecretsMountPath = SecretsMountPath // a pod's path means nothing on this machine
	}
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := controllers.NewManager(ctx, c.Config, controllers.ManagerOptions{
		Logger:                 c.managerLog,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controllers:            opts,
		// A restarted manager registers the same controllers again in this process.
		SkipNameValidation: true,
	})
	if err != nil {
		cancel()
		return fmt.Errorf("the manager: %w", err)
	}
	c.managerLog.Info("Starting manager", "podNudge", opts.PodNudge, "secretsMountPath", opts.SecretsMountPath)
	c.stopManager = runManager(ctx, cancel, mgr, c.managerLog)
	return nil
}

// Host returns the process of a PluginHost's pod, if one runs.
func (c *Cluster) Host(namespace, name string) (Host, bool) {
	if h := c.agent.host(namespace, name); h != nil {
		return h.info(), true
	}
	return Host{}, false
}

// HostURL returns http://127.0.0.1:<port> of a PluginHost's running pod.
func (c *Cluster) HostURL(namespace, name string) (string, error) {
	h, ok := c.Host(namespace, name)
	if !ok {
		return "", fmt.Errorf("no pod of PluginHost %s/%s runs", namespace, name)
	}
	return h.URL, nil
}

// WaitForHost waits until a PluginHost's pod runs and its process is ready.
func (c *Cluster) WaitForHost(ctx context.Context, namespace, name string) (Host, error) {
	for {
		if h := c.agent.host(namespace, name); h != nil {
			select {
			case <-h.waitReady():
				return h.info(), nil
			case <-time.After(100 * time.Millisecond): // the pod may be replaced meanwhile
			case <-ctx.Done():
				return Host{}, fmt.Errorf("waiting for PluginHost %s/%s: %w", namespace, name, ctx.Err())
			}
			continue
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return Host{}, fmt.Errorf("waiting for a pod of PluginHost %s/%s: %w", namespace, name, ctx.Err())
		}
	}
}

// RestartHost restarts the container of a PluginHost's pod as kubelet does when the
// container is killed: SIGTERM (the runtime saves its state), a new process with the same
// pod, volumes and state directory, restartCount + 1. It returns once the new process is
// ready.
func (c *Cluster) RestartHost(ctx context.Context, namespace, name string) (Host, error) {
	h := c.agent.host(namespace, name)
	if h == nil {
		return Host{}, fmt.Errorf("no pod of PluginHost %s/%s runs", namespace, name)
	}
	if err := h.restart(ctx); err != nil {
		return Host{}, err
	}
	return h.info(), nil
}

// Stop stops the manager, the node agent and every host process, then the control plane,
// and removes the work directory if Start created it (and KeepWorkDir is false). It is safe
// to call more than once and on a partly started Cluster.
func (c *Cluster) Stop() error {
	if c == nil {
		return nil
	}
	c.stopOnce.Do(func() {
		var errs []error
		c.mu.Lock()
		if c.stopManager != nil {
			errs = append(errs, c.stopManager())
			c.stopManager = nil
		}
		c.mu.Unlock()
		if c.stopAgent != nil {
			errs = append(errs, c.stopAgent())
		}
		if c.agent != nil {
			c.agent.stopAll()
		}
		errs = append(errs, c.env.Stop())
		for _, f := range c.logFiles {
			errs = append(errs, f.Close())
		}
		if c.ownWorkDir && !c.keep && c.WorkDir != "" {
			errs = append(errs, os.RemoveAll(c.WorkDir))
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}
