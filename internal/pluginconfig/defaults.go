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

import "time"

// Defaults for omitted fields. The seed's step-2 snippet omits auth and connection; these
// are the values the seed's full example spells out.
const (
	DefaultMaxConnections     = 10
	DefaultMaxIdleConnections = 5
	DefaultIdleTimeout        = 30 * time.Second
	DefaultConnectionTimeout  = 10 * time.Second
	DefaultRequestTimeout     = 30 * time.Second
)

// SetPluginDefaults fills every zero field of p with its default: in a Go struct a zero
// cannot be told from an omitted field. Decode applies defaults before decoding instead, so
// explicit zeros in a document are kept (and validated).
func SetPluginDefaults(p *Plugin) {
	if p.Transport == "" {
		p.Transport = TransportHTTP
	}
	if p.Enabled == nil {
		p.Enabled = ptr(true)
	}
	if p.Auth.Method == "" {
		p.Auth.Method = AuthNone
	}
	if p.Auth.Method == AuthAPIKey && p.Auth.Header == "" {
		p.Auth.Header = DefaultAPIKeyHeader
	}
	c := &p.Connection
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.MaxIdleConnections == 0 {
		c.MaxIdleConnections = DefaultMaxIdleConnections
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = Duration(DefaultIdleTimeout)
	}
	if c.ConnectionTimeout == 0 {
		c.ConnectionTimeout = Duration(DefaultConnectionTimeout)
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = Duration(DefaultRequestTimeout)
	}
	if c.KeepAlive == nil {
		c.KeepAlive = ptr(true)
	}
}

// SetDefaults fills defaults in every plugin of cfg; for configs built in Go (the operator).
func SetDefaults(cfg *Config) {
	if cfg.Plugins == nil {
		cfg.Plugins = []Plugin{}
	}
	for i := range cfg.Plugins {
		SetPluginDefaults(&cfg.Plugins[i])
	}
}

func ptr[T any](v T) *T { return &v }
