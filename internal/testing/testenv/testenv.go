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

// Package testenv starts a real kube-apiserver and etcd (controller-runtime's envtest) with
// this repository's CRDs installed, for the tests of api/, controllers/ and the local
// end-to-end suite. Start it once per test package, in TestMain.
//
// The control-plane binaries come from KUBEBUILDER_ASSETS, which `make test` sets after
// building them with `make k8s-binaries`. Without them Start fails: a test that needs an API
// server must not silently skip.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// AssetsEnv is the environment variable naming the directory that holds kube-apiserver,
// etcd and kubectl.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// Options configure Start. The zero value is ready to use.
type Options struct {
	// AttachControlPlaneOutput copies the API server's and etcd's output to this process's
	// stdout and stderr, for debugging.
	AttachControlPlaneOutput bool
	// WithoutCRDs starts the control plane without the CRDs of config/crd/bases, for tests
	// that install them themselves (the Helm chart's CRD lifecycle).
	WithoutCRDs bool
}

// Env is a running control plane.
type Env struct {
	// Config connects to the API server as an administrator.
	Config *rest.Config
	// Client is a controller-runtime client whose Scheme has the client-go types and
	// plugins.hotreload.io/v1alpha1.
	Client client.Client
	// Scheme is the scheme of Client.
	Scheme *runtime.Scheme
	// Kubeconfig is the path of a kubeconfig file for an administrator (group
	// system:masters), for running kubectl against the API server.
	Kubeconfig string
	// Kubectl is the path of the kubectl binary in KUBEBUILDER_ASSETS, or empty if there is
	// none.
	Kubectl string
	// RepoRoot is the directory of the repository's go.mod.
	RepoRoot string

	environment *envtest.Environment
	tmpDir      string
}

// controlPlaneTimeout bounds starting and stopping etcd and kube-apiserver.
const controlPlaneTimeout = 3 * time.Minute

// Start starts etcd and kube-apiserver from KUBEBUILDER_ASSETS, installs the CRDs of
// config/crd/bases (unless opts.WithoutCRDs) and waits until they are served.
func Start(opts Options) (*Env, error) {
	root, err := testutil.RepoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := assetsDir()
	if err != nil {
		return nil, err
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("building scheme: %w", err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("building scheme: %w", err)
	}

	environment := &envtest.Environment{
		Scheme:                   scheme,
		CRDDirectoryPaths:        []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		BinaryAssetsDirectory:    assets,
		AttachControlPlaneOutput: opts.AttachControlPlaneOutput,
		// envtest's 20 s default fails a busy 2-core machine (load average 20+ while several
		// packages build and test at once starts kube-apiserver in 30–60 s); the timeout
		// bounds a hang, it measures nothing.
		ControlPlaneStartTimeout: controlPlaneTimeout,
		ControlPlaneStopTimeout:  controlPlaneTimeout,
	}
	if opts.WithoutCRDs {
		environment.CRDDirectoryPaths = nil
	}
	cfg, err := environment.Start()
	if err != nil {
		// Start may leave etcd running when the API server fails to come up.
		_ = environment.Stop()
		return nil, fmt.Errorf("starting envtest control plane from %s: %w", assets, err)
	}

	env := &Env{Config: cfg, Scheme: scheme, RepoRoot: root, environment: environment}
	if err := env.init(assets); err != nil {
		return nil, errors.Join(err, env.Stop())
	}
	return env, nil
}

func (e *Env) init(assets string) error {
	c, err := client.New(e.Config, client.Options{Scheme: e.Scheme})
	if err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	e.Client = c

	admin, err := e.environment.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding admin user: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("writing admin kubeconfig: %w", err)
	}
	e.tmpDir, err = os.MkdirTemp("", "testenv-")
	if err != nil {
		return err
	}
	e.Kubeconfig = filepath.Join(e.tmpDir, "kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, kubeconfig, 0o600); err != nil {
		return err
	}

	if kubectl := filepath.Join(assets, "kubectl"); isExecutable(kubectl) {
		e.Kubectl = kubectl
	}
	return nil
}

// Stop stops the control plane and removes the kubeconfig file. It is safe to call on a
// nil Env.
func (e *Env) Stop() error {
	if e == nil {
		return nil
	}
	var errs []error
	if e.environment != nil {
		if err := e.environment.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping envtest control plane: %w", err))
		}
	}
	if e.tmpDir != "" {
		errs = append(errs, os.RemoveAll(e.tmpDir))
	}
	return errors.Join(errs...)
}

// assetsDir returns KUBEBUILDER_ASSETS after checking that it holds the control plane.
func assetsDir() (string, error) {
	const howTo = "run the tests with `make test`, or build the binaries with `make k8s-binaries` " +
		"and set KUBEBUILDER_ASSETS=$(pwd)/bin/k8s/<version>-<os>-<arch>"
	dir := os.Getenv(AssetsEnv)
	if dir == "" {
		return "", fmt.Errorf("testenv: %s is not set, so there is no kube-apiserver and etcd to test against: %s",
			AssetsEnv, howTo)
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if !isExecutable(filepath.Join(dir, bin)) {
			return "", fmt.Errorf("testenv: %s=%s has no executable %s: %s", AssetsEnv, dir, bin, howTo)
		}
	}
	return dir, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
