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
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// secretKeys lists the keys of spec.auth.secretRef that an auth method reads.
func secretKeys(method v1alpha1.AuthMethod) []string {
	switch method {
	case v1alpha1.AuthMethodAPIKey:
		return []string{v1alpha1.SecretKeyAPIKey}
	case v1alpha1.AuthMethodBearer:
		return []string{v1alpha1.SecretKeyToken}
	case v1alpha1.AuthMethodBasic:
		return []string{v1alpha1.SecretKeyUsername, v1alpha1.SecretKeyPassword}
	default:
		return nil
	}
}

// authMethod is spec.auth.method with its default.
func authMethod(p *v1alpha1.Plugin) v1alpha1.AuthMethod {
	if p.Spec.Auth == nil || p.Spec.Auth.Method == "" {
		return v1alpha1.AuthMethodNone
	}
	return p.Spec.Auth.Method
}

// authSecretName is the Secret that spec.auth.secretRef names, or "".
func authSecretName(p *v1alpha1.Plugin) string {
	if p.Spec.Auth == nil || p.Spec.Auth.SecretRef == nil || authMethod(p) == v1alpha1.AuthMethodNone {
		return ""
	}
	return p.Spec.Auth.SecretRef.Name
}

// maxCredentialKeyLength is the longest credential key kept as <plugin>.<key>: the limit of
// a Secret key (253 characters), which is also under the 255-byte limit of a file name.
const maxCredentialKeyLength = 253

// credentialKeyPrefixLength is how much of a long Plugin name a bounded credential key keeps,
// for the reader's sake: the digest alone tells the Plugins apart.
const credentialKeyPrefixLength = 100

// credentialKey is the key, in the Secret <host>-credentials, and the file name, under the
// secrets mount, of a Plugin's Secret key: <plugin>.<key>, as long as that fits a Secret key.
// A longer one (a Plugin name of up to 253 characters leaves no room for ".api-key") is
// <first 100 characters of the name>_<hex sha256 of the full name>.<key>, at most 180
// characters: "_" is not a character of a Plugin name, so it never equals the key of a
// short name, and the digest keeps two long names apart. The rendered configuration names
// the file (apiKeyFile, tokenFile, ...), so the host reads whatever key is chosen here.
func credentialKey(plugin, key string) string {
	if len(plugin)+1+len(key) <= maxCredentialKeyLength {
		return plugin + "." + key
	}
	sum := sha256.Sum256([]byte(plugin))
	return plugin[:min(len(plugin), credentialKeyPrefixLength)] + "_" + hex.EncodeToString(sum[:]) + "." + key
}

// convertPlugin turns a Plugin into its config.json entry, with the credentials its auth
// method reads as files under secretsDir (the mount of <host>-credentials). It reads no
// Secret. Errors name the Plugin's fields.
func convertPlugin(p *v1alpha1.Plugin, secretsDir string) (pluginconfig.Plugin, field.ErrorList) {
	spec := field.NewPath("spec")
	var errs field.ErrorList
	out := pluginconfig.Plugin{
		Name:      p.Name,
		Type:      string(p.Spec.Type),
		Transport: string(p.Spec.Transport),
		Endpoint:  p.Spec.Endpoint,
	}
	if p.Spec.Enabled != nil {
		out.Enabled = new(*p.Spec.Enabled)
	}

	method := authMethod(p)
	out.Auth.Method = string(method)
	if method == v1alpha1.AuthMethodAPIKey && p.Spec.Auth.Header != "" {
		out.Auth.Header = p.Spec.Auth.Header
	}
	file := func(key string) string { return path.Join(secretsDir, credentialKey(p.Name, key)) }
	switch method {
	case v1alpha1.AuthMethodAPIKey:
		out.Auth.APIKeyFile = file(v1alpha1.SecretKeyAPIKey)
	case v1alpha1.AuthMethodBearer:
		out.Auth.TokenFile = file(v1alpha1.SecretKeyToken)
	case v1alpha1.AuthMethodBasic:
		out.Auth.UsernameFile = file(v1alpha1.SecretKeyUsername)
		out.Auth.PasswordFile = file(v1alpha1.SecretKeyPassword)
	}

	if p.Spec.Options != nil {
		opts, err := optionsMap(p.Spec.Options)
		if err != nil {
			errs = append(errs, field.Invalid(spec.Child("options"), "", err.Error()))
		}
		out.Options = opts
	}
	// Defaults first, then the spec's connection values: an explicit value, zero included
	// (maxIdleConnections: 0), is kept, as the runtime's parser keeps it.
	pluginconfig.SetPluginDefaults(&out)
	if c := p.Spec.Connection; c != nil {
		cp := spec.Child("connection")
		if c.MaxConnections != nil {
			out.Connection.MaxConnections = int(*c.MaxConnections)
		}
		if c.MaxIdleConnections != nil {
			out.Connection.MaxIdleConnections = int(*c.MaxIdleConnections)
		}
		duration := func(s string, name string, dst *pluginconfig.Duration) {
			if s == "" {
				return
			}
			d, err := time.ParseDuration(s)
			if err != nil {
				errs = append(errs, field.Invalid(cp.Child(name), s, "must be a Go duration such as 30s"))
				return
			}
			*dst = pluginconfig.Duration(d)
		}
		duration(c.IdleTimeout, "idleTimeout", &out.Connection.IdleTimeout)
		duration(c.ConnectionTimeout, "connectionTimeout", &out.Connection.ConnectionTimeout)
		duration(c.RequestTimeout, "requestTimeout", &out.Connection.RequestTimeout)
		if c.KeepAlive != nil {
			out.Connection.KeepAlive = new(*c.KeepAlive)
		}
	}

	return out, errs
}

// optionsMap converts options to the generic map the runtime decodes, numbers kept exact.
func optionsMap(o *v1alpha1.PluginOptions) (map[string]any, error) {
	raw, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// configFieldNames maps the config.json names in runtime validation errors to the Plugin's.
var configFieldNames = strings.NewReplacer(
	"max_idle_connections", "maxIdleConnections",
	"max_connections", "maxConnections",
	"idle_timeout", "idleTimeout",
	"connection_timeout", "connectionTimeout",
	"request_timeout", "requestTimeout",
	"keep_alive", "keepAlive",
	"api_key_file", "secretRef",
	"token_file", "secretRef",
	"username_file", "secretRef",
	"password_file", "secretRef",
)

// validatePlugin checks a converted Plugin with the runtime's own validator and plugin
// registry, and reports errors by the Plugin's field names (spec.connection.idleTimeout).
func validatePlugin(pl *pluginconfig.Plugin, types pluginconfig.Types) field.ErrorList {
	errs := pluginconfig.ValidatePlugin(pl, types, field.NewPath("spec"))
	for _, e := range errs {
		// Option keys are the user's own: spec.options.max_connections stays as it is.
		if !strings.HasPrefix(e.Field, "spec.options") {
			e.Field = configFieldNames.Replace(e.Field)
		}
	}
	return errs
}
