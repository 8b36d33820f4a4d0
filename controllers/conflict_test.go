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
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// TestNoTakeoverOfForeignChildren: a PluginHost whose child name is taken by an object it
// does not control writes no child at all, reports the conflict (Stalled for kstatus, an
// event), leaves the foreign object as it was, and takes its place by itself once it is gone.
func TestNoTakeoverOfForeignChildren(t *testing.T) {
	needEnv(t)
	meta := func(ns, name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "victim"}}
	}
	tests := []struct {
		kind, name string
		foreign    func(ns string) client.Object
		empty      func() client.Object
	}{{
		kind: "ConfigMap", name: "victim-config",
		foreign: func(ns string) client.Object {
			return &corev1.ConfigMap{ObjectMeta: meta(ns, "victim-config"), Data: map[string]string{"app.properties": "mine=1"}}
		},
		empty: func() client.Object { return &corev1.ConfigMap{} },
	}, {
		kind: "Secret", name: "victim-credentials",
		foreign: func(ns string) client.Object {
			return &corev1.Secret{ObjectMeta: meta(ns, "victim-credentials"), StringData: map[string]string{"password": "hunter2"}}
		},
		empty: func() client.Object { return &corev1.Secret{} },
	}, {
		kind: "Deployment", name: "victim",
		foreign: func(ns string) client.Object {
			labels := map[string]string{"app": "victim"}
			return &appsv1.Deployment{ObjectMeta: meta(ns, "victim"), Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/victim:1"}}}},
			}}
		},
		empty: func() client.Object { return &appsv1.Deployment{} },
	}, {
		kind: "Service", name: "victim",
		foreign: func(ns string) client.Object {
			return &corev1.Service{ObjectMeta: meta(ns, "victim"), Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": "victim"}, Ports: []corev1.ServicePort{{Port: 80}}}}
		},
		empty: func() client.Object { return &corev1.Service{} },
	}, {
		kind: "PersistentVolumeClaim", name: "victim-state",
		foreign: func(ns string) client.Object {
			return &corev1.PersistentVolumeClaim{ObjectMeta: meta(ns, "victim-state"), Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")}},
			}}
		},
		empty: func() client.Object { return &corev1.PersistentVolumeClaim{} },
	}, {
		kind: "NetworkPolicy", name: "victim",
		foreign: func(ns string) client.Object {
			return &networkingv1.NetworkPolicy{ObjectMeta: meta(ns, "victim"), Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "victim"}}}}
		},
		empty: func() client.Object { return &networkingv1.NetworkPolicy{} },
	}, {
		kind: "PodDisruptionBudget", name: "victim",
		foreign: func(ns string) client.Object {
			one := intstr.FromInt32(1)
			return &policyv1.PodDisruptionBudget{ObjectMeta: meta(ns, "victim"), Spec: policyv1.PodDisruptionBudgetSpec{
				MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "victim"}}}}
		},
		empty: func() client.Object { return &policyv1.PodDisruptionBudget{} },
	}}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			ns := newNamespace(t)
			startManager(t, ns, testOptions())
			foreign := tt.foreign(ns)
			create(t, foreign)
			before := tt.empty()
			if err := get(t, before, ns, tt.name); err != nil {
				t.Fatal(err)
			}
			host := newHost(ns, "victim", "victim")
			host.Spec.Persistence = &v1alpha1.PersistenceSpec{Enabled: true}
			host.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{Enabled: true}
			host.Spec.PodDisruptionBudget = &v1alpha1.PodDisruptionBudgetSpec{Enabled: true}
			plugin := newPlugin(ns, "c", "victim", 1)
			create(t, host, plugin)

			h := hostCondition(t, ns, "victim", v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonChildConflict)
			want := tt.kind + " " + tt.name + " exists and is not controlled by this PluginHost"
			for _, typ := range []string{v1alpha1.ConditionReady, v1alpha1.ConditionStalled, v1alpha1.ConditionDegraded} {
				c := findCondition(h.Status.Conditions, typ)
				if c == nil || c.Reason != v1alpha1.ReasonChildConflict || !strings.Contains(c.Message, want) {
					t.Errorf("%s = %+v, want ChildConflict naming %q", typ, c, want)
				}
			}
			if h.Status.ObservedGeneration != h.Generation {
				t.Errorf("observedGeneration %d of %d: a conflict is an evaluated generation", h.Status.ObservedGeneration, h.Generation)
			}
			if res := computeStatus(t, host, "PluginHost"); res.Status != kstatus.FailedStatus || !strings.Contains(res.Message, want) {
				t.Errorf("kstatus %s %q, want Failed naming the object", res.Status, res.Message)
			}
			waitEvent(t, ns, v1alpha1.EventChildConflict, "victim", want)
			// The Plugin cannot run there either, and says why.
			pluginCondition(t, ns, "c", v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonChildConflict)

			// Nothing written: the foreign object is untouched and no other child exists.
			after := tt.empty()
			if err := get(t, after, ns, tt.name); err != nil {
				t.Fatal(err)
			}
			if after.GetResourceVersion() != before.GetResourceVersion() || len(after.GetOwnerReferences()) != 0 {
				t.Errorf("%s %s was written: resourceVersion %s→%s, owners %v", tt.kind, tt.name,
					before.GetResourceVersion(), after.GetResourceVersion(), after.GetOwnerReferences())
			}
			for _, other := range []struct {
				name string
				obj  client.Object
			}{
				{"victim-config", &corev1.ConfigMap{}}, {"victim-credentials", &corev1.Secret{}},
				{"victim-state", &corev1.PersistentVolumeClaim{}}, {"victim", &appsv1.Deployment{}},
				{"victim", &networkingv1.NetworkPolicy{}}, {"victim", &policyv1.PodDisruptionBudget{}},
			} {
				if other.name == tt.name && fmt.Sprintf("%T", other.obj) == fmt.Sprintf("%T", after) {
					continue
				}
				if err := get(t, other.obj, ns, other.name); !apierrors.IsNotFound(err) {
					t.Errorf("%T %s: %v, want not created while %s %s is foreign", other.obj, other.name, err, tt.kind, tt.name)
				}
			}
			if tt.kind != "Service" {
				if err := get(t, &corev1.Service{}, ns, "victim"); !apierrors.IsNotFound(err) {
					t.Errorf("Service victim: %v, want not created", err)
				}
			}

			// The foreign object goes: the host recovers by itself and owns its child.
			deleteForeign(t, after)
			gone := time.Now()
			hostCondition(t, ns, "victim", v1alpha1.ConditionStalled, metav1.ConditionFalse, v1alpha1.ReasonWorkloadUnavailable)
			// No event announces that an object without the operator's labels is gone: the
			// host looks again every 10 s (conflictRecheckInterval). Measured, not asserted.
			t.Logf("ChildConflict on %s %s recovered %v after the foreign object went", tt.kind, tt.name, time.Since(gone).Round(10*time.Millisecond))
			child := tt.empty()
			testutil.Eventually(t, wait, "the host's own "+tt.kind, func() error {
				if err := get(t, child, ns, tt.name); err != nil {
					return err
				}
				if ref := metav1.GetControllerOf(child); ref == nil || ref.UID != h.UID {
					return fmt.Errorf("controller %v", ref)
				}
				return nil
			})
			pluginCondition(t, ns, "c", v1alpha1.ConditionStalled, metav1.ConditionFalse, "")
		})
	}
}

// deleteForeign deletes obj and waits until it is gone, dropping the finalizers that the
// controllers envtest does not run would remove (pvc-protection).
func deleteForeign(t testing.TB, obj client.Object) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Delete(ctx, obj); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, wait, "foreign "+obj.GetName()+" gone", func() error {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(obj.GetFinalizers()) > 0 {
			obj.SetFinalizers(nil)
			if err := env.Client.Update(ctx, obj); err != nil {
				return err
			}
		}
		return fmt.Errorf("still there")
	})
}
