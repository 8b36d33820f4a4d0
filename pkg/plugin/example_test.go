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

package plugin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/hotreload/plugin-operator/pkg/plugin"
)

// Greeter is a whole plugin type: a factory, options with a schema, and an instance written
// on Go types with Typed and Adapt. A changed greeting applies in place (Reconfigure) and
// the number of greetings survives it and restarts (Snapshot, Restore).
type Greeter struct{}

func (Greeter) Type() string { return "greeter" }

func (Greeter) Operations() []plugin.Operation {
	return []plugin.Operation{{Name: "greet", Method: http.MethodPost, Mutating: true, Description: `greets {"name": "…"}`}}
}

func (Greeter) OptionsSchema() json.RawMessage {
	return json.RawMessage(`{"type": "object", "properties": {"greeting": {"type": "string", "minLength": 1}}, "additionalProperties": false}`)
}

type greeterOptions struct {
	Greeting string `json:"greeting"`
}

func (Greeter) New(spec plugin.Spec, _ *slog.Logger) (plugin.Instance, error) {
	return newGreeting(spec, &greetCount{})
}

func newGreeting(spec plugin.Spec, count *greetCount) (plugin.Instance, error) {
	o := greeterOptions{Greeting: "Hello"}
	if err := plugin.DecodeOptions(spec, &o); err != nil {
		return nil, err
	}
	return plugin.Adapt[greetRequest, greetResponse](&greeting{greeting: o.Greeting, count: count}), nil
}

type greetRequest struct {
	Name string `json:"name"`
}

type greetResponse struct {
	Message string `json:"message"`
	Count   int64  `json:"count"`
}

type greetCount struct {
	mu sync.Mutex
	n  int64
}

// greeting is one configuration of a greeter; its count is shared across reloads.
type greeting struct {
	greeting string
	count    *greetCount
}

func (g *greeting) Execute(_ context.Context, _ string, req greetRequest) (greetResponse, error) {
	if strings.TrimSpace(req.Name) == "" {
		return greetResponse{}, fmt.Errorf("%w: name: required", plugin.ErrInvalidRequest)
	}
	g.count.mu.Lock()
	defer g.count.mu.Unlock()
	g.count.n++
	return greetResponse{Message: g.greeting + ", " + req.Name + "!", Count: g.count.n}, nil
}

func (g *greeting) Reconfigure(spec plugin.Spec) (plugin.Instance, error) {
	return newGreeting(spec, g.count)
}

func (g *greeting) Snapshot() (json.RawMessage, error) {
	g.count.mu.Lock()
	defer g.count.mu.Unlock()
	return json.Marshal(g.count.n)
}

func (g *greeting) Restore(state json.RawMessage) error {
	g.count.mu.Lock()
	defer g.count.mu.Unlock()
	return json.Unmarshal(state, &g.count.n)
}

// A plugin type's life in a host, step by step: New, requests, a reload that keeps state, a
// refused request.
func Example() {
	ctx := context.Background()
	spec := plugin.Spec{Name: "hello", Type: "greeter", Options: json.RawMessage(`{}`)}
	inst, _ := Greeter{}.New(spec, slog.Default())

	resp, _ := inst.Execute(ctx, plugin.Request{Operation: "greet", Body: []byte(`{"name": "Ada"}`)})
	fmt.Println(string(resp.Body))

	// A reload: the host finds Reconfigure through the adapter with plugin.As.
	r, _ := plugin.As[plugin.Reconfigurer](inst)
	spec.Options = json.RawMessage(`{"greeting": "Bonjour"}`)
	inst, _ = r.Reconfigure(spec)
	resp, _ = inst.Execute(ctx, plugin.Request{Operation: "greet", Body: []byte(`{"name": "Grace"}`)})
	fmt.Println(string(resp.Body))

	// Bad input: an error the host answers with 400.
	_, err := inst.Execute(ctx, plugin.Request{Operation: "greet", Body: []byte(`{"nom": "x"}`)})
	fmt.Println(plugin.StatusOf(err), err)
	// Output:
	// {"message":"Hello, Ada!","count":1}
	// {"message":"Bonjour, Grace!","count":2}
	// 400 invalid request: request body: unknown field "nom"
}

// The errors a type returns decide the status the host answers with.
func ExampleStatusOf() {
	for _, err := range []error{
		nil,
		fmt.Errorf("%w: no flag %q", plugin.ErrNotFound, "beta"),
		fmt.Errorf("%w: counter would overflow", plugin.ErrConflict),
		fmt.Errorf("%w: limit reached", plugin.ErrTooManyRequests),
		fmt.Errorf("disk on fire"),
	} {
		fmt.Println(plugin.StatusOf(err))
	}
	// Output:
	// 200
	// 404
	// 409
	// 429
	// 500
}

// DecodeJSON decodes request bodies strictly, with messages a client can act on.
func ExampleDecodeJSON() {
	var req struct {
		Key    string `json:"key"`
		Tokens int    `json:"tokens"`
	}
	for _, body := range []string{`{"key": "a", "tokens": 2}`, `{"key": "a", "tokens": "2"}`, `{"key": "a"} trailing`, ``} {
		err := plugin.DecodeJSON([]byte(body), &req)
		fmt.Printf("%+v %v\n", req, err)
	}
	// Output:
	// {Key:a Tokens:2} <nil>
	// {Key:a Tokens:2} invalid request: request body: tokens: must be an integer, got JSON string
	// {Key:a Tokens:2} invalid request: request body: unexpected data after the JSON value
	// {Key:a Tokens:2} <nil>
}

// DecodeOptions names the option at fault, as config validation does.
func ExampleDecodeOptions() {
	var o struct {
		Rate  float64 `json:"rate"`
		Burst int     `json:"burst"`
	}
	for _, opts := range []string{`{"rate": 2.5}`, `{"rate": "fast"}`, `{"rate": 1, "brust": 2}`} {
		err := plugin.DecodeOptions(plugin.Spec{Options: json.RawMessage(opts)}, &o)
		fmt.Println(err)
	}
	// Output:
	// <nil>
	// options.rate: must be a number, got JSON string
	// options: unknown field "brust"
}
