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

package ratelimit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/hotreload/plugin-operator/pkg/plugin"
	"github.com/hotreload/plugin-operator/pkg/plugins/ratelimit"
)

// A limiter of one request per second with a burst of 2: two takes pass, the third is
// told when to retry; a second later one more passes. The clock is fake so that the
// example's output is exact.
func Example() {
	now := time.Date(2026, 12, 6, 6, 0, 0, 0, time.UTC)
	f := ratelimit.NewFactory(ratelimit.WithClock(func() time.Time { return now }))
	inst, err := f.New(plugin.Spec{Name: "api", Type: ratelimit.Type, Options: json.RawMessage(`{"rate": 1, "burst": 2}`)}, slog.Default())
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	take := func() {
		resp, err := inst.Execute(ctx, plugin.Request{Operation: "take", Body: []byte(`{"key": "user-1"}`)})
		fmt.Println(string(resp.Body), err)
	}
	take()
	take()
	take()
	now = now.Add(time.Second)
	take()

	resp, _ := inst.Execute(ctx, plugin.Request{Operation: "get", RawQuery: "key=user-1"})
	fmt.Println(string(resp.Body))
	// Output:
	// {"key":"user-1","allowed":true,"remaining":1,"retryAfterSeconds":0,"limit":{"rate":1,"burst":2}} <nil>
	// {"key":"user-1","allowed":true,"remaining":0,"retryAfterSeconds":0,"limit":{"rate":1,"burst":2}} <nil>
	// {"key":"user-1","allowed":false,"remaining":0,"retryAfterSeconds":1,"limit":{"rate":1,"burst":2}} <nil>
	// {"key":"user-1","allowed":true,"remaining":0,"retryAfterSeconds":0,"limit":{"rate":1,"burst":2}} <nil>
	// {"key":"user-1","tokens":0,"limit":{"rate":1,"burst":2}}
}

// A reload keeps the buckets: time before it refills at the old rate, time after at the
// new one, and the new burst caps. Bad input is a 400 that names the field.
func ExampleFactory_reconfigure() {
	now := time.Date(2026, 12, 6, 6, 0, 0, 0, time.UTC)
	f := ratelimit.NewFactory(ratelimit.WithClock(func() time.Time { return now }))
	inst, _ := f.New(plugin.Spec{Name: "api", Type: ratelimit.Type, Options: json.RawMessage(`{"rate": 1, "burst": 10}`)}, slog.Default())
	ctx := context.Background()
	_, _ = inst.Execute(ctx, plugin.Request{Operation: "take", Body: []byte(`{"key": "k", "tokens": 10}`)})
	now = now.Add(3 * time.Second) // 3 tokens at the old rate

	r, _ := plugin.As[plugin.Reconfigurer](inst)
	inst, _ = r.Reconfigure(plugin.Spec{Name: "api", Type: ratelimit.Type, Options: json.RawMessage(`{"rate": 100, "burst": 5}`)})
	resp, _ := inst.Execute(ctx, plugin.Request{Operation: "get", RawQuery: "key=k"})
	fmt.Println(string(resp.Body))

	_, err := inst.Execute(ctx, plugin.Request{Operation: "take", Body: []byte(`{"key": "k", "tokens": 6}`)})
	fmt.Println(plugin.StatusOf(err), err)
	// Output:
	// {"key":"k","tokens":3,"limit":{"rate":100,"burst":5}}
	// 400 invalid request: tokens: 6, must be 1 to the burst (5): more could never be allowed
}
