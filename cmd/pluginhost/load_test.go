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

package main

import (
	"testing"
	"time"

	"github.com/hotreload/plugin-operator/internal/testing/loadtest"
)

// Issue 6, reload under load: while closed-loop clients increment and get counter-1, the
// kubelet-style projected config changes every 100 ms, 100 times — new increments,
// truncated, invalid and empty files, counter-2 added and removed. Counter-1 never gets a
// non-2xx answer, and the accounting is exact: every acknowledged increment decomposes
// into its value × an increment that a valid config set, and the final counter is the sum.
func TestReloadUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s of load")
	}
	res, err := loadtest.ReloadUnderLoad(loadtest.ReloadOptions{Binary: binary, Reloads: 100, Every: 100 * time.Millisecond, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("writes %d (valid %d, invalid %d, counter-2 toggles %d); host applied %d, refused %d; counter-1: %d requests %s, p99 %v; counter-2: %s; steps %v; final %d",
		res.Writes, res.ValidWrites, res.InvalidWrites, res.Toggles, res.Applied, res.Refused,
		res.Stable.Requests, res.Stable.CodesString(), res.Stable.Quantile(0.99), res.Other.CodesString(), res.StepsSeen, res.Final)
	if n := res.Stable.Non2xx(); n != 0 {
		t.Errorf("%d non-2xx answers on counter-1: %s", n, res.Stable.CodesString())
	}
	for code := range res.Other.Codes {
		if code != 200 && code != 404 {
			t.Errorf("counter-2 (added and removed) answered %d: %s", code, res.Other.CodesString())
		}
	}
	if len(res.Mismatches) > 0 {
		t.Errorf("accounting: %v", res.Mismatches)
	}
	if res.Final != res.Expected {
		t.Errorf("final counter %d, sum of value × increment in force over %d acknowledged increments %d", res.Final, res.Acked, res.Expected)
	}
	if res.Acked == 0 || len(res.StepsSeen) < 2 {
		t.Errorf("the load did not span config changes: %d acknowledged, steps %v", res.Acked, res.StepsSeen)
	}
	if res.ServedInvalid {
		t.Error("an increment only an invalid config had was served")
	}
	if !res.FinalRevision {
		t.Error("the host did not end on the last content written")
	}
	if res.Applied == 0 || res.Refused == 0 {
		t.Errorf("host saw %d applied, %d refused changes", res.Applied, res.Refused)
	}
	if res.Restarted {
		t.Error("the host restarted")
	}
}
