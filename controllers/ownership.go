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
	"encoding/json"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// hostChildren lists the children host renders, whatever their content (childKinds), as
// empty typed objects with their TypeMeta, namespace and name.
func hostChildren(host *v1alpha1.PluginHost) []client.Object {
	var objs []client.Object
	for _, k := range childKinds {
		if k.renders(host) {
			objs = append(objs, k.typedObject(host))
		}
	}
	return objs
}

// previousIncarnation reports whether ref names an earlier PluginHost of host's name (same
// name, another UID): names are unique in a namespace, so that PluginHost was deleted and
// the child waits for the garbage collector. Such a reference is only a claim — anyone who
// may create the object can write it — so the child is adopted only when madeByOperator
// proves that the operator wrote it.
func previousIncarnation(host *v1alpha1.PluginHost, ref *metav1.OwnerReference) bool {
	return ref.Kind == "PluginHost" && strings.HasPrefix(ref.APIVersion, v1alpha1.GroupVersion.Group+"/") &&
		ref.Name == host.Name && ref.UID != host.UID
}

// retainedClaimOf reports whether live looks like a state claim kept by whenDeleted: Retain
// for a PluginHost of host's name: no controller (Retain applies it without an owner
// reference) and the host label naming host. Such a claim is host's to adopt — that is what
// Retain promises — once madeByOperator proves that the operator wrote that label.
func retainedClaimOf(host *v1alpha1.PluginHost, kind string, live client.Object) bool {
	return kind == "PersistentVolumeClaim" && metav1.GetControllerOfNoCopy(live) == nil &&
		live.GetLabels()[v1alpha1.LabelHost] == host.Name
}

// madeByOperator reports whether the operator's field manager (v1alpha1.FieldOwner) owns, in
// m's managedFields, the field that makes m look like host's: the controller reference ref
// (a previous incarnation), or the host label (a retained claim, ref nil). Both are written
// by the operator's applies, today's and older versions' alike, and a user's create or edit
// records them under the user's field manager instead. m must come from the API server: the
// cache drops managedFields (stripForCache).
//
// A field manager's name is chosen by the client, so this proves authorship against anyone
// who does not forge managedFields under the operator's name; see docs/security.md.
func madeByOperator(m *metav1.PartialObjectMetadata, ref *metav1.OwnerReference) bool {
	for _, e := range m.ManagedFields {
		if e.Manager != v1alpha1.FieldOwner || e.Subresource != "" || e.FieldsV1 == nil {
			continue
		}
		var fields map[string]map[string]map[string]any
		if err := json.Unmarshal(e.FieldsV1.GetRawBytes(), &fields); err != nil {
			continue
		}
		meta := fields["f:metadata"]
		if ref != nil {
			key, _ := json.Marshal(map[string]string{"uid": string(ref.UID)})
			if _, ok := meta["f:ownerReferences"]["k:"+string(key)]; ok {
				return true
			}
		} else if _, ok := meta["f:labels"]["f:"+v1alpha1.LabelHost]; ok {
			return true
		}
	}
	return false
}

// foreignChildren returns the children of host that exist and are not controlled by it
// ("Service victim exists and is not controlled by this PluginHost"). Forced server-side
// apply would silently take them over (rewrite a Service's selector, replace a ConfigMap's
// data, add owner references that make garbage collection delete them with the host), so the
// reconcile applies nothing while there is one.
//
// It reads the manager's cache first, where the operator's own children are; on a miss it
// asks the API server, since the cache holds Deployments, Services and PVCs with the host
// label only and a foreign object need not have it. A child that claims to be a previous
// incarnation's, or a retained claim, is read again from the API server with its
// managedFields (madeByOperator).
//
// It records what it found (checked): the UID of each child that is host's, or that a child
// is absent. The applier creates an absent child with Create, so that an object made since
// this check is a conflict, not a takeover, and applies the others with their UID as a
// precondition, so that a replaced object is refused.
func (a *applier) foreignChildren(ctx context.Context, host *v1alpha1.PluginHost) ([]string, error) {
	var foreign []string
	found := map[string]types.UID{}
	for _, c := range hostChildren(host) {
		key, kind, name := client.ObjectKeyFromObject(c), c.GetObjectKind().GroupVersionKind().Kind, c.GetName()
		live := cachedObject(c)
		err := a.cache.Get(ctx, key, live)
		if apierrors.IsNotFound(err) {
			m := &metav1.PartialObjectMetadata{}
			m.SetGroupVersionKind(c.GetObjectKind().GroupVersionKind())
			err = a.api.Get(ctx, key, m)
			live = m
		}
		switch {
		case apierrors.IsNotFound(err):
			found[applyKey(c)] = ""
			continue
		case err != nil:
			return nil, fmt.Errorf("checking that %s %s is not someone else's: %w", kind, name, err)
		}
		ref := metav1.GetControllerOfNoCopy(live)
		ours := ref != nil && ref.UID == host.UID
		if claim := retainedClaimOf(host, kind, live); claim || (ref != nil && previousIncarnation(host, ref)) {
			m := &metav1.PartialObjectMetadata{}
			m.SetGroupVersionKind(c.GetObjectKind().GroupVersionKind())
			if err := a.api.Get(ctx, key, m); err != nil {
				return nil, fmt.Errorf("checking who made %s %s: %w", kind, name, err)
			}
			live, ref = m, metav1.GetControllerOfNoCopy(m)
			ours = madeByOperator(m, ref) && (retainedClaimOf(host, kind, m) || (ref != nil && previousIncarnation(host, ref)))
		}
		switch {
		case ours:
			found[applyKey(c)] = live.GetUID()
		case ref == nil:
			foreign = append(foreign, fmt.Sprintf("%s %s exists and is not controlled by this PluginHost", kind, name))
		default:
			foreign = append(foreign, fmt.Sprintf("%s %s exists and is controlled by %s %s (uid %s)", kind, name, ref.Kind, ref.Name, ref.UID))
		}
	}
	if len(foreign) == 0 {
		a.checked(found)
	}
	return foreign, nil
}
