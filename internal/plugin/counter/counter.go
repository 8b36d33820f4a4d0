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

// Package counter is the seed's counter plugin: a thread-safe int64 counter with increment,
// get and reset, whose increment step comes from options.increment. A reload gives the
// counter a new step and keeps its value.
package counter

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/hotreload/plugin-operator/internal/plugin"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
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
	{Name: "increment", Method: plugin.MethodPOST, TakesValue: true},
	{Name: "get", Method: plugin.MethodGET},
	{Name: "reset", Method: plugin.MethodPOST},
}

// Operations implements plugin.Factory.
func (Factory) Operations() []plugin.Operation { return operations }

// ValidateOptions accepts only options.increment, an integer.
func (Factory) ValidateOptions(options map[string]any, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for k, v := range options {
		if k != "increment" {
			errs = append(errs, field.NotSupported(path.Child(k), k, []string{"increment"}))
			continue
		}
		if _, err := increment(v); err != nil {
			errs = append(errs, field.TypeInvalid(path.Child(k), v, err.Error()))
		}
	}
	return errs
}

// increment reads options.increment: a JSON integer in int64 range.
func increment(v any) (int64, error) {
	switch n := v.(type) {
	case nil:
		return DefaultIncrement, nil
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			return 0, fmt.Errorf("must be an integer in int64 range")
		}
		return i, nil
	case float64: // options built in Go rather than decoded with UseNumber
		if n != math.Trunc(n) || n < math.MinInt64 || n >= math.MaxInt64 {
			return 0, fmt.Errorf("must be an integer in int64 range")
		}
		return int64(n), nil
	case int:
		return int64(n), nil
	case int64:
		return n, nil
	default:
		return 0, fmt.Errorf("must be an integer")
	}
}

// New implements plugin.Factory.
func (Factory) New(spec pluginconfig.Plugin, logger *slog.Logger) (plugin.Instance, error) {
	step, err := stepOf(spec)
	if err != nil {
		return nil, err
	}
	return &Counter{value: new(atomic.Int64), step: step, logger: logger}, nil
}

// Counter is one counter configured with one increment step. Its value is shared with the
// counters Reconfigure returns, so it survives reloads; the step of a Counter never changes.
type Counter struct {
	value  *atomic.Int64
	step   int64
	logger *slog.Logger
}

func stepOf(spec pluginconfig.Plugin) (int64, error) {
	step, err := increment(spec.Options["increment"])
	if err != nil {
		return 0, fmt.Errorf("options.increment: %w", err)
	}
	return step, nil
}

// Reconfigure returns a counter with the new increment step and the same value; c keeps its
// step, so requests still running on c finish with the step they started with.
func (c *Counter) Reconfigure(spec pluginconfig.Plugin) (plugin.Instance, error) {
	step, err := stepOf(spec)
	if err != nil {
		return nil, err
	}
	return &Counter{value: c.value, step: step, logger: c.logger}, nil
}

// Step returns the increment this counter applies.
func (c *Counter) Step() int64 { return c.step }

// Execute implements plugin.Instance.
func (c *Counter) Execute(_ context.Context, req plugin.Request) (plugin.Response, error) {
	switch req.Operation {
	case "increment":
		v, err := c.Increment(req.Value)
		return plugin.Response{Value: v}, err
	case "get":
		return plugin.Response{Value: c.value.Load()}, nil
	case "reset":
		c.value.Store(0)
		return plugin.Response{}, nil
	default:
		return plugin.Response{}, fmt.Errorf("%w: unknown operation %q", plugin.ErrInvalidRequest, req.Operation)
	}
}

// Increment adds value × step and returns the new value. It refuses, and changes nothing,
// when the product or the sum would overflow int64: a counter never wraps.
func (c *Counter) Increment(value int64) (int64, error) {
	step := c.step
	delta, ok := mul64(value, step)
	if !ok {
		return c.value.Load(), fmt.Errorf("%w: value %d × increment %d overflows int64", plugin.ErrInvalidRequest, value, step)
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

// Snapshot implements plugin.Instance.
func (c *Counter) Snapshot() ([]byte, error) {
	return json.Marshal(state{Value: c.value.Load()})
}

// Restore implements plugin.Instance.
func (c *Counter) Restore(b []byte) error {
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("counter state: %w", err)
	}
	c.value.Store(s.Value)
	return nil
}
