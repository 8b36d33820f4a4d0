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
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Types is what validation needs to know about plugin types: which exist, and how to check
// the options of each. The plugin registry implements it; this package does not import any
// plugin so that the schema stays free of plugin code.
type Types interface {
	// TypeNames lists the registered plugin types, sorted.
	TypeNames() []string
	// ValidateOptions checks the options of a plugin of type pluginType. known is false when
	// no such type is registered.
	ValidateOptions(pluginType string, options map[string]any, path *field.Path) (known bool, errs field.ErrorList)
}

// Parse decodes, defaults and validates a whole config.json. Every problem is reported with
// the JSON path of the field at fault, e.g. "plugins[1].options.increment: Invalid value:
// 5.5: must be an integer". It never returns a partially valid config.
func Parse(data []byte, types Types) (*Config, error) {
	cfg, err := Decode(data)
	if err != nil {
		return nil, err
	}
	if errs := Validate(cfg, types); len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	return cfg, nil
}

// Decode strictly decodes config.json and fills defaults for omitted fields, without checking
// values against the plugin types. Unknown fields, wrong JSON types, malformed or truncated
// JSON, an empty or oversized document are errors. // and /* */ comments are allowed.
func Decode(data []byte) (*Config, error) {
	if len(data) > MaxConfigBytes {
		return nil, plainError(fmt.Sprintf("config is %d bytes, over the %d-byte limit", len(data), MaxConfigBytes))
	}
	data = stripComments(data)
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, plainError("config is empty")
	}
	if err := checkSyntax(data); err != nil {
		return nil, err
	}
	d := &decoder{}
	cfg := d.config(data)
	if len(d.errs) > 0 {
		return nil, d.errs.ToAggregate()
	}
	return cfg, nil
}

// checkSyntax reports malformed JSON with its line and column.
func checkSyntax(data []byte) error {
	if json.Valid(data) {
		return nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	err := dec.Decode(&v)
	if err == nil {
		if _, terr := dec.Token(); terr == nil {
			line, col := position(data, dec.InputOffset())
			return &SyntaxError{Line: line, Column: col, detail: "unexpected data after the top-level value"}
		}
		return nil
	}
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		// Offset counts the bytes read, including the offending one.
		line, col := position(data, max(se.Offset-1, 0))
		return &SyntaxError{Line: line, Column: col, detail: se.Error()}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return plainError("invalid JSON: unexpected end of input (truncated file?)")
	default:
		return fmt.Errorf("invalid JSON: %w", err)
	}
}

func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	line, col = 1, 1
	for _, c := range data[:offset] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

// at is where a value sits: its parent's path and its key. The path is built only when an
// error needs it, which keeps a 1,000-plugin config from allocating thousands of paths.
type at struct {
	parent *field.Path
	key    string
}

func (a at) path() *field.Path { return childPath(a.parent, a.key) }

// decoder walks the JSON document level by level so that each error carries its path.
type decoder struct {
	errs field.ErrorList
}

func (d *decoder) config(data []byte) *Config {
	cfg := &Config{Plugins: []Plugin{}}
	root := field.NewPath("")
	obj, ok := d.object(nil, data)
	if !ok {
		return cfg
	}
	d.fields(root, obj, func(key string, p at, raw json.RawMessage) bool {
		if key != "plugins" {
			return false
		}
		if isNull(raw) {
			return true
		}
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			d.errs = append(d.errs, field.TypeInvalid(p.path(), preview(raw), "must be an array of plugin objects"))
			return true
		}
		cfg.Plugins = make([]Plugin, 0, len(items))
		plugins := p.path()
		for i, item := range items {
			cfg.Plugins = append(cfg.Plugins, d.plugin(plugins.Index(i), item))
		}
		return true
	})
	return cfg
}

func (d *decoder) plugin(p *field.Path, raw json.RawMessage) Plugin {
	pl := Plugin{}
	SetPluginDefaults(&pl)
	obj, ok := d.object(p, raw)
	if !ok {
		return pl
	}
	d.fields(p, obj, func(key string, p at, r json.RawMessage) bool {
		switch key {
		case "name":
			d.str(p, r, &pl.Name)
		case "type":
			d.str(p, r, &pl.Type)
		case "transport":
			d.str(p, r, &pl.Transport)
		case "endpoint":
			d.str(p, r, &pl.Endpoint)
		case "enabled":
			d.boolean(p, r, &pl.Enabled)
		case "auth":
			d.auth(p.path(), r, &pl.Auth)
		case "connection":
			d.connection(p.path(), r, &pl.Connection)
		case "options":
			if isNull(r) {
				return true
			}
			dec := json.NewDecoder(bytes.NewReader(r))
			dec.UseNumber()
			var opts map[string]any
			if err := dec.Decode(&opts); err != nil {
				d.errs = append(d.errs, field.TypeInvalid(p.path(), preview(r), "must be an object"))
			} else {
				pl.Options = opts
			}
		default:
			return false
		}
		return true
	})
	// Defaults that depend on decoded values.
	if pl.Auth.Method == AuthAPIKey && pl.Auth.Header == "" {
		pl.Auth.Header = DefaultAPIKeyHeader
	}
	return pl
}

func (d *decoder) auth(p *field.Path, raw json.RawMessage, a *Auth) {
	obj, ok := d.object(p, raw)
	if !ok {
		return
	}
	d.fields(p, obj, func(key string, p at, r json.RawMessage) bool {
		var dst *string
		switch key {
		case "method":
			dst = &a.Method
		case "header":
			dst = &a.Header
		case "api_key":
			dst = &a.APIKey
		case "api_key_file":
			dst = &a.APIKeyFile
		case "token":
			dst = &a.Token
		case "token_file":
			dst = &a.TokenFile
		case "username":
			dst = &a.Username
		case "username_file":
			dst = &a.UsernameFile
		case "password":
			dst = &a.Password
		case "password_file":
			dst = &a.PasswordFile
		default:
			return false
		}
		d.str(p, r, dst)
		return true
	})
	if a.Method == "" {
		a.Method = AuthNone
	}
}

func (d *decoder) connection(p *field.Path, raw json.RawMessage, c *Connection) {
	obj, ok := d.object(p, raw)
	if !ok {
		return
	}
	d.fields(p, obj, func(key string, p at, r json.RawMessage) bool {
		switch key {
		case "max_connections":
			d.integer(p, r, &c.MaxConnections)
		case "max_idle_connections":
			d.integer(p, r, &c.MaxIdleConnections)
		case "idle_timeout":
			d.duration(p, r, &c.IdleTimeout)
		case "connection_timeout":
			d.duration(p, r, &c.ConnectionTimeout)
		case "request_timeout":
			d.duration(p, r, &c.RequestTimeout)
		case "keep_alive":
			d.boolean(p, r, &c.KeepAlive)
		default:
			return false
		}
		return true
	})
}

// object decodes a JSON object; null counts as absent (ok=false, no error).
func (d *decoder) object(p *field.Path, raw json.RawMessage) (map[string]json.RawMessage, bool) {
	if isNull(raw) {
		return nil, false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		if p == nil {
			d.errs = append(d.errs, field.TypeInvalid(field.NewPath("<root>"), preview(raw), "config must be a JSON object"))
		} else {
			d.errs = append(d.errs, field.TypeInvalid(p, preview(raw), "must be an object"))
		}
		return nil, false
	}
	return obj, true
}

// fields hands each key, in sorted order, to decode; a key it does not know (false) is an
// error. The decoders treat a null value as absent.
func (d *decoder) fields(p *field.Path, obj map[string]json.RawMessage, decode func(key string, p at, raw json.RawMessage) bool) {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		child := at{p, k}
		if !decode(k, child, obj[k]) {
			d.errs = append(d.errs, field.Forbidden(child.path(), "unknown field"))
		}
	}
}

func childPath(p *field.Path, k string) *field.Path {
	if p == nil || p.String() == "" {
		return field.NewPath(k)
	}
	return p.Child(k)
}

func (d *decoder) str(p at, raw json.RawMessage, dst *string) {
	if isNull(raw) {
		return
	}
	// Fast path: a plain string (the document is already known to be valid JSON).
	if len(raw) >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		*dst = string(raw[1 : len(raw)-1])
		return
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		d.errs = append(d.errs, field.TypeInvalid(p.path(), preview(raw), "must be a string"))
	}
}

func (d *decoder) boolean(p at, raw json.RawMessage, dst **bool) {
	if isNull(raw) {
		return
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		d.errs = append(d.errs, field.TypeInvalid(p.path(), preview(raw), "must be true or false"))
		return
	}
	*dst = &b
}

func (d *decoder) integer(p at, raw json.RawMessage, dst *int) {
	if isNull(raw) {
		return
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		d.errs = append(d.errs, field.TypeInvalid(p.path(), preview(raw), "must be an integer"))
		return
	}
	v, err := n.Int64()
	if err != nil || int64(int(v)) != v {
		d.errs = append(d.errs, field.TypeInvalid(p.path(), n.String(), "must be an integer"))
		return
	}
	*dst = int(v)
}

func (d *decoder) duration(p at, raw json.RawMessage, dst *Duration) {
	if isNull(raw) {
		return
	}
	if err := dst.UnmarshalJSON(raw); err != nil {
		d.errs = append(d.errs, field.Invalid(p.path(), preview(raw), err.Error()))
	}
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// preview keeps error messages short when a whole object is at fault.
func preview(raw json.RawMessage) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 64 {
		return s[:61] + "..."
	}
	return s
}
