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
	"fmt"
	"net/url"
	"regexp"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Limits checked by Validate.
const (
	MaxNameLength     = 253
	MaxPlugins        = 10000
	MaxConnectionsCap = 100000
	MaxTimeout        = 24 * time.Hour
)

var (
	// Names appear in URL paths (/plugins/{name}/get) and, via the operator, are Kubernetes
	// object names; letters, digits, '-', '_' and '.', starting and ending alphanumeric.
	nameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)
	// An HTTP header field name (RFC 9110 token).
	headerRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// Validate checks a decoded config and returns every problem with its JSON path.
func Validate(cfg *Config, types Types) field.ErrorList {
	var errs field.ErrorList
	root := field.NewPath("plugins")
	if len(cfg.Plugins) > MaxPlugins {
		errs = append(errs, field.TooMany(root, len(cfg.Plugins), MaxPlugins))
	}
	seen := make(map[string]int, len(cfg.Plugins))
	for i := range cfg.Plugins {
		p := root.Index(i)
		pl := &cfg.Plugins[i]
		if first, dup := seen[pl.Name]; dup && pl.Name != "" {
			errs = append(errs, field.Duplicate(p.Child("name"), fmt.Sprintf("%s (first defined at plugins[%d])", pl.Name, first)))
		} else {
			seen[pl.Name] = i
		}
		errs = append(errs, ValidatePlugin(pl, types, p)...)
	}
	return errs
}

// ValidatePlugin checks one plugin entry; path is where it sits in the document.
func ValidatePlugin(pl *Plugin, types Types, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case pl.Name == "":
		errs = append(errs, field.Required(path.Child("name"), "every plugin needs a name"))
	case len(pl.Name) > MaxNameLength:
		errs = append(errs, field.TooLong(path.Child("name"), pl.Name, MaxNameLength))
	case !nameRE.MatchString(pl.Name):
		errs = append(errs, field.Invalid(path.Child("name"), pl.Name, "must consist of letters, digits, '-', '_' or '.', and start and end with a letter or digit"))
	}

	if pl.Type == "" {
		errs = append(errs, field.Required(path.Child("type"), fmt.Sprintf("supported types: %v", types.TypeNames())))
	} else {
		known, optErrs := types.ValidateOptions(pl.Type, pl.Options, path.Child("options"))
		if !known {
			errs = append(errs, field.NotSupported(path.Child("type"), pl.Type, types.TypeNames()))
		}
		errs = append(errs, optErrs...)
	}

	switch pl.Transport {
	case TransportHTTP, TransportHTTPS:
	default:
		errs = append(errs, field.NotSupported(path.Child("transport"), pl.Transport, []string{TransportHTTP, TransportHTTPS}))
	}
	if pl.Endpoint != "" {
		errs = append(errs, validateEndpoint(pl, path.Child("endpoint"))...)
	}
	errs = append(errs, validateAuth(&pl.Auth, path.Child("auth"))...)
	errs = append(errs, validateConnection(&pl.Connection, path.Child("connection"))...)
	return errs
}

func validateEndpoint(pl *Plugin, p *field.Path) field.ErrorList {
	u, err := url.Parse(pl.Endpoint)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return field.ErrorList{field.Invalid(p, pl.Endpoint, "must be an absolute URL such as http://localhost:9001")}
	}
	if u.Scheme != pl.Transport {
		return field.ErrorList{field.Invalid(p, pl.Endpoint, fmt.Sprintf("scheme %q does not match transport %q", u.Scheme, pl.Transport))}
	}
	return nil
}

func validateAuth(a *Auth, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	type cred struct {
		inline, file       string
		inlineKey, fileKey string
	}
	apiKey := cred{a.APIKey, a.APIKeyFile, "api_key", "api_key_file"}
	token := cred{a.Token, a.TokenFile, "token", "token_file"}
	user := cred{a.Username, a.UsernameFile, "username", "username_file"}
	pass := cred{a.Password, a.PasswordFile, "password", "password_file"}
	all := []cred{apiKey, token, user, pass}

	// need requires exactly one of the inline value or the file for each credential the method
	// uses, and forbids the credentials it does not use.
	need := func(used ...cred) {
		usedKeys := map[string]bool{}
		for _, c := range used {
			usedKeys[c.inlineKey] = true
			switch {
			case c.inline == "" && c.file == "":
				errs = append(errs, field.Required(p.Child(c.inlineKey), fmt.Sprintf("auth method %q needs %s or %s", a.Method, c.inlineKey, c.fileKey)))
			case c.inline != "" && c.file != "":
				errs = append(errs, field.Forbidden(p.Child(c.fileKey), fmt.Sprintf("set %s or %s, not both", c.inlineKey, c.fileKey)))
			}
		}
		for _, c := range all {
			if usedKeys[c.inlineKey] {
				continue
			}
			if c.inline != "" {
				errs = append(errs, field.Forbidden(p.Child(c.inlineKey), fmt.Sprintf("not used by auth method %q", a.Method)))
			}
			if c.file != "" {
				errs = append(errs, field.Forbidden(p.Child(c.fileKey), fmt.Sprintf("not used by auth method %q", a.Method)))
			}
		}
	}
	switch a.Method {
	case AuthNone:
		need()
	case AuthAPIKey:
		need(apiKey)
		if !headerRE.MatchString(a.Header) {
			errs = append(errs, field.Invalid(p.Child("header"), a.Header, "must be an HTTP header name"))
		}
	case AuthBearer:
		need(token)
	case AuthBasic:
		need(user, pass)
	default:
		errs = append(errs, field.NotSupported(p.Child("method"), a.Method, []string{AuthNone, AuthAPIKey, AuthBearer, AuthBasic}))
	}
	if a.Method != AuthAPIKey && a.Header != "" {
		errs = append(errs, field.Forbidden(p.Child("header"), "only used by auth method \"api-key\""))
	}
	return errs
}

func validateConnection(c *Connection, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.MaxConnections < 1 || c.MaxConnections > MaxConnectionsCap {
		errs = append(errs, field.Invalid(p.Child("max_connections"), c.MaxConnections, fmt.Sprintf("must be between 1 and %d", MaxConnectionsCap)))
	}
	if c.MaxIdleConnections < 0 || c.MaxIdleConnections > MaxConnectionsCap {
		errs = append(errs, field.Invalid(p.Child("max_idle_connections"), c.MaxIdleConnections, fmt.Sprintf("must be between 0 and %d", MaxConnectionsCap)))
	} else if c.MaxIdleConnections > c.MaxConnections && c.MaxConnections >= 1 {
		errs = append(errs, field.Invalid(p.Child("max_idle_connections"), c.MaxIdleConnections, fmt.Sprintf("must not exceed max_connections (%d)", c.MaxConnections)))
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"idle_timeout", c.IdleTimeout}, {"connection_timeout", c.ConnectionTimeout}, {"request_timeout", c.RequestTimeout}} {
		if d.v <= 0 || d.v.D() > MaxTimeout {
			errs = append(errs, field.Invalid(p.Child(d.key), d.v.String(), fmt.Sprintf("must be positive and at most %s", MaxTimeout)))
		}
	}
	return errs
}
