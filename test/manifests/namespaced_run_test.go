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
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/controllers"
	"github.com/hotreload/plugin-operator/internal/testing/kubeletsim"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// TestNamespacedManagerRuns runs the manager's controllers as the chart's ServiceAccount
// (impersonated), with only what the chart grants it with watchNamespaces and podNudge=false:
// Roles in the watched namespace and no ClusterRole for its resources. Its namespaced cache
// syncs, and a PluginHost with a Plugin using a marked auth Secret is rendered, applied and
// reported there; a PluginHost in another namespace is not touched.
func TestNamespacedManagerRuns(t *testing.T) {
	needEnv(t)
	const release, system, watched, other = "nsrun", "nsrun-system", "nsrun-team", "nsrun-other"
	objs := helmTemplate(t, release, filepath.Join(root, chartDir), "--namespace", system,
		"--set", "watchNamespaces={"+watched+"}", "--set", "podNudge=false")
	applyRBAC(t, objs)
	ensureNamespaces(t, other)
	sa := serviceAccountUser(system, release+"-plugin-operator-controller-manager")

	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: sa.name, Groups: sa.groups}
	opts := controllers.DefaultOptions()
	opts.PodNudge = false
	opts.DefaultHostImage = "example.com/pluginhost:test"
	ctx, cancel := context.WithCancel(context.Background())
	// The manager as cmd/manager builds it, through the impersonating config.
	mgr, err := controllers.NewManager(ctx, cfg, controllers.ManagerOptions{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WatchNamespaces:        []string{watched},
		Controllers:            opts,
		// Other tests of this process build managers too.
		SkipNameValidation: true,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	syncCtx, syncCancel := context.WithTimeout(ctx, time.Minute)
	defer syncCancel()
	if !mgr.GetCache().WaitForCacheSync(syncCtx) {
		t.Fatal("the namespaced cache did not sync with the Roles alone")
	}

	c := env.Client
	for _, ns := range []string{watched, other} {
		host := &v1alpha1.PluginHost{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "h"},
			Spec: v1alpha1.PluginHostSpec{PluginSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "h"}}}}
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "key", Labels: map[string]string{v1alpha1.LabelPluginAuth: "true"}},
			StringData: map[string]string{"token": "t0k3n"}}
		p := &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p", Labels: map[string]string{"app": "h"}},
			Spec: v1alpha1.PluginSpec{Type: "counter",
				Auth: &v1alpha1.PluginAuth{Method: v1alpha1.AuthMethodBearer, SecretRef: &v1alpha1.SecretReference{Name: "key"}}}}
		for _, o := range []client.Object{secret, host, p} {
			if err := c.Create(context.Background(), o); err != nil {
				t.Fatalf("creating %s/%s: %v", ns, o.GetName(), err)
			}
		}
	}

	// The host's pod advertises its types, without which its Plugins are not rendered.
	kubeletsim.Advertise(t, c, watched, "h")
	testutil.Eventually(t, time.Minute, "the manager, with the Roles alone, reconciling namespace "+watched, func() error {
		return namespacedOutcome(c, watched)
	})
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: other, Name: "h-config"}, &corev1.ConfigMap{}); err == nil {
		t.Errorf("the manager rendered a PluginHost of namespace %s, which it does not watch", other)
	}
}

// namespacedOutcome checks what the manager must have done in ns: the ConfigMap with the
// Plugin and its credential file, the credentials Secret, the Deployment, and the Plugin's
// status (Accepted) written.
func namespacedOutcome(c client.Client, ns string) error {
	ctx := context.Background()
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "h-config"}, cm); err != nil {
		return err
	}
	if data := cm.Data["config.json"]; !strings.Contains(data, `"p"`) || !strings.Contains(data, `p.token`) {
		return fmt.Errorf("config.json %s", data)
	}
	creds := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "h-credentials"}, creds); err != nil {
		return err
	}
	if string(creds.Data["p.token"]) != "t0k3n" {
		return fmt.Errorf("credentials %v", creds.Data)
	}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "h"}, &appsv1.Deployment{}); err != nil {
		return err
	}
	p := &v1alpha1.Plugin{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "p"}, p); err != nil {
		return err
	}
	if !meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionAccepted) {
		return fmt.Errorf("Plugin conditions %+v", p.Status.Conditions)
	}
	return nil
}
