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

// Package plugin defines what a plugin type provides to the host — a small interface and an
// explicit registry of factories — so that adding a type touches no other plugin.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// Request is one operation on an instance, decoded from HTTP by the host.
type Request struct {
	// Operation is the last path segment: /plugins/{name}/{operation}.
	Operation string
	// Value is the request body's "value" (1 when omitted) for operations that take one.
	Value int64
}

// Response is an operation's result.
type Response struct {
	Value int64
}

// Operation describes one operation of a plugin type for routing and documentation.
type Operation struct {
	Name string
	// Method is the only HTTP method the operation accepts.
	Method string
	// TakesValue says the operation reads {"value": N} from the body.
	TakesValue bool
}

// Instance is a running plugin: its state and the spec it was configured with. The host calls
// Execute concurrently; Snapshot and Restore may run concurrently with Execute.
type Instance interface {
	// Execute runs one operation. Errors wrapping ErrInvalidRequest or ErrConflict map to
	// HTTP 400 and 409 in the host; any other error is a 500.
	Execute(ctx context.Context, req Request) (Response, error)
	// Reconfigure returns an instance configured with spec (same type, validated by the
	// type's ValidateOptions) that shares this instance's state, and leaves this instance
	// as it is. The host builds every instance of a new config this way and publishes them
	// all at once, so requests in flight finish with the configuration they started with
	// and a config refused for any reason changes no instance. It may refuse a change it
	// cannot make in place; the host then refuses the whole config.
	Reconfigure(spec pluginconfig.Plugin) (Instance, error)
	// Snapshot returns the state to persist; Restore loads it at start. The host takes a
	// snapshot after operations and config changes only: state must change through Execute.
	Snapshot() ([]byte, error)
	Restore(state []byte) error
}

// Factory builds instances of one type.
type Factory interface {
	Type() string
	Operations() []Operation
	ValidateOptions(options map[string]any, path *field.Path) field.ErrorList
	New(spec pluginconfig.Plugin, logger *slog.Logger) (Instance, error)
}

// Errors an instance returns; the host maps them to HTTP statuses.
var (
	// ErrInvalidRequest: the request cannot be served as given (400).
	ErrInvalidRequest = errors.New("invalid request")
	// ErrConflict: the request conflicts with the instance's state, e.g. overflow (409).
	ErrConflict = errors.New("conflict with current state")
)

// Registry maps type names to factories. It implements pluginconfig.Types.
type Registry struct {
	mu        sync.RWMutex
	factories map[string]Factory
}

// NewRegistry returns a registry holding the given factories.
func NewRegistry(factories ...Factory) *Registry {
	r := &Registry{factories: map[string]Factory{}}
	for _, f := range factories {
		r.MustRegister(f)
	}
	return r
}

// MustRegister adds a factory; registering a type twice is a programming error.
func (r *Registry) MustRegister(f Factory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.factories[f.Type()]; dup {
		panic(fmt.Sprintf("plugin type %q registered twice", f.Type()))
	}
	r.factories[f.Type()] = f
}

// Factory returns the factory of a type.
func (r *Registry) Factory(typ string) (Factory, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.factories[typ]
	return f, ok
}

// TypeNames implements pluginconfig.Types.
func (r *Registry) TypeNames() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.factories))
	for n := range r.factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ValidateOptions implements pluginconfig.Types.
func (r *Registry) ValidateOptions(typ string, options map[string]any, path *field.Path) (bool, field.ErrorList) {
	f, ok := r.Factory(typ)
	if !ok {
		return false, nil
	}
	return true, f.ValidateOptions(options, path)
}

// FindOperation returns the operation named op of a factory.
func FindOperation(f Factory, op string) (Operation, bool) {
	for _, o := range f.Operations() {
		if o.Name == op {
			return o, true
		}
	}
	return Operation{}, false
}

// MethodPOST and MethodGET are re-exported for factories' Operations tables.
const (
	MethodPOST = http.MethodPost
	MethodGET  = http.MethodGet
)
