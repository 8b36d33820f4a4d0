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

package pluginconfig

import (
	"encoding/json"
	"fmt"
	"time"
)

// MaxConfigBytes is the largest config.json the host accepts. It matches the 1 MiB limit of
// a ConfigMap, so nothing the operator can deliver is refused for its size.
const MaxConfigBytes = 1 << 20

// Transports a plugin may declare.
const (
	TransportHTTP  = "http"
	TransportHTTPS = "https"
)

// Auth methods.
const (
	AuthNone   = "none"
	AuthAPIKey = "api-key"
	AuthBearer = "bearer"
	AuthBasic  = "basic"
)

// DefaultAPIKeyHeader is the header an api-key plugin reads its key from.
const DefaultAPIKeyHeader = "X-API-Key"

// Config is the whole config.json: the seed's format.
type Config struct {
	// Plugins are the plugin instances the host runs, each with a unique name.
	Plugins []Plugin `json:"plugins"`
}

// Plugin is one entry of the plugins array.
type Plugin struct {
	// Name identifies the instance in the HTTP API: /plugins/{name}/...
	Name string `json:"name"`
	// Type selects the factory that builds the instance ("counter").
	Type string `json:"type"`
	// Transport is the protocol the plugin's endpoint speaks: "http" (default) or "https".
	Transport string `json:"transport"`
	// Endpoint is where the plugin is reached, an absolute URL whose scheme matches Transport.
	// It is informational for in-process plugins and reported in /status.
	Endpoint string `json:"endpoint,omitempty"`
	// Enabled is true by default; a disabled plugin keeps its state and answers 503.
	Enabled *bool `json:"enabled"`
	// Auth guards the plugin's HTTP API.
	Auth Auth `json:"auth"`
	// Connection bounds the plugin's requests.
	Connection Connection `json:"connection"`
	// Options are type-specific; the plugin type validates them.
	Options map[string]any `json:"options,omitempty"`
}

// IsEnabled reports whether the plugin serves requests (Enabled defaults to true).
func (p *Plugin) IsEnabled() bool { return p.Enabled == nil || *p.Enabled }

// Auth says how a request to the plugin proves who it is. Credentials are given inline
// (standalone use) or as files (the operator mounts Secrets and renders *_file fields).
type Auth struct {
	Method       string `json:"method"`
	Header       string `json:"header,omitempty"`
	APIKey       string `json:"api_key,omitempty"`
	APIKeyFile   string `json:"api_key_file,omitempty"`
	Token        string `json:"token,omitempty"`
	TokenFile    string `json:"token_file,omitempty"`
	Username     string `json:"username,omitempty"`
	UsernameFile string `json:"username_file,omitempty"`
	Password     string `json:"password,omitempty"`
	PasswordFile string `json:"password_file,omitempty"`
}

// Connection holds the seed's connection settings. What each does in the host is documented
// in docs/configuration.md.
type Connection struct {
	MaxConnections     int      `json:"max_connections"`
	MaxIdleConnections int      `json:"max_idle_connections"`
	IdleTimeout        Duration `json:"idle_timeout"`
	ConnectionTimeout  Duration `json:"connection_timeout"`
	RequestTimeout     Duration `json:"request_timeout"`
	KeepAlive          *bool    `json:"keep_alive"`
}

// KeepAliveEnabled reports whether connections are kept open after a response (default true).
func (c *Connection) KeepAliveEnabled() bool { return c.KeepAlive == nil || *c.KeepAlive }

// Duration is a time.Duration written in JSON as a Go duration string ("30s").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a Go duration string; numbers are refused because their unit would be
// a guess.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("must be a duration string such as \"30s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: must be a Go duration such as \"30s\" or \"1m30s\"", s)
	}
	*d = Duration(v)
	return nil
}
