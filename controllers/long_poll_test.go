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
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// TestReadyWithoutAPollPeriod: with a status poll of a minute, a Plugin edit becomes Ready
// within half the test's wait only because the manager long-polls the pod's /status
// (?after=<revision>&wait=) and hears the applied revision at once (without it: a minute).
func TestReadyWithoutAPollPeriod(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	opts := testOptions()
	opts.SecretsMountPath = testutil.ShortTempDir(t)
	opts.StatusPollInterval = time.Hour // ≫ wait: a periodic read cannot make it
	startManager(t, ns, opts)

	// The manager reads a host's pods at the pace of its spec.pollInterval while a change is
	// in flight, when shorter than the status poll: here it is not, while the runtime itself
	// polls its config file every 100ms.
	host := newHost(ns, "lp", "lp")
	host.Spec.PollInterval = &metav1.Duration{Duration: time.Minute} // the most it takes
	counter := newPlugin(ns, "counter-a", "lp", 2)
	create(t, host, counter)
	startPodPolling(t, ns, "lp", "lp-0", 100*time.Millisecond)
	ready := func() *v1alpha1.Plugin {
		t.Helper()
		p := &v1alpha1.Plugin{}
		testutil.Eventually(t, wait/2, "Plugin counter-a Ready for its generation", func() error {
			if err := get(t, p, ns, "counter-a"); err != nil {
				return err
			}
			if p.Status.ObservedGeneration != p.Generation {
				return fmt.Errorf("status describes generation %d of %d", p.Status.ObservedGeneration, p.Generation)
			}
			return condition(p.Status.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing, p.Generation)
		})
		return p
	}
	ready()

	for i := range int32(3) {
		update(t, counter, func(p *v1alpha1.Plugin) { p.Spec.Options.Increment = ptr.To(3 + i) })
		p := ready()
		h := &v1alpha1.PluginHost{}
		if err := get(t, h, ns, "lp"); err != nil {
			t.Fatal(err)
		}
		if p.Status.AppliedRevision == "" || p.Status.AppliedRevision != h.Status.Pods[0].AppliedRevision {
			t.Errorf("edit %d: plugin appliedRevision %q, pod %+v", i, p.Status.AppliedRevision, h.Status.Pods)
		}
	}
}
