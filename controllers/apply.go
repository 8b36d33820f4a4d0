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
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// applier writes the operator's children under its field owner. A child that the last
// ownership check (foreignChildren) found absent is created with Create: if an object of its
// name appeared since, the create fails with AlreadyExists and the host reports a
// ChildConflict; nothing is taken over. Every other write is a server-side apply forcing
// ownership, with the child's UID as it was checked as a precondition (metadata.uid), so the
// API server refuses it if the object was replaced since: the operator is the only writer of
// its children, and fields it applied before and no longer renders are removed by the API
// server.
//
// It skips an apply whose result it already knows: when it applied the same content before
// and the object in the cache still has the resourceVersion that apply returned, nobody has
// changed the object since and the apply would be a no-op. Any other write (a user's edit, a
// controller's status update, a deletion) changes the resourceVersion, and the next
// reconcile applies again — unless the live object still holds what the apply would write
// (appliedUnchanged): every apply records the digest of its content in the child's
// appliedHashAnnotation, so a restarted manager, or a reconcile after another writer touched
// only fields the operator does not render (a Deployment's status), finds the child as it
// would leave it and writes nothing.
type applier struct {
	client client.Client
	// cache reads objects from the manager's informers, metadata-only ones included.
	cache client.Reader
	// api reads from the API server, for objects the cache does not hold.
	api  client.Reader
	mu   sync.Mutex
	last map[string]appliedState
	// uids are what the last ownership check found, by applyKey: the child's UID, or "" when
	// it was absent.
	uids map[string]types.UID
}

type appliedState struct {
	hash            [sha256.Size]byte
	resourceVersion string
}

func newApplier(c client.Client, cache, api client.Reader) *applier {
	return &applier{client: c, cache: cache, api: api, last: map[string]appliedState{}, uids: map[string]types.UID{}}
}

func applyKey(obj client.Object) string {
	return obj.GetObjectKind().GroupVersionKind().Kind + "/" + obj.GetNamespace() + "/" + obj.GetName()
}

// checked records what an ownership check found (see uids).
func (a *applier) checked(found map[string]types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, uid := range found {
		a.uids[k] = uid
	}
}

// childConflict is a child that an object of someone else took the place of between the
// ownership check and the write: the reconcile reports it as a ChildConflict.
type childConflict struct{ message string }

func (e *childConflict) Error() string { return e.message }

func conflictOf(err error) *childConflict {
	var c *childConflict
	if errors.As(err, &c) {
		return c
	}
	return nil
}

// apply writes obj, a fully rendered typed object with its TypeMeta: Create when the
// ownership check found it absent, else a forced apply with the checked UID as a
// precondition. A create that finds the name taken returns a *childConflict; a write that the
// API server refuses for good (refusedByAPIServer) a *childRefusal.
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
	if a.unchanged(ctx, obj, key, hash) || a.appliedUnchanged(ctx, obj, u, key, hash) {
		return nil
	}
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	a.mu.Lock()
	uid, checked := a.uids[key]
	a.mu.Unlock()
	if !checked {
		return fmt.Errorf("writing %s %s: no ownership check found it absent or this PluginHost's", kind, obj.GetName())
	}
	if uid == "" {
		created := obj.DeepCopyObject().(client.Object)
		if err := a.client.Create(ctx, created, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return &childConflict{message: fmt.Sprintf("%s %s exists and is not controlled by this PluginHost (it was created by someone else while this PluginHost created it)", kind, obj.GetName())}
			}
			// Worded as the apply it starts, as before children were created first.
			return asRefusal("apply "+kind+" "+obj.GetName(), fmt.Errorf("applying %s %s (creating it): %w", kind, obj.GetName(), err))
		}
		uid = created.GetUID()
		a.checked(map[string]types.UID{key: uid})
		// Applied at once with the same content, so that the operator's apply entry owns the
		// fields, and the create's entry dropped (dropCreateEntry): fields the operator stops
		// rendering are then removed as for any applied child.
	}
	applied := &unstructured.Unstructured{Object: u}
	applied.SetUID(uid)
	ann := applied.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[appliedHashAnnotation] = hex.EncodeToString(hash[:])
	applied.SetAnnotations(ann)
	answer, err := applyAnswerMetadata(ctx, a.client, applied)
	if err != nil {
		if replaced(err) {
			// Deleted or replaced since the check: the next reconcile checks again.
			return fmt.Errorf("applying %s %s: it is no longer the object with uid %s: %w", kind, obj.GetName(), uid, err)
		}
		return asRefusal("apply "+kind+" "+obj.GetName(), fmt.Errorf("applying %s %s: %w", kind, obj.GetName(), err))
	}
	applied.SetManagedFields(answer.ManagedFields)
	applied.SetResourceVersion(answer.ResourceVersion)
	if err := a.dropCreateEntry(ctx, applied); err != nil {
		return err
	}
	a.mu.Lock()
	a.last[key] = appliedState{hash: hash, resourceVersion: applied.GetResourceVersion()}
	a.mu.Unlock()
	return nil
}

// applyAnswerMetadata server-side applies u under the operator's field owner, forcing
// ownership, and returns the answer as metadata only: the applier reads its managedFields and
// resourceVersion, and wrote the rest itself (a rendered config.json is up to 1 MiB).
func applyAnswerMetadata(ctx context.Context, c client.Client, u *unstructured.Unstructured) (*metav1.PartialObjectMetadata, error) {
	body, err := json.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	answer := metadataAnswer(u.GroupVersionKind(), u)
	if err := c.Patch(ctx, answer, client.RawPatch(types.ApplyPatchType, body), client.FieldOwner(v1alpha1.FieldOwner), client.ForceOwnership); err != nil {
		return nil, err
	}
	return answer, nil
}

// replaced reports whether err is the API server refusing an apply whose metadata.uid is not
// the live object's: Invalid on metadata.uid (another object of that name) or a Conflict (no
// object of that name).
func replaced(err error) bool {
	if apierrors.IsConflict(err) {
		return true
	}
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	for _, c := range status.Status().Details.Causes {
		if c.Field == "metadata.uid" {
			return true
		}
	}
	return false
}

// dropCreateEntry removes the managedFields entry that the operator's Create left on
// applied (operation Update), once the apply's own entry holds the same fields: otherwise
// that entry would keep owning every field of the first rendering, and a field the operator
// stops rendering would stay. A JSON patch that tests the entry first, so that it removes
// nothing else if the list changed since.
func (a *applier) dropCreateEntry(ctx context.Context, applied *unstructured.Unstructured) error {
	for i, e := range applied.GetManagedFields() {
		if e.Manager != v1alpha1.FieldOwner || e.Operation != metav1.ManagedFieldsOperationUpdate || e.Subresource != "" {
			continue
		}
		patch := fmt.Sprintf(`[{"op":"test","path":"/metadata/uid","value":%q},`+
			`{"op":"test","path":"/metadata/managedFields/%d/manager","value":%q},`+
			`{"op":"test","path":"/metadata/managedFields/%d/operation","value":"Update"},`+
			`{"op":"remove","path":"/metadata/managedFields/%d"}]`, applied.GetUID(), i, e.Manager, i, i)
		m := metadataAnswer(applied.GroupVersionKind(), applied)
		if err := a.client.Patch(ctx, m, client.RawPatch(types.JSONPatchType, []byte(patch))); err != nil {
			return fmt.Errorf("dropping the create's field entry of %s %s: %w", applied.GetKind(), applied.GetName(), err)
		}
		applied.SetResourceVersion(m.GetResourceVersion())
		return nil
	}
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

// appliedHashAnnotation holds, on every child, the SHA-256 of the content the operator last
// applied to it (the rendered object without status, before this annotation is added).
const appliedHashAnnotation = "plugins.hotreload.io/applied-hash"

// appliedUnchanged reports whether applying u (rendered content of digest hash) would change
// nothing: the live object carries hash in appliedHashAnnotation, so the operator's last
// apply wrote this same content and owns no field it does not render now, and every field
// u sets has that value in the live object, so nobody changed one since. The kinds cached as
// metadata only (ConfigMaps, Secrets) are read from the API server for that, once their
// cached annotation matches. It remembers the live resourceVersion, as an apply would.
func (a *applier) appliedUnchanged(ctx context.Context, obj client.Object, u map[string]any, key string, hash [sha256.Size]byte) bool {
	want := hex.EncodeToString(hash[:])
	live := cachedObject(obj)
	if err := a.cache.Get(ctx, client.ObjectKeyFromObject(obj), live); err != nil || live.GetAnnotations()[appliedHashAnnotation] != want {
		return false
	}
	a.mu.Lock()
	uid, checked := a.uids[key]
	a.mu.Unlock()
	if !checked || uid == "" || live.GetUID() != uid {
		return false
	}
	if _, metadataOnly := live.(*metav1.PartialObjectMetadata); metadataOnly {
		full := &unstructured.Unstructured{}
		full.SetGroupVersionKind(obj.GetObjectKind().GroupVersionKind())
		if err := a.api.Get(ctx, client.ObjectKeyFromObject(obj), full); err != nil || full.GetUID() != uid {
			return false
		}
		if !subsetOf(u, full.Object) {
			return false
		}
		live = full
	} else {
		have, err := runtime.DefaultUnstructuredConverter.ToUnstructured(live)
		if err != nil || !subsetOf(u, have) {
			return false
		}
	}
	a.mu.Lock()
	a.last[key] = appliedState{hash: hash, resourceVersion: live.GetResourceVersion()}
	a.mu.Unlock()
	return true
}

// subsetOf reports whether every field of want has the same value in have: maps key by key,
// lists element by element (of the same length), other values equal. Typed objects converted
// to unstructured give the same forms (int64, canonical quantities) on both sides.
func subsetOf(want, have any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			hv, ok := h[k]
			if !ok || !subsetOf(v, hv) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !subsetOf(w[i], h[i]) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(want, have)
	}
}

// forget drops what the applier remembers of the children of host, a deleted PluginHost
// (only its namespace and name are read).
func (a *applier) forget(host *v1alpha1.PluginHost) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, k := range childKinds {
		key := k.gvk.Kind + "/" + host.Namespace + "/" + k.name(host)
		delete(a.last, key)
		delete(a.uids, key)
	}
}

// cachedObject returns an empty object to read obj, a child with its TypeMeta, from the
// manager's cache: the metadataOnly kinds (ConfigMaps and Secrets) are cached as metadata
// only, and only those with the consent label's key (see cacheOptions and clientOptions), the
// other kinds as typed objects. An object the cache does not hold is applied again, which
// costs one apply.
func cachedObject(obj client.Object) client.Object {
	gvk := obj.GetObjectKind().GroupVersionKind()
	if k, ok := childKindOf(gvk.Kind); ok && k.metadataOnly {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(gvk)
		return m
	}
	return reflect.New(reflect.TypeOf(obj).Elem()).Interface().(client.Object)
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
