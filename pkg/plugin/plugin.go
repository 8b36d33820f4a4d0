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

// Package plugin is the contract between a plugin type and the plugin host: what a type
// declares (its name, its operations, a JSON Schema of its options), how the host builds,
// reconfigures and calls its instances, and which errors map to which HTTP statuses.
//
// A type is a Factory. The host builds one Instance per plugin entry of config.json with
// Factory.New and calls Instance.Execute for every request to /plugins/{name}/{operation}.
// Everything else is optional and discovered with a type assertion (see As):
//
//   - Reconfigurer: apply a changed entry in place, keeping the instance's state. Without it
//     a changed entry gets a new instance and its state starts over.
//   - Stateful: snapshot and restore state, so that it survives a restart when the host has
//     a state directory.
//
// Typed and Adapt spare an author the JSON plumbing: an instance with
// Execute(ctx, operation, Req) (Resp, error) on Go types, as in the seed's
// Plugin[Req, Resp].
//
// Stability: see the package pluginhost documentation and docs/plugins.md.
package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
)

// Spec is the part of one config.json plugin entry that concerns its type. The host
// handles the rest of the entry (auth, connection limits, enabled) itself.
type Spec struct {
	// Name is the instance's name, unique in the host: requests reach it at
	// /plugins/{Name}/{operation}.
	Name string
	// Type is the factory's type name.
	Type string
	// Options is the entry's options object as JSON ("{}" when the entry has none), already
	// valid against the type's OptionsSchema.
	Options json.RawMessage
}

// Operation declares one operation of a type: /plugins/{name}/{Name}.
type Operation struct {
	// Name is the last path segment: letters, digits, '-', '_' and '.'.
	Name string `json:"name"`
	// Method is the only HTTP method the operation accepts: http.MethodGet or
	// http.MethodPost.
	Method string `json:"method"`
	// Mutating says the operation may change the instance's state: the host saves a
	// snapshot after it (when it has a state directory). A GET should not mutate.
	Mutating bool `json:"mutating,omitempty"`
	// Description is one line for people, shown in the host's advertisement of its types.
	Description string `json:"description,omitempty"`
}

// Request is one call of an operation.
type Request struct {
	// Operation is the operation's name, one of the type's Operations.
	Operation string
	// Body is the request body, at most the host's --max-body-bytes; empty when the client
	// sent none. The host reuses its memory after Execute returns: copy what you keep.
	Body []byte
	// RawQuery is the URL's query string without the '?' (see net/url.ParseQuery).
	RawQuery string
	// Buf is an empty buffer with spare capacity that Execute may append its answer to and
	// return as Response.Body, sparing an allocation per request. The host reuses its
	// memory once the response is written: neither keep it nor return it from elsewhere.
	Buf []byte
}

// Response is an operation's result. The host writes Body, a JSON document, with status 200
// and Content-Type application/json.
type Response struct {
	Body []byte
}

// Instance is a running plugin. The host calls Execute concurrently from many goroutines;
// an instance guards its own state.
type Instance interface {
	// Execute runs one operation. An error that wraps one of the Err* values of this package
	// is answered with its status (see StatusOf) and the error's text; any other error is a
	// 500. A refused request must change nothing.
	Execute(ctx context.Context, req Request) (Response, error)
}

// Reconfigurer is an Instance that can take a changed spec in place.
type Reconfigurer interface {
	// Reconfigure returns an instance configured with spec that shares this instance's
	// state, and leaves this instance as it is: requests still running on it finish with
	// the configuration they started with. The host builds every instance of a new config
	// before it publishes any, so a config refused for any reason changes nothing. An error
	// refuses the whole config; the old one keeps serving.
	Reconfigure(spec Spec) (Instance, error)
}

// Stateful is an Instance whose state the host persists (with --state-dir).
type Stateful interface {
	// Snapshot returns the state to save, as JSON. It may run concurrently with Execute.
	Snapshot() (json.RawMessage, error)
	// Restore loads a snapshot into a new instance, before it serves. An error discards the
	// saved state (the host logs it) and the instance starts fresh.
	Restore(state json.RawMessage) error
}

// Factory is a plugin type.
type Factory interface {
	// Type is the name config.json uses in "type", and Plugins in spec.type: lower-case
	// letters, digits and '-', at most 63 characters.
	Type() string
	// Operations lists the type's operations; the same list for every instance.
	Operations() []Operation
	// OptionsSchema is a JSON Schema (draft 2020-12) of the type's options object. The host
	// validates every entry's options against it before New or Reconfigure, and
	// advertises it, so that the operator refuses a Plugin with invalid options before it
	// renders any config. nil means the type takes no options. At most MaxSchemaBytes.
	OptionsSchema() json.RawMessage
	// New builds an instance. Its logger carries the plugin's name. An error refuses the
	// whole config that holds the entry; the last good config keeps serving.
	New(spec Spec, logger *slog.Logger) (Instance, error)
}

// MaxSchemaBytes bounds one type's OptionsSchema, so that what a host advertises fits in
// its /status and in the PluginHost's status.
const MaxSchemaBytes = 8 << 10

// Errors an operation returns, wrapped with fmt.Errorf("%w: ...", ...): the host answers
// with the status each names and the error's text.
var (
	// ErrInvalidRequest: the request cannot be served as sent (400).
	ErrInvalidRequest = errors.New("invalid request")
	// ErrNotFound: the request names something the instance does not have (404).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request conflicts with the instance's state, e.g. an overflow (409).
	ErrConflict = errors.New("conflict with the current state")
	// ErrUnprocessable: the request is well formed but its content is refused (422).
	ErrUnprocessable = errors.New("unprocessable request")
	// ErrTooManyRequests: a limit the instance enforces was reached (429).
	ErrTooManyRequests = errors.New("too many requests")
	// ErrUnavailable: the instance cannot serve now; the client may retry (503).
	ErrUnavailable = errors.New("unavailable")
)

// StatusOf returns the HTTP status the host answers an Execute error with.
func StatusOf(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrInvalidRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrUnprocessable):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrTooManyRequests):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Wrapper is an Instance that wraps another, as Adapt's result does: As looks through it
// for the optional interfaces.
type Wrapper interface {
	Unwrap() any
}

// As reports whether inst, or what it wraps (Wrapper), implements T, and returns it: the
// host finds an instance's optional interfaces (Reconfigurer, Stateful) this way.
func As[T any](inst any) (T, bool) {
	for inst != nil {
		if t, ok := inst.(T); ok {
			return t, true
		}
		w, ok := inst.(Wrapper)
		if !ok {
			break
		}
		inst = w.Unwrap()
	}
	var zero T
	return zero, false
}
