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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// A host is reconciled for every pod change but the manager's own nudge.
func TestNotOnlyNudged(t *testing.T) {
	base := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "h-0", ResourceVersion: "1",
			Labels:      map[string]string{v1alpha1.LabelHost: "h"},
			Annotations: map[string]string{v1alpha1.ConfigRevisionAnnotation: "sha256:aa", "team": "a"}},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "pluginhost", Image: "img:1"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "198.18.0.5"},
	}
	for _, tc := range []struct {
		name   string
		change func(p *corev1.Pod)
		want   bool
	}{
		{"the nudge: config revision", func(p *corev1.Pod) { p.Annotations[v1alpha1.ConfigRevisionAnnotation] = "sha256:bb" }, false},
		{"the nudge: credentials revision", func(p *corev1.Pod) { p.Annotations[v1alpha1.CredentialsRevisionAnnotation] = "c1" }, false},
		{"a resync", func(*corev1.Pod) {}, false},
		{"another annotation", func(p *corev1.Pod) { p.Annotations["team"] = "b" }, true},
		{"a label", func(p *corev1.Pod) { p.Labels["x"] = "y" }, true},
		{"ready", func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}, true},
		{"its IP", func(p *corev1.Pod) { p.Status.PodIP = "198.18.0.6" }, true},
		{"its image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "img:2" }, true},
		{"being deleted", func(p *corev1.Pod) { now := metav1.Now(); p.DeletionTimestamp = &now }, true},
		{"its owner", func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "rs", UID: "u"}}
		}, true},
		{"the nudge and its status", func(p *corev1.Pod) {
			p.Annotations[v1alpha1.ConfigRevisionAnnotation] = "sha256:bb"
			p.Status.Phase = corev1.PodFailed
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			updated := base.DeepCopy()
			updated.ResourceVersion = "2"
			tc.change(updated)
			if got := notOnlyNudged.Update(event.UpdateEvent{ObjectOld: base, ObjectNew: updated}); got != tc.want {
				t.Errorf("notOnlyNudged = %v, want %v", got, tc.want)
			}
			if base.Annotations[v1alpha1.ConfigRevisionAnnotation] != "sha256:aa" || len(base.Annotations) != 2 {
				t.Errorf("the predicate changed the old object: %v", base.Annotations)
			}
		})
	}
}
