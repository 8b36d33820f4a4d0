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

package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// ManagerOptions are the process-level settings of the operator's manager; Controllers holds
// the reconcilers' own. cmd/manager fills them from its flags; tests and the local cluster
// build the same manager with NewManager, so what they exercise is what ships.
type ManagerOptions struct {
	Logger logr.Logger
	// Metrics configures the metrics endpoint; BindAddress "0" disables it.
	Metrics metricsserver.Options
	// HealthProbeBindAddress serves /healthz and /readyz; "0" disables them.
	HealthProbeBindAddress string
	// PprofBindAddress serves Go's /debug/pprof endpoints; "" or "0" disables them.
	PprofBindAddress string
	LeaderElection   bool
	LeaderElectionID string
	// LeaderElectionNamespace is the Lease's namespace; empty means the pod's namespace.
	LeaderElectionNamespace string
	// WatchNamespaces restricts the cache to these namespaces; empty watches all.
	WatchNamespaces []string
	Controllers     Options
	// SkipNameValidation lets one process build several managers registering the same
	// controller names: tests and a restarted local-cluster manager.
	SkipNameValidation bool
}

// NewScheme returns a scheme with the client-go types and the operator's API.
func NewScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return scheme, nil
}

// NewManager builds the operator's manager: its scheme, cache and client settings, the
// reconcilers, and the health checks. ctx is used while setting up (the field indexes); the
// reconcilers have no background work of their own (a host's pods are read by its reconciles,
// requeued while a change is in flight). The caller starts the manager.
func NewManager(ctx context.Context, cfg *rest.Config, o ManagerOptions) (ctrl.Manager, error) {
	if err := ValidateAllowedHostImages(o.Controllers.AllowedHostImages); err != nil {
		return nil, err
	}
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Logger:                        o.Logger,
		Metrics:                       o.Metrics,
		HealthProbeBindAddress:        o.HealthProbeBindAddress,
		PprofBindAddress:              o.PprofBindAddress,
		LeaderElection:                o.LeaderElection,
		LeaderElectionID:              o.LeaderElectionID,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cacheOptions(o.WatchNamespaces),
		Client:                        clientOptions(),
		MapperProvider:                newCachedRESTMapper,
		Controller:                    config.Controller{SkipNameValidation: ptr.To(o.SkipNameValidation)},
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	if err := setupControllers(ctx, mgr, o.Controllers); err != nil {
		return nil, fmt.Errorf("setting up controllers: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), 100*time.Millisecond)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return errors.New("informer caches have not synced")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return mgr, nil
}
