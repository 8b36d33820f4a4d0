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

// Package counter is the seed's counter plugin type, written against the public SDK
// (pkg/plugin) only: a thread-safe int64 counter with increment, get and reset, whose
// increment comes from options.increment. A reload gives the counter a new increment and
// keeps its value; its value survives restarts through snapshots.
//
//	POST /plugins/{name}/increment {"value": N}   adds N × options.increment
//	GET  /plugins/{name}/get
//	POST /plugins/{name}/reset
//
// Each answers {"plugin":"{name}","operation":"{operation}","value":V}.
package counter

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/hotreload/plugin-operator/pkg/plugin"
)

// Type is the plugin type name in config.json.
const Type = "counter"

// DefaultIncrement is used when options.increment is omitted, as in the seed.
const DefaultIncrement = 1

// Factory builds counters.
type Factory struct{}

var _ plugin.Factory = Factory{}

// Type implements plugin.Factory.
func (Factory) Type() string { return Type }

var operations = []plugin.Operation{
	{Name: "increment", Method: http.MethodPost, Mutating: true, Description: `adds N × options.increment for the body {"value": N} (1 when omitted)`},
	{Name: "get", Method: http.MethodGet, Description: "reads the value"},
	{Name: "reset", Method: http.MethodPost, Mutating: true, Description: "sets the value to zero"},
}

// Operations implements plugin.Factory.
func (Factory) Operations() []plugin.Operation { return operations }

var optionsSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "increment": {
      "description": "what one unit of {\"value\": N} adds: an increment request adds N × increment (default 1)",
      "type": "integer",
      "minimum": -9223372036854775808,
      "maximum": 9223372036854775807
    }
  },
  "additionalProperties": false
}`)

// OptionsSchema implements plugin.Factory: options.increment, an int64.
func (Factory) OptionsSchema() json.RawMessage { return optionsSchema }

// Options are a counter's options.
type Options struct {
	// Increment is what one unit of {"value": N} adds (DefaultIncrement when nil).
	Increment *int64 `json:"increment"`
}

func incrementOf(spec plugin.Spec) (int64, error) {
	var o Options
	if err := plugin.DecodeOptions(spec, &o); err != nil {
		return 0, err
	}
	if o.Increment == nil {
		return DefaultIncrement, nil
	}
	return *o.Increment, nil
}

// New implements plugin.Factory.
func (Factory) New(spec plugin.Spec, logger *slog.Logger) (plugin.Instance, error) {
	inc, err := incrementOf(spec)
	if err != nil {
		return nil, err
	}
	return newCounter(spec.Name, inc, new(atomic.Int64), logger), nil
}

// Counter is one counter configured with one increment. Its value is shared with the
// counters Reconfigure returns, so it survives reloads; the increment of a Counter never
// changes.
type Counter struct {
	value     *atomic.Int64
	increment int64
	logger    *slog.Logger
	// answers holds each operation's response up to the value:
	// {"plugin":"<name>","operation":"<op>","value":
	answers map[string][]byte
}

func newCounter(name string, increment int64, value *atomic.Int64, logger *slog.Logger) *Counter {
	c := &Counter{value: value, increment: increment, logger: logger, answers: make(map[string][]byte, len(operations))}
	for _, op := range operations {
		// Plugin and operation names need no JSON escaping (config validation).
		c.answers[op.Name] = []byte(`{"plugin":"` + name + `","operation":"` + op.Name + `","value":`)
	}
	return c
}

// Reconfigure implements plugin.Reconfigurer: a counter with the new increment and the same
// value; c keeps its increment, so requests still running on c finish with the one they
// started with.
func (c *Counter) Reconfigure(spec plugin.Spec) (plugin.Instance, error) {
	inc, err := incrementOf(spec)
	if err != nil {
		return nil, err
	}
	return newCounter(spec.Name, inc, c.value, c.logger), nil
}

// IncrementBy returns the increment this counter applies.
func (c *Counter) IncrementBy() int64 { return c.increment }

// Execute implements plugin.Instance.
func (c *Counter) Execute(_ context.Context, req plugin.Request) (plugin.Response, error) {
	var v int64
	switch req.Operation {
	case "increment":
		n, err := DecodeValue(req.Body)
		if err != nil {
			return plugin.Response{}, err
		}
		if v, err = c.Increment(n); err != nil {
			return plugin.Response{}, err
		}
	case "get":
		v = c.value.Load()
	case "reset":
		c.value.Store(0)
	default:
		return plugin.Response{}, fmt.Errorf("%w: unknown operation %q", plugin.ErrInvalidRequest, req.Operation)
	}
	b := append(req.Buf, c.answers[req.Operation]...)
	b = strconv.AppendInt(b, v, 10)
	return plugin.Response{Body: append(b, "}\n"...)}, nil
}

// Increment adds value × increment and returns the new value. It refuses, and changes
// nothing, when the product or the sum would overflow int64: a counter never wraps.
func (c *Counter) Increment(value int64) (int64, error) {
	inc := c.increment
	delta, ok := mul64(value, inc)
	if !ok {
		return c.value.Load(), fmt.Errorf("%w: value %d × increment %d overflows int64", plugin.ErrInvalidRequest, value, inc)
	}
	for {
		old := c.value.Load()
		sum := old + delta
		if (delta > 0 && sum < old) || (delta < 0 && sum > old) {
			return old, fmt.Errorf("%w: counter %d + %d would overflow int64", plugin.ErrConflict, old, delta)
		}
		if c.value.CompareAndSwap(old, sum) {
			return sum, nil
		}
	}
}

// Get returns the current value.
func (c *Counter) Get() int64 { return c.value.Load() }

func mul64(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	p := a * b
	if p/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		return 0, false
	}
	return p, true
}

type state struct {
	Value int64 `json:"value"`
}

// Snapshot implements plugin.Stateful.
func (c *Counter) Snapshot() (json.RawMessage, error) {
	return json.Marshal(state{Value: c.value.Load()})
}

// Restore implements plugin.Stateful.
func (c *Counter) Restore(b json.RawMessage) error {
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("counter state: %w", err)
	}
	c.value.Store(s.Value)
	return nil
}
