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
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// applier server-side applies the operator's children under its field owner, forcing
// ownership: the operator is the only writer of its children, and fields it applied before
// and no longer renders are removed by the API server.
//
// It skips an apply whose result it already knows: when it applied the same content before
// and the object in the cache still has the resourceVersion that apply returned, nobody has
// changed the object since and the apply would be a no-op. Any other write (a user's edit, a
// controller's status update, a deletion) changes the resourceVersion, and the next
// reconcile applies again. The memory is lost on restart, which only costs one apply.
type applier struct {
	client client.Client
	// cache reads objects from the manager's informers, metadata-only ones included.
	cache client.Reader
	// api reads from the API server, for objects the cache does not hold.
	api  client.Reader
	mu   sync.Mutex
	last map[string]appliedState
}

type appliedState struct {
	hash            [sha256.Size]byte
	resourceVersion string
}

func newApplier(c client.Client, cache, api client.Reader) *applier {
	return &applier{client: c, cache: cache, api: api, last: map[string]appliedState{}}
}

func applyKey(obj client.Object) string {
	return obj.GetObjectKind().GroupVersionKind().Kind + "/" + obj.GetNamespace() + "/" + obj.GetName()
}

// apply applies obj, a fully rendered typed object with its TypeMeta. An apply that the API
// server refuses for good (refusedByAPIServer) returns a *childRefusal.
func (a *applier) apply(ctx context.Context, obj client.Object) error {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("converting %T %s to unstructured: %w", obj, obj.GetName(), err)
	}
	delete(u, "status")
	pruneNulls(u)
	data, err := json.Marshal(u)
	if err != nil {
		return err
	}
	hash, key := sha256.Sum256(data), applyKey(obj)
	if a.unchanged(ctx, obj, key, hash) {
		return nil
	}
	applied := &unstructured.Unstructured{Object: u}
	ac := client.ApplyConfigurationFromUnstructured(applied)
	if err := a.client.Apply(ctx, ac, client.FieldOwner(v1alpha1.FieldOwner), client.ForceOwnership); err != nil {
		kind := obj.GetObjectKind().GroupVersionKind().Kind
		return asRefusal("apply "+kind+" "+obj.GetName(), fmt.Errorf("applying %s %s: %w", kind, obj.GetName(), err))
	}
	a.mu.Lock()
	a.last[key] = appliedState{hash: hash, resourceVersion: applied.GetResourceVersion()}
	a.mu.Unlock()
	return nil
}

// unchanged reports whether the cached object is exactly what applying this content last
// produced.
func (a *applier) unchanged(ctx context.Context, obj client.Object, key string, hash [sha256.Size]byte) bool {
	a.mu.Lock()
	last, ok := a.last[key]
	a.mu.Unlock()
	if !ok || last.hash != hash || last.resourceVersion == "" {
		return false
	}
	live := cachedObject(obj)
	if err := a.cache.Get(ctx, client.ObjectKeyFromObject(obj), live); err != nil {
		return false
	}
	return live.GetResourceVersion() == last.resourceVersion
}

// forget drops what the applier remembers of the children of a deleted host.
func (a *applier) forget(namespace string, names ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range names {
		for _, kind := range []string{"ConfigMap", "Secret", "Deployment", "Service", "PersistentVolumeClaim", "NetworkPolicy", "PodDisruptionBudget"} {
			delete(a.last, kind+"/"+namespace+"/"+n)
		}
	}
}

// cachedObject returns an empty object to read obj's kind from the manager's cache:
// ConfigMaps and Secrets are cached as metadata only, and only those with the consent
// label's key (see cacheOptions and clientOptions), the other kinds as typed objects. An
// object the cache does not hold is applied again, which costs one apply.
func cachedObject(obj client.Object) client.Object {
	switch obj.(type) {
	case *corev1.ConfigMap, *corev1.Secret:
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(obj.GetObjectKind().GroupVersionKind())
		return m
	default:
		return reflect.New(reflect.TypeOf(obj).Elem()).Interface().(client.Object)
	}
}

// pruneNulls removes the null values that typed zero values (creationTimestamp, empty
// structs' pointers) leave in an unstructured object, so that the apply configuration
// holds only the fields the operator sets.
func pruneNulls(m map[string]any) {
	for k, v := range m {
		switch t := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			pruneNulls(t) // empty objects stay: `emptyDir: {}` means something
		case []any:
			for _, e := range t {
				if em, ok := e.(map[string]any); ok {
					pruneNulls(em)
				}
			}
		}
	}
}
