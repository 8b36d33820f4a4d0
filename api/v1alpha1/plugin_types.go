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

package v1alpha1

import (
	"bytes"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PluginType names a plugin type carried by the host's image: lower-case
// letters, digits and '-', at most 63 characters (the rule internal/typeschema
// applies to the names a host advertises).
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`
type PluginType string

// Built-in plugin types of the project's own pluginhost image.
const (
	// PluginTypeCounter is a counter:
	// `POST /plugins/<name>/increment {"value": N}` adds N × options.increment,
	// `GET /plugins/<name>/get` reads it and `POST /plugins/<name>/reset` sets
	// it to zero.
	PluginTypeCounter PluginType = "counter"
	// PluginTypeRateLimit is a token-bucket rate limiter with options `rate`
	// and `burst`.
	PluginTypeRateLimit PluginType = "ratelimit"
)

// Transport is the protocol of a plugin's endpoint.
// +kubebuilder:validation:Enum=http;https
type Transport string

// Transports.
const (
	// TransportHTTP is plain HTTP.
	TransportHTTP Transport = "http"
	// TransportHTTPS is HTTP over TLS.
	TransportHTTPS Transport = "https"
)

// AuthMethod is how the runtime authenticates the requests it receives for a
// plugin (clients calling `/plugins/<name>/...` on the host's Service).
// +kubebuilder:validation:Enum=none;api-key;bearer;basic
type AuthMethod string

// Authentication methods, and the keys each one reads from the Secret named
// by spec.auth.secretRef.
const (
	// AuthMethodNone accepts every request; spec.auth.secretRef must not be set.
	AuthMethodNone AuthMethod = "none"
	// AuthMethodAPIKey requires the Secret's SecretKeyAPIKey value in the
	// header spec.auth.header (DefaultAPIKeyHeader when empty).
	AuthMethodAPIKey AuthMethod = "api-key"
	// AuthMethodBearer requires `Authorization: Bearer <token>` with the
	// Secret's SecretKeyToken value.
	AuthMethodBearer AuthMethod = "bearer"
	// AuthMethodBasic requires HTTP basic authentication with the Secret's
	// SecretKeyUsername and SecretKeyPassword values.
	AuthMethodBasic AuthMethod = "basic"

	// SecretKeyAPIKey is the Secret key read by the api-key method.
	SecretKeyAPIKey = "api-key"
	// SecretKeyToken is the Secret key read by the bearer method.
	SecretKeyToken = "token"
	// SecretKeyUsername is the Secret key of the user name read by the basic
	// method.
	SecretKeyUsername = "username"
	// SecretKeyPassword is the Secret key of the password read by the basic
	// method.
	SecretKeyPassword = "password"

	// DefaultAPIKeyHeader is the header that carries the API key when
	// spec.auth.header is empty.
	DefaultAPIKeyHeader = "X-API-Key"
)

// PluginSpec is the desired configuration of one plugin instance. It mirrors
// one entry of the `plugins` array of the runtime's config.json; the entry's
// name is the Plugin's metadata.name.
//
// +kubebuilder:validation:XValidation:rule="!has(self.endpoint) || !isURL(self.endpoint) || url(self.endpoint).getScheme() == (has(self.transport) ? self.transport : 'http')",message="spec.endpoint scheme must match spec.transport",fieldPath=".endpoint"
type PluginSpec struct {
	// type is the plugin type to run. Types come from the PluginHost's image,
	// which advertises them (`kubectl get pluginhost <host> -o
	// jsonpath='{.status.types[*].name}'`); the project's own image carries
	// `counter` and `ratelimit`, and docs/plugins.md says how to build an image
	// with types of your own. A type the host does not advertise leaves the
	// Plugin out (reason UnknownPluginType).
	// +required
	Type PluginType `json:"type"`

	// transport is the protocol the runtime uses to reach endpoint: `http` or
	// `https`. It must match the scheme of endpoint. Defaults to `http`.
	// +optional
	// +kubebuilder:default=http
	Transport Transport `json:"transport,omitempty"`

	// endpoint is the absolute `http://` or `https://` URL of the plugin's
	// backend, for example `http://localhost:9001`. Its scheme must match
	// transport.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="spec.endpoint must be an absolute http:// or https:// URL"
	Endpoint string `json:"endpoint,omitempty"`

	// enabled runs the plugin when true. A disabled plugin stays in the host's
	// configuration but does not serve requests; its state is kept. Defaults to
	// true.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// auth is the credentials that clients must present to call this plugin's
	// API on the host (`/plugins/<name>/...`); the runtime checks them on each
	// incoming request and answers 401 otherwise. Nothing is sent to endpoint.
	// Credentials are never written in the Plugin: auth names a Secret in the
	// Plugin's namespace. Defaults to method `none`: anyone who can reach the
	// host's Service may call the plugin, `POST .../reset` included (see
	// spec.networkPolicy of the PluginHost).
	// +optional
	// +kubebuilder:default={}
	Auth *PluginAuth `json:"auth,omitempty"`

	// connection tunes the runtime's HTTP connections to endpoint. Every field
	// has a default.
	// +optional
	// +kubebuilder:default={}
	Connection *ConnectionSpec `json:"connection,omitempty"`

	// options are the type-specific options of the plugin, passed to it as the
	// `options` object of its config.json entry: every key is
	// passed through unchanged. Any object is admitted (only increment is
	// checked here); the operator checks the options against the JSON Schema
	// that the host advertises for spec.type and leaves the Plugin out when
	// they do not match it (reason InvalidOptions).
	// +optional
	Options *PluginOptions `json:"options,omitempty"`
}

// PluginAuth is the credentials the runtime requires of requests for a plugin.
//
// +kubebuilder:validation:XValidation:rule="!has(self.method) || self.method == 'none' || has(self.secretRef)",message="spec.auth.secretRef is required when spec.auth.method is not none",fieldPath=".secretRef",reason=FieldValueRequired
// +kubebuilder:validation:XValidation:rule="(has(self.method) && self.method != 'none') || !has(self.secretRef)",message="spec.auth.secretRef must not be set when spec.auth.method is none",fieldPath=".secretRef",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="(has(self.method) && self.method == 'api-key') || !has(self.header)",message="spec.auth.header may only be set when spec.auth.method is api-key",fieldPath=".header",reason=FieldValueForbidden
type PluginAuth struct {
	// method is the authentication method that requests for the plugin must
	// pass. It decides which keys the runtime reads from the Secret named by
	// secretRef. Defaults to `none`.
	//   - `none` accepts every request and takes no secretRef.
	//   - `api-key` requires the Secret's `api-key` value in the header named
	//     by header.
	//   - `bearer` requires `Authorization: Bearer <token>` with the Secret's
	//     `token` value.
	//   - `basic` requires HTTP basic authentication with the Secret's
	//     `username` and `password`.
	// The runtime compares SHA-256 digests of the presented and expected
	// values in constant time, and never repeats either in a response or log.
	// +optional
	// +kubebuilder:default=none
	Method AuthMethod `json:"method,omitempty"`

	// secretRef names the Secret, in the Plugin's namespace, that holds the
	// credentials of method. Required unless method is `none`, forbidden when it
	// is. The Secret must carry the label `plugins.hotreload.io/plugin-auth: "true"`,
	// its owner's consent to have its keys mounted into the PluginHost's pods;
	// otherwise the Plugin is not Accepted (reason SecretNotMarked).
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`

	// header is the HTTP header that carries the API key of the `api-key`
	// method. Allowed only with that method; empty means `X-API-Key`.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[-!#$%&'*+.^_|~0-9A-Za-z]+$`
	Header string `json:"header,omitempty"`
}

// SecretReference names a Secret in the namespace of the object that holds
// the reference.
type SecretReference struct {
	// name is the name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// Duration fields repeat their pattern at the start of their CEL rule, so
// that the rule skips strings the pattern already rejects instead of adding
// a conversion error to the response.

// ConnectionSpec tunes the runtime's HTTP connections to a plugin's
// endpoint. Durations are Go duration strings such as `500ms`, `30s` or
// `1m30s`, and must be positive.
//
// +kubebuilder:validation:XValidation:rule="!has(self.maxIdleConnections) || !has(self.maxConnections) || self.maxIdleConnections <= self.maxConnections",message="spec.connection.maxIdleConnections must not exceed spec.connection.maxConnections (maxIdleConnections defaults to 5)",fieldPath=".maxIdleConnections"
type ConnectionSpec struct {
	// maxConnections is the maximum number of connections to endpoint, 1 to
	// 100000. Defaults to 10.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	MaxConnections *int32 `json:"maxConnections,omitempty"`

	// maxIdleConnections is the maximum number of idle connections kept open, 0
	// to 100000, and at most maxConnections. Defaults to 5.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	MaxIdleConnections *int32 `json:"maxIdleConnections,omitempty"`

	// idleTimeout is how long an idle connection is kept open, as a Go duration
	// such as `30s`. Defaults to `30s`.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule=`!self.matches(r'^([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$') || (duration(self) > duration('0s'))`,message="spec.connection.idleTimeout must be a positive duration such as 30s"
	IdleTimeout string `json:"idleTimeout,omitempty"`

	// connectionTimeout is how long establishing a connection may take, as a Go
	// duration such as `10s`. Defaults to `10s`.
	// +optional
	// +kubebuilder:default="10s"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule=`!self.matches(r'^([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$') || (duration(self) > duration('0s'))`,message="spec.connection.connectionTimeout must be a positive duration such as 10s"
	ConnectionTimeout string `json:"connectionTimeout,omitempty"`

	// requestTimeout is how long one request may take, as a Go duration such as
	// `30s`. Defaults to `30s`.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule=`!self.matches(r'^([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$') || (duration(self) > duration('0s'))`,message="spec.connection.requestTimeout must be a positive duration such as 30s"
	RequestTimeout string `json:"requestTimeout,omitempty"`

	// keepAlive reuses connections between requests when true. Defaults to true.
	// +optional
	// +kubebuilder:default=true
	KeepAlive *bool `json:"keepAlive,omitempty"`
}

// PluginOptions are the type-specific options of a plugin: the `options`
// object of its config.json entry, any object. Every key is preserved and
// passed through unchanged; the operator checks them against the schema the
// host advertises for the Plugin's type.
//
// The counter's increment stays a declared field, so that admission keeps
// refusing a bad one with an error on spec.options.increment. A CEL rule on
// the spec conditional on `type == 'counter'` cannot replace it: CEL cannot
// read a field that the schema does not declare in a preserve-unknown-fields
// object ("undefined field 'increment'"), and a rule's fieldPath must be a
// declared path. So increment, when present, is an int32 for every type.
//
// In Go, the declared options are fields and the other keys are kept in
// Extra; the JSON form is one flat object.
//
// +kubebuilder:pruning:PreserveUnknownFields
type PluginOptions struct {
	// increment is what one unit of `{"value": N}` adds to a `counter`: an
	// increment request adds N × increment. An integer in the int32 range; the
	// runtime uses 1 when it is not set. Other types may take an option of this
	// name only as an int32.
	// +optional
	// +kubebuilder:validation:Minimum=-2147483648
	// +kubebuilder:validation:Maximum=2147483647
	Increment *int32 `json:"increment,omitempty"`

	// Extra holds the options that are not declared above, by key, as raw JSON
	// values. It is not a field of its own in the API: its keys sit next to the
	// declared options. A key that names a declared option is ignored when
	// marshalling.
	Extra map[string]json.RawMessage `json:"-"`
}

// MarshalJSON encodes the declared options and Extra as one JSON object with
// sorted keys.
func (o PluginOptions) MarshalJSON() ([]byte, error) {
	m := make(map[string]json.RawMessage, len(o.Extra)+1)
	for k, v := range o.Extra {
		if len(v) == 0 {
			v = json.RawMessage("null")
		}
		m[k] = v
	}
	delete(m, "increment")
	if o.Increment != nil {
		m["increment"] = json.RawMessage(fmt.Sprint(*o.Increment))
	}
	return json.Marshal(m)
}

// UnmarshalJSON decodes a JSON object into the declared options and Extra.
func (o *PluginOptions) UnmarshalJSON(data []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("options: %w", err)
	}
	*o = PluginOptions{}
	if raw, ok := m["increment"]; ok {
		delete(m, "increment")
		if !bytes.Equal(raw, []byte("null")) {
			var inc int32
			if err := json.Unmarshal(raw, &inc); err != nil {
				return fmt.Errorf("options.increment: %w", err)
			}
			o.Increment = &inc
		}
	}
	if len(m) > 0 {
		o.Extra = m
	}
	return nil
}

// PluginStatus is the observed state of a Plugin.
type PluginStatus struct {
	// observedGeneration is the metadata.generation of the Plugin that the
	// status describes; it moves once the Plugin's PluginHost has evaluated that
	// generation (not while the Plugin is Pending).
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions describe the Plugin: `Accepted` (the spec is valid, its Secret
	// exists and a PluginHost selects it), `Applied` (the host's pods have
	// applied a configuration that contains this generation) and `Ready`
	// (applied and served by a ready pod), with `Reconciling` and `Stalled`
	// (kstatus; they carry Ready's reason).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// host is the name of the PluginHost, in the same namespace, that runs this
	// Plugin; empty when no PluginHost selects it.
	// +optional
	Host string `json:"host,omitempty"`

	// url is the in-cluster URL of the plugin's HTTP API, for example
	// `http://<service>.<namespace>.svc:8080/plugins/counter-1`; empty when no
	// host runs it.
	// +optional
	URL string `json:"url,omitempty"`

	// appliedRevision is the configuration revision (see PluginHost
	// status.configRevision) in which every pod of the host first applied
	// observedGeneration of this Plugin; empty while that generation is not
	// applied. Later revisions that change only other plugins do not move it.
	// +optional
	AppliedRevision string `json:"appliedRevision,omitempty"`
}

// Plugin is one plugin instance run by a PluginHost: one entry of the
// runtime's config.json, named by metadata.name and served at
// `/plugins/<name>`. A PluginHost runs the Plugins of its namespace that its
// spec.pluginSelector selects, and applies changes to them in the running
// pod, without a restart.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=plg,categories=hotreload
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Host",type=string,JSONPath=`.status.host`
// +kubebuilder:printcolumn:name="Enabled",type=boolean,JSONPath=`.spec.enabled`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Plugin struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata; metadata.name is the plugin's
	// name.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired configuration of the plugin.
	// +required
	Spec PluginSpec `json:"spec"`

	// status is the observed state of the plugin, written by the operator.
	// +optional
	Status PluginStatus `json:"status,omitempty"`
}

// PluginList is a list of Plugins.
//
// +kubebuilder:object:root=true
type PluginList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the Plugins.
	Items []Plugin `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Plugin{}, &PluginList{})
}
