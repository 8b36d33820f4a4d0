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

import "github.com/hotreload/plugin-operator/api/v1alpha1"

// SetAfterOwnershipCheck makes every reconcile call f between its ownership check and its
// writes, until the returned function is called. For tests of the gap between the two.
func SetAfterOwnershipCheck(f func(host *v1alpha1.PluginHost)) (restore func()) {
	afterOwnershipCheck.Store(&f)
	return func() { afterOwnershipCheck.Store(nil) }
}

// StatusMergePatch and PatchStatusAnswerMetadata are the manager's status write, and
// ApplyAnswerMetadata its children's apply, for BenchmarkWriteCost.
var (
	StatusMergePatch          = statusMergePatch
	PatchStatusAnswerMetadata = patchStatusAnswerMetadata
	ApplyAnswerMetadata       = applyAnswerMetadata
)
