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
	"time"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// Paths inside a host pod. The rendered config.json refers to credentials under
// DefaultSecretsMountPath.
const (
	// ConfigMountPath is where the ConfigMap <host>-config is mounted, as a directory (never
	// subPath, which kubelet does not update).
	ConfigMountPath = "/var/run/plugins/config"
	// ConfigFileName is the key of the rendered configuration in <host>-config.
	ConfigFileName = "config.json"
	// DefaultSecretsMountPath is where the Secret <host>-credentials is mounted, as a
	// directory; it holds credentialKey(<plugin>, <key>) for every Secret key a Plugin's auth reads.
	DefaultSecretsMountPath = "/var/run/plugins/secrets"
	// StateMountPath holds plugin state (a PVC or an emptyDir).
	StateMountPath = "/var/lib/pluginhost"
	// HTTPPortName names the runtime's HTTP port in the pod and the Service's targetPort.
	HTTPPortName = "http"
	// HTTPPort is the runtime's container port.
	HTTPPort = 8080
	// OpsPortName names the runtime's operational port (/status, /plugins, /metrics), which
	// the operator reads; the Service does not expose it.
	OpsPortName = "ops"
	// OpsPort is the runtime's operational container port (its --ops-addr).
	OpsPort = 8081
	// StartupProbeSeconds is how long a runtime container may take to serve /healthz after
	// it starts before kubelet restarts it.
	StartupProbeSeconds = 30
	// ContainerName is the name of the runtime container.
	ContainerName = "pluginhost"
	// RunAsID is the non-root user and group the runtime runs as (distroless "nonroot").
	RunAsID = 65532
)

// Defaults of PluginHost fields that the API server normally fills (CRD defaults); repeated
// here so that an object built in Go renders the same.
const (
	defaultPollInterval     = 250 * time.Millisecond
	defaultSnapshotInterval = 5 * time.Second
	defaultServicePort      = 8080
)

// Labels the operator sets on the objects it creates.
const (
	labelName      = "app.kubernetes.io/name"
	labelInstance  = "app.kubernetes.io/instance"
	labelComponent = "app.kubernetes.io/component"
	labelManagedBy = "app.kubernetes.io/managed-by"
	labelPartOf    = "app.kubernetes.io/part-of"

	appName   = "pluginhost"
	managedBy = "plugin-operator"
)

// ChildConsentValue is the value of the consent label (LabelPluginAuth) on the operator's own
// ConfigMaps and Secrets: the key puts them in the manager's cache, the value is not "true",
// so it marks nothing as readable by Plugins or PluginHosts.
const ChildConsentValue = "operator"

// Names of a host's children.
func configMapName(host *v1alpha1.PluginHost) string   { return host.Name + "-config" }
func credentialsName(host *v1alpha1.PluginHost) string { return host.Name + "-credentials" }
func stateClaimName(host *v1alpha1.PluginHost) string  { return host.Name + "-state" }
func deploymentName(host *v1alpha1.PluginHost) string  { return host.Name }
func serviceName(host *v1alpha1.PluginHost) string     { return host.Name }

// Names of the optional children.
func networkPolicyName(host *v1alpha1.PluginHost) string { return host.Name }
func budgetName(host *v1alpha1.PluginHost) string        { return host.Name }

// selectorLabels select the host's pods; they never change, as a Deployment's selector is
// immutable.
func selectorLabels(host *v1alpha1.PluginHost) map[string]string {
	return map[string]string{v1alpha1.LabelHost: host.Name}
}

// childLabels are set on every object the operator creates for host.
func childLabels(host *v1alpha1.PluginHost) map[string]string {
	return map[string]string{
		v1alpha1.LabelHost: host.Name,
		labelName:          appName,
		labelInstance:      host.Name,
		labelComponent:     "plugin-host",
		labelManagedBy:     managedBy,
		labelPartOf:        managedBy,
	}
}

func servicePort(host *v1alpha1.PluginHost) int32 {
	if s := host.Spec.Service; s != nil && s.Port != 0 {
		return s.Port
	}
	return defaultServicePort
}

// hostURL is the in-cluster URL of host's Service.
func hostURL(host *v1alpha1.PluginHost) string {
	return fmt.Sprintf("http://%s.%s.svc:%d", serviceName(host), host.Namespace, servicePort(host))
}

// pluginURL is the in-cluster URL of a plugin's API on host.
func pluginURL(host *v1alpha1.PluginHost, plugin string) string {
	return hostURL(host) + "/plugins/" + plugin
}
