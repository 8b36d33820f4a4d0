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
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// secretRefusal explains why a Plugin may not use Secret s for its auth, or is "" when it
// may. A Plugin's auth Secret has its keys copied into <host>-credentials and mounted into the
// host's pods; without the owner's consent (the label) any Plugin author of the namespace
// could have any Secret of it mounted there.
func secretRefusal(s *corev1.Secret) string {
	if s.Labels[v1alpha1.LabelPluginAuth] == "true" {
		return ""
	}
	if operatorsOwn(s.Labels) {
		return fmt.Sprintf("Secret %q (spec.auth.secretRef) is a PluginHost's own credentials, which no Plugin may use", s.Name)
	}
	return fmt.Sprintf("Secret %q (spec.auth.secretRef) is not marked for plugin auth, so its keys are not mounted into the PluginHost's pods; "+
		"if it is meant for this, label it: kubectl label secret %s -n %s %s=true",
		s.Name, s.Name, s.Namespace, v1alpha1.LabelPluginAuth)
}

// configMapRefusal explains why a PluginHost may not read ConfigMap cm (spec.configMapRef),
// or is "" when it may. Without the owner's consent (the same label as for Secrets) whoever
// may create a PluginHost would have any ConfigMap of the namespace parsed, and learn of its
// content from the errors.
func configMapRefusal(cm *corev1.ConfigMap) string {
	if cm.Labels[v1alpha1.LabelPluginAuth] == "true" {
		return ""
	}
	if operatorsOwn(cm.Labels) {
		return fmt.Sprintf("ConfigMap %q (spec.configMapRef) is a PluginHost's own rendered configuration, which is not read as a PluginHost's input; keeping the last rendered configuration", cm.Name)
	}
	overwrite := ""
	if _, ok := cm.Labels[v1alpha1.LabelPluginAuth]; ok {
		overwrite = " --overwrite"
	}
	return fmt.Sprintf("ConfigMap %q (spec.configMapRef) is not marked for use by PluginHosts, so it is not read; keeping the last rendered configuration. "+
		"If it is meant for this, label it: kubectl label configmap %s -n %s %s=true%s",
		cm.Name, cm.Name, cm.Namespace, v1alpha1.LabelPluginAuth, overwrite)
}

// operatorsOwn reports whether labels are those of a ConfigMap or Secret the operator renders
// (the consent label's key with ChildConsentValue, and the host label). Its message gives no
// command: the operator's next apply would set the label back.
func operatorsOwn(labels map[string]string) bool {
	_, child := labels[v1alpha1.LabelHost]
	return child && labels[v1alpha1.LabelPluginAuth] == ChildConsentValue
}
