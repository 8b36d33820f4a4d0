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
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// childKind is one kind of object that a PluginHost renders. childKinds is the one list of
// them: the ownership check (hostChildren), the cache's selection (cacheOptions), the watches
// (Owns), the applier's memory (forget), the deletion of disabled optional children
// (reconcileWorkload) and the check of the RBAC markers (TestRBACCoversChildKinds) follow
// from it. A new kind of child is added here, with its RBAC marker in rbac.go.
type childKind struct {
	gvk schema.GroupVersionKind
	// resource is the kind's plural resource name, as in RBAC rules.
	resource string
	// newObject returns an empty typed object of the kind.
	newObject func() client.Object
	// name is the child's name for host.
	name func(host *v1alpha1.PluginHost) string
	// rendered reports whether host renders this child; nil means always.
	rendered func(host *v1alpha1.PluginHost) bool
	// metadataOnly kinds (ConfigMaps, Secrets) are cached and watched as metadata only,
	// selected by the consent label's key; the others by the host label (cacheOptions).
	metadataOnly bool
	// deletedWhenOff children are deleted when host stops rendering them (the optional
	// NetworkPolicy and PodDisruptionBudget). A state claim is not: it holds data.
	deletedWhenOff bool
}

// childKinds are the kinds of a PluginHost's children, in the order they are written.
var childKinds = []childKind{{
	gvk: corev1.SchemeGroupVersion.WithKind("Secret"), resource: "secrets",
	newObject: func() client.Object { return &corev1.Secret{} }, name: credentialsName, metadataOnly: true,
}, {
	gvk: corev1.SchemeGroupVersion.WithKind("ConfigMap"), resource: "configmaps",
	newObject: func() client.Object { return &corev1.ConfigMap{} }, name: configMapName, metadataOnly: true,
}, {
	gvk: corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"), resource: "persistentvolumeclaims",
	newObject: func() client.Object { return &corev1.PersistentVolumeClaim{} }, name: stateClaimName,
	rendered: func(h *v1alpha1.PluginHost) bool { return h.Spec.Persistence != nil && h.Spec.Persistence.Enabled },
}, {
	gvk: appsv1.SchemeGroupVersion.WithKind("Deployment"), resource: "deployments",
	newObject: func() client.Object { return &appsv1.Deployment{} }, name: deploymentName,
}, {
	gvk: corev1.SchemeGroupVersion.WithKind("Service"), resource: "services",
	newObject: func() client.Object { return &corev1.Service{} }, name: serviceName,
}, {
	gvk: networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy"), resource: "networkpolicies",
	newObject: func() client.Object { return &networkingv1.NetworkPolicy{} }, name: networkPolicyName,
	rendered:       func(h *v1alpha1.PluginHost) bool { return h.Spec.NetworkPolicy != nil && h.Spec.NetworkPolicy.Enabled },
	deletedWhenOff: true,
}, {
	gvk: policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"), resource: "poddisruptionbudgets",
	newObject: func() client.Object { return &policyv1.PodDisruptionBudget{} }, name: budgetName,
	rendered: func(h *v1alpha1.PluginHost) bool {
		return h.Spec.PodDisruptionBudget != nil && h.Spec.PodDisruptionBudget.Enabled
	},
	deletedWhenOff: true,
}}

// renders reports whether host renders a child of kind k.
func (k childKind) renders(host *v1alpha1.PluginHost) bool {
	return k.rendered == nil || k.rendered(host)
}

// typedObject returns an empty typed object of kind k with its TypeMeta, named for host.
func (k childKind) typedObject(host *v1alpha1.PluginHost) client.Object {
	obj := k.newObject()
	obj.GetObjectKind().SetGroupVersionKind(k.gvk)
	obj.SetNamespace(host.Namespace)
	obj.SetName(k.name(host))
	return obj
}

// childKindOf returns the childKind of kind, a Kind name.
func childKindOf(kind string) (childKind, bool) {
	for _, k := range childKinds {
		if k.gvk.Kind == kind {
			return k, true
		}
	}
	return childKind{}, false
}
