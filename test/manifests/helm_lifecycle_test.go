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

package manifests_test

import (
	"context"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/test/e2e"
)

// withoutWait drops --wait and --timeout from helm arguments: envtest has no kubelet, so
// no pod ever becomes ready.
func withoutWait(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--wait":
		case "--timeout":
			i++
		default:
			out = append(out, args[i])
		}
	}
	return out
}

// TestHelmLifecycle runs the Helm commands of the kind e2e suite for real against the
// envtest API server: install, upgrade with the pod nudge off, uninstall. It proves the
// release installs and upgrades cleanly (no ownership conflicts, the upgrade reaches the
// Deployment) — everything the suite does before it needs a kubelet.
func TestHelmLifecycle(t *testing.T) {
	h := helm(t)
	env := helmEnv(t) // the release installs the CRDs: a control plane without them
	kc := []string{"--kubeconfig", env.Kubeconfig}
	ctx := context.Background()
	dep := &appsv1.Deployment{}
	key := client.ObjectKey{Namespace: e2e.ReleaseNamespace, Name: e2e.Release + "-controller-manager"}
	managerArgs := func() []string {
		t.Helper()
		if err := env.Client.Get(ctx, key, dep); err != nil {
			t.Fatalf("getting the manager Deployment: %v", err)
		}
		return managerContainer(t, dep).Args
	}

	mustRun(t, h, append(withoutWait(e2e.HelmInstallArgs(root, e2e.DefaultImage)), kc...)...)
	t.Cleanup(func() {
		_, _, _ = runCmd(h, append([]string{"uninstall", e2e.Release, "--namespace", e2e.ReleaseNamespace}, kc...)...)
		deleteCRDs(t, env)
	})
	if args := managerArgs(); !slices.Contains(args, "--pod-nudge=true") {
		t.Errorf("after install, manager args %q lack --pod-nudge=true", args)
	}
	if img := managerContainer(t, dep).Image; img != e2e.DefaultImage {
		t.Errorf("after install, manager image %q, want %q", img, e2e.DefaultImage)
	}

	mustRun(t, h, append(withoutWait(e2e.HelmInstallArgs(root, e2e.DefaultImage, "--set", "podNudge=false")), kc...)...)
	if args := managerArgs(); !slices.Contains(args, "--pod-nudge=false") {
		t.Errorf("after `helm upgrade --set podNudge=false`, manager args %q lack --pod-nudge=false", args)
	}
	status := mustRun(t, h, append([]string{"status", e2e.Release, "--namespace", e2e.ReleaseNamespace}, kc...)...)
	if !slices.Contains(splitLines(status), "REVISION: 2") {
		t.Errorf("helm status after one upgrade:\n%s", status)
	}

	mustRun(t, h, append([]string{"uninstall", e2e.Release, "--namespace", e2e.ReleaseNamespace, "--wait"}, kc...)...)
	if err := env.Client.Get(ctx, key, dep); !apierrors.IsNotFound(err) {
		t.Errorf("after helm uninstall, the manager Deployment: %v, want not found", err)
	}
	// crds.keep (the default): the CRDs, and every Plugin and PluginHost, stay.
	for _, name := range ourCRDs {
		if _, err := getCRD(env, name); err != nil {
			t.Errorf("after helm uninstall with crds.keep, CRD %s: %v, want it kept", name, err)
		}
	}
}

func splitLines(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == '\n' {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	return append(out, string(b[start:]))
}
