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

package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Typed is an instance written on Go types, the seed's Plugin[Req, Resp]: Adapt decodes
// each request body into a Req and encodes the Resp.
type Typed[Req, Resp any] interface {
	Execute(ctx context.Context, operation string, req Req) (Resp, error)
}

// Adapt returns the Instance that serves t: it decodes the body with DecodeJSON into a new
// Req (an empty body leaves Req's zero value), calls t.Execute and encodes its Resp with
// encoding/json. The optional interfaces t implements (Reconfigurer, Stateful) stay visible
// to the host through As; a Reconfigure of t returns Adapt of the new typed instance.
func Adapt[Req, Resp any](t Typed[Req, Resp]) Instance {
	return adapted[Req, Resp]{t: t}
}

type adapted[Req, Resp any] struct {
	t Typed[Req, Resp]
}

func (a adapted[Req, Resp]) Execute(ctx context.Context, req Request) (Response, error) {
	var in Req
	if err := DecodeJSON(req.Body, &in); err != nil {
		return Response{}, err
	}
	out, err := a.t.Execute(ctx, req.Operation, in)
	if err != nil {
		return Response{}, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		return Response{}, fmt.Errorf("encoding the response of %s: %w", req.Operation, err)
	}
	return Response{Body: b}, nil
}

// Unwrap implements Wrapper.
func (a adapted[Req, Resp]) Unwrap() any { return a.t }

// DecodeJSON decodes a request body into v strictly: one JSON value, no unknown fields, no
// trailing data. An empty (or all white space) body leaves v as it is. Errors wrap
// ErrInvalidRequest and say what is wrong and where, in terms a client can act on.
func DecodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := decodeStrict(body, v, ""); err != nil {
		return fmt.Errorf("%w: request body: %v", ErrInvalidRequest, err)
	}
	return nil
}

// DecodeOptions decodes a spec's options into v strictly, as DecodeJSON does. The host has
// validated the options against the type's OptionsSchema already; this is for the Go side.
// Errors name the option: "options.rate: …".
func DecodeOptions(spec Spec, v any) error {
	if len(bytes.TrimSpace(spec.Options)) == 0 {
		return nil
	}
	return decodeStrict(spec.Options, v, "options")
}

// decodeStrict decodes data into v; errors name the field at fault under prefix.
func decodeStrict(data []byte, v any, prefix string) error {
	at := func(field string) string {
		switch {
		case prefix == "" && field == "":
			return ""
		case prefix == "":
			return field + ": "
		case field == "":
			return prefix + ": "
		default:
			return prefix + "." + field + ": "
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return fmt.Errorf("%smust be %s, got JSON %s", at(te.Field), jsonKind(te.Type.Kind().String()), te.Value)
		case errors.As(err, &se):
			return fmt.Errorf("%smalformed JSON at byte %d: %v", at(""), se.Offset, se)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("%smalformed JSON: unexpected end of input", at(""))
		default:
			return fmt.Errorf("%s%s", at(""), trimJSONPrefix(err.Error()))
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%sunexpected data after the JSON value", at(""))
	}
	return nil
}

// jsonKind names a Go kind as the JSON value it is decoded from.
func jsonKind(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	default:
		return "a " + kind
	}
}

func trimJSONPrefix(s string) string {
	const p = "json: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
