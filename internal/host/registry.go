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

package host

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/hotreload/plugin-operator/internal/hostapi"
	"github.com/hotreload/plugin-operator/internal/typeschema"
	"github.com/hotreload/plugin-operator/pkg/plugin"
)

// Registry holds the plugin types a host carries: their factories, and their declarations
// compiled for option validation. It implements pluginconfig.Types with the same code the
// manager uses on what a host advertises (internal/typeschema), so that both accept the
// same configs.
type Registry struct {
	factories map[string]plugin.Factory
	types     *typeschema.Set
}

// NewRegistry checks each factory's declaration (name, operations, options schema) and
// returns a registry of them; a bad declaration or a type registered twice is an error that
// names the type.
func NewRegistry(factories ...plugin.Factory) (*Registry, error) {
	types, err := typeschema.Compile(typeschema.Declarations(factories...))
	if err != nil {
		return nil, err
	}
	r := &Registry{factories: make(map[string]plugin.Factory, len(factories)), types: types}
	for _, f := range factories {
		r.factories[f.Type()] = f
	}
	return r, nil
}

// MustRegistry is NewRegistry for a fixed list of types known to be valid: it panics on an
// error.
func MustRegistry(factories ...plugin.Factory) *Registry {
	r, err := NewRegistry(factories...)
	if err != nil {
		panic(fmt.Sprintf("plugin types: %v", err))
	}
	return r
}

// Factory returns the factory of a type.
func (r *Registry) Factory(typ string) (plugin.Factory, bool) {
	f, ok := r.factories[typ]
	return f, ok
}

// Types returns the declarations, sorted by name.
func (r *Registry) Types() []hostapi.TypeInfo { return r.types.Types() }

// TypeNames implements pluginconfig.Types.
func (r *Registry) TypeNames() []string { return r.types.TypeNames() }

// ValidateOptions implements pluginconfig.Types.
func (r *Registry) ValidateOptions(typ string, options map[string]any, path *field.Path) (bool, field.ErrorList) {
	return r.types.ValidateOptions(typ, options, path)
}
