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
	"net/http"

	"github.com/hotreload/plugin-operator/internal/pluginconfig"
	"github.com/hotreload/plugin-operator/pkg/plugin"
)

// entry is one plugin of an applied config: its spec and everything a request needs,
// computed once at apply time so that the request path only reads.
type entry struct {
	name    string
	spec    pluginconfig.Plugin
	factory plugin.Factory
	inst    plugin.Instance
	// fresh marks an instance created for this config (new plugin, new type, or a type that
	// cannot reconfigure in place) rather than carried over from the previous one.
	fresh bool

	enabled bool
	auth    *authenticator
	routes  []route
	allowed string // "increment (POST), get (GET), reset (POST)" for 404 messages

	// slots bounds in-flight requests to connection.max_connections. commit hands the
	// previous config's channel on while the bound is unchanged, so requests in flight
	// across a reload keep counting; a reload that changes the bound makes a new channel, and
	// requests release to the one they took a slot from.
	slots chan struct{}
}

type route struct {
	op      plugin.Operation
	allow   []string // Allow header value for 405
	metrics *routeMetrics
}

// newEntry computes what the request path needs from a spec; commit adds the slots and the
// metric series.
func newEntry(spec pluginconfig.Plugin, f plugin.Factory, auth *authenticator) *entry {
	e := &entry{
		name:    spec.Name,
		spec:    spec,
		factory: f,
		enabled: spec.IsEnabled(),
		auth:    auth,
	}
	for i, op := range f.Operations() {
		if i > 0 {
			e.allowed += ", "
		}
		e.allowed += op.Name + " (" + op.Method + ")"
		e.routes = append(e.routes, route{op: op, allow: []string{op.Method}})
	}
	return e
}

func (e *entry) route(op string) *route {
	for i := range e.routes {
		if e.routes[i].op.Name == op {
			return &e.routes[i]
		}
	}
	return nil
}

// Header values shared by every response; net/http never mutates them.
var (
	hdrJSON  = []string{"application/json"}
	hdrClose = []string{"close"}
	hdrRetry = []string{"1"}
)

func setJSON(w http.ResponseWriter) { w.Header()["Content-Type"] = hdrJSON }
