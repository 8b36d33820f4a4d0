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

package kubeletsim

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"maps"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The Deployment controller's owner chain, as tests without a kube-controller-manager make
// it: a Deployment controls ReplicaSets, one per pod template, and each ReplicaSet controls
// its pods. A Deployment never controls a pod itself, and the manager trusts only this chain.

// PodTemplateHashLabel is the label the Deployment controller adds to a ReplicaSet, its
// selector, its pod template and so its pods.
const PodTemplateHashLabel = appsv1.DefaultDeploymentUniqueLabelKey

// TemplateHash is a short, stable hash of a pod template: a changed template means a new
// ReplicaSet and new pods (the Deployment controller's pod-template-hash, computed
// differently).
func TemplateHash(t *corev1.PodTemplateSpec) string {
	b, err := json.Marshal(t)
	if err != nil {
		panic(err) // a PodTemplateSpec always marshals
	}
	h := fnv.New32a()
	_, _ = h.Write(b)
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// NewReplicaSet is the ReplicaSet the Deployment controller makes for d's current template:
// named <deployment>-<hash>, controlled by d, with the pod-template-hash label on itself,
// its selector and its template, and replicas pods.
func NewReplicaSet(d *appsv1.Deployment, replicas int32) *appsv1.ReplicaSet {
	hash := TemplateHash(&d.Spec.Template)
	withHash := func(m map[string]string) map[string]string {
		m = maps.Clone(m)
		if m == nil {
			m = map[string]string{}
		}
		m[PodTemplateHashLabel] = hash
		return m
	}
	tmpl := *d.Spec.Template.DeepCopy()
	tmpl.Labels = withHash(tmpl.Labels)
	sel := &metav1.LabelSelector{}
	if d.Spec.Selector != nil {
		sel = d.Spec.Selector.DeepCopy()
	}
	sel.MatchLabels = withHash(sel.MatchLabels)
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       d.Namespace,
			Name:            d.Name + "-" + hash,
			Labels:          withHash(d.Spec.Template.Labels),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))},
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: &replicas, Selector: sel, Template: tmpl},
	}
}

// EnsureReplicaSet returns d's ReplicaSet for its current template (NewReplicaSet), creating
// it with replicas pods if it does not exist. An existing one is returned as it is.
func EnsureReplicaSet(ctx context.Context, c client.Client, d *appsv1.Deployment, replicas int32) (*appsv1.ReplicaSet, error) {
	rs := NewReplicaSet(d, replicas)
	err := c.Create(ctx, rs)
	if apierrors.IsAlreadyExists(err) {
		err = c.Get(ctx, client.ObjectKeyFromObject(rs), rs)
	}
	if err != nil {
		return nil, err
	}
	return rs, nil
}

// NewPod is a pod of rs as the ReplicaSet controller makes it: its template's labels and
// annotations, spec, and rs as its controller. An empty name is <replicaset>-<5 random
// characters>.
func NewPod(rs *appsv1.ReplicaSet, name string) *corev1.Pod {
	if name == "" {
		name = rs.Name + "-" + rand.String(5)
	}
	tmpl := rs.Spec.Template.DeepCopy()
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       rs.Namespace,
			Name:            name,
			Labels:          tmpl.Labels,
			Annotations:     tmpl.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))},
		},
		Spec: tmpl.Spec,
	}
}
