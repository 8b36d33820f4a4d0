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

// Package typeschema checks plugin options against the JSON Schemas that plugin types
// declare. The host checks a config against the types it carries, and the manager checks
// Plugins against the types a host advertised, with this same code: what the manager
// accepts, the host accepts. It validates with github.com/santhosh-tekuri/jsonschema/v6
// and never loads a schema from anywhere but the declaration (no file or network $ref).
package typeschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/hotreload/plugin-operator/internal/hostapi"
	"github.com/hotreload/plugin-operator/pkg/plugin"
)

// Limits on what a type declares, and so on what a host may advertise.
const (
	// MaxSchemaBytes bounds one type's options schema.
	MaxSchemaBytes = 8 << 10
	// MaxTotalSchemaBytes bounds the options schemas of one host's types together, so that
	// what the manager records in a PluginHost's status stays small.
	MaxTotalSchemaBytes = 32 << 10
	// MaxTypes bounds the types of one host.
	MaxTypes = 32
	// MaxOperations bounds the operations of one type.
	MaxOperations = 32
	// MaxNameLength bounds type and operation names.
	MaxNameLength = 63
	// MaxDescriptionLength bounds an operation's description.
	MaxDescriptionLength = 256
)

var (
	typeNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	opNameRE   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)
	printer    = message.NewPrinter(language.English)
)

// noSchema is the schema of a type that declares none: it takes no options.
var noSchema = json.RawMessage(`{"type":"object","additionalProperties":false}`)

// Set is a set of plugin types with compiled option schemas. It implements
// pluginconfig.Types.
type Set struct {
	names   []string
	types   map[string]hostapi.TypeInfo
	schemas map[string]*jsonschema.Schema
	// options are the top-level properties each schema declares, for messages.
	options map[string][]string
}

// Compile checks each declaration (names, operations, sizes) and compiles its schema. An
// error names the type and what is wrong with it.
func Compile(types []hostapi.TypeInfo) (*Set, error) {
	if len(types) > MaxTypes {
		return nil, fmt.Errorf("%d plugin types, more than %d", len(types), MaxTypes)
	}
	total := 0
	for _, t := range types {
		total += len(t.OptionsSchema)
	}
	if total > MaxTotalSchemaBytes {
		return nil, fmt.Errorf("the options schemas of the %d plugin types are %d bytes together, over the %d-byte limit", len(types), total, MaxTotalSchemaBytes)
	}
	s := &Set{types: map[string]hostapi.TypeInfo{}, schemas: map[string]*jsonschema.Schema{}, options: map[string][]string{}}
	var errs []error
	for _, t := range types {
		if err := checkDeclaration(t); err != nil {
			errs = append(errs, fmt.Errorf("plugin type %q: %w", t.Name, err))
			continue
		}
		if _, dup := s.types[t.Name]; dup {
			errs = append(errs, fmt.Errorf("plugin type %q declared twice", t.Name))
			continue
		}
		sch, options, err := compile(t.Name, t.OptionsSchema)
		if err != nil {
			errs = append(errs, fmt.Errorf("plugin type %q: options schema: %w", t.Name, err))
			continue
		}
		s.options[t.Name] = options
		s.types[t.Name] = t
		s.schemas[t.Name] = sch
		s.names = append(s.names, t.Name)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sort.Strings(s.names)
	return s, nil
}

func checkDeclaration(t hostapi.TypeInfo) error {
	if len(t.Name) > MaxNameLength || !typeNameRE.MatchString(t.Name) {
		return fmt.Errorf("the name must be lower-case letters, digits and '-', at most %d characters", MaxNameLength)
	}
	if len(t.Operations) == 0 || len(t.Operations) > MaxOperations {
		return fmt.Errorf("%d operations: a type has 1 to %d", len(t.Operations), MaxOperations)
	}
	seen := map[string]bool{}
	for _, op := range t.Operations {
		switch {
		case len(op.Name) > MaxNameLength || !opNameRE.MatchString(op.Name):
			return fmt.Errorf("operation %q: the name must be letters, digits, '-', '_' or '.', starting and ending with a letter or digit, at most %d characters", op.Name, MaxNameLength)
		case seen[op.Name]:
			return fmt.Errorf("operation %q declared twice", op.Name)
		case op.Method != "GET" && op.Method != "POST":
			return fmt.Errorf("operation %q: method %q, must be GET or POST", op.Name, op.Method)
		case len(op.Description) > MaxDescriptionLength:
			return fmt.Errorf("operation %q: the description is over %d bytes", op.Name, MaxDescriptionLength)
		}
		seen[op.Name] = true
	}
	if len(t.OptionsSchema) > MaxSchemaBytes {
		return fmt.Errorf("the options schema is %d bytes, over the %d-byte limit", len(t.OptionsSchema), MaxSchemaBytes)
	}
	return nil
}

// refuseLoads is the compiler's only loader: a schema is what the type declared, whole.
type refuseLoads struct{}

func (refuseLoads) Load(url string) (any, error) {
	return nil, fmt.Errorf("$ref to %s: a plugin type's options schema must be self-contained", url)
}

// compile compiles a declared schema and returns it with its top-level property names.
func compile(name string, raw json.RawMessage) (*jsonschema.Schema, []string, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		raw = noSchema
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(refuseLoads{})
	c.DefaultDraft(jsonschema.Draft2020)
	loc := "urn:plugin-type:" + name
	if err := c.AddResource(loc, doc); err != nil {
		return nil, nil, err
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, nil, err
	}
	var options []string
	if obj, ok := doc.(map[string]any); ok {
		if props, ok := obj["properties"].(map[string]any); ok {
			for k := range props {
				options = append(options, k)
			}
		}
	}
	sort.Strings(options)
	return sch, options, nil
}

// Declarations returns what factories declare, as a host advertises it on /status and
// /types.
func Declarations(factories ...plugin.Factory) []hostapi.TypeInfo {
	out := make([]hostapi.TypeInfo, 0, len(factories))
	for _, f := range factories {
		t := hostapi.TypeInfo{Name: f.Type(), OptionsSchema: f.OptionsSchema()}
		for _, op := range f.Operations() {
			t.Operations = append(t.Operations, hostapi.Operation{Name: op.Name, Method: op.Method, Mutating: op.Mutating, Description: op.Description})
		}
		out = append(out, t)
	}
	return out
}

// TypeNames implements pluginconfig.Types.
func (s *Set) TypeNames() []string { return slices.Clone(s.names) }

// Types returns the declarations, sorted by name.
func (s *Set) Types() []hostapi.TypeInfo {
	out := make([]hostapi.TypeInfo, 0, len(s.names))
	for _, n := range s.names {
		out = append(out, s.types[n])
	}
	return out
}

// Type returns one declaration.
func (s *Set) Type(name string) (hostapi.TypeInfo, bool) {
	t, ok := s.types[name]
	return t, ok
}

// ValidateOptions implements pluginconfig.Types: it checks options against the type's schema
// and returns one error per problem, each with the path of the option at fault under path.
func (s *Set) ValidateOptions(typ string, options map[string]any, path *field.Path) (bool, field.ErrorList) {
	sch, ok := s.schemas[typ]
	if !ok {
		return false, nil
	}
	var doc any = map[string]any{}
	if options != nil {
		// The validator wants JSON values (json.Number for numbers); options decoded with
		// UseNumber are that already, but options built in Go may hold ints or float64s.
		b, err := json.Marshal(options)
		if err != nil {
			return true, field.ErrorList{field.Invalid(path, "", fmt.Sprintf("not JSON: %v", err))}
		}
		if doc, err = jsonschema.UnmarshalJSON(bytes.NewReader(b)); err != nil {
			return true, field.ErrorList{field.Invalid(path, "", fmt.Sprintf("not JSON: %v", err))}
		}
	}
	err := sch.Validate(doc)
	if err == nil {
		return true, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return true, field.ErrorList{field.Invalid(path, "", err.Error())}
	}
	var errs field.ErrorList
	collect(ve, doc, path, s.options[typ], &errs)
	return true, errs
}

// collect turns the leaves of a validation error into field errors at their instance paths;
// options are the type's top-level option names.
func collect(ve *jsonschema.ValidationError, doc any, root *field.Path, options []string, errs *field.ErrorList) {
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			collect(c, doc, root, options, errs)
		}
		return
	}
	p := root
	for _, seg := range ve.InstanceLocation {
		p = p.Child(seg)
	}
	switch k := ve.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		for _, prop := range k.Properties {
			switch {
			case len(ve.InstanceLocation) == 0 && len(options) == 0:
				*errs = append(*errs, field.Forbidden(p.Child(prop), "this plugin type takes no options"))
			case len(ve.InstanceLocation) == 0:
				*errs = append(*errs, field.NotSupported(p.Child(prop), prop, options))
			default:
				*errs = append(*errs, field.Forbidden(p.Child(prop), "not allowed here by the plugin type's options schema"))
			}
		}
	case *kind.Required:
		for _, m := range k.Missing {
			*errs = append(*errs, field.Required(p.Child(m), ""))
		}
	default:
		*errs = append(*errs, field.Invalid(p, valueAt(doc, ve.InstanceLocation), mustBe(ve.ErrorKind)))
	}
}

// mustBe says what a value must be. Numbers are written exactly: the library's own
// messages print them as rounded floats, which hides an int64 bound.
func mustBe(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = article(w)
		}
		return "must be " + strings.Join(want, " or ")
	case *kind.Minimum:
		return "must be at least " + exact(k.Want)
	case *kind.Maximum:
		return "must be at most " + exact(k.Want)
	case *kind.ExclusiveMinimum:
		return "must be greater than " + exact(k.Want)
	case *kind.ExclusiveMaximum:
		return "must be less than " + exact(k.Want)
	case *kind.MultipleOf:
		return "must be a multiple of " + exact(k.Want)
	case *kind.MinLength:
		return fmt.Sprintf("must be at least %d characters long", k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("must be at most %d characters long", k.Want)
	case *kind.Pattern:
		return fmt.Sprintf("must match the regular expression %q", k.Want)
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			b, _ := json.Marshal(w)
			want[i] = string(b)
		}
		return "must be one of " + strings.Join(want, ", ")
	case *kind.MinItems:
		return fmt.Sprintf("must have at least %d items", k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("must have at most %d items", k.Want)
	case *kind.MinProperties:
		return fmt.Sprintf("must have at least %d keys", k.Want)
	case *kind.MaxProperties:
		return fmt.Sprintf("must have at most %d keys", k.Want)
	default:
		return k.LocalizedString(printer)
	}
}

func article(jsonType string) string {
	switch jsonType {
	case "integer", "object", "array":
		return "an " + jsonType
	default:
		return "a " + jsonType
	}
}

// exact writes a schema bound as a JSON number: an integer in full, else a decimal.
func exact(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	return strings.TrimRight(strings.TrimRight(r.FloatString(12), "0"), ".")
}

// valueAt returns the value at a JSON pointer's segments, for the error message; nested
// objects and arrays are shown by kind only.
func valueAt(doc any, loc []string) any {
	for _, seg := range loc {
		switch d := doc.(type) {
		case map[string]any:
			doc = d[seg]
		case []any:
			var i int
			if _, err := fmt.Sscan(seg, &i); err != nil || i < 0 || i >= len(d) {
				return nil
			}
			doc = d[i]
		default:
			return nil
		}
	}
	switch v := doc.(type) {
	case map[string]any:
		return "<object>"
	case []any:
		return "<array>"
	case json.Number:
		return v // printed bare, as JSON
	case string:
		if len(v) > 64 {
			return strings.ToValidUTF8(v[:64], "") + "…"
		}
		return v
	default:
		return v
	}
}
