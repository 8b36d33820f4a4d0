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
	"fmt"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/controllers"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// deletedHostUID creates a PluginHost named name while no manager runs, deletes it and
// returns its UID: the UID of a PluginHost of that name that no longer exists.
func deletedHostUID(t *testing.T, ns, name string) types.UID {
	t.Helper()
	old := newHost(ns, name, name)
	create(t, old)
	if err := env.Client.Delete(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, wait, "PluginHost "+name+" gone", func() error {
		if err := get(t, &v1alpha1.PluginHost{}, ns, name); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
	return old.UID
}

// forgedRef is the controller reference a user writes to pass an object off as a child of a
// deleted PluginHost.
func forgedRef(name string, uid types.UID) []metav1.OwnerReference {
	return []metav1.OwnerReference{{
		APIVersion: v1alpha1.GroupVersion.String(), Kind: "PluginHost", Name: name, UID: uid,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}}
}

// TestForgedPreviousIncarnationIsNotAdopted: an object that a user created with a controller
// reference naming a deleted PluginHost of the host's name (and the host label) is not a
// previous incarnation's child, nor is a PVC with the host label alone a retained claim: the
// operator did not write that reference or label (managedFields), so the host reports a
// ChildConflict and changes nothing of it. The Service carries an extra port to the
// runtime's operational port, which a takeover by forced apply would keep.
func TestForgedPreviousIncarnationIsNotAdopted(t *testing.T) {
	needEnv(t)
	tests := []struct {
		kind, name string
		forged     func(ns string, meta metav1.ObjectMeta) client.Object
		empty      func() client.Object
		unchanged  func(t *testing.T, before, after client.Object)
		// labelOnly: no owner reference, the host label alone (a retained claim's look).
		labelOnly bool
	}{{
		kind: "PersistentVolumeClaim", name: "forged-state", labelOnly: true,
		forged: func(ns string, meta metav1.ObjectMeta) client.Object {
			return &corev1.PersistentVolumeClaim{ObjectMeta: meta, Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")}},
			}}
		},
		empty: func() client.Object { return &corev1.PersistentVolumeClaim{} },
		unchanged: func(t *testing.T, before, after client.Object) {
			if b, a := before.(*corev1.PersistentVolumeClaim), after.(*corev1.PersistentVolumeClaim); !equality.Semantic.DeepEqual(b.Spec, a.Spec) {
				t.Errorf("spec %+v, want %+v", a.Spec, b.Spec)
			}
		},
	}, {
		kind: "ConfigMap", name: "forged-config",
		forged: func(ns string, meta metav1.ObjectMeta) client.Object {
			return &corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"config.json": `{"plugins":[]}`}}
		},
		empty: func() client.Object { return &corev1.ConfigMap{} },
		unchanged: func(t *testing.T, before, after client.Object) {
			if b, a := before.(*corev1.ConfigMap), after.(*corev1.ConfigMap); !equality.Semantic.DeepEqual(b.Data, a.Data) {
				t.Errorf("data %v, want %v", a.Data, b.Data)
			}
		},
	}, {
		kind: "Service", name: "forged",
		forged: func(ns string, meta metav1.ObjectMeta) client.Object {
			return &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{
				Selector: map[string]string{v1alpha1.LabelHost: "forged"},
				Ports: []corev1.ServicePort{
					{Name: controllers.HTTPPortName, Port: 8080, TargetPort: intstr.FromString(controllers.HTTPPortName)},
					{Name: controllers.OpsPortName, Port: controllers.OpsPort, TargetPort: intstr.FromString(controllers.OpsPortName)},
				},
			}}
		},
		empty: func() client.Object { return &corev1.Service{} },
		unchanged: func(t *testing.T, before, after client.Object) {
			if b, a := before.(*corev1.Service), after.(*corev1.Service); !equality.Semantic.DeepEqual(b.Spec.Ports, a.Spec.Ports) || len(a.Spec.Ports) != 2 {
				t.Errorf("ports %+v, want the forged %+v (with the ops port)", a.Spec.Ports, b.Spec.Ports)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			ns := newNamespace(t)
			oldUID := deletedHostUID(t, ns, "forged")
			meta := metav1.ObjectMeta{
				Namespace: ns, Name: tt.name, Labels: map[string]string{v1alpha1.LabelHost: "forged"},
				OwnerReferences: forgedRef("forged", oldUID),
			}
			if tt.labelOnly {
				meta.OwnerReferences = nil
			}
			create(t, tt.forged(ns, meta))
			before := tt.empty()
			if err := get(t, before, ns, tt.name); err != nil {
				t.Fatal(err)
			}

			startManagerBinary(t, "--watch-namespaces="+ns)
			host := newHost(ns, "forged", "forged")
			host.Spec.Persistence = &v1alpha1.PersistenceSpec{Enabled: true, WhenDeleted: v1alpha1.ClaimRetain}
			create(t, host)
			h := hostCondition(t, ns, "forged", v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonChildConflict)
			want := fmt.Sprintf("%s %s exists and is controlled by PluginHost forged (uid %s)", tt.kind, tt.name, oldUID)
			if tt.labelOnly {
				want = fmt.Sprintf("%s %s exists and is not controlled by this PluginHost", tt.kind, tt.name)
			}
			if c := findCondition(h.Status.Conditions, v1alpha1.ConditionReady); c == nil || !strings.Contains(c.Message, want) {
				t.Errorf("Ready = %+v, want a message naming %q", c, want)
			}

			after := tt.empty()
			if err := get(t, after, ns, tt.name); err != nil {
				t.Fatal(err)
			}
			if after.GetResourceVersion() != before.GetResourceVersion() {
				t.Errorf("%s %s was written: resourceVersion %s→%s, owners %v", tt.kind, tt.name,
					before.GetResourceVersion(), after.GetResourceVersion(), after.GetOwnerReferences())
			}
			if ref := metav1.GetControllerOf(after); !tt.labelOnly && (ref == nil || ref.UID != oldUID) {
				t.Errorf("controller %v, want the forged one (uid %s)", ref, oldUID)
			} else if tt.labelOnly && len(after.GetOwnerReferences()) != 0 {
				t.Errorf("owners %v, want none", after.GetOwnerReferences())
			}
			tt.unchanged(t, before, after)
		})
	}
}

// TestPreviousIncarnationIsAdopted: the children of a deleted PluginHost, which wait for the
// garbage collector (envtest runs none), and its retained state claim are adopted by a
// PluginHost of the same name: the same objects, now controlled by the new one, each with a
// single field entry of the operator's, an apply.
func TestPreviousIncarnationIsAdopted(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManagerBinary(t, "--watch-namespaces="+ns)
	spec := func() *v1alpha1.PluginHost {
		h := newHost(ns, "again", "again")
		h.Spec.Persistence = &v1alpha1.PersistenceSpec{Enabled: true, WhenDeleted: v1alpha1.ClaimRetain}
		h.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{Enabled: true}
		h.Spec.PodDisruptionBudget = &v1alpha1.PodDisruptionBudgetSpec{Enabled: true}
		return h
	}
	first := spec()
	create(t, first)
	hostCondition(t, ns, "again", v1alpha1.ConditionStalled, metav1.ConditionFalse, v1alpha1.ReasonWorkloadUnavailable)

	children := []struct {
		name string
		obj  func() client.Object
	}{
		{"again-config", func() client.Object { return &corev1.ConfigMap{} }},
		{"again-credentials", func() client.Object { return &corev1.Secret{} }},
		{"again-state", func() client.Object { return &corev1.PersistentVolumeClaim{} }},
		{"again", func() client.Object { return &appsv1.Deployment{} }},
		{"again", func() client.Object { return &corev1.Service{} }},
		{"again", func() client.Object { return &networkingv1.NetworkPolicy{} }},
		{"again", func() client.Object { return &policyv1.PodDisruptionBudget{} }},
	}
	uids := map[string]types.UID{}
	for _, c := range children {
		obj := c.obj()
		if err := get(t, obj, ns, c.name); err != nil {
			t.Fatalf("%T %s: %v", obj, c.name, err)
		}
		uids[fmt.Sprintf("%T", obj)] = obj.GetUID()
	}

	if err := env.Client.Delete(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, wait, "the first PluginHost gone", func() error {
		if err := get(t, &v1alpha1.PluginHost{}, ns, "again"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
	second := spec()
	create(t, second)
	hostCondition(t, ns, "again", v1alpha1.ConditionStalled, metav1.ConditionFalse, v1alpha1.ReasonWorkloadUnavailable)
	if second.UID == first.UID {
		t.Fatal("the second PluginHost has the first one's UID")
	}

	for _, c := range children {
		obj := c.obj()
		kind := fmt.Sprintf("%T", obj)
		testutil.Eventually(t, wait, kind+" "+c.name+" adopted", func() error {
			if err := get(t, obj, ns, c.name); err != nil {
				return err
			}
			if obj.GetUID() != uids[kind] {
				return fmt.Errorf("uid %s, want the first host's child %s (adopted, not made again)", obj.GetUID(), uids[kind])
			}
			ref := metav1.GetControllerOf(obj)
			if _, claim := obj.(*corev1.PersistentVolumeClaim); claim {
				if len(obj.GetOwnerReferences()) != 0 {
					return fmt.Errorf("owners %v, want none (whenDeleted: Retain)", obj.GetOwnerReferences())
				}
			} else if ref == nil || ref.UID != second.UID || len(obj.GetOwnerReferences()) != 1 {
				return fmt.Errorf("owners %v, want the second PluginHost alone (uid %s)", obj.GetOwnerReferences(), second.UID)
			}
			var ours []string
			for _, e := range obj.GetManagedFields() {
				if e.Manager == v1alpha1.FieldOwner && e.Subresource == "" {
					ours = append(ours, string(e.Operation))
				}
			}
			if len(ours) != 1 || ours[0] != string(metav1.ManagedFieldsOperationApply) {
				return fmt.Errorf("the operator's field entries %v, want one Apply (the create's entry dropped)", ours)
			}
			return nil
		})
	}
}

// TestObjectCreatedInTheGapIsNotTakenOver: an object that appears between a reconcile's
// ownership check and its writes (created by the test in that gap) is not taken over: the
// operator creates its children with Create, which fails with AlreadyExists, and the host
// reports a ChildConflict; nothing of the object changes, its extra port included.
func TestObjectCreatedInTheGapIsNotTakenOver(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManager(t, ns, testOptions())
	var (
		once    sync.Once
		created = make(chan *corev1.Service, 1)
	)
	restore := controllers.SetAfterOwnershipCheck(func(host *v1alpha1.PluginHost) {
		if host.Namespace != ns {
			return
		}
		once.Do(func() {
			svc := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gap", Labels: map[string]string{"app": "gap"}},
				Spec: corev1.ServiceSpec{
					Selector: map[string]string{v1alpha1.LabelHost: "gap"},
					Ports: []corev1.ServicePort{
						{Name: controllers.HTTPPortName, Port: 8080, TargetPort: intstr.FromString(controllers.HTTPPortName)},
						{Name: controllers.OpsPortName, Port: controllers.OpsPort, TargetPort: intstr.FromString(controllers.OpsPortName)},
					},
				},
			}
			if err := env.Client.Create(context.Background(), svc); err != nil {
				t.Errorf("creating the Service in the gap: %v", err)
			}
			created <- svc
		})
	})
	t.Cleanup(restore)
	create(t, newHost(ns, "gap", "gap"))
	svc := <-created

	h := hostCondition(t, ns, "gap", v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonChildConflict)
	want := "Service gap exists and is not controlled by this PluginHost"
	if c := findCondition(h.Status.Conditions, v1alpha1.ConditionReady); c == nil || !strings.Contains(c.Message, want) {
		t.Errorf("Ready = %+v, want a message naming %q", c, want)
	}
	after := &corev1.Service{}
	if err := get(t, after, ns, "gap"); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != svc.ResourceVersion || len(after.OwnerReferences) != 0 ||
		!equality.Semantic.DeepEqual(after.Spec.Ports, svc.Spec.Ports) || !equality.Semantic.DeepEqual(after.Spec.Selector, svc.Spec.Selector) {
		t.Errorf("the Service created in the gap was written: resourceVersion %s→%s, owners %v, ports %+v",
			svc.ResourceVersion, after.ResourceVersion, after.OwnerReferences, after.Spec.Ports)
	}
}

// TestReplacedChildIsNotTakenOver: a running host's Service, deleted and replaced by someone
// else's between a reconcile's ownership check and its writes (through a test hook), is not
// taken over: the apply carries the checked UID, the API server refuses it, and the next
// reconcile finds the foreign Service (ChildConflict); nothing of it changes.
func TestReplacedChildIsNotTakenOver(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManager(t, ns, testOptions())
	host := newHost(ns, "swap", "swap")
	create(t, host)
	hostCondition(t, ns, "swap", v1alpha1.ConditionStalled, metav1.ConditionFalse, v1alpha1.ReasonWorkloadUnavailable)

	var (
		once     sync.Once
		replaced = make(chan *corev1.Service, 1)
	)
	restore := controllers.SetAfterOwnershipCheck(func(h *v1alpha1.PluginHost) {
		if h.Namespace != ns || h.Generation < 2 {
			return
		}
		once.Do(func() {
			ctx := context.Background()
			old := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "swap"}}
			if err := env.Client.Delete(ctx, old); err != nil {
				t.Errorf("deleting the host's Service: %v", err)
			}
			svc := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "swap", Labels: map[string]string{"app": "swap"}},
				Spec: corev1.ServiceSpec{
					Selector: map[string]string{"app": "someone-else"},
					Ports:    []corev1.ServicePort{{Name: "web", Port: 9090}},
				},
			}
			if err := env.Client.Create(ctx, svc); err != nil {
				t.Errorf("creating the replacement: %v", err)
			}
			replaced <- svc
		})
	})
	t.Cleanup(restore)
	// A spec change that re-renders the Service, so that the reconcile writes it.
	update(t, host, func(h *v1alpha1.PluginHost) { h.Spec.Service = &v1alpha1.ServiceSpec{Port: 8181} })
	svc := <-replaced

	h := hostCondition(t, ns, "swap", v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonChildConflict)
	want := "Service swap exists and is not controlled by this PluginHost"
	if c := findCondition(h.Status.Conditions, v1alpha1.ConditionReady); c == nil || !strings.Contains(c.Message, want) {
		t.Errorf("Ready = %+v, want a message naming %q", c, want)
	}
	after := &corev1.Service{}
	if err := get(t, after, ns, "swap"); err != nil {
		t.Fatal(err)
	}
	if after.UID != svc.UID || after.ResourceVersion != svc.ResourceVersion || len(after.OwnerReferences) != 0 ||
		!equality.Semantic.DeepEqual(after.Spec.Ports, svc.Spec.Ports) || !equality.Semantic.DeepEqual(after.Spec.Selector, svc.Spec.Selector) {
		t.Errorf("the replacement was written: resourceVersion %s→%s, owners %v, ports %+v, selector %v",
			svc.ResourceVersion, after.ResourceVersion, after.OwnerReferences, after.Spec.Ports, after.Spec.Selector)
	}
}
