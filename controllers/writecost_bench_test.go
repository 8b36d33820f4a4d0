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
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/controllers"
)

// BenchmarkWriteCost measures what one write of each kind the manager makes per render of
// a 100-Plugin host costs the control plane (etcd and kube-apiserver CPU, read from /proc),
// one writer at a time, with objects shaped as the manager writes them: the host's status,
// the ConfigMap's server-side apply, the ControllerRevision's create, the pod's nudge, and
// for comparison a Plugin's status (the write BenchmarkScale's floor makes once per Plugin).
// It also reports the writer's own CPU per write (this process's, from /proc). The two
// status writes are measured with the whole object in the answer and with its metadata only.
//
//	go test ./controllers/ -run '^$' -bench '^BenchmarkWriteCost$' -benchtime 300x
func BenchmarkWriteCost(b *testing.B) {
	needEnv(b)
	const plugins = 100
	ns := newNamespace(b)
	c := fastClient(b)
	ctx := context.Background()
	config := renderedLike(plugins)
	revision := func(i int) string { return fmt.Sprintf("sha256:%064x", i) }
	// Each sub-benchmark runs more than once (b.N grows, -count): new objects each time.
	runs := 0
	nextRun := func() int { runs++; return runs }

	measure := func(b *testing.B, write func(i int)) {
		write(0) // the object exists and the API server has seen its kind
		b.ResetTimer()
		cp0, self0 := childrenCPU(controlPlane...), procCPU(os.Getpid())
		for i := range b.N {
			write(i + 1)
		}
		b.StopTimer()
		cp, self := childrenCPU(controlPlane...)-cp0, procCPU(os.Getpid())-self0
		b.ReportMetric(float64(cp.Microseconds())/1000/float64(b.N), "control-plane-ms/write")
		// The writer's side: encoding the write, the HTTP exchange and decoding the answer.
		b.ReportMetric(float64(self.Microseconds())/1000/float64(b.N), "writer-ms/write")
	}
	// A status write, its merge patch computed from the statuses alone as the manager does,
	// answered with the whole object (as the manager asked before 2026-12-08) or with its
	// metadata only (controllers/status_patch.go).
	answers := []struct {
		name  string
		write func(obj client.Object, before, after any) error
	}{
		{"answer=object", func(obj client.Object, before, after any) error {
			patch, err := controllers.StatusMergePatch(before, after)
			if err != nil {
				return err
			}
			return c.Status().Patch(ctx, obj, patch)
		}},
		{"answer=metadata", func(obj client.Object, before, after any) error {
			patch, err := controllers.StatusMergePatch(before, after)
			if err != nil {
				return err
			}
			return controllers.PatchStatusAnswerMetadata(ctx, c, obj, patch)
		}},
	}

	for _, answer := range answers {
		b.Run(fmt.Sprintf("host-status-%d-plugins/%s", plugins, answer.name), func(b *testing.B) {
			h := newHost(ns, fmt.Sprintf("host%d", nextRun()), "x")
			if err := c.Create(ctx, h); err != nil {
				b.Fatal(err)
			}
			measure(b, func(i int) {
				before := h.DeepCopy()
				h.Status.ConfigRevision = revision(i)
				h.Status.Plugins = h.Status.Plugins[:0]
				for p := range plugins {
					h.Status.Plugins = append(h.Status.Plugins, v1alpha1.SelectedPluginStatus{
						Name: fmt.Sprintf("p%05d", p), UID: types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", p)),
						Generation: 1, Reason: v1alpha1.ReasonAccepted, Revision: revision(i), AppliedGeneration: int64(i % 2),
					})
				}
				if err := answer.write(h, &before.Status, &h.Status); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
	// Answered with the whole object, or with its metadata only as the manager's applier
	// asks now (applyAnswerMetadata).
	for _, answer := range []string{"object", "metadata"} {
		b.Run("configmap-apply/answer="+answer, func(b *testing.B) {
			name := fmt.Sprintf("config%d", nextRun())
			measure(b, func(i int) {
				cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
					"metadata": map[string]any{"namespace": ns, "name": name},
					"data":     map[string]any{"config.json": config(i)}}}
				var err error
				if answer == "object" {
					err = c.Apply(ctx, client.ApplyConfigurationFromUnstructured(cm), client.FieldOwner(v1alpha1.FieldOwner), client.ForceOwnership)
				} else {
					_, err = controllers.ApplyAnswerMetadata(ctx, c, cm)
				}
				if err != nil {
					b.Fatal(err)
				}
			})
		})
	}

	b.Run("controllerrevision-create", func(b *testing.B) {
		run := nextRun()
		measure(b, func(i int) {
			cr := &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("rev%d-%d", run, i)},
				Revision: int64(i + 1), Data: runtime.RawExtension{Raw: fmt.Appendf(nil, `{"revision":%q,"config":%q}`, revision(i), config(i))}}
			if err := c.Create(ctx, cr); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("pod-nudge", func(b *testing.B) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("pod%d", nextRun())},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "host", Image: "example.invalid/pluginhost"}}}}
		if err := c.Create(ctx, pod); err != nil {
			b.Fatal(err)
		}
		measure(b, func(i int) {
			patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.ConfigRevisionAnnotation, revision(i))
			if err := c.Patch(ctx, pod, client.RawPatch(types.MergePatchType, patch)); err != nil {
				b.Fatal(err)
			}
		})
	})
	for _, answer := range answers {
		b.Run("plugin-status/"+answer.name, func(b *testing.B) {
			p := newPlugin(ns, fmt.Sprintf("plugin%d", nextRun()), "x", 1)
			if err := c.Create(ctx, p); err != nil {
				b.Fatal(err)
			}
			measure(b, func(i int) {
				before := p.DeepCopy()
				now := metav1.NewTime(time.Now())
				p.Status.ObservedGeneration, p.Status.AppliedRevision = p.Generation, revision(i)
				p.Status.Conditions = p.Status.Conditions[:0]
				for _, typ := range []string{v1alpha1.ConditionAccepted, v1alpha1.ConditionApplied, v1alpha1.ConditionReady} {
					p.Status.Conditions = append(p.Status.Conditions, metav1.Condition{Type: typ, Status: metav1.ConditionTrue,
						ObservedGeneration: p.Generation, LastTransitionTime: now, Reason: "Serving", Message: fmt.Sprintf("Served at revision %d", i)})
				}
				if err := answer.write(p, &before.Status, &p.Status); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// renderedLike returns a config.json of n counter entries, about the size the manager renders
// for n Plugins, different for each i.
func renderedLike(n int) func(i int) string {
	return func(i int) string {
		var s strings.Builder
		s.WriteString(`{"plugins":[`)
		for p := range n {
			if p > 0 {
				s.WriteString(",")
			}
			fmt.Fprintf(&s, `{"name":"p%05d","type":"counter","enabled":true,"options":{"increment":%d}}`, p, i)
		}
		s.WriteString("]}")
		return s.String()
	}
}
