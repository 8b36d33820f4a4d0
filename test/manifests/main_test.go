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

// Package manifests_test checks what users install: the image's build context, the kustomize
// tree under config/ and the Helm chart. It renders them with the real tools (kubectl
// kustomize, helm lint/template, built by `make k8s-binaries`), applies every rendered
// object with server-side dry-run to an envtest API server (in namespaces that enforce the
// "restricted" Pod Security Standard), evaluates every pod template with
// k8s.io/pod-security-admission, and checks that the chart is in sync with config/.
package manifests_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/hotreload/plugin-operator/internal/testing/testenv"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

var (
	// env is the control plane shared by the tests; nil under -short.
	env *testenv.Env
	// root is the repository root.
	root string
)

func TestMain(m *testing.M) {
	flag.Parse()
	// The managers these tests run log to the test binary's stderr (shown when a test
	// fails); without a logger controller-runtime prints a "SetLogger was never called"
	// stack trace instead.
	ctrllog.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	var err error
	if root, err = testutil.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if !testing.Short() {
		if env, err = startEnv(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			_ = env.Stop()
			os.Exit(1)
		}
	}
	code := m.Run()
	if err := helmEnvStop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// startEnv starts envtest (our CRDs installed) and adds the Prometheus Operator's
// ServiceMonitor CRD, so that the optional ServiceMonitors can be dry-run too.
func startEnv() (*testenv.Env, error) {
	e, err := testenv.Start(testenv.Options{})
	if err != nil {
		return nil, err
	}
	if _, err := envtest.InstallCRDs(e.Config, envtest.CRDInstallOptions{
		Paths:              []string{filepath.Join(root, "test", "manifests", "testdata", "crds")},
		ErrorIfPathMissing: true,
	}); err != nil {
		return e, fmt.Errorf("installing the ServiceMonitor CRD: %w", err)
	}
	return e, nil
}

// needEnv skips a test that needs the API server or the built tools when only unit tests run
// (-short, `make test-unit`). Without -short, missing binaries fail the run (see tools).
func needEnv(t *testing.T) {
	t.Helper()
	if env == nil {
		t.Skip("needs the envtest API server, kubectl and helm; not started under -short")
	}
}

var (
	helmEnvOnce sync.Once
	helmEnvVal  *testenv.Env
	helmEnvErr  error
)

// helmEnv is a second control plane, started on first use, that has no CRDs of ours: Helm
// releases of the chart install (and own) the CRDs there, which they cannot do where envtest
// installed them already. Tests that use it delete what they installed, CRDs included.
func helmEnv(t *testing.T) *testenv.Env {
	t.Helper()
	needEnv(t)
	helmEnvOnce.Do(func() {
		helmEnvVal, helmEnvErr = testenv.Start(testenv.Options{WithoutCRDs: true})
	})
	if helmEnvErr != nil {
		t.Fatalf("starting the control plane for Helm releases: %v", helmEnvErr)
	}
	return helmEnvVal
}

func helmEnvStop() error {
	if helmEnvVal == nil {
		return nil
	}
	return helmEnvVal.Stop()
}
