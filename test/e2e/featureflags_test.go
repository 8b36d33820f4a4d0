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
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

const (
	flagsHost   = "flags"          // the PluginHost that runs ExampleImage
	flagsPlugin = "checkout-flags" // its Plugin of type featureflags
)

// flagsObjects are the PluginHost running the example image (allowed by the suite's Helm
// values, never pulled) and a Plugin of the example's type with new-checkout set to %s.
const flagsObjects = `apiVersion: plugins.hotreload.io/v1alpha1
kind: PluginHost
metadata:
  name: ` + flagsHost + `
spec:
  image: ` + ExampleImage + `
  imagePullPolicy: Never
  pluginSelector:
    matchLabels:
      e2e: flags
  pollInterval: 250ms
---
apiVersion: plugins.hotreload.io/v1alpha1
kind: Plugin
metadata:
  name: ` + flagsPlugin + `
  labels:
    e2e: flags
spec:
  type: featureflags
  options:
    default: false
    flags:
      new-checkout: %s
`

// flagsClient evaluates new-checkout for one user and counts its successful evaluations,
// which the plugin counts too.
type flagsClient struct {
	s           *suite
	c           *Client
	evaluations int
}

type flagEvaluation struct {
	Flag    string `json:"flag"`
	Enabled bool   `json:"enabled"`
	Reason  string `json:"reason"`
}

func (f *flagsClient) evaluate() (flagEvaluation, error) {
	b, err := f.c.do(f.s.ctx, http.MethodGet, "/plugins/"+flagsPlugin+"/evaluate?flag=new-checkout&user=alice", "")
	if err != nil {
		return flagEvaluation{}, err
	}
	f.evaluations++
	var ev flagEvaluation
	if err := json.Unmarshal(b, &ev); err != nil {
		return ev, fmt.Errorf("evaluate: decoding %q: %w", b, err)
	}
	return ev, nil
}

// waitFor evaluates until the answer is enabled with reason, for at most timeout.
func (f *flagsClient) waitFor(what string, timeout time.Duration, enabled bool, reason string) {
	f.s.t.Helper()
	f.s.eventually(what, timeout, 50*time.Millisecond, func() error {
		ev, err := f.evaluate()
		if err != nil {
			return err
		}
		if ev.Enabled != enabled || ev.Reason != reason {
			return fmt.Errorf("evaluate answers %+v", ev)
		}
		return nil
	})
}

// counted returns new-checkout's evaluation count from list.
func (f *flagsClient) counted() int {
	f.s.t.Helper()
	b, err := f.c.do(f.s.ctx, http.MethodGet, "/plugins/"+flagsPlugin+"/list", "")
	f.s.must(err)
	var l struct {
		Flags map[string]struct {
			Evaluations int `json:"evaluations"`
		} `json:"flags"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		f.s.t.Fatalf("list: decoding %q: %v", b, err)
	}
	return l.Flags["new-checkout"].Evaluations
}

// testExamplePlugin runs the example plugin host (examples/featureflags, a module of its own
// built against the SDK) as a PluginHost's spec.image: its type advertised and recorded, a
// Plugin of that type served through the Service, an option edited and served by the same
// pod, a bad option refused for that Plugin with the field named while the last good flags
// keep serving.
func (s *suite) testExamplePlugin() {
	s.step("PluginHost %s with spec.image %s, Plugin %s of type featureflags", flagsHost, ExampleImage, flagsPlugin)
	s.kubectlStdin(fmt.Sprintf(flagsObjects, `{enabled: true}`), "-n", SamplesNamespace, "apply", "-f", "-")
	defer s.kubectl("-n", SamplesNamespace, "delete", "pluginhost/"+flagsHost, "plugin/"+flagsPlugin, "--wait=true", "--timeout=2m")
	s.kubectl("-n", SamplesNamespace, "wait", "--for=condition=Available", "pluginhost/"+flagsHost, "--timeout=3m")
	s.waitPluginReady(flagsPlugin, 2*time.Minute)

	pod := s.hostPod(SamplesNamespace, flagsHost)
	if img := s.kubectl("-n", SamplesNamespace, "get", "pod", pod.name, "-o", "jsonpath={.spec.containers[0].image}"); img != ExampleImage {
		s.t.Fatalf("host pod %s runs %q, want %s", pod.name, img, ExampleImage)
	}
	s.eventually("the PluginHost records the types its pod advertises", time.Minute, 200*time.Millisecond, func() error {
		types := s.kubectl("-n", SamplesNamespace, "get", "pluginhost", flagsHost, "-o", "jsonpath={.status.types[*].name}")
		if !strings.Contains(" "+types+" ", " featureflags ") {
			return fmt.Errorf("status.types names %q", types)
		}
		return nil
	})

	svc, ns, port, err := ServiceFromURL(s.kubectl("-n", SamplesNamespace, "get", "pluginhost", flagsHost, "-o", "jsonpath={.status.url}"))
	s.must(err)
	f := &flagsClient{s: s, c: &Client{BaseURL: s.cluster.baseURL(ns, svc, port)}}
	// A pod turns Ready before kube-proxy has programmed its endpoint.
	f.waitFor("new-checkout enabled through the Service", time.Minute, true, "enabled")

	s.step("Turn new-checkout off: served by the same pod")
	start := time.Now()
	s.kubectl("-n", SamplesNamespace, "patch", "plugin", flagsPlugin, "--type=merge",
		"-p", `{"spec":{"options":{"flags":{"new-checkout":{"enabled":false}}}}}`)
	f.waitFor("new-checkout disabled", reloadTimeout, false, "disabled")
	s.result("featureflags option edit → served by the running pod (example image)", time.Since(start).Round(time.Millisecond).String())
	s.waitPluginReady(flagsPlugin, time.Minute)
	if after := s.hostPod(SamplesNamespace, flagsHost); after.uid != pod.uid || after.restarts != pod.restarts {
		s.t.Errorf("host pod changed: before %+v, after %+v; an option edit must apply in place", pod, after)
	}
	if got := f.counted(); got != f.evaluations {
		s.t.Errorf("the plugin counted %d evaluations of new-checkout, the suite made %d: the reload lost state", got, f.evaluations)
	}

	s.step("A bad option (percent 101): refused for this Plugin, the last good flags keep serving")
	s.kubectl("-n", SamplesNamespace, "patch", "plugin", flagsPlugin, "--type=merge",
		"-p", `{"spec":{"options":{"flags":{"new-checkout":{"enabled":true,"percent":101}}}}}`)
	s.kubectl("-n", SamplesNamespace, "wait", "--for=condition=Stalled", "plugin/"+flagsPlugin, "--timeout=2m")
	msgs := s.kubectl("-n", SamplesNamespace, "get", "plugin", flagsPlugin, "-o", `jsonpath={range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}`)
	if !strings.Contains(msgs, "new-checkout.percent") {
		s.t.Errorf("the Plugin's conditions do not name options.flags.new-checkout.percent:\n%s", msgs)
	}
	ev, err := f.evaluate()
	s.must(err)
	if ev.Enabled || ev.Reason != "disabled" {
		s.t.Errorf("after the bad option, evaluate answers %+v; want the last good flags (disabled)", ev)
	}

	s.step("Fix the option: served in place, Ready again")
	s.kubectl("-n", SamplesNamespace, "patch", "plugin", flagsPlugin, "--type=merge",
		"-p", `{"spec":{"options":{"flags":{"new-checkout":{"enabled":true,"percent":100}}}}}`)
	f.waitFor("new-checkout enabled again", reloadTimeout, true, "enabled")
	s.waitPluginReady(flagsPlugin, time.Minute)
	if after := s.hostPod(SamplesNamespace, flagsHost); after.uid != pod.uid || after.restarts != pod.restarts {
		s.t.Errorf("host pod changed: before %+v, after %+v", pod, after)
	}
	if got := f.counted(); got != f.evaluations {
		s.t.Errorf("the plugin counted %d evaluations of new-checkout, the suite made %d", got, f.evaluations)
	}
}
