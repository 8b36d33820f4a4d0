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
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// rbacRules parses the +kubebuilder:rbac markers of rbac.go into group/resource → verbs.
func rbacRules(t *testing.T) map[string][]string {
	t.Helper()
	src, err := os.ReadFile("rbac.go")
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string][]string{}
	for _, line := range strings.Split(string(src), "\n") {
		marker, ok := strings.CutPrefix(strings.TrimSpace(line), "// +kubebuilder:rbac:")
		if !ok {
			continue
		}
		fields := map[string][]string{}
		for _, kv := range strings.Split(marker, ",") {
			k, v, _ := strings.Cut(kv, "=")
			for _, e := range strings.Split(v, ";") {
				fields[k] = append(fields[k], strings.Trim(e, `"`))
			}
		}
		for _, g := range fields["groups"] {
			for _, r := range fields["resources"] {
				rules[g+"/"+r] = append(rules[g+"/"+r], fields["verbs"]...)
			}
		}
	}
	return rules
}

// TestRBACCoversChildKinds: the manager's ClusterRole (generated from rbac.go's markers)
// grants, for every kind of childKinds, what the operator does with children: read and
// watch them, create them, apply and patch them, and delete those deletedWhenOff.
func TestRBACCoversChildKinds(t *testing.T) {
	rules := rbacRules(t)
	for _, k := range childKinds {
		want := []string{"get", "list", "watch", "create", "patch"}
		if k.deletedWhenOff {
			want = append(want, "delete")
		}
		got := rules[k.gvk.Group+"/"+k.resource]
		for _, v := range want {
			if !slices.Contains(got, v) {
				t.Errorf("%s (%s): the RBAC markers grant %v, missing %q", k.gvk.Kind, k.resource, got, v)
			}
		}
	}
}

// TestChildKindsFollow: the cache selects, the ownership check reads and the applier forgets
// every kind of childKinds, and each kind is named once with an object of its own type.
func TestChildKindsFollow(t *testing.T) {
	opts := cacheOptions(nil)
	host := &v1alpha1.PluginHost{}
	host.Namespace, host.Name = "ns", "h"
	host.Spec.Persistence = &v1alpha1.PersistenceSpec{Enabled: true}
	host.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{Enabled: true}
	host.Spec.PodDisruptionBudget = &v1alpha1.PodDisruptionBudgetSpec{Enabled: true}
	children := hostChildren(host)
	if len(children) != len(childKinds) {
		t.Errorf("a host with every option renders %d children, childKinds has %d", len(children), len(childKinds))
	}
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, k := range childKinds {
		if seen[k.gvk.Kind] {
			t.Errorf("%s is listed twice", k.gvk.Kind)
		}
		seen[k.gvk.Kind] = true
		obj := k.newObject()
		gvks, _, err := scheme.ObjectKinds(obj)
		if err != nil || len(gvks) != 1 || gvks[0] != k.gvk {
			t.Errorf("%s: newObject is %T (%v, %v)", k.gvk.Kind, obj, gvks, err)
		}
		found := false
		for o, by := range opts.ByObject {
			if reflect.TypeOf(o) == reflect.TypeOf(obj) {
				found = true
				want := v1alpha1.LabelHost
				if k.metadataOnly {
					want = v1alpha1.LabelPluginAuth
				}
				if by.Label == nil || !strings.Contains(by.Label.String(), want) {
					t.Errorf("%s is cached by %v, want by the key of %s", k.gvk.Kind, by.Label, want)
				}
			}
		}
		if !found {
			t.Errorf("%s is not in the cache's ByObject", k.gvk.Kind)
		}
		if i < len(children) && children[i].GetObjectKind().GroupVersionKind() != k.gvk {
			t.Errorf("child %d is %v, want %v", i, children[i].GetObjectKind().GroupVersionKind(), k.gvk)
		}
	}
	a := newApplier(nil, nil, nil)
	for _, c := range children {
		a.uids[applyKey(c)] = "x"
		a.last[applyKey(c)] = appliedState{}
	}
	a.forget(host)
	if len(a.uids) != 0 || len(a.last) != 0 {
		t.Errorf("forget left %v and %v", a.uids, a.last)
	}
}
