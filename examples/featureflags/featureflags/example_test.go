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

package featureflags_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/hotreload/plugin-operator/examples/featureflags/featureflags"
	"github.com/hotreload/plugin-operator/pkg/plugin"
)

// A flag rolled out to a share of users, then turned off for everybody by a reload that
// keeps the counts, as the host does it.
func Example() {
	ctx := context.Background()
	spec := plugin.Spec{Name: "flags", Type: featureflags.Type,
		Options: json.RawMessage(`{"flags": {"new-checkout": {"enabled": true, "percent": 50}}}`)}
	inst, _ := featureflags.Factory{}.New(spec, slog.Default())
	for _, user := range []string{"alice", "erin"} {
		resp, _ := inst.Execute(ctx, plugin.Request{Operation: "evaluate", RawQuery: "flag=new-checkout&user=" + user})
		fmt.Print(user, " ", string(resp.Body))
	}

	r, _ := plugin.As[plugin.Reconfigurer](inst)
	spec.Options = json.RawMessage(`{"flags": {"new-checkout": {"enabled": false}}}`)
	inst, _ = r.Reconfigure(spec)
	resp, _ := inst.Execute(ctx, plugin.Request{Operation: "evaluate", RawQuery: "flag=new-checkout&user=alice"})
	fmt.Print(string(resp.Body))
	resp, _ = inst.Execute(ctx, plugin.Request{Operation: "list"})
	fmt.Print(string(resp.Body))

	_, err := inst.Execute(ctx, plugin.Request{Operation: "evaluate", RawQuery: "user=alice"})
	fmt.Println(plugin.StatusOf(err), err)
	// Output:
	// alice {"flag":"new-checkout","enabled":true,"reason":"in rollout"}
	// erin {"flag":"new-checkout","enabled":false,"reason":"outside rollout"}
	// {"flag":"new-checkout","enabled":false,"reason":"disabled"}
	// {"flags":{"new-checkout":{"enabled":false,"percent":100,"evaluations":3}},"default":false,"unknownEvaluations":0}
	// 400 invalid request: query parameter "flag" is required
}
