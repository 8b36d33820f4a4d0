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
	"errors"
	"fmt"
	"strings"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// SyntaxError is malformed JSON, at a line and column of the document.
type SyntaxError struct {
	Line, Column int
	// detail is the JSON decoder's own words, which may quote the document.
	detail string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at line %d, column %d: %s", e.Line, e.Column, e.detail)
}

// plainError is an error of Decode whose text quotes nothing of the document.
type plainError string

func (e plainError) Error() string { return string(e) }

// schemaKeys are the keys of config.json that the decoder knows: a path made of them (and of
// list indexes) is the schema's, not the document's.
var schemaKeys = map[string]bool{
	"plugins": true, "name": true, "type": true, "transport": true, "endpoint": true, "enabled": true,
	"auth": true, "connection": true, "options": true,
	"method": true, "header": true, "api_key": true, "api_key_file": true, "token": true, "token_file": true,
	"username": true, "username_file": true, "password": true, "password_file": true,
	"max_connections": true, "max_idle_connections": true, "idle_timeout": true, "connection_timeout": true,
	"request_timeout": true, "keep_alive": true,
}

// Redact describes an error of Parse or Decode without quoting the document: where each
// problem is (the JSON path, cut at the first key the schema does not define, and at
// "options", whose keys are the document's) and what kind it is, with the explanation only
// when that comes from the schema rather than from the values. It is for reporting the errors
// of a document to someone who may not read it (a PluginHost's author about a ConfigMap).
func Redact(err error) string {
	if err == nil {
		return ""
	}
	var se *SyntaxError
	var plain plainError
	var agg utilerrors.Aggregate
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at line %d, column %d", se.Line, se.Column)
	case errors.As(err, &plain):
		return plain.Error()
	case errors.As(err, &agg):
		var parts []string
		for _, e := range agg.Errors() {
			var fe *field.Error
			if !errors.As(e, &fe) {
				parts = append(parts, "invalid configuration")
				continue
			}
			parts = append(parts, redactFieldError(fe))
		}
		if len(parts) == 1 {
			return parts[0]
		}
		return "[" + strings.Join(parts, ", ") + "]"
	default:
		return "invalid configuration"
	}
}

func redactFieldError(e *field.Error) string {
	path, cut := redactPath(e.Field)
	if path == "" {
		path = "<root>"
	}
	msg := path + ": " + e.Type.String()
	switch {
	case e.Type == field.ErrorTypeForbidden && e.Detail == "unknown field":
		return path + ": unknown field"
	case cut:
		// Under options, or under a key of the document: the explanation may quote it.
	case e.Type == field.ErrorTypeNotSupported, e.Type == field.ErrorTypeRequired,
		e.Type == field.ErrorTypeTooLong, e.Type == field.ErrorTypeTooMany:
		// The supported values, the limits: the schema's words.
		if e.Detail != "" {
			msg += ": " + e.Detail
		}
	case e.Type == field.ErrorTypeForbidden, e.Type == field.ErrorTypeInvalid, e.Type == field.ErrorTypeTypeInvalid:
		// The decoder's and validator's explanations quote values with %q; the others are
		// the schema's ("must be an integer").
		if e.Detail != "" && !strings.ContainsAny(e.Detail, `"'`) {
			msg += ": " + e.Detail
		}
	}
	return msg
}

// redactPath returns the longest prefix of path made of schema keys and list indexes, ending
// at "options" at the latest, and whether anything was cut.
func redactPath(path string) (string, bool) {
	var b strings.Builder
	// The decoder's root: "<root>" for the document itself, "[]" before the top-level keys.
	rest := strings.TrimPrefix(strings.TrimPrefix(path, "<root>"), "[]")
	for rest != "" {
		if strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			if end < 2 || strings.Trim(rest[1:end], "0123456789") != "" {
				return b.String(), true
			}
			b.WriteString(rest[:end+1])
			rest = rest[end+1:]
			continue
		}
		seg := strings.TrimPrefix(rest, ".")
		if i := strings.IndexAny(seg, ".["); i >= 0 {
			seg = seg[:i]
		}
		if !schemaKeys[seg] {
			return b.String(), true
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(seg)
		rest = strings.TrimPrefix(rest, ".")[len(seg):]
		if seg == "options" && rest != "" {
			return b.String(), true
		}
	}
	return b.String(), false
}
