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
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// waitAuditHead waits until the host's status holds the pod's audit head as the pod's
// /status reports it, and returns it.
func waitAuditHead(t *testing.T, ns, host string, pod *fakePod) *v1alpha1.AuditHead {
	t.Helper()
	var got *v1alpha1.AuditHead
	testutil.Eventually(t, wait, "the pod's audit head in the host's status", func() error {
		st, err := pod.status()
		if err != nil {
			return err
		}
		h := &v1alpha1.PluginHost{}
		if err := get(t, h, ns, host); err != nil {
			return err
		}
		if len(h.Status.Pods) != 1 || st.Audit == nil {
			return fmt.Errorf("pods %+v, pod audit %+v", h.Status.Pods, st.Audit)
		}
		got = h.Status.Pods[0].AuditHead
		if got == nil || got.ChainID != st.Audit.Chain || uint64(got.Sequence) != st.Audit.Sequence || got.Hash != st.Audit.Head {
			poke(t, ns, host) // the status is read at each reconcile
			return fmt.Errorf("status auditHead %+v, pod reports %+v", got, st.Audit)
		}
		return nil
	})
	return got
}

// TestAuditHeadFromRealPluginhost: the manager copies a real pluginhost's audit head into
// the PluginHost status; a trail cut while the pod was down (same chain, lower sequence)
// and one edited (the pod reports the break at start) are seen from outside the pod, as
// events and in the status.
func TestAuditHeadFromRealPluginhost(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManager(t, ns, testOptions())
	host := newHost(ns, "au", "au")
	host.Spec.PollInterval = &metav1.Duration{Duration: 100 * time.Millisecond}
	counter := newPlugin(ns, "counter-a", "au", 1)
	create(t, host, counter)
	pod := startPod(t, ns, "au", "au-0")
	pluginCondition(t, ns, "counter-a", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	update(t, counter, func(p *v1alpha1.Plugin) { p.Spec.Options.Increment = ptr.To[int32](2) })
	testutil.Eventually(t, wait, "the edit applied", func() error {
		p := &v1alpha1.Plugin{}
		if err := get(t, p, ns, "counter-a"); err != nil {
			return err
		}
		if p.Status.ObservedGeneration != 2 || findCondition(p.Status.Conditions, v1alpha1.ConditionReady).Reason != v1alpha1.ReasonServing {
			return fmt.Errorf("plugin status %+v", p.Status)
		}
		return nil
	})
	head := waitAuditHead(t, ns, "au", pod)
	if !head.Verified || head.BrokenAt != nil || head.Sequence < 3 {
		t.Fatalf("audit head %+v; want a verified trail of at least genesis and two configs", head)
	}

	// 1. Cut the trail to its genesis while the pod is down: it restarts on the same chain
	// with a lower sequence, which only the status' earlier head can tell.
	trail := filepath.Join(pod.stateDir, "audit.jsonl")
	pod.stop()
	b, err := os.ReadFile(trail)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if err := os.WriteFile(trail, lines[0], 0o600); err != nil {
		t.Fatal(err)
	}
	pod.restart(t)
	cut := waitAuditHead(t, ns, "au", pod)
	if cut.ChainID != head.ChainID || cut.Sequence >= head.Sequence || !cut.Verified {
		t.Fatalf("after the cut: %+v; want chain %s, verified, below sequence %d", cut, head.ChainID, head.Sequence)
	}
	waitEvent(t, ns, v1alpha1.EventAuditTrailRegressed, "au", fmt.Sprintf("went back from sequence %d to %d: records were cut", head.Sequence, cut.Sequence))

	// 2. Edit a record while the pod is down: the pod finds the break at start.
	pod.stop()
	b, err = os.ReadFile(trail)
	if err != nil {
		t.Fatal(err)
	}
	lines = bytes.SplitAfter(b, []byte("\n"))
	lines[1] = bytes.Replace(lines[1], []byte(`"result":"applied"`), []byte(`"result":"refused"`), 1)
	if err := os.WriteFile(trail, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	pod.restart(t)
	broken := waitAuditHead(t, ns, "au", pod)
	if broken.Verified || broken.BrokenAt == nil || *broken.BrokenAt != 2 || broken.ChainID != head.ChainID {
		t.Fatalf("after the edit: %+v; want broken at sequence 2, same chain", broken)
	}
	waitEvent(t, ns, v1alpha1.EventAuditTrailBroken, "au", "broken at sequence 2: edited: hash mismatch")
	if code, _ := pod.call(t, "POST", "counter-a", "increment", `{"value":1}`, ""); code != 200 {
		t.Fatalf("the pod with a broken trail does not serve: %d", code)
	}
}
