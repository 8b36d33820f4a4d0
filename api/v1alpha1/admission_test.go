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

package v1alpha1_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const basePlugin = `
apiVersion: plugins.hotreload.io/v1alpha1
kind: Plugin
spec:
  type: counter
`

const basePluginHost = `
apiVersion: plugins.hotreload.io/v1alpha1
kind: PluginHost
spec:
  pluginSelector: {}
`

// admissionCase is an object built from a base manifest and a YAML overlay, merged key by
// key; a null in the overlay deletes the key.
type admissionCase struct {
	name    string
	overlay string
	// wantField is the field path the rejection must name; empty means the object is valid.
	wantField string
}

func TestPluginAdmission(t *testing.T) {
	needEnv(t)
	runAdmission(t, basePlugin, []admissionCase{
		// Accepted.
		{name: "minimal", overlay: `{}`},
		{name: "seed counter-1", overlay: `
spec:
  transport: http
  endpoint: http://localhost:9001
  enabled: true
  auth: {method: none}
  connection: {maxConnections: 10, maxIdleConnections: 5, idleTimeout: 30s, connectionTimeout: 10s, requestTimeout: 30s, keepAlive: true}
  options: {increment: 1}`},
		{name: "https endpoint with path and port", overlay: `{spec: {transport: https, endpoint: "https://counter.example.com:8443/api/v1"}}`},
		{name: "no endpoint with https transport", overlay: `{spec: {transport: https}}`},
		{name: "api-key with secretRef and header", overlay: `{spec: {auth: {method: api-key, header: X-Counter-Key, secretRef: {name: creds}}}}`},
		{name: "bearer with secretRef", overlay: `{spec: {auth: {method: bearer, secretRef: {name: creds}}}}`},
		{name: "basic with secretRef", overlay: `{spec: {auth: {method: basic, secretRef: {name: creds}}}}`},
		{name: "disabled", overlay: `{spec: {enabled: false}}`},
		{name: "maxIdleConnections 0", overlay: `{spec: {connection: {maxIdleConnections: 0}}}`},
		{name: "maxIdleConnections equal to maxConnections", overlay: `{spec: {connection: {maxConnections: 3, maxIdleConnections: 3}}}`},
		{name: "compound and fractional durations", overlay: `{spec: {connection: {idleTimeout: 1m30s, connectionTimeout: 1.5s, requestTimeout: 500ms}}}`},
		{name: "increment 5", overlay: `{spec: {options: {increment: 5}}}`},
		{name: "increment negative", overlay: `{spec: {options: {increment: -3}}}`},
		{name: "increment max int32", overlay: `{spec: {options: {increment: 2147483647}}}`},
		{name: "unknown options kept", overlay: `{spec: {options: {increment: 2, label: x, nested: {a: [1, 2.5, "s"]}}}}`},
		// Any type name is admitted: the host's advertised types decide (issue #19).
		{name: "ratelimit", overlay: `{spec: {type: ratelimit, options: {rate: 5, burst: 10}}}`},
		{name: "own type with nested options", overlay: `{spec: {type: my-type, options: {a: {b: [1, {c: "d"}], e: null}, rate: -1, f: 2.5}}}`},
		{name: "type gauge", overlay: `{spec: {type: gauge}}`},
		{name: "type of 63 characters", overlay: fmt.Sprintf(`{spec: {type: %s}}`, strings.Repeat("a", 63))},

		// Rejected.
		{name: "missing spec", overlay: `{spec: null}`, wantField: "spec"},
		{name: "missing type", overlay: `{spec: {type: null, transport: http}}`, wantField: "spec.type"},
		{name: "type with upper case", overlay: `{spec: {type: Gauge}}`, wantField: "spec.type"},
		{name: "type of 64 characters", overlay: fmt.Sprintf(`{spec: {type: %s}}`, strings.Repeat("a", 64)), wantField: "spec.type"},
		{name: "type ending in -", overlay: `{spec: {type: gauge-}}`, wantField: "spec.type"},
		{name: "type empty", overlay: `{spec: {type: ""}}`, wantField: "spec.type"},
		{name: "bad transport", overlay: `{spec: {transport: grpc}}`, wantField: "spec.transport"},
		{name: "endpoint not a URL", overlay: `{spec: {endpoint: "not a url"}}`, wantField: "spec.endpoint"},
		{name: "endpoint relative", overlay: `{spec: {endpoint: "/plugins/x"}}`, wantField: "spec.endpoint"},
		{name: "endpoint without host", overlay: `{spec: {endpoint: "http://"}}`, wantField: "spec.endpoint"},
		{name: "endpoint host:port without scheme", overlay: `{spec: {endpoint: "localhost:9001"}}`, wantField: "spec.endpoint"},
		{name: "endpoint other scheme", overlay: `{spec: {endpoint: "ftp://example.com"}}`, wantField: "spec.endpoint"},
		{name: "endpoint too long", overlay: fmt.Sprintf(`{spec: {endpoint: "http://example.com/%s"}}`, strings.Repeat("a", 2048)), wantField: "spec.endpoint"},
		{name: "endpoint http with transport https", overlay: `{spec: {transport: https, endpoint: "http://localhost:9001"}}`, wantField: "spec.endpoint"},
		{name: "endpoint https with default transport", overlay: `{spec: {endpoint: "https://localhost:9001"}}`, wantField: "spec.endpoint"},
		{name: "bad auth method", overlay: `{spec: {auth: {method: oauth}}}`, wantField: "spec.auth.method"},
		{name: "api-key without secretRef", overlay: `{spec: {auth: {method: api-key}}}`, wantField: "spec.auth.secretRef"},
		{name: "bearer without secretRef", overlay: `{spec: {auth: {method: bearer}}}`, wantField: "spec.auth.secretRef"},
		{name: "basic without secretRef", overlay: `{spec: {auth: {method: basic}}}`, wantField: "spec.auth.secretRef"},
		{name: "secretRef with method none", overlay: `{spec: {auth: {method: none, secretRef: {name: creds}}}}`, wantField: "spec.auth.secretRef"},
		{name: "secretRef with default method", overlay: `{spec: {auth: {secretRef: {name: creds}}}}`, wantField: "spec.auth.secretRef"},
		{name: "secretRef without name", overlay: `{spec: {auth: {method: bearer, secretRef: {}}}}`, wantField: "spec.auth.secretRef.name"},
		{name: "secretRef bad name", overlay: `{spec: {auth: {method: bearer, secretRef: {name: Creds_1}}}}`, wantField: "spec.auth.secretRef.name"},
		{name: "header with bearer", overlay: `{spec: {auth: {method: bearer, header: X-Key, secretRef: {name: creds}}}}`, wantField: "spec.auth.header"},
		{name: "header not a token", overlay: `{spec: {auth: {method: api-key, header: "X Key:", secretRef: {name: creds}}}}`, wantField: "spec.auth.header"},
		{name: "maxConnections 0", overlay: `{spec: {connection: {maxConnections: 0}}}`, wantField: "spec.connection.maxConnections"},
		{name: "maxConnections 100001", overlay: `{spec: {connection: {maxConnections: 100001}}}`, wantField: "spec.connection.maxConnections"},
		{name: "maxIdleConnections negative", overlay: `{spec: {connection: {maxIdleConnections: -1}}}`, wantField: "spec.connection.maxIdleConnections"},
		{name: "maxIdle greater than max", overlay: `{spec: {connection: {maxConnections: 3, maxIdleConnections: 4}}}`, wantField: "spec.connection.maxIdleConnections"},
		{name: "maxConnections below default maxIdle", overlay: `{spec: {connection: {maxConnections: 3}}}`, wantField: "spec.connection.maxIdleConnections"},
		{name: "idleTimeout without unit", overlay: `{spec: {connection: {idleTimeout: "30"}}}`, wantField: "spec.connection.idleTimeout"},
		{name: "idleTimeout abc", overlay: `{spec: {connection: {idleTimeout: abc}}}`, wantField: "spec.connection.idleTimeout"},
		{name: "idleTimeout negative", overlay: `{spec: {connection: {idleTimeout: -5s}}}`, wantField: "spec.connection.idleTimeout"},
		{name: "idleTimeout zero", overlay: `{spec: {connection: {idleTimeout: 0s}}}`, wantField: "spec.connection.idleTimeout"},
		{name: "connectionTimeout without unit", overlay: `{spec: {connection: {connectionTimeout: "30"}}}`, wantField: "spec.connection.connectionTimeout"},
		{name: "connectionTimeout abc", overlay: `{spec: {connection: {connectionTimeout: abc}}}`, wantField: "spec.connection.connectionTimeout"},
		{name: "connectionTimeout negative", overlay: `{spec: {connection: {connectionTimeout: -5s}}}`, wantField: "spec.connection.connectionTimeout"},
		{name: "requestTimeout without unit", overlay: `{spec: {connection: {requestTimeout: "30"}}}`, wantField: "spec.connection.requestTimeout"},
		{name: "requestTimeout abc", overlay: `{spec: {connection: {requestTimeout: abc}}}`, wantField: "spec.connection.requestTimeout"},
		{name: "requestTimeout negative", overlay: `{spec: {connection: {requestTimeout: -5s}}}`, wantField: "spec.connection.requestTimeout"},
		{name: "requestTimeout zero", overlay: `{spec: {connection: {requestTimeout: 0ms}}}`, wantField: "spec.connection.requestTimeout"},
		{name: "increment 5.5", overlay: `{spec: {options: {increment: 5.5}}}`, wantField: "spec.options.increment"},
		{name: "increment string", overlay: `{spec: {options: {increment: "5"}}}`, wantField: "spec.options.increment"},
		{name: "increment beyond int32", overlay: `{spec: {options: {increment: 2147483648}}}`, wantField: "spec.options.increment"},
		{name: "options not an object", overlay: `{spec: {options: [1]}}`, wantField: "spec.options"},
	})
}

func TestPluginHostAdmission(t *testing.T) {
	needEnv(t)
	runAdmission(t, basePluginHost, []admissionCase{
		// Accepted.
		{name: "minimal", overlay: `{}`},
		{name: "everything set", overlay: `
spec:
  image: registry.example.com/pluginhost:v1
  imagePullPolicy: IfNotPresent
  imagePullSecrets: [{name: regcred}]
  pluginSelector: {matchLabels: {app.kubernetes.io/part-of: demo}}
  configMapRef: {name: seed-config, key: plugins.json}
  pollInterval: 1m
  persistence: {enabled: true, size: 2Gi, storageClassName: standard, snapshotInterval: 1m30s}
  resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {memory: 128Mi}}
  nodeSelector: {kubernetes.io/os: linux}
  tolerations: [{key: dedicated, operator: Equal, value: plugins, effect: NoSchedule}]
  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/arch, operator: In, values: [amd64]}]}]}}}
  priorityClassName: high
  serviceAccountName: plugins
  podAnnotations: {example.com/team: a}
  podLabels: {example.com/team: a}
  service: {type: LoadBalancer, port: 80}
  logLevel: debug`},
		{name: "selector with expressions", overlay: `{spec: {pluginSelector: {matchExpressions: [{key: tier, operator: In, values: [a, b]}]}}}`},
		{name: "pollInterval 50ms", overlay: `{spec: {pollInterval: 50ms}}`},
		{name: "pollInterval 1m", overlay: `{spec: {pollInterval: 1m}}`},
		{name: "service NodePort 65535", overlay: `{spec: {service: {type: NodePort, port: 65535}}}`},
		{name: "persistence size as integer", overlay: `{spec: {persistence: {enabled: true, size: 1073741824}}}`},
		{name: "revisionHistoryLimit 1", overlay: `{spec: {revisionHistoryLimit: 1}}`},
		{name: "revisionHistoryLimit 100", overlay: `{spec: {revisionHistoryLimit: 100}}`},
		{name: "pinnedRevision by number", overlay: `{spec: {pinnedRevision: "12"}}`},
		{name: "pinnedRevision by hash prefix", overlay: `{spec: {pinnedRevision: "sha256:0123456789ab"}}`},
		{name: "pinnedRevision by whole hash", overlay: `{spec: {pinnedRevision: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}`},

		// Rejected.
		{name: "missing spec", overlay: `{spec: null}`, wantField: "spec"},
		{name: "missing pluginSelector", overlay: `{spec: {pluginSelector: null, logLevel: info}}`, wantField: "spec.pluginSelector"},
		{name: "bad imagePullPolicy", overlay: `{spec: {imagePullPolicy: Sometimes}}`, wantField: "spec.imagePullPolicy"},
		{name: "configMapRef without name", overlay: `{spec: {configMapRef: {key: config.json}}}`, wantField: "spec.configMapRef.name"},
		{name: "configMapRef bad key", overlay: `{spec: {configMapRef: {name: seed, key: "a/b"}}}`, wantField: "spec.configMapRef.key"},
		{name: "pollInterval 10ms", overlay: `{spec: {pollInterval: 10ms}}`, wantField: "spec.pollInterval"},
		{name: "pollInterval 2h", overlay: `{spec: {pollInterval: 2h}}`, wantField: "spec.pollInterval"},
		{name: "pollInterval abc", overlay: `{spec: {pollInterval: abc}}`, wantField: "spec.pollInterval"},
		{name: "pollInterval without unit", overlay: `{spec: {pollInterval: "250"}}`, wantField: "spec.pollInterval"},
		{name: "snapshotInterval zero", overlay: `{spec: {persistence: {snapshotInterval: 0s}}}`, wantField: "spec.persistence.snapshotInterval"},
		{name: "snapshotInterval negative", overlay: `{spec: {persistence: {snapshotInterval: -5s}}}`, wantField: "spec.persistence.snapshotInterval"},
		{name: "persistence size zero", overlay: `{spec: {persistence: {enabled: true, size: "0"}}}`, wantField: "spec.persistence.size"},
		{name: "persistence size not a quantity", overlay: `{spec: {persistence: {enabled: true, size: lots}}}`, wantField: "spec.persistence.size"},
		{name: "service port 0", overlay: `{spec: {service: {port: 0}}}`, wantField: "spec.service.port"},
		{name: "service port 70000", overlay: `{spec: {service: {port: 70000}}}`, wantField: "spec.service.port"},
		{name: "service type ExternalName", overlay: `{spec: {service: {type: ExternalName}}}`, wantField: "spec.service.type"},
		{name: "bad logLevel", overlay: `{spec: {logLevel: trace}}`, wantField: "spec.logLevel"},
		{name: "revisionHistoryLimit 0", overlay: `{spec: {revisionHistoryLimit: 0}}`, wantField: "spec.revisionHistoryLimit"},
		{name: "revisionHistoryLimit 101", overlay: `{spec: {revisionHistoryLimit: 101}}`, wantField: "spec.revisionHistoryLimit"},
		{name: "pinnedRevision 0", overlay: `{spec: {pinnedRevision: "0"}}`, wantField: "spec.pinnedRevision"},
		{name: "pinnedRevision short hash", overlay: `{spec: {pinnedRevision: "sha256:0123456789a"}}`, wantField: "spec.pinnedRevision"},
		{name: "pinnedRevision upper-case hash", overlay: `{spec: {pinnedRevision: "sha256:0123456789AB"}}`, wantField: "spec.pinnedRevision"},
		{name: "pinnedRevision a name", overlay: `{spec: {pinnedRevision: "rev-3"}}`, wantField: "spec.pinnedRevision"},
	})
}

// runAdmission creates each case's object in a fresh namespace and checks that the API
// server accepts it, or rejects it as Invalid with a cause on wantField.
func runAdmission(t *testing.T, base string, cases []admissionCase) {
	t.Helper()
	ns := newNamespace(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := buildObject(t, base, tc.overlay)
			obj.SetNamespace(ns)
			obj.SetName(fmt.Sprintf("case-%d", i))
			err := env.Client.Create(context.Background(), obj)
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("Create rejected a valid object: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Create accepted an invalid object, want an error on %s", tc.wantField)
			}
			t.Logf("rejected: %v", err)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("Create error is not Invalid: %v", err)
			}
			if !hasCause(err, tc.wantField) {
				t.Errorf("Create error has no cause on field %s: %v", tc.wantField, err)
			}
			if !strings.Contains(err.Error(), tc.wantField) {
				t.Errorf("Create error does not name %s: %v", tc.wantField, err)
			}
		})
	}
}

// hasCause reports whether a StatusError has a cause on field.
func hasCause(err error, field string) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	for _, c := range status.Status().Details.Causes {
		if c.Field == field {
			return true
		}
	}
	return false
}

func buildObject(t *testing.T, base, overlay string) *unstructured.Unstructured {
	t.Helper()
	var b, o map[string]any
	if err := yaml.Unmarshal([]byte(base), &b); err != nil {
		t.Fatalf("parsing base: %v", err)
	}
	if err := yaml.Unmarshal([]byte(overlay), &o); err != nil {
		t.Fatalf("parsing overlay: %v", err)
	}
	return &unstructured.Unstructured{Object: merge(b, o)}
}

// merge merges overlay into base, recursively for objects; a nil overlay value deletes.
func merge(base, overlay map[string]any) map[string]any {
	for k, v := range overlay {
		if v == nil {
			delete(base, k)
			continue
		}
		bm, bok := base[k].(map[string]any)
		om, ook := v.(map[string]any)
		if bok && ook {
			base[k] = merge(bm, om)
			continue
		}
		base[k] = v
	}
	return base
}
