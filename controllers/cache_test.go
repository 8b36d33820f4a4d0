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

package controllers_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/controllers"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// TestCacheHoldsOnlyWhatItManages: the manager's cache (as NewManager builds it) has no
// ConfigMap or Secret without the consent label's key, whatever else they carry, and what it
// has comes without managedFields or last-applied-configuration; the client still reads an
// unlabelled one from the API server.
func TestCacheHoldsOnlyWhatItManages(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mgr, err := controllers.NewManager(ctx, env.Config, controllers.ManagerOptions{
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		WatchNamespaces: []string{ns}, Controllers: testOptions(), SkipNameValidation: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}()

	annotated := map[string]string{lastApplied: `{"big":"..."}`, "keep": "me"}
	create(t,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unmarked", Annotations: annotated}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unmarked", Annotations: annotated}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other-label", Labels: map[string]string{"app": "x"}}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "marked", Labels: consentLabels(), Annotations: annotated}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "marked", Labels: map[string]string{v1alpha1.LabelPluginAuth: "false"}, Annotations: annotated}},
	)
	metaOf := func(kind string) *metav1.PartialObjectMetadata {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kind))
		return m
	}
	for _, kind := range []string{"ConfigMap", "Secret"} {
		// The marked ones arrive (a signal that the informer has listed and watched past the
		// unmarked ones, created before them in the same namespace)...
		m := metaOf(kind)
		testutil.Eventually(t, wait, "cached "+kind+" marked", func() error {
			return mgr.GetCache().Get(ctx, client.ObjectKey{Namespace: ns, Name: "marked"}, m)
		})
		if len(m.ManagedFields) != 0 || m.Annotations[lastApplied] != "" || m.Annotations["keep"] != "me" {
			t.Errorf("cached %s: managedFields %v, annotations %v", kind, m.ManagedFields, m.Annotations)
		}
		// ...the others never do.
		for _, name := range []string{"unmarked", "other-label"} {
			if kind == "Secret" && name == "other-label" {
				continue
			}
			if err := mgr.GetCache().Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, metaOf(kind)); !apierrors.IsNotFound(err) {
				t.Errorf("cache Get %s %s: %v, want NotFound", kind, name, err)
			}
		}
	}
	// The manager's client reads ConfigMaps from the API server, cached or not.
	cm := &corev1.ConfigMap{}
	if err := mgr.GetClient().Get(ctx, client.ObjectKey{Namespace: ns, Name: "unmarked"}, cm); err != nil {
		t.Errorf("client Get of an unmarked ConfigMap: %v", err)
	}
}
