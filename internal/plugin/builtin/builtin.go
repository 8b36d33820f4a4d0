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
