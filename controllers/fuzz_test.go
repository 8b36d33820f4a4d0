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

package controllers

import (
	"bytes"
	"cmp"
	"encoding/json"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// Bits of the fuzz input's flags: which optional Plugin fields are set.
const (
	fzEnabledSet = 1 << iota
	fzEnabled
	fzAuthSet
	fzConnectionSet
	fzMaxConnSet
	fzMaxIdleSet
	fzKeepAliveSet
	fzKeepAlive
	fzOptionsSet
	fzIncrementSet
	fzSecretRefSet
	fzExtraSet
)

// fuzzSpec is one fuzz input: the fields of a Plugin spec that the conversion reads.
type fuzzSpec struct {
	name, typ, transport, endpoint string
	flags                          uint16
	method, header                 string
	maxConn, maxIdle               int32
	idle, connect, request         string
	increment                      int32
	extraKey, extraValue           string
}

func (s fuzzSpec) has(bit uint16) bool { return s.flags&bit != 0 }

// plugin builds the Plugin. Its name is always a valid object name (the API server refuses
// the others before the operator sees them).
func (s fuzzSpec) plugin() *v1alpha1.Plugin {
	name := s.name
	if len(validation.IsDNS1123Subdomain(name)) > 0 {
		name = "p"
	}
	p := &v1alpha1.Plugin{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Generation: 1},
		Spec:       v1alpha1.PluginSpec{Type: v1alpha1.PluginType(s.typ), Transport: v1alpha1.Transport(s.transport), Endpoint: s.endpoint},
	}
	if s.has(fzEnabledSet) {
		p.Spec.Enabled = ptr.To(s.has(fzEnabled))
	}
	if s.has(fzAuthSet) {
		p.Spec.Auth = &v1alpha1.PluginAuth{Method: v1alpha1.AuthMethod(s.method), Header: s.header}
		if s.has(fzSecretRefSet) {
			p.Spec.Auth.SecretRef = &v1alpha1.SecretReference{Name: "creds"}
		}
	}
	if s.has(fzConnectionSet) {
		c := &v1alpha1.ConnectionSpec{IdleTimeout: s.idle, ConnectionTimeout: s.connect, RequestTimeout: s.request}
		if s.has(fzMaxConnSet) {
			c.MaxConnections = ptr.To(s.maxConn)
		}
		if s.has(fzMaxIdleSet) {
			c.MaxIdleConnections = ptr.To(s.maxIdle)
		}
		if s.has(fzKeepAliveSet) {
			c.KeepAlive = ptr.To(s.has(fzKeepAlive))
		}
		p.Spec.Connection = c
	}
	if s.has(fzOptionsSet) {
		o := &v1alpha1.PluginOptions{}
		if s.has(fzIncrementSet) {
			o.Increment = ptr.To(s.increment)
		}
		if s.has(fzExtraSet) && s.extraKey != "increment" {
			o.Extra = map[string]json.RawMessage{s.extraKey: json.RawMessage(s.extraValue)}
		}
		p.Spec.Options = o
	}
	return p
}

// pluginSpecFields are the fields a rejection may name, as spec.<field>[.<sub>].
var pluginSpecFields = map[string][]string{
	"type": nil, "transport": nil, "endpoint": nil, "enabled": nil,
	"auth":       {"method", "header", "secretRef"},
	"connection": {"maxConnections", "maxIdleConnections", "idleTimeout", "connectionTimeout", "requestTimeout", "keepAlive"},
	"options":    nil, // any key: checked against the spec's own keys
}

// checkRejection checks that every error names a field of the Plugin's spec by its API name.
func checkRejection(t *testing.T, s fuzzSpec, field, msg string) {
	t.Helper()
	rest, ok := strings.CutPrefix(field, "spec.")
	if !ok {
		t.Fatalf("rejection %q names %q, not a spec field", msg, field)
	}
	top, sub, _ := strings.Cut(rest, ".")
	subs, known := pluginSpecFields[top]
	switch {
	case !known:
		t.Fatalf("rejection %q names %q: spec has no field %q", msg, field, top)
	case top == "options":
		if sub != "" && sub != "increment" && sub != s.extraKey {
			t.Fatalf("rejection %q names %q: the spec has no option %q (options: increment, %q)", msg, field, sub, s.extraKey)
		}
	case sub != "" && !slices.Contains(subs, sub):
		t.Fatalf("rejection %q names %q: spec.%s has no field %q", msg, field, top, sub)
	}
	if !strings.Contains(msg, field) {
		t.Fatalf("rejection message %q does not name %q", msg, field)
	}
}

// FuzzPluginRender builds a Plugin spec from the input and runs the operator's path:
// convert and validate it, and when it is accepted, render config.json. The runtime's own
// parser must accept the rendered bytes and re-encode them to the same bytes (config.json is
// a canonical fixed point, so its revision is stable), and the parsed entry must carry the
// spec's values; a rejection must name a field of the spec by its API name.
//
//	go test ./controllers/ -run '^$' -fuzz FuzzPluginRender -fuzztime 30s
func FuzzPluginRender(f *testing.F) {
	const all = fzEnabledSet | fzEnabled | fzAuthSet | fzConnectionSet | fzMaxConnSet | fzMaxIdleSet |
		fzKeepAliveSet | fzKeepAlive | fzOptionsSet | fzIncrementSet
	seeds := []fuzzSpec{
		// Accepted.
		{name: "counter-1", typ: "counter"},
		{name: "counter-1", typ: "counter", transport: "http", endpoint: "http://localhost:9001", flags: all,
			method: "none", maxConn: 10, maxIdle: 5, idle: "30s", connect: "10s", request: "30s", increment: 7},
		{name: "k", typ: "counter", transport: "https", endpoint: "https://svc.ns:8443/x", flags: fzAuthSet | fzSecretRefSet,
			method: "api-key", header: "X-Token"},
		{name: "b", typ: "counter", flags: fzAuthSet | fzSecretRefSet, method: "bearer"},
		{name: "u", typ: "counter", flags: fzAuthSet | fzSecretRefSet | fzEnabledSet, method: "basic"},
		{name: "big", typ: "counter", flags: fzOptionsSet | fzIncrementSet, increment: math.MinInt32},
		{name: "idle0", typ: "counter", flags: fzConnectionSet | fzMaxConnSet | fzMaxIdleSet, maxConn: 3, maxIdle: 0},
		{name: "t", typ: "counter", flags: fzConnectionSet, idle: "1h30m", connect: "1.5s", request: "24h"},
		// Rejected.
		{name: "g", typ: "gauge"},
		{name: "e", typ: "counter", transport: "ftp"},
		{name: "e", typ: "counter", transport: "http", endpoint: "https://x"},
		{name: "e", typ: "counter", endpoint: "not a url"},
		{name: "m", typ: "counter", flags: fzAuthSet, method: "oauth"},
		{name: "h", typ: "counter", flags: fzAuthSet | fzSecretRefSet, method: "api-key", header: "bad header"},
		{name: "h", typ: "counter", flags: fzAuthSet, method: "none", header: "X-A"},
		{name: "c", typ: "counter", flags: fzConnectionSet | fzMaxConnSet, maxConn: 0},
		{name: "c", typ: "counter", flags: fzConnectionSet | fzMaxConnSet | fzMaxIdleSet, maxConn: 2, maxIdle: 3},
		{name: "c", typ: "counter", flags: fzConnectionSet | fzMaxIdleSet, maxIdle: -1},
		{name: "d", typ: "counter", flags: fzConnectionSet, idle: "0s", connect: "soon", request: "25h"},
		{name: "o", typ: "counter", flags: fzOptionsSet | fzExtraSet, extraKey: "step", extraValue: "2"},
		{name: "o", typ: "counter", flags: fzOptionsSet | fzExtraSet, extraKey: "max_connections", extraValue: "2"},
		{name: "o", typ: "counter", flags: fzOptionsSet | fzExtraSet, extraKey: "x", extraValue: "{"},
	}
	for _, s := range seeds {
		f.Add(s.name, s.typ, s.transport, s.endpoint, s.flags, s.method, s.header, s.maxConn, s.maxIdle,
			s.idle, s.connect, s.request, s.increment, s.extraKey, s.extraValue)
	}
	types := builtinTypes()
	const secretsDir = "/var/run/plugins/secrets"
	f.Fuzz(func(t *testing.T, name, typ, transport, endpoint string, flags uint16, method, header string,
		maxConn, maxIdle int32, idle, connect, request string, increment int32, extraKey, extraValue string) {
		// A Plugin reaches the operator through JSON, where invalid UTF-8 is U+FFFD.
		u := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
		s := fuzzSpec{u(name), u(typ), u(transport), u(endpoint), flags, u(method), u(header), maxConn, maxIdle,
			u(idle), u(connect), u(request), increment, u(extraKey), extraValue}
		p := s.plugin()
		converted, errs := convertPlugin(p, secretsDir)
		if len(errs) == 0 {
			errs = validatePlugin(&converted, types)
		}
		if len(errs) > 0 {
			msg := errs.ToAggregate().Error()
			if why := admissible(p); why == "" {
				t.Fatalf("a Plugin the API server admits and the runtime can run is refused: %s", msg)
			}
			for _, e := range errs {
				checkRejection(t, s, e.Field, msg)
			}
			return
		}

		data, err := renderConfig(nil, []pluginconfig.Plugin{converted}, types)
		if err != nil {
			if len(endpoint)+len(extraValue) > pluginconfig.MaxConfigBytes/2 {
				return // over a ConfigMap's size: refused, as it should be
			}
			t.Fatalf("accepted Plugin does not render: %v", err)
		}
		again, err := renderConfig(nil, []pluginconfig.Plugin{converted}, types)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("rendering is not deterministic: %v\n%s\n---\n%s", err, data, again)
		}
		cfg, err := pluginconfig.Parse(data, types)
		if err != nil {
			t.Fatalf("the runtime refuses the rendered config: %v\n%s", err, data)
		}
		back, err := pluginconfig.Encode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, data) {
			t.Fatalf("rendered config.json is not a fixed point of parse and encode:\n%s\n---\n%s", data, back)
		}
		if len(cfg.Plugins) != 1 {
			t.Fatalf("%d plugins rendered, want 1:\n%s", len(cfg.Plugins), data)
		}
		checkCarried(t, p, &cfg.Plugins[0], secretsDir, data)
	})
}

var (
	// simpleURL is a subset of the endpoints admission accepts, simple enough to recognise
	// here without modelling CEL's isURL.
	simpleURL = regexp.MustCompile(`^https?://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9/]*)?$`)
	// Admission's patterns (api/v1alpha1).
	durationRE = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$`)
	headerRE   = regexp.MustCompile(`^[-!#$%&'*+.^_|~0-9A-Za-z]+$`)
)

// admissible returns "" when the API server admits p (the CRD's schema and rules, after its
// defaults) and the runtime can run it (timeouts up to 24h, the counter's only option):
// the operator must accept such a Plugin. Otherwise it says why not, or that it cannot tell.
func admissible(p *v1alpha1.Plugin) string {
	s := p.Spec
	if s.Type != v1alpha1.PluginTypeCounter {
		return "type"
	}
	transport := cmp.Or(s.Transport, v1alpha1.TransportHTTP)
	if transport != v1alpha1.TransportHTTP && transport != v1alpha1.TransportHTTPS {
		return "transport"
	}
	if s.Endpoint != "" && (!simpleURL.MatchString(s.Endpoint) || !strings.HasPrefix(s.Endpoint, string(transport)+"://")) {
		return "endpoint (or cannot tell)"
	}
	if a := s.Auth; a != nil {
		method := cmp.Or(a.Method, v1alpha1.AuthMethodNone)
		switch {
		case !slices.Contains([]v1alpha1.AuthMethod{"none", "api-key", "bearer", "basic"}, method):
			return "auth.method"
		case (method == v1alpha1.AuthMethodNone) != (a.SecretRef == nil):
			return "auth.secretRef"
		case a.Header != "" && (method != v1alpha1.AuthMethodAPIKey || len(a.Header) > 256 || !headerRE.MatchString(a.Header)):
			return "auth.header"
		}
	}
	if c := s.Connection; c != nil {
		maxConn, maxIdle := ptr.Deref(c.MaxConnections, 10), ptr.Deref(c.MaxIdleConnections, 5)
		if maxConn < 1 || maxConn > 100000 || maxIdle < 0 || maxIdle > 100000 || maxIdle > maxConn {
			return "connection numbers"
		}
		for _, d := range []string{c.IdleTimeout, c.ConnectionTimeout, c.RequestTimeout} {
			if d == "" {
				continue
			}
			v, err := time.ParseDuration(d)
			if len(d) > 32 || !durationRE.MatchString(d) || err != nil || v <= 0 || v > 24*time.Hour {
				return "connection durations"
			}
		}
	}
	if s.Options != nil && len(s.Options.Extra) > 0 {
		return "options the counter does not know"
	}
	return ""
}

// checkCarried checks that the runtime's view of the rendered entry has the spec's values,
// and the documented defaults where the spec has none.
func checkCarried(t *testing.T, p *v1alpha1.Plugin, got *pluginconfig.Plugin, secretsDir string, data []byte) {
	t.Helper()
	fail := func(what string, got, want any) {
		t.Helper()
		t.Fatalf("%s: config.json has %v, spec says %v\n%s", what, got, want, data)
	}
	spec := p.Spec
	if got.Name != p.Name || got.Type != string(spec.Type) || got.Endpoint != spec.Endpoint {
		fail("name/type/endpoint", []string{got.Name, got.Type, got.Endpoint}, []string{p.Name, string(spec.Type), spec.Endpoint})
	}
	if want := cmp.Or(string(spec.Transport), "http"); got.Transport != want {
		fail("transport", got.Transport, want)
	}
	if want := spec.Enabled == nil || *spec.Enabled; got.IsEnabled() != want {
		fail("enabled", got.IsEnabled(), want)
	}
	method := authMethod(p)
	if got.Auth.Method != string(method) {
		fail("auth.method", got.Auth.Method, method)
	}
	if method == v1alpha1.AuthMethodAPIKey {
		if want := cmp.Or(spec.Auth.Header, v1alpha1.DefaultAPIKeyHeader); got.Auth.Header != want {
			fail("auth.header", got.Auth.Header, want)
		}
	}
	for _, key := range secretKeys(method) {
		file := path.Join(secretsDir, credentialKey(p.Name, key))
		if !strings.Contains(string(data), `"`+file+`"`) {
			fail("credential file of "+key, "no "+file, file)
		}
	}
	c, gc := spec.Connection, got.Connection
	if c == nil {
		c = &v1alpha1.ConnectionSpec{}
	}
	num := func(what string, got int, set *int32, def int) {
		if set != nil {
			if want := int(*set); got != want {
				fail(what, got, want)
			}
		} else if got != def {
			fail(what+" (default)", got, def)
		}
	}
	num("connection.maxConnections", gc.MaxConnections, c.MaxConnections, pluginconfig.DefaultMaxConnections)
	num("connection.maxIdleConnections", gc.MaxIdleConnections, c.MaxIdleConnections, pluginconfig.DefaultMaxIdleConnections)
	dur := func(what string, got pluginconfig.Duration, set string, def time.Duration) {
		want := def
		if set != "" {
			want, _ = time.ParseDuration(set)
		}
		if got.D() != want {
			fail(what, got.D(), want)
		}
	}
	dur("connection.idleTimeout", gc.IdleTimeout, c.IdleTimeout, pluginconfig.DefaultIdleTimeout)
	dur("connection.connectionTimeout", gc.ConnectionTimeout, c.ConnectionTimeout, pluginconfig.DefaultConnectionTimeout)
	dur("connection.requestTimeout", gc.RequestTimeout, c.RequestTimeout, pluginconfig.DefaultRequestTimeout)
	if want := c.KeepAlive == nil || *c.KeepAlive; gc.KeepAliveEnabled() != want {
		fail("connection.keepAlive", gc.KeepAliveEnabled(), want)
	}
	var inc any
	if spec.Options != nil && spec.Options.Increment != nil {
		inc = json.Number(strconv.Itoa(int(*spec.Options.Increment)))
	}
	if gotInc := got.Options["increment"]; gotInc != inc {
		fail("options.increment", gotInc, inc)
	}
}

// TestConvertKeepsExplicitZeros is the regression test of what FuzzPluginRender found: an
// explicit maxIdleConnections: 0 (valid: 0 to maxConnections) was replaced by the default 5,
// so that with maxConnections under 5 an admitted Plugin was refused; a user ConfigMap's
// max_idle_connections: 0 was rendered as 5 too; and an unknown option named like a config
// field (max_connections) was reported under another name (spec.options.maxConnections).
func TestConvertKeepsExplicitZeros(t *testing.T) {
	types := builtinTypes()
	p := &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "idle0"}, Spec: v1alpha1.PluginSpec{
		Type:       v1alpha1.PluginTypeCounter,
		Connection: &v1alpha1.ConnectionSpec{MaxConnections: ptr.To[int32](3), MaxIdleConnections: ptr.To[int32](0)},
	}}
	pl, errs := convertPlugin(p, DefaultSecretsMountPath)
	if len(errs) == 0 {
		errs = validatePlugin(&pl, types)
	}
	if len(errs) > 0 {
		t.Fatalf("maxConnections 3, maxIdleConnections 0 refused: %v", errs)
	}
	user, err := parseUserConfig([]byte(`{"plugins":[{"name":"user","type":"counter","connection":{"max_idle_connections":0}}]}`), types)
	if err != nil {
		t.Fatal(err)
	}
	data, err := renderConfig(user, []pluginconfig.Plugin{pl}, types)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pluginconfig.Parse(data, types)
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range cfg.Plugins {
		if got.Connection.MaxIdleConnections != 0 {
			t.Errorf("%s: max_idle_connections %d, want the explicit 0\n%s", got.Name, got.Connection.MaxIdleConnections, data)
		}
	}

	p.Spec.Connection = nil
	p.Spec.Options = &v1alpha1.PluginOptions{Extra: map[string]json.RawMessage{"max_connections": json.RawMessage(`2`)}}
	pl, errs = convertPlugin(p, DefaultSecretsMountPath)
	if len(errs) == 0 {
		errs = validatePlugin(&pl, types)
	}
	if msg := errs.ToAggregate(); msg == nil || !strings.Contains(msg.Error(), "spec.options.max_connections") {
		t.Errorf("unknown option max_connections: got %v, want an error on spec.options.max_connections", msg)
	}
}
