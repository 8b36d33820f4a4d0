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
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TestRefusedByAPIServer: only Invalid and Forbidden answers, which the same write gets again
// until someone acts, make a child refused; whatever may pass by itself stays a failed step
// that is retried.
func TestRefusedByAPIServer(t *testing.T) {
	deployments := schema.GroupResource{Group: "apps", Resource: "deployments"}
	terminating := apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "h-config",
		errors.New("unable to create new content in namespace demo because it is being terminated"))
	terminating.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause, Message: "namespace demo is being terminated"}}
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "h",
		field.ErrorList{field.Invalid(field.NewPath("spec", "template", "metadata", "labels"), "-x", "a valid label must start with an alphanumeric character")})
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"invalid (422, a ValidatingAdmissionPolicy's default)", invalid, true},
		{"forbidden (403, quota, webhook, RBAC)", apierrors.NewForbidden(deployments, "h", errors.New("exceeded quota: q")), true},
		{"wrapped by the step", fmt.Errorf("applying Deployment h: %w", invalid), true},
		{"namespace terminating (403)", terminating, false},
		{"conflict", apierrors.NewConflict(deployments, "h", errors.New("the object has been modified")), false},
		{"not found", apierrors.NewNotFound(deployments, "h"), false},
		{"already exists", apierrors.NewAlreadyExists(deployments, "h"), false},
		{"timeout", apierrors.NewTimeoutError("request did not complete", 1), false},
		{"server timeout", apierrors.NewServerTimeout(deployments, "patch", 1), false},
		{"service unavailable", apierrors.NewServiceUnavailable("the server is currently unable to handle the request"), false},
		{"webhook unreachable (500)", apierrors.NewInternalError(errors.New(`failed calling webhook "deny.example.com": connection refused`)), false},
		{"throttled", apierrors.NewTooManyRequests("slow down", 1), false},
		{"bad request", apierrors.NewBadRequest("malformed patch"), false},
		{"no API status (connection refused)", errors.New("dial tcp 127.0.0.1:6443: connect: connection refused"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := refusedByAPIServer(tt.err); got != tt.want {
				t.Errorf("refusedByAPIServer(%v) = %v, want %v", tt.err, got, tt.want)
			}
			wrapped := asRefusal("apply Deployment h", tt.err)
			if got := refusalOf(wrapped) != nil; got != tt.want {
				t.Errorf("asRefusal made a refusal: %v, want %v", got, tt.want)
			}
			if tt.err != nil && wrapped.Error() != tt.err.Error() {
				t.Errorf("error text %q, want the step's %q unchanged", wrapped.Error(), tt.err.Error())
			}
		})
	}
}

// TestRefusalMessage: the condition message names what was refused, the API server's reason
// and its message, cut to MaxReportedTextBytes: an admission webhook's message is text from
// elsewhere, of any length.
func TestRefusalMessage(t *testing.T) {
	deployments := schema.GroupResource{Group: "apps", Resource: "deployments"}
	err := fmt.Errorf("applying Deployment h: %w", apierrors.NewForbidden(deployments, "h", errors.New("exceeded quota: q")))
	r := refusalOf(asRefusal("apply Deployment h", err))
	if r == nil {
		t.Fatal("a Forbidden apply is not a refusal")
	}
	msg := r.message()
	for _, want := range []string{"apply Deployment h", "(Forbidden)", `deployments.apps "h" is forbidden: exceeded quota: q`, "every 10s"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "applying Deployment h:") {
		t.Errorf("message %q repeats the step's wrapping", msg)
	}

	long := apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "h",
		field.ErrorList{field.Invalid(field.NewPath("metadata", "annotations"), "x", strings.Repeat("é", 4000))})
	msg = refusalOf(asRefusal("apply Deployment h", long)).message()
	if len(msg) > MaxReportedTextBytes+200 || !strings.Contains(msg, "(truncated)") || !strings.Contains(msg, "apply Deployment h") {
		t.Errorf("message of %d bytes for a %d-byte API message: want the API server's text cut to %d bytes, the child named",
			len(msg), len(long.Error()), MaxReportedTextBytes)
	}
	if !utf8.ValidString(msg) {
		t.Errorf("message cut inside a rune")
	}
}
