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
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// gone waits until the object ns/name no longer exists.
func gone(t *testing.T, obj client.Object, ns, name string) {
	t.Helper()
	testutil.Eventually(t, wait, fmt.Sprintf("%T %s deleted", obj, name), func() error {
		err := get(t, obj, ns, name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			return errors.New("still there")
		}
		return err
	})
}

// The NetworkPolicy and the PodDisruptionBudget are opt-in children: applied when enabled,
// updated with the spec, deleted when disabled; a same-named object the host does not own
// is left alone.
func TestNetworkPolicyAndBudgetFollowTheSpec(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	opts := testOptions()
	opts.ManagerNamespace = "operator-system"
	opts.ManagerPodLabels = map[string]string{"control-plane": "controller-manager", "app.kubernetes.io/name": "plugin-operator"}
	startManager(t, ns, opts)

	clients := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}}}
	host := newHost(ns, "guarded", "g")
	host.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{Enabled: true, From: []networkingv1.NetworkPolicyPeer{clients}}
	host.Spec.PodDisruptionBudget = &v1alpha1.PodDisruptionBudgetSpec{Enabled: true}
	create(t, host)
	// A PluginHost that enables neither gets neither (and ignores a same-named policy of the user's).
	plain := newHost(ns, "plain", "p")
	userPolicy := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plain"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{}, PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	create(t, plain, userPolicy)

	np, pdb := &networkingv1.NetworkPolicy{}, &policyv1.PodDisruptionBudget{}
	testutil.Eventually(t, wait, "NetworkPolicy and PodDisruptionBudget", func() error {
		if err := get(t, np, ns, "guarded"); err != nil {
			return err
		}
		return get(t, pdb, ns, "guarded")
	})
	h := &v1alpha1.PluginHost{}
	if err := get(t, h, ns, "guarded"); err != nil {
		t.Fatal(err)
	}
	checkChild(t, h, np)
	checkChild(t, h, pdb)
	if len(np.Spec.Ingress) != 2 || np.Spec.Ingress[0].Ports[0].Port.StrVal != "http" || np.Spec.Ingress[1].Ports[0].Port.StrVal != "ops" ||
		np.Spec.Ingress[0].From[0].PodSelector.MatchLabels["role"] != "client" ||
		np.Spec.Ingress[1].From[0].NamespaceSelector.MatchLabels[corev1.LabelMetadataName] != "operator-system" ||
		np.Spec.Ingress[1].From[0].PodSelector.MatchLabels["app.kubernetes.io/name"] != "plugin-operator" {
		t.Errorf("NetworkPolicy ingress %+v", np.Spec.Ingress)
	}
	if pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil || pdb.Spec.Selector.MatchLabels[v1alpha1.LabelHost] != "guarded" {
		t.Errorf("PodDisruptionBudget %+v", pdb.Spec)
	}

	// A second client namespace: the policy follows.
	update(t, h, func(h *v1alpha1.PluginHost) {
		h.Spec.NetworkPolicy.From = append(h.Spec.NetworkPolicy.From,
			networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}})
	})
	testutil.Eventually(t, wait, "NetworkPolicy updated", func() error {
		if err := get(t, np, ns, "guarded"); err != nil {
			return err
		}
		if from := np.Spec.Ingress[0].From; len(from) != 2 || from[1].NamespaceSelector == nil || from[1].NamespaceSelector.MatchLabels["team"] != "b" {
			return fmt.Errorf("API rule from %+v", from)
		}
		return nil
	})

	update(t, h, func(h *v1alpha1.PluginHost) {
		h.Spec.NetworkPolicy.Enabled = false
		h.Spec.PodDisruptionBudget = nil
	})
	gone(t, &networkingv1.NetworkPolicy{}, ns, "guarded")
	gone(t, &policyv1.PodDisruptionBudget{}, ns, "guarded")

	// The deletions above ran, so the plain host's reconciles have run too; its namesake
	// policy, which it does not control, is still there, untouched.
	testutil.Eventually(t, wait, "plain host reconciled", func() error {
		p := &v1alpha1.PluginHost{}
		if err := get(t, p, ns, "plain"); err != nil {
			return err
		}
		if p.Status.ObservedGeneration != p.Generation {
			return fmt.Errorf("observedGeneration %d of %d", p.Status.ObservedGeneration, p.Generation)
		}
		return nil
	})
	kept := &networkingv1.NetworkPolicy{}
	if err := get(t, kept, ns, "plain"); err != nil || kept.UID != userPolicy.UID || len(kept.OwnerReferences) != 0 {
		t.Errorf("the user's NetworkPolicy: %v %+v", err, kept.ObjectMeta)
	}
	if err := get(t, &policyv1.PodDisruptionBudget{}, ns, "plain"); !apierrors.IsNotFound(err) {
		t.Errorf("a PodDisruptionBudget for a host that did not ask: %v", err)
	}
}

// whenDeleted: Retain removes the claim's owner reference (so the garbage collector leaves
// it), Delete puts it back; a new PluginHost of the same name adopts a retained claim. The
// API server defaults whenDeleted and emptyDirSizeLimit, and refuses unknown policies.
func TestRetainedStateClaim(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManager(t, ns, testOptions())

	bad := newHost(ns, "bad", "b")
	bad.Spec.Persistence = &v1alpha1.PersistenceSpec{Enabled: true, WhenDeleted: "Keep"}
	if err := env.Client.Create(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "spec.persistence.whenDeleted") {
		t.Errorf("whenDeleted: Keep: %v, want a refusal naming the field", err)
	}
	bad = newHost(ns, "bad", "b")
	bad.Spec.Persistence = &v1alpha1.PersistenceSpec{EmptyDirSizeLimit: ptr.To(resource.MustParse("0"))}
	if err := env.Client.Create(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "spec.persistence.emptyDirSizeLimit") {
		t.Errorf("emptyDirSizeLimit: 0: %v, want a refusal naming the field", err)
	}

	host := newHost(ns, "kept", "k")
	host.Spec.Persistence = &v1alpha1.PersistenceSpec{Enabled: true, WhenDeleted: v1alpha1.ClaimRetain}
	create(t, host)
	if host.Spec.Persistence.EmptyDirSizeLimit == nil || host.Spec.Persistence.EmptyDirSizeLimit.String() != "64Mi" {
		t.Errorf("emptyDirSizeLimit defaulted to %v, want 64Mi", host.Spec.Persistence.EmptyDirSizeLimit)
	}
	defaulted := newHost(ns, "defaulted", "d")
	create(t, defaulted)
	if p := defaulted.Spec.Persistence; p == nil || p.WhenDeleted != v1alpha1.ClaimDelete {
		t.Errorf("whenDeleted defaulted to %+v, want Delete", p)
	}

	pvc := &corev1.PersistentVolumeClaim{}
	owners := func(want types.UID) func() error {
		return func() error {
			if err := get(t, pvc, ns, "kept-state"); err != nil {
				return err
			}
			refs := pvc.OwnerReferences
			switch {
			case want == "" && len(refs) != 0:
				return fmt.Errorf("owner references %+v, want none", refs)
			case want != "" && (len(refs) != 1 || refs[0].UID != want || !ptr.Deref(refs[0].Controller, false)):
				return fmt.Errorf("owner references %+v, want the PluginHost %s", refs, want)
			}
			return nil
		}
	}
	testutil.Eventually(t, wait, "retained claim without owner", owners(""))
	if pvc.Labels[v1alpha1.LabelHost] != "kept" {
		t.Errorf("claim labels %v", pvc.Labels)
	}
	update(t, host, func(h *v1alpha1.PluginHost) { h.Spec.Persistence.WhenDeleted = v1alpha1.ClaimDelete })
	testutil.Eventually(t, wait, "Delete puts the owner reference back", owners(host.UID))
	update(t, host, func(h *v1alpha1.PluginHost) { h.Spec.Persistence.WhenDeleted = v1alpha1.ClaimRetain })
	testutil.Eventually(t, wait, "Retain removes it again", owners(""))
	claimUID := pvc.UID

	// The PluginHost goes (envtest runs no garbage collector; the missing owner reference is
	// what keeps a real cluster's collector away). A new one of the same name adopts the claim.
	if err := env.Client.Delete(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	gone(t, &v1alpha1.PluginHost{}, ns, "kept")
	again := newHost(ns, "kept", "k")
	again.Spec.Persistence = &v1alpha1.PersistenceSpec{Enabled: true}
	create(t, again)
	testutil.Eventually(t, wait, "the new PluginHost adopts the claim", owners(again.UID))
	if pvc.UID != claimUID {
		t.Errorf("claim UID %s, want the retained claim %s", pvc.UID, claimUID)
	}
}
