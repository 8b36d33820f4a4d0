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
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/controllers"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// unsaltedDigest is the credentials revision as it was computed before it was keyed: the
// SHA-256 of the credentials, which anyone who reads the pod could test guesses against.
func unsaltedDigest(creds map[string][]byte) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(creds)) {
		fmt.Fprintf(h, "%d:%s=%d:", len(k), k, len(creds[k]))
		h.Write(creds[k])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// podAnnotations waits until the pod's annotations satisfy check and returns them.
func podAnnotations(t *testing.T, ns, name string, check func(map[string]string) error) map[string]string {
	t.Helper()
	pod := &corev1.Pod{}
	testutil.Eventually(t, wait, "annotations of pod "+name, func() error {
		if err := get(t, pod, ns, name); err != nil {
			return err
		}
		return check(pod.Annotations)
	})
	return pod.Annotations
}

// TestCredentialsRevisionIsKeyed: the credentials-revision annotation on a host's pods is an
// HMAC keyed by a random key that <host>-credentials keeps (never in the configuration), not
// a digest of the credentials that anyone who reads pods could test guesses against; a
// restarted manager reads the key back, so the annotation stays as it was; a rotated
// credential still changes it. It runs, and restarts, the real manager binary.
func TestCredentialsRevisionIsKeyed(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	mgr := startManagerBinary(t, "--watch-namespaces="+ns)
	tokens := authSecret(ns, "tokens", map[string]string{"token": "s3cret"})
	secured := newPlugin(ns, "secured", "kr", 1)
	secured.Spec.Auth = &v1alpha1.PluginAuth{Method: v1alpha1.AuthMethodBearer, SecretRef: &v1alpha1.SecretReference{Name: "tokens"}}
	create(t, newHost(ns, "kr", "kr"), tokens, secured)
	advertise(t, ns, "kr") // the pod kr-types, which the manager nudges
	_, data := configMapData(t, ns, "kr", contains(`"secured"`))
	if strings.Contains(data, controllers.RevisionKeyField) {
		t.Errorf("config.json names the revision key: %s", data)
	}
	first := podAnnotations(t, ns, "kr-types", func(a map[string]string) error {
		if a[v1alpha1.CredentialsRevisionAnnotation] == "" {
			return fmt.Errorf("no %s annotation yet", v1alpha1.CredentialsRevisionAnnotation)
		}
		return nil
	})[v1alpha1.CredentialsRevisionAnnotation]

	creds := &corev1.Secret{}
	if err := get(t, creds, ns, "kr-credentials"); err != nil {
		t.Fatal(err)
	}
	key := creds.Data[controllers.RevisionKeyField]
	if len(key) != 32 {
		t.Fatalf("kr-credentials key %s holds %d bytes, want 32 random bytes", controllers.RevisionKeyField, len(key))
	}
	credentials := maps.Clone(creds.Data)
	delete(credentials, controllers.RevisionKeyField)
	delete(credentials, controllers.PushTokenField)
	if string(credentials["secured.token"]) != "s3cret" || len(credentials) != 1 {
		t.Fatalf("credentials %v, want secured.token only", credentials)
	}
	if first == unsaltedDigest(credentials) {
		t.Fatalf("the annotation %s is the unkeyed SHA-256 of the credentials", first)
	}
	if !strings.HasPrefix(first, controllers.CredentialsRevisionPrefix) || len(first) != len(controllers.CredentialsRevisionPrefix)+64 {
		t.Errorf("annotation %q, want %s and 64 hex digits", first, controllers.CredentialsRevisionPrefix)
	}

	// A restart of the process: the new manager reads the key back. A new Plugin (no auth)
	// makes it render and nudge the pod; the credentials revision it writes is the one before.
	mgr.stop()
	startManagerBinary(t, "--watch-namespaces="+ns)
	create(t, newPlugin(ns, "plain", "kr", 1))
	_, data = configMapData(t, ns, "kr", contains(`"plain"`))
	rev := pluginconfig.Revision([]byte(data))
	after := podAnnotations(t, ns, "kr-types", func(a map[string]string) error {
		if a[v1alpha1.ConfigRevisionAnnotation] != rev {
			return fmt.Errorf("config revision %q, want %q", a[v1alpha1.ConfigRevisionAnnotation], rev)
		}
		return nil
	})
	if got := after[v1alpha1.CredentialsRevisionAnnotation]; got != first {
		t.Errorf("after a restart the credentials revision is %q, want %q as before", got, first)
	}
	if err := get(t, creds, ns, "kr-credentials"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(creds.Data[controllers.RevisionKeyField], key) {
		t.Error("the restarted manager replaced the revision key")
	}

	// A rotated credential changes the revision, so the pod re-reads it at once.
	update(t, tokens, func(s *corev1.Secret) { s.Data["token"] = []byte("rotated") })
	podAnnotations(t, ns, "kr-types", func(a map[string]string) error {
		if got := a[v1alpha1.CredentialsRevisionAnnotation]; got == first {
			return fmt.Errorf("credentials revision still %q", got)
		}
		return nil
	})
}
