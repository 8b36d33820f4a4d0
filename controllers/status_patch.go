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

	jsonpatch "github.com/evanphx/json-patch/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// Status writes are most of what the manager sends (BenchmarkScale: 10,000 Plugin status
// patches and about 800 host status patches at 10,000 Plugins on 100 hosts). Two things
// keep each one cheap: the patch is computed from the statuses alone, and the API server
// answers with the object's metadata only.

// statusMergePatch is the JSON merge patch from one status to another, computed from the
// statuses alone: client.MergeFrom encodes both whole objects to compare them.
func statusMergePatch(before, after any) (client.Patch, error) {
	from, err := json.Marshal(map[string]any{"status": before})
	if err != nil {
		return nil, fmt.Errorf("encoding status: %w", err)
	}
	to, err := json.Marshal(map[string]any{"status": after})
	if err != nil {
		return nil, fmt.Errorf("encoding status: %w", err)
	}
	patch, err := jsonpatch.CreateMergePatch(from, to)
	if err != nil {
		return nil, fmt.Errorf("computing the status patch: %w", err)
	}
	return client.RawPatch(types.MergePatchType, patch), nil
}

// patchStatusAnswerMetadata sends patch to obj's status subresource and asks for the
// answer as metadata only (as=PartialObjectMetadata, the metadata client's content type).
// The whole answer would cost the API server its encoding and the manager its decoding,
// for a status the manager computed itself and its cache receives from the watch anyway.
// obj keeps the status it was patched with and takes the resourceVersion the write made:
// the manager is the only writer of the statuses it patches, so the status it sent is the
// status the API server holds.
func patchStatusAnswerMetadata(ctx context.Context, c client.Client, obj client.Object, patch client.Patch) error {
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return err
	}
	answer := metadataAnswer(gvk, obj)
	if err := c.Status().Patch(ctx, answer, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
		return err
	}
	obj.SetResourceVersion(answer.ResourceVersion)
	return nil
}

// metadataAnswer is an empty PartialObjectMetadata that names obj, of kind gvk. A write sent
// with it goes through controller-runtime's metadata client, whose requests ask for the
// answer as metadata only, and the answer is decoded into it.
func metadataAnswer(gvk schema.GroupVersionKind, obj metav1.Object) *metav1.PartialObjectMetadata {
	answer := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: obj.GetNamespace(), Name: obj.GetName()}}
	answer.SetGroupVersionKind(gvk)
	return answer
}
