//go:build e2e

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

package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// testRollback pins the sample host to an older recorded revision and unpins it: the running
// pod serves the pinned revision's config.json (the one in its ControllerRevision), the
// counter keeps its value, the Plugin says HostPinned, and unpinning serves the Plugins'
// render again. It needs the history the edits before it made.
func (s *suite) testRollback() {
	ns := SamplesNamespace
	get := func(kind, name, jsonpath string) string {
		return s.kubectl("-n", ns, "get", kind, name, "-o", "jsonpath="+jsonpath)
	}
	current := get("pluginhost", hostName, "{.status.configRevision}")
	numbers := strings.Fields(get("pluginhost", hostName, "{.status.history[*].revision}"))
	names := strings.Fields(get("pluginhost", hostName, "{.status.history[*].name}"))
	if len(numbers) < 2 || len(names) != len(numbers) {
		s.t.Fatalf("status.history has revisions %v (%v): the edits before this step should have recorded at least 2", numbers, names)
	}
	// The newest revision other than the served one.
	pin, pinName := "", ""
	for i := range numbers {
		if get("controllerrevision", names[i], "{.data.revision}") != current {
			pin, pinName = numbers[i], names[i]
			break
		}
	}
	if pin == "" {
		s.t.Fatalf("every revision of %v is the served one", names)
	}
	pinned := get("controllerrevision", pinName, "{.data.revision}")
	pinnedConfig := get("controllerrevision", pinName, "{.data.config}")
	n, err := strconv.Atoi(pin)
	s.must(err)

	s.step("Pin %s to revision %d (%s)", hostName, n, pinned)
	start := time.Now()
	s.kubectl("-n", ns, "patch", "pluginhost", hostName, "--type=merge", "-p", fmt.Sprintf(`{"spec":{"pinnedRevision":%q}}`, pin))
	s.waitServed(pinned)
	s.result("spec.pinnedRevision set → the pinned revision served by the running pod", time.Since(start).Round(time.Millisecond).String())
	if served := get("configmap", hostName+"-config", `{.data.config\.json}`); served != pinnedConfig {
		s.t.Errorf("<host>-config holds %q, want revision %d's config %q", served, n, pinnedConfig)
	}
	s.expectValue(getter(s.client), counter1, 0, s.value)
	s.eventually(counter1+" HostPinned", time.Minute, 100*time.Millisecond, func() error {
		reason := get("plugin", counter1, `{.status.conditions[?(@.type=="Ready")].reason}`)
		if reason != v1alpha1.ReasonHostPinned {
			return fmt.Errorf("Ready reason %q", reason)
		}
		return nil
	})
	s.kubectl("-n", ns, "wait", "--for=condition=Ready", "pluginhost/"+hostName, "--timeout=1m")
	if got := get("pluginhost", hostName, "{.status.pinnedRevision}"); got != pin {
		s.t.Errorf("status.pinnedRevision %q, want %s", got, pin)
	}

	s.step("Unpin %s", hostName)
	start = time.Now()
	s.kubectl("-n", ns, "patch", "pluginhost", hostName, "--type=json", "-p", `[{"op":"remove","path":"/spec/pinnedRevision"}]`)
	s.waitServed(current)
	s.result("spec.pinnedRevision removed → the Plugins' render served again", time.Since(start).Round(time.Millisecond).String())
	s.waitPluginReady(counter1, time.Minute)
	s.expectValue(getter(s.client), counter1, 0, s.value)
	s.checkHostUnchanged()
}

// waitServed waits until the sample host's pod reports revision rev applied on /status.
func (s *suite) waitServed(rev string) {
	s.t.Helper()
	s.eventually("the pod serves "+rev, reloadTimeout, 20*time.Millisecond, func() error {
		st, err := s.client.Status(s.ctx)
		if err != nil {
			return err
		}
		if st.Revision != rev {
			return fmt.Errorf("the pod serves %s", st.Revision)
		}
		return nil
	})
}
