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
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestStripForCache: the cache's transform drops managedFields and the last-applied
// configuration, keeps every other annotation, and passes a tombstone through.
func TestStripForCache(t *testing.T) {
	const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"
	for _, obj := range []client.Object{&corev1.ConfigMap{}, &metav1.PartialObjectMetadata{}} {
		obj.SetAnnotations(map[string]string{lastApplied: "{...}", "keep": "me"})
		obj.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "kubectl"}})
		out, err := stripForCache(obj)
		if err != nil {
			t.Fatal(err)
		}
		o := out.(client.Object)
		if len(o.GetManagedFields()) != 0 || o.GetAnnotations()[lastApplied] != "" || o.GetAnnotations()["keep"] != "me" {
			t.Errorf("%T: managedFields %v, annotations %v", obj, o.GetManagedFields(), o.GetAnnotations())
		}
	}
	cr := &appsv1.ControllerRevision{Revision: 7, Data: runtime.RawExtension{Raw: []byte(`{"config":"{}"}`)}}
	if out, err := stripForCache(cr); err != nil || out.(*appsv1.ControllerRevision).Data.Raw != nil || cr.Revision != 7 {
		t.Errorf("ControllerRevision: data %q, revision %d, %v: the cache keeps no config", cr.Data.Raw, cr.Revision, err)
	}
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/x"}
	if out, err := stripForCache(tomb); err != nil || out != tomb {
		t.Errorf("tombstone: %v, %v", out, err)
	}
}
