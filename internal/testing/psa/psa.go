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

// Package psa evaluates pod templates against the "restricted" Pod Security Standard with the
// same code the API server's PodSecurity admission plugin runs
// (k8s.io/pod-security-admission/policy), so that tests can prove that the manager's pod and
// the PluginHost pods the operator creates would be admitted into a namespace labelled
// pod-security.kubernetes.io/enforce=restricted.
package psa

import (
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// evaluator holds every check of the pod-security-admission module, as the API server does.
var evaluator = func() policy.Evaluator {
	e, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		panic(fmt.Sprintf("psa: building the Pod Security evaluator: %v", err))
	}
	return e
}()

// Restricted is the level and version CheckRestricted enforces: "restricted" at the latest
// policy version, the strictest profile a namespace can enforce.
var Restricted = api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}

// CheckRestricted evaluates a pod (or a workload's pod template: pass the template's
// metadata and spec) against the "restricted" Pod Security Standard, latest version. It
// returns one message per violation, such as
// `allowPrivilegeEscalation != false (container "app" must set
// securityContext.allowPrivilegeEscalation=false)`, in the wording of the API server's
// warnings; none means the pod is admitted. meta may be nil.
func CheckRestricted(meta *metav1.ObjectMeta, spec *corev1.PodSpec) []string {
	if meta == nil {
		meta = &metav1.ObjectMeta{}
	}
	if spec == nil {
		return []string{"no pod spec"}
	}
	var violations []string
	for _, r := range evaluator.EvaluatePod(Restricted, meta, spec) {
		if r.Allowed {
			continue
		}
		msg := r.ForbiddenReason
		if r.ForbiddenDetail != "" {
			msg += " (" + r.ForbiddenDetail + ")"
		}
		violations = append(violations, msg)
	}
	sort.Strings(violations)
	return violations
}

// PodTemplate returns the pod metadata and spec of a Pod or of a workload's pod template
// (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob), typed or unstructured.
// ok is false for any other kind.
func PodTemplate(obj runtime.Object) (meta *metav1.ObjectMeta, spec *corev1.PodSpec, ok bool, err error) {
	if u, isU := obj.(*unstructured.Unstructured); isU {
		typed, known := newTyped(u.GroupVersionKind())
		if !known {
			return nil, nil, false, nil
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, typed, true); err != nil {
			return nil, nil, false, fmt.Errorf("psa: decoding %s %s: %w", u.GetKind(), u.GetName(), err)
		}
		obj = typed
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		return &o.ObjectMeta, &o.Spec, true, nil
	case *appsv1.Deployment:
		return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, true, nil
	case *appsv1.StatefulSet:
		return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, true, nil
	case *appsv1.DaemonSet:
		return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, true, nil
	case *appsv1.ReplicaSet:
		return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, true, nil
	case *batchv1.Job:
		return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, true, nil
	case *batchv1.CronJob:
		t := &o.Spec.JobTemplate.Spec.Template
		return &t.ObjectMeta, &t.Spec, true, nil
	}
	return nil, nil, false, nil
}

func newTyped(gvk schema.GroupVersionKind) (runtime.Object, bool) {
	switch gvk {
	case corev1.SchemeGroupVersion.WithKind("Pod"):
		return &corev1.Pod{}, true
	case appsv1.SchemeGroupVersion.WithKind("Deployment"):
		return &appsv1.Deployment{}, true
	case appsv1.SchemeGroupVersion.WithKind("StatefulSet"):
		return &appsv1.StatefulSet{}, true
	case appsv1.SchemeGroupVersion.WithKind("DaemonSet"):
		return &appsv1.DaemonSet{}, true
	case appsv1.SchemeGroupVersion.WithKind("ReplicaSet"):
		return &appsv1.ReplicaSet{}, true
	case batchv1.SchemeGroupVersion.WithKind("Job"):
		return &batchv1.Job{}, true
	case batchv1.SchemeGroupVersion.WithKind("CronJob"):
		return &batchv1.CronJob{}, true
	}
	return nil, false
}

// CheckObject runs CheckRestricted on the pod template of obj (see PodTemplate). ok is false
// when obj has no pod template.
func CheckObject(obj runtime.Object) (violations []string, ok bool, err error) {
	meta, spec, ok, err := PodTemplate(obj)
	if err != nil || !ok {
		return nil, ok, err
	}
	return CheckRestricted(meta, spec), true, nil
}
