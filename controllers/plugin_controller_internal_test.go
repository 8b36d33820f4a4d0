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
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

func TestStatusMergePatch(t *testing.T) {
	before := v1alpha1.PluginStatus{ObservedGeneration: 1, Host: "h", AppliedRevision: "abc",
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Applied"}}}
	after := v1alpha1.PluginStatus{ObservedGeneration: 2, Host: "h",
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "Pending"}}}
	patch, err := statusMergePatch(&before, &after)
	if err != nil {
		t.Fatal(err)
	}
	data, err := patch.Data(nil)
	if err != nil {
		t.Fatal(err)
	}
	// A field that went empty is removed (null); an unchanged one is not sent; a list is
	// replaced whole, as a merge patch does.
	want := `{"status":{"appliedRevision":null,"conditions":[{"lastTransitionTime":null,"message":"","reason":"Pending","status":"False","type":"Ready"}],"observedGeneration":2}}`
	if string(data) != want {
		t.Errorf("patch\n%s\nwant\n%s", data, want)
	}
}
