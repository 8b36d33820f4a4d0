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
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// refusedRecheckInterval is how often a host whose child the API server refuses writes it
// again. What refuses it (an admission policy or its binding, a webhook configuration, a
// ResourceQuota, the operator's RBAC) is nothing the manager watches, so no event announces
// that it is gone; each try costs one refused write per host.
const refusedRecheckInterval = 10 * time.Second

// childRefusal is a write of one of a host's children that the API server refused for a
// reason that retrying does not change (see refusedByAPIServer).
type childRefusal struct {
	// action is what was refused: "apply Deployment h".
	action string
	// err is the step's error as it was before refusals were told apart (the step and the
	// API server's error), for logs.
	err error
}

func (e *childRefusal) Error() string { return e.err.Error() }

func (e *childRefusal) Unwrap() error { return e.err }

// message is the condition message: what was refused, the API server's reason and its
// message, cut to MaxReportedTextBytes since it carries text from elsewhere (an admission
// policy's or a webhook's message).
func (e *childRefusal) message() string {
	apiMessage := e.err.Error()
	var status apierrors.APIStatus
	if errors.As(e.err, &status) && status.Status().Message != "" {
		apiMessage = status.Status().Message
	}
	return fmt.Sprintf("The API server refused to %s (%s): %s; trying again every %s",
		e.action, apierrors.ReasonForError(e.err), truncateText(apiMessage, MaxReportedTextBytes), refusedRecheckInterval)
}

// asRefusal returns err as a childRefusal, naming the write as action ("apply Deployment
// h"), when the API server refused it for good; otherwise err itself.
func asRefusal(action string, err error) error {
	if refusedByAPIServer(err) {
		return &childRefusal{action: action, err: err}
	}
	return err
}

// refusedByAPIServer reports whether err is the API server refusing a write as Invalid (422:
// the object fails validation, or a ValidatingAdmissionPolicy denies it) or Forbidden (403:
// an admission webhook, a ResourceQuota, the operator's RBAC): the same write gets the same
// answer until someone changes a policy, a quota, a role or the PluginHost. Whatever may pass
// by itself is not: a conflict, a missing object, a timeout, an unavailable API server or
// webhook (500), throttling, and a namespace being deleted (Forbidden, but its PluginHost
// goes with it).
func refusedByAPIServer(err error) bool {
	switch {
	case err == nil:
		return false
	case apierrors.IsConflict(err), apierrors.IsNotFound(err), apierrors.IsAlreadyExists(err),
		apierrors.IsTimeout(err), apierrors.IsServerTimeout(err), apierrors.IsServiceUnavailable(err),
		apierrors.IsInternalError(err), apierrors.IsTooManyRequests(err):
		return false
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return false
	}
	return apierrors.IsInvalid(err) || apierrors.IsForbidden(err)
}

// refusalOf returns the childRefusal in err's chain, or nil.
func refusalOf(err error) *childRefusal {
	var r *childRefusal
	if errors.As(err, &r) {
		return r
	}
	return nil
}
