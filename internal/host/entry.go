package host

import (
	"net/http"

	"github.com/hotreload/plugin-operator/internal/plugin"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// entry is one plugin of a generation: its spec and everything a request needs, computed
// once at apply time so that the request path only reads.
type entry struct {
	name    string
	spec    pluginconfig.Plugin
	factory plugin.Factory
	inst    plugin.Instance
	// fresh is an instance built for this generation (new plugin or new type).
	fresh plugin.Instance

	enabled bool
	auth    *authenticator
	routes  []route
	allowed string // "increment (POST), get (GET), reset (POST)" for 404 messages

	// slots bounds in-flight requests to connection.max_connections. A reload that changes
	// the bound makes a new channel; requests release to the one they took a slot from.
	slots chan struct{}
}

type route struct {
	op      plugin.Operation
	allow   []string // Allow header value for 405
	metrics *routeMetrics
}

func newEntry(spec pluginconfig.Plugin, f plugin.Factory, auth *authenticator, m *Metrics) *entry {
	e := &entry{
		name:    spec.Name,
		spec:    spec,
		factory: f,
		enabled: spec.IsEnabled(),
		auth:    auth,
		slots:   make(chan struct{}, spec.Connection.MaxConnections),
	}
	for i, op := range f.Operations() {
		if i > 0 {
			e.allowed += ", "
		}
		e.allowed += op.Name + " (" + op.Method + ")"
		e.routes = append(e.routes, route{op: op, allow: []string{op.Method}, metrics: m.forRoute(spec.Name, op.Name)})
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
