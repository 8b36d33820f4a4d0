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
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// TestHostImageAllowList: a PluginHost asking for an image outside --allowed-host-images is
// Degraded with ImageNotAllowed and nothing is applied for it: a new host gets no workload,
// a running one keeps its last accepted Deployment until the image is allowed again.
func TestHostImageAllowList(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	opts := testOptions()
	opts.AllowedHostImages = []string{"example.com/team/*"}
	startManager(t, ns, opts)

	const good, evil = "example.com/team/host:v2", "evil.example.com/steal:latest"
	a := newHost(ns, "a", "a")
	a.Spec.Image = good
	b := newHost(ns, "b", "b")
	b.Spec.Image = evil
	create(t, a, b, newPlugin(ns, "pa", "a", 1), newPlugin(ns, "pb", "b", 1))

	deployImage := func(name string) (string, error) {
		d := &appsv1.Deployment{}
		if err := get(t, d, ns, name); err != nil {
			return "", err
		}
		return d.Spec.Template.Spec.Containers[0].Image, nil
	}
	testutil.Eventually(t, wait, "Deployment a", func() error {
		img, err := deployImage("a")
		if err == nil && img != good {
			err = fmt.Errorf("image %q", img)
		}
		return err
	})

	// A host refused from the start: a specific reason, and nothing of it exists.
	hb := hostCondition(t, ns, "b", v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonImageNotAllowed)
	checkRefusal(t, hb, evil)
	if err := get(t, &appsv1.Deployment{}, ns, "b"); !apierrors.IsNotFound(err) {
		t.Errorf("Deployment of a refused PluginHost: %v, want NotFound", err)
	}
	if err := get(t, &corev1.ConfigMap{}, ns, "b-config"); !apierrors.IsNotFound(err) {
		t.Errorf("ConfigMap of a refused PluginHost: %v, want NotFound", err)
	}

	// A running host asks for another image: refused, its Deployment untouched.
	update(t, a, func(h *v1alpha1.PluginHost) { h.Spec.Image = evil })
	testutil.Eventually(t, wait, "refusal of the new generation", func() error {
		h := &v1alpha1.PluginHost{}
		if err := get(t, h, ns, "a"); err != nil {
			return err
		}
		return condition(h.Status.Conditions, v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonImageNotAllowed, h.Generation)
	})
	h := &v1alpha1.PluginHost{}
	if err := get(t, h, ns, "a"); err != nil {
		t.Fatal(err)
	}
	checkRefusal(t, h, evil)
	if img, err := deployImage("a"); err != nil || img != good {
		t.Errorf("Deployment a runs %q (%v) after a refused image change; want %q kept", img, err, good)
	}

	// Allowed again: applied.
	update(t, a, func(h *v1alpha1.PluginHost) { h.Spec.Image = "example.com/team/host:v3" })
	hostCondition(t, ns, "a", v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected)
	testutil.Eventually(t, wait, "Deployment a on v3", func() error {
		img, err := deployImage("a")
		if err == nil && img != "example.com/team/host:v3" {
			err = fmt.Errorf("image %q", img)
		}
		return err
	})
}

func checkRefusal(t *testing.T, h *v1alpha1.PluginHost, image string) {
	t.Helper()
	c := findCondition(h.Status.Conditions, v1alpha1.ConditionDegraded)
	for _, want := range []string{`spec.image "` + image + `"`, "--allowed-host-images", `"example.com/team/*"`, "example.com/pluginhost:test"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("Degraded message %q does not contain %q", c.Message, want)
		}
	}
}
