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

package v1alpha1_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

func TestPluginDefaults(t *testing.T) {
	needEnv(t)
	ctx := context.Background()
	p := &v1alpha1.Plugin{
		ObjectMeta: metav1.ObjectMeta{Name: "minimal", Namespace: newNamespace(t)},
		Spec:       v1alpha1.PluginSpec{Type: v1alpha1.PluginTypeCounter},
	}
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatalf("Create: %v", err)
	}
	var got v1alpha1.Plugin
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(p), &got); err != nil {
		t.Fatalf("Get: %v", err)
	}
	want := v1alpha1.PluginSpec{
		Type:      v1alpha1.PluginTypeCounter,
		Transport: v1alpha1.TransportHTTP,
		Enabled:   ptr.To(true),
		Auth:      &v1alpha1.PluginAuth{Method: v1alpha1.AuthMethodNone},
		Connection: &v1alpha1.ConnectionSpec{
			MaxConnections:     ptr.To[int32](10),
			MaxIdleConnections: ptr.To[int32](5),
			IdleTimeout:        "30s",
			ConnectionTimeout:  "10s",
			RequestTimeout:     "30s",
			KeepAlive:          ptr.To(true),
		},
	}
	if !equality.Semantic.DeepEqual(got.Spec, want) {
		g, _ := json.Marshal(got.Spec)
		w, _ := json.Marshal(want)
		t.Errorf("defaulted spec\n got %s\nwant %s", g, w)
	}
}

func TestPluginHostDefaults(t *testing.T) {
	needEnv(t)
	ctx := context.Background()
	h := &v1alpha1.PluginHost{
		ObjectMeta: metav1.ObjectMeta{Name: "minimal", Namespace: newNamespace(t)},
		Spec: v1alpha1.PluginHostSpec{
			PluginSelector: &metav1.LabelSelector{},
			ConfigMapRef:   &v1alpha1.ConfigMapKeyReference{Name: "seed"},
		},
	}
	if err := env.Client.Create(ctx, h); err != nil {
		t.Fatalf("Create: %v", err)
	}
	var got v1alpha1.PluginHost
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(h), &got); err != nil {
		t.Fatalf("Get: %v", err)
	}
	want := v1alpha1.PluginHostSpec{
		PluginSelector: &metav1.LabelSelector{},
		ConfigMapRef:   &v1alpha1.ConfigMapKeyReference{Name: "seed", Key: v1alpha1.DefaultConfigMapKey},
		PollInterval:   &metav1.Duration{Duration: 250 * time.Millisecond},
		Persistence: &v1alpha1.PersistenceSpec{
			Enabled:           false,
			Size:              ptr.To(resource.MustParse("1Gi")),
			SnapshotInterval:  &metav1.Duration{Duration: 5 * time.Second},
			WhenDeleted:       v1alpha1.ClaimDelete,
			EmptyDirSizeLimit: ptr.To(resource.MustParse("64Mi")),
		},
		Service:              &v1alpha1.ServiceSpec{Type: "ClusterIP", Port: 8080},
		LogLevel:             v1alpha1.LogLevelInfo,
		RevisionHistoryLimit: ptr.To(int32(v1alpha1.DefaultRevisionHistoryLimit)),
	}
	if !equality.Semantic.DeepEqual(got.Spec, want) {
		g, _ := json.Marshal(got.Spec)
		w, _ := json.Marshal(want)
		t.Errorf("defaulted spec\n got %s\nwant %s", g, w)
	}
}

// TestPluginOptionsRoundTrip checks that options the schema does not declare survive a
// write and a typed read.
func TestPluginOptionsRoundTrip(t *testing.T) {
	needEnv(t)
	ctx := context.Background()
	obj := buildObject(t, basePlugin, `{spec: {options: {increment: 5, label: x, nested: {a: [1, 2.5]}}}}`)
	obj.SetNamespace(newNamespace(t))
	obj.SetName("options")
	if err := env.Client.Create(ctx, obj); err != nil {
		t.Fatalf("Create: %v", err)
	}
	var got v1alpha1.Plugin
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), &got); err != nil {
		t.Fatalf("Get: %v", err)
	}
	b, err := json.Marshal(got.Spec.Options)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"increment":5,"label":"x","nested":{"a":[1,2.5]}}`; string(b) != want {
		t.Errorf("options = %s, want %s", b, want)
	}
}
