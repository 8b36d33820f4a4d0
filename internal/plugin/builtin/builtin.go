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

// Package builtin assembles the registry of plugin types this build ships. The operator
// validates Plugins and the host runs them against the same registry.
package builtin

import (
	"github.com/hotreload/plugin-operator/internal/plugin"
	"github.com/hotreload/plugin-operator/internal/plugin/counter"
)

// Registry returns a new registry with every built-in plugin type.
func Registry() *plugin.Registry {
	return plugin.NewRegistry(
		counter.Factory{},
	)
}
