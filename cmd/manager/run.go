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

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	uzap "go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/hotreload/plugin-operator/controllers"
)

// flags are the manager's command-line settings.
type flags struct {
	metricsAddr      string
	metricsSecure    bool
	probeAddr        string
	pprofAddr        string
	leaderElect      bool
	leaderElectionID string
	leaderElectionNS string
	watchNamespaces  []string
	controllers      controllers.Options
	zap              zap.Options
}

// parseFlags reads args. The standard zap flags (--zap-log-level, --zap-encoder, …) and
// --kubeconfig are included.
func parseFlags(args []string, stderr io.Writer) (*flags, error) {
	f := &flags{controllers: controllers.DefaultOptions()}
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":8443", "address of the metrics endpoint; 0 disables it")
	fs.BoolVar(&f.metricsSecure, "metrics-secure", true, "serve metrics over HTTPS, authenticating and authorizing each scrape with TokenReview/SubjectAccessReview")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz; 0 disables them")
	fs.StringVar(&f.pprofAddr, "pprof-bind-address", "", "address of Go's /debug/pprof endpoints, for profiling the manager; empty (the default) or 0 disables them")
	fs.BoolVar(&f.leaderElect, "leader-elect", false, "hold a Lease so that one manager replica is active at a time")
	fs.StringVar(&f.leaderElectionID, "leader-election-id", "plugin-operator.plugins.hotreload.io", "name of the leader-election Lease")
	fs.StringVar(&f.leaderElectionNS, "leader-election-namespace", "", "namespace of the Lease; empty means the manager pod's namespace")
	fs.Func("watch-namespaces", "comma-separated namespaces to watch; empty watches all", func(s string) error {
		f.watchNamespaces = nil
		for ns := range strings.SplitSeq(s, ",") {
			if ns = strings.TrimSpace(ns); ns != "" {
				f.watchNamespaces = append(f.watchNamespaces, ns)
			}
		}
		return nil
	})
	c := &f.controllers
	fs.StringVar(&c.DefaultHostImage, "default-host-image", c.DefaultHostImage, "runtime image of PluginHosts without spec.image")
	fs.BoolVar(&c.ConfigPush, "config-push", c.ConfigPush, "push each rendered configuration to the host pods' operational port (PUT /config) as soon as the ConfigMap is written, so they serve it without waiting for kubelet to project the volume; the ConfigMap stays the durable copy")
	fs.BoolVar(&c.PodNudge, "pod-nudge", c.PodNudge, "annotate host pods with each new config revision so that kubelet re-syncs their volumes at once; disable where the operator may not patch pods")
	fs.DurationVar(&c.StatusPollInterval, "status-poll-interval", c.StatusPollInterval, "how often host pods' /status is read while they have not applied the desired revision")
	fs.DurationVar(&c.StatusTimeout, "status-timeout", c.StatusTimeout, "timeout of one GET /status of a host pod")
	fs.IntVar(&c.MaxConcurrentProbes, "max-concurrent-probes", c.MaxConcurrentProbes, "most GET /status requests in flight over all hosts")
	fs.Int64Var(&c.MaxStatusBytes, "max-status-bytes", c.MaxStatusBytes, "largest GET /status reply read from a host pod; a longer reply is an error")
	fs.Func("allowed-host-images", "comma-separated images a PluginHost's spec.image may name, compared as parsed references: "+
		"a registry (registry.example.com), a repository prefix matching whole path segments (registry.example.com/team, also written registry.example.com/team/*), "+
		"a repository with a tag (…/host:v2) or a digest (…/host@sha256:…), or \"*\" for any; every entry names its registry; --default-host-image is always allowed", func(s string) error {
		c.AllowedHostImages = nil
		for img := range strings.SplitSeq(s, ",") {
			if img = strings.TrimSpace(img); img != "" {
				c.AllowedHostImages = append(c.AllowedHostImages, img)
			}
		}
		return controllers.ValidateAllowedHostImages(c.AllowedHostImages)
	})
	fs.DurationVar(&c.RenderPace, "render-pace", c.RenderPace, "space the reconciles that Plugin changes bring to a PluginHost by this much per host reconciled in the last 2s (merging a burst of changes into few renders); 0 reconciles at every change")
	fs.DurationVar(&c.MaxRenderPace, "max-render-pace", c.MaxRenderPace, "longest spacing of --render-pace")
	fs.IntVar(&c.MaxConcurrentReconciles, "max-concurrent-reconciles", c.MaxConcurrentReconciles, "workers of the PluginHost controller")
	fs.IntVar(&c.MaxConcurrentPluginReconciles, "max-concurrent-plugin-reconciles", c.MaxConcurrentPluginReconciles, "workers of the Plugin controller (status writes only)")
	c.ManagerNamespace = os.Getenv("POD_NAMESPACE") // the downward API sets it in the manager's pod
	fs.StringVar(&c.ManagerNamespace, "manager-namespace", c.ManagerNamespace, "namespace of the manager's pods, which PluginHost NetworkPolicies admit to the runtime's operational port; defaults to $POD_NAMESPACE")
	fs.Func("manager-pod-labels", "comma-separated key=value labels of the manager's pods, which PluginHost NetworkPolicies admit to the runtime's operational port (default control-plane=controller-manager)", func(s string) error {
		sel, err := labels.ConvertSelectorToLabelsMap(s)
		if err != nil {
			return fmt.Errorf("want key=value[,key=value…]: %w", err)
		}
		if len(sel) == 0 {
			return errors.New("must name at least one label: an empty selector would admit every pod")
		}
		c.ManagerPodLabels = sel
		return nil
	})
	config.RegisterFlags(fs)
	f.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	switch {
	case c.StatusPollInterval <= 0:
		return nil, errors.New("--status-poll-interval must be positive")
	case c.StatusTimeout <= 0:
		return nil, errors.New("--status-timeout must be positive")
	case c.MaxConcurrentProbes < 1:
		return nil, errors.New("--max-concurrent-probes must be at least 1")
	case c.MaxStatusBytes < 1:
		return nil, errors.New("--max-status-bytes must be at least 1")
	case c.RenderPace < 0:
		return nil, errors.New("--render-pace must not be negative")
	case c.MaxRenderPace <= 0:
		return nil, errors.New("--max-render-pace must be positive")
	case c.MaxConcurrentReconciles < 1:
		return nil, errors.New("--max-concurrent-reconciles must be at least 1")
	case c.MaxConcurrentPluginReconciles < 1:
		return nil, errors.New("--max-concurrent-plugin-reconciles must be at least 1")
	}
	return f, nil
}

// run starts the manager and blocks until ctx is done.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	f.zap.ZapOpts = append(f.zap.ZapOpts, uzap.WrapCore(func(c zapcore.Core) zapcore.Core { return lazyWithCore{c} }))
	logger := zap.New(zap.UseFlagOptions(&f.zap), zap.WriteTo(stderr))
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)
	log := logger.WithName("setup")

	restConfig, err := config.GetConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	metrics := metricsserver.Options{BindAddress: f.metricsAddr, SecureServing: f.metricsSecure}
	if f.metricsSecure {
		metrics.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := controllers.NewManager(ctx, restConfig, controllers.ManagerOptions{
		Logger:                  logger,
		Metrics:                 metrics,
		HealthProbeBindAddress:  f.probeAddr,
		PprofBindAddress:        f.pprofAddr,
		LeaderElection:          f.leaderElect,
		LeaderElectionID:        f.leaderElectionID,
		LeaderElectionNamespace: f.leaderElectionNS,
		WatchNamespaces:         f.watchNamespaces,
		Controllers:             f.controllers,
	})
	if err != nil {
		return err
	}
	log.Info("Starting manager", "watchNamespaces", f.watchNamespaces, "leaderElection", f.leaderElect,
		"defaultHostImage", f.controllers.DefaultHostImage, "allowedHostImages", f.controllers.AllowedHostImages,
		"podNudge", f.controllers.PodNudge,
		"configPush", f.controllers.ConfigPush,
		"managerNamespace", f.controllers.ManagerNamespace, "managerPodLabels", f.controllers.ManagerPodLabels)
	return mgr.Start(ctx)
}
