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

package counter

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/hotreload/plugin-operator/internal/host"
	"github.com/hotreload/plugin-operator/pkg/plugin"
)

// spec is a counter's spec with options.increment set to the JSON increment ("" for none).
func spec(increment string) plugin.Spec {
	s := plugin.Spec{Name: "c", Type: Type, Options: json.RawMessage(`{}`)}
	if increment != "" {
		s.Options = json.RawMessage(`{"increment":` + increment + `}`)
	}
	return s
}

func counterWith(t testing.TB, increment string) *Counter {
	t.Helper()
	inst, err := Factory{}.New(spec(increment), nil)
	if err != nil {
		t.Fatal(err)
	}
	return inst.(*Counter)
}

// execute runs one operation and returns the value it answered.
func execute(t testing.TB, inst plugin.Instance, op, body string) (int64, error) {
	t.Helper()
	resp, err := inst.Execute(t.Context(), plugin.Request{Operation: op, Body: []byte(body)})
	if err != nil {
		return 0, err
	}
	var out struct {
		Plugin, Operation string
		Value             int64
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		t.Fatalf("%s answered %q: %v", op, resp.Body, err)
	}
	if out.Plugin != "c" || out.Operation != op {
		t.Fatalf("%s answered %q", op, resp.Body)
	}
	return out.Value, nil
}

// TestCounterPlugin is the seed's "go test -v -run TestCounterPlugin": the counter's
// operations, through Execute as the host calls them, with the seed's answers.
func TestCounterPlugin(t *testing.T) {
	c := counterWith(t, "1")
	resp, err := c.Execute(t.Context(), plugin.Request{Operation: "increment", Body: []byte(`{"value": 5}`)})
	if err != nil || string(resp.Body) != `{"plugin":"c","operation":"increment","value":5}`+"\n" {
		t.Fatalf("increment 5 = %q, %v", resp.Body, err)
	}
	if v, err := execute(t, c, "get", ""); err != nil || v != 5 {
		t.Fatalf("get = %d, %v", v, err)
	}
	if v, err := execute(t, c, "increment", ""); err != nil || v != 6 {
		t.Fatalf("increment with no body (value 1) = %d, %v", v, err)
	}
	if v, err := execute(t, c, "reset", ""); err != nil || v != 0 || c.Get() != 0 {
		t.Fatalf("reset = %d, %v; value %d", v, err, c.Get())
	}
	for _, bad := range []string{`{"value": 1.5}`, `{"value": "5"}`, `{"valeu": 1}`, `{`, `[1]`} {
		_, err := execute(t, c, "increment", bad)
		if plugin.StatusOf(err) != 400 {
			t.Errorf("increment %s: %v (status %d), want 400", bad, err, plugin.StatusOf(err))
		}
	}
	if c.Get() != 0 {
		t.Fatalf("refused requests changed the value to %d", c.Get())
	}
	if _, err := execute(t, c, "double", ""); !errors.Is(err, plugin.ErrInvalidRequest) {
		t.Fatalf("unknown operation: %v", err)
	}
}

// TestCounterPluginFactory is the seed's "go test -v -run TestCounterPluginFactory": the
// factory reads options.increment (1 when omitted), refuses what is not an int64 with the
// option named, and declares operations and an options schema the host accepts.
func TestCounterPluginFactory(t *testing.T) {
	for inc, want := range map[string]int64{"": 1, "5": 5, "-2": -2, "9223372036854775807": math.MaxInt64} {
		if got := counterWith(t, inc).IncrementBy(); got != want {
			t.Errorf("increment %q: %d, want %d", inc, got, want)
		}
	}
	for _, bad := range []string{`5.5`, `"5"`, `true`, `1e400`} {
		_, err := Factory{}.New(spec(bad), nil)
		if err == nil || !strings.Contains(err.Error(), "options") || !strings.Contains(err.Error(), "increment") {
			t.Errorf("increment %s: %v, want an error naming options.increment", bad, err)
		}
	}
	reg, err := host.NewRegistry(Factory{})
	if err != nil {
		t.Fatalf("the host refuses the counter's declaration: %v", err)
	}
	if names := reg.TypeNames(); len(names) != 1 || names[0] != Type {
		t.Fatalf("types %v", names)
	}
	for name, m := range map[string]string{"increment": "POST", "get": "GET", "reset": "POST"} {
		var found bool
		for _, op := range (Factory{}).Operations() {
			if op.Name == name {
				found = op.Method == m && op.Mutating == (m == "POST")
			}
		}
		if !found {
			t.Errorf("operation %s %s not declared as such", m, name)
		}
	}
	// The schema, as the host and the operator apply it: the precise field is named.
	p := field.NewPath("spec", "options")
	for _, ok := range []map[string]any{nil, {"increment": json.Number("5")}, {"increment": json.Number("-2")}, {"increment": 3}} {
		if _, errs := reg.ValidateOptions(Type, ok, p); len(errs) != 0 {
			t.Errorf("%v refused: %v", ok, errs)
		}
	}
	for _, bad := range []map[string]any{{"increment": json.Number("5.5")}, {"increment": "5"}, {"increment": true}, {"increment": json.Number("1e400")}, {"step": 1}} {
		_, errs := reg.ValidateOptions(Type, bad, p)
		if len(errs) == 0 || !strings.HasPrefix(errs[0].Field, "spec.options.") {
			t.Errorf("%v: %v, want an error naming the option", bad, errs)
		}
	}
}

func TestReloadKeepsTheValue(t *testing.T) {
	c := counterWith(t, "1")
	if v, _ := c.Increment(5); v != 5 {
		t.Fatalf("increment 5 with increment 1 = %d", v)
	}
	// Hot reload: the increment changes, the value stays; the old configuration is untouched.
	inst, err := c.Reconfigure(spec("10"))
	if err != nil {
		t.Fatal(err)
	}
	old := c
	c = inst.(*Counter)
	if v, _ := c.Increment(1); v != 15 {
		t.Fatalf("after reload to 10, increment 1 = %d, want 15", v)
	}
	if old.IncrementBy() != 1 || old.Get() != 15 {
		t.Fatalf("the old configuration changed: increment %d value %d, want increment 1 and the shared value 15", old.IncrementBy(), old.Get())
	}
	if _, err := c.Reconfigure(spec(`"ten"`)); err == nil {
		t.Fatal("a non-integer increment was accepted")
	}
	if c.IncrementBy() != 10 {
		t.Fatalf("a refused Reconfigure changed the increment to %d", c.IncrementBy())
	}
	if v, _ := execute(t, c, "get", ""); v != 15 {
		t.Fatalf("get = %d", v)
	}
}

func TestDefaultIncrementIsOne(t *testing.T) {
	c := counterWith(t, "")
	if v, _ := c.Increment(3); v != 3 {
		t.Fatalf("got %d", v)
	}
}

func TestOverflowIsRefusedAndChangesNothing(t *testing.T) {
	c := counterWith(t, "2")
	if _, err := c.Increment(math.MaxInt64/2 + 1); !errors.Is(err, plugin.ErrInvalidRequest) {
		t.Fatalf("value × increment overflow: %v", err)
	}
	if c.Get() != 0 {
		t.Fatalf("counter changed to %d", c.Get())
	}
	if _, err := c.Increment(math.MaxInt64 / 2); err != nil {
		t.Fatal(err)
	}
	before := c.Get()
	if _, err := c.Increment(1); !errors.Is(err, plugin.ErrConflict) {
		t.Fatalf("sum overflow: %v", err)
	}
	if c.Get() != before {
		t.Fatalf("counter wrapped to %d", c.Get())
	}
	// Negative direction too.
	c2 := counterWith(t, "-1")
	if _, err := c2.Increment(math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Increment(2); !errors.Is(err, plugin.ErrConflict) {
		t.Fatalf("negative overflow: %v (value %d)", err, c2.Get())
	}
	if _, ok := mul64(math.MinInt64, -1); ok {
		t.Fatal("MinInt64 × -1 must overflow")
	}
}

func TestConcurrentIncrementsAreExact(t *testing.T) {
	c := counterWith(t, "3")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10000 {
				if _, err := c.Increment(1); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if c.Get() != 8*10000*3 {
		t.Fatalf("got %d", c.Get())
	}
}

func TestSnapshotRestore(t *testing.T) {
	c := counterWith(t, "")
	_, _ = c.Increment(42)
	b, err := c.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	d := counterWith(t, "")
	if err := d.Restore(b); err != nil || d.Get() != 42 {
		t.Fatalf("restore: %v, value %d", err, d.Get())
	}
	if err := d.Restore([]byte("{")); err == nil {
		t.Fatal("corrupt state accepted")
	}
}

// In-process cost of the operations, without HTTP (targets: increment ≤ 50 ns/op with
// 0 allocs, get ≤ 5 ns/op).
func BenchmarkCounterIncrement(b *testing.B) {
	c := counterWith(b, "1")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = c.Increment(1)
	}
}

func BenchmarkCounterIncrementParallel(b *testing.B) {
	c := counterWith(b, "1")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = c.Increment(1)
		}
	})
}

func BenchmarkCounterGet(b *testing.B) {
	c := counterWith(b, "1")
	b.ReportAllocs()
	var sink int64
	for b.Loop() {
		sink += c.Get()
	}
	_ = sink
}

// Through the plugin.Instance interface, as the host calls it.
func BenchmarkCounterExecuteIncrement(b *testing.B) {
	var inst plugin.Instance = counterWith(b, "1")
	req := plugin.Request{Operation: "increment", Body: []byte(`{"value": 1}`)}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = inst.Execute(ctx, req)
	}
}

func BenchmarkCounterExecuteGet(b *testing.B) {
	var inst plugin.Instance = counterWith(b, "1")
	req := plugin.Request{Operation: "get"}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = inst.Execute(ctx, req)
	}
}
