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
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/hostapi"
)

// lateNewsReconcile is a reconcile of host h, desired revision "new", past its steps: its
// two running pods read at the old revision, the first of them unreadable.
func lateNewsReconcile(t *testing.T) (*PluginHostReconciler, *hostReconcile) {
	t.Helper()
	r := &PluginHostReconciler{reader: newStatusReader(time.Second, 4, 1, 0)}
	pod := func(name, ip string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "host", Ports: []corev1.ContainerPort{{Name: OpsPortName, ContainerPort: 9090}}}}},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		}
	}
	host := &v1alpha1.PluginHost{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "h"},
		Status: v1alpha1.PluginHostStatus{ConfigRevision: "new", AppliedRevision: "old",
			Plugins: []v1alpha1.SelectedPluginStatus{{Name: "p", Generation: 2, AppliedGeneration: 1, Revision: "new", Reason: v1alpha1.ReasonAccepted}}}}
	rc := &hostReconcile{host: host, before: host.DeepCopy()}
	rc.running = []*corev1.Pod{pod("a", "198.18.0.1"), pod("b", "198.18.0.2")}
	rc.results = []probeResult{{err: errors.New("connection refused")}, {status: &hostapi.Status{Revision: "old", Ready: true}}}
	r.reportPods(context.Background(), rc)
	if rc.facts.rolledOut() {
		t.Fatal("the reconcile's own read already rolled out")
	}
	return r, rc
}

func TestLateNewsGoesIntoTheStatus(t *testing.T) {
	r, rc := lateNewsReconcile(t)
	// While the reconcile writes, both pods apply "new" and their long-polls hear it.
	for _, p := range rc.running {
		addr, err := podAddress(p)
		if err != nil {
			t.Fatal(err)
		}
		r.reader.keep(p.UID, addr, &hostapi.Status{Revision: "new", Ready: true}, time.Now())
	}
	r.takeLateNews(context.Background(), rc)

	if !rc.facts.rolledOut() {
		t.Errorf("facts after the late news: %+v, want rolled out", rc.facts.Running)
	}
	if len(rc.facts.Running) != 2 {
		t.Errorf("facts list %d running pods, want 2 (each once)", len(rc.facts.Running))
	}
	st := rc.host.Status
	if st.AppliedRevision != "new" || st.Plugins[0].AppliedGeneration != 2 {
		t.Errorf("status after the late news: appliedRevision %q, Plugin p appliedGeneration %d; want new, 2", st.AppliedRevision, st.Plugins[0].AppliedGeneration)
	}
	for _, p := range st.Pods {
		if p.AppliedRevision != "new" {
			t.Errorf("pod %s reported at %q, want new", p.Name, p.AppliedRevision)
		}
	}
	// Taken once: the next reconcile reads the pods again.
	if news := r.reader.news(rc.running); news[0] != nil || news[1] != nil {
		t.Errorf("the news was not taken: %v", news)
	}
}

func TestLateNewsOfOnePod(t *testing.T) {
	r, rc := lateNewsReconcile(t)
	b := rc.running[1]
	addr, _ := podAddress(b)
	r.reader.keep(b.UID, addr, &hostapi.Status{Revision: "new", Ready: true}, time.Now())
	r.takeLateNews(context.Background(), rc)

	if rc.facts.rolledOut() {
		t.Error("rolled out while pod a's read failed")
	}
	st := rc.host.Status
	if st.AppliedRevision != "old" {
		t.Errorf("appliedRevision %q, want old: one pod of two applied", st.AppliedRevision)
	}
	if got := st.Pods[1].AppliedRevision; got != "new" {
		t.Errorf("pod b reported at %q, want its news: new", got)
	}
	if rc.facts.Running[0].Err == nil {
		t.Error("pod a's failed read was lost")
	}
}

func TestNoLateNews(t *testing.T) {
	r, rc := lateNewsReconcile(t)
	before := rc.host.Status.DeepCopy()
	r.takeLateNews(context.Background(), rc)
	if rc.host.Status.AppliedRevision != before.AppliedRevision || len(rc.facts.Running) != 2 {
		t.Errorf("without news the status moved: %+v", rc.host.Status)
	}
}
