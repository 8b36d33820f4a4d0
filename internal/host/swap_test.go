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

package host

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hotreload/plugin-operator/internal/testing/testutil"
	"github.com/hotreload/plugin-operator/pkg/plugin"
	"github.com/hotreload/plugin-operator/pkg/plugins/counter"
)

// pinnedFactory is a plugin type for tests whose options.pin cannot change in place: its
// Reconfigure refuses a new pin after the schema accepted it, as a type with a setting
// that needs a restart would. Otherwise it is a counter.
type pinnedFactory struct{}

func (pinnedFactory) Type() string                   { return "pinned" }
func (pinnedFactory) Operations() []plugin.Operation { return counter.Factory{}.Operations() }
func (pinnedFactory) OptionsSchema() json.RawMessage {
	return json.RawMessage(`{"type":"object","properties":{"increment":{"type":"integer"},"pin":{"type":"integer"}},"additionalProperties":false}`)
}

func (pinnedFactory) New(spec plugin.Spec, log *slog.Logger) (plugin.Instance, error) {
	cspec, pin, err := splitPin(spec)
	if err != nil {
		return nil, err
	}
	inst, err := counter.Factory{}.New(cspec, log)
	if err != nil {
		return nil, err
	}
	return &pinned{Counter: inst.(*counter.Counter), pin: pin}, nil
}

// splitPin returns the counter's part of a pinned spec, and the pin.
func splitPin(spec plugin.Spec) (plugin.Spec, string, error) {
	var o map[string]json.RawMessage
	if err := json.Unmarshal(spec.Options, &o); err != nil {
		return spec, "", err
	}
	pin := string(o["pin"])
	delete(o, "pin")
	b, err := json.Marshal(o)
	spec.Options = b
	return spec, pin, err
}

type pinned struct {
	*counter.Counter
	pin string
}

func (p *pinned) Reconfigure(spec plugin.Spec) (plugin.Instance, error) {
	cspec, pin, err := splitPin(spec)
	if err != nil {
		return nil, err
	}
	if pin != p.pin {
		return nil, fmt.Errorf("options.pin cannot change from %s to %s without a restart", p.pin, pin)
	}
	inst, err := p.Counter.Reconfigure(cspec)
	if err != nil {
		return nil, err
	}
	return &pinned{Counter: inst.(*counter.Counter), pin: p.pin}, nil
}

// A config refused for any reason — here one plugin's Reconfigure, after every other plugin
// of the config was built — leaves every live instance exactly as it was: same instance,
// same step, same value, serving.
func TestRefusedConfigLeavesEveryInstanceAsItWas(t *testing.T) {
	h := New(Options{Registry: MustRegistry(counter.Factory{}, pinnedFactory{})})
	cfg := func(inc1, inc2, pin int) string {
		return fmt.Sprintf(`{"plugins":[{"name":"a","type":"counter","options":{"increment":%d}},`+
			`{"name":"b","type":"counter","options":{"increment":%d}},`+
			`{"name":"p","type":"pinned","options":{"increment":1,"pin":%d}}]}`, inc1, inc2, pin)
	}
	if _, err := h.Apply([]byte(cfg(1, 2, 7))); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)
	for _, name := range []string{"a", "b", "p"} {
		do(t, "POST", srv.URL+"/plugins/"+name+"/increment", `{"value":3}`).value(t)
	}
	before := map[string]plugin.Instance{}
	for _, name := range []string{"a", "b", "p"} {
		before[name], _ = h.Instance(name)
	}
	rev := h.Revision()

	// a and b change step (valid on their own); p's pin cannot change: the whole config is
	// refused, naming the plugin and the option.
	_, err := h.Apply([]byte(cfg(10, 20, 8)))
	if err == nil || !strings.Contains(err.Error(), `plugins[2] (p): cannot be reconfigured in place: options.pin cannot change from 7 to 8`) {
		t.Fatalf("err = %v", err)
	}
	if h.Revision() != rev || !strings.Contains(h.Status().LastError, "options.pin") {
		t.Fatalf("revision %s (want %s), status %+v", h.Revision(), rev, h.Status())
	}
	for name, want := range map[string]struct{ step, value int64 }{"a": {1, 3}, "b": {2, 6}, "p": {1, 3}} {
		inst, _ := h.Instance(name)
		if inst != before[name] {
			t.Errorf("%s: the refused config replaced the instance", name)
		}
		var c *counter.Counter
		if p, ok := inst.(*pinned); ok {
			c = p.Counter
		} else {
			c = inst.(*counter.Counter)
		}
		if c.IncrementBy() != want.step || c.Get() != want.value {
			t.Errorf("%s: step %d value %d, want step %d value %d", name, c.IncrementBy(), c.Get(), want.step, want.value)
		}
	}
	// Served with the old steps.
	if v := do(t, "POST", srv.URL+"/plugins/a/increment", `{"value":1}`).value(t); v != 4 {
		t.Errorf("a after the refused config: %d, want 4 (step 1)", v)
	}
	// The same change with the pin kept applies, and the values carry over.
	if _, err := h.Apply([]byte(cfg(10, 20, 7))); err != nil {
		t.Fatal(err)
	}
	if v := do(t, "POST", srv.URL+"/plugins/b/increment", `{"value":1}`).value(t); v != 26 {
		t.Errorf("b after the valid change: %d, want 26 (6 + step 20)", v)
	}
}

// A refused config creates no metric series: not for the plugins it would have added, nor
// for anything else. Removing a plugin drops its series.
func TestMetricsHaveNoSeriesOfARefusedConfig(t *testing.T) {
	h := newTestHost(t, seedConfig(1))
	srv := serve(t, h)
	do(t, "POST", srv.URL+"/plugins/counter-1/increment", `{"value":1}`).value(t)
	series := func() string { return do(t, "GET", srv.URL+"/metrics", "").Body }
	before := strings.Count(series(), "\npluginhost_request")

	refused := []string{
		// ghost is valid; the config fails on the credentials of the plugin after it.
		`{"plugins":[{"name":"counter-1","type":"counter"},{"name":"ghost","type":"counter"},` +
			`{"name":"locked","type":"counter","auth":{"method":"bearer","token_file":"/nonexistent/token"}}]}`,
		// ghost is valid; the config fails validation on the plugin after it.
		`{"plugins":[{"name":"ghost","type":"counter"},{"name":"bad","type":"counter","options":{"increment":1.5}}]}`,
	}
	for i, cfg := range refused {
		if _, err := h.Apply([]byte(cfg)); err == nil {
			t.Fatalf("config %d applied", i)
		}
		m := series()
		for _, name := range []string{"ghost", "locked", "bad"} {
			if strings.Contains(m, `plugin="`+name+`"`) {
				t.Errorf("config %d: /metrics has series of %s, a plugin of a refused config", i, name)
			}
		}
		if n := strings.Count(m, "\npluginhost_request"); n != before {
			t.Errorf("config %d: %d request series, %d before", i, n, before)
		}
	}

	// An applied config that removes counter-1 drops its series; adding it back starts at 0.
	if _, err := h.Apply([]byte(`{"plugins":[{"name":"other","type":"counter"}]}`)); err != nil {
		t.Fatal(err)
	}
	if m := series(); strings.Contains(m, `plugin="counter-1"`) || !strings.Contains(m, `plugin="other"`) {
		t.Errorf("after removing counter-1: %s", m)
	}
}

// max_connections bounds requests across reloads: requests admitted under an earlier config
// still hold their slots when a reload keeps the bound, so no more than max_connections run
// at once however often the config changes.
func TestMaxConnectionsHoldsAcrossReloadsUnderLoad(t *testing.T) {
	cfg := func(inc int) string {
		return fmt.Sprintf(`{"plugins":[{"name":"c","type":"counter","options":{"increment":%d},`+
			`"connection":{"max_connections":2,"max_idle_connections":1,"connection_timeout":"20ms","request_timeout":"1m"}}]}`, inc)
	}
	h := newTestHost(t, cfg(1))
	srv := serve(t, h)

	// Two increments that hold their slots: their bodies arrive only when the test says.
	var held sync.WaitGroup
	var release sync.Once
	writers := make([]func(), 2)
	results := make(chan int, 2)
	for i := range writers {
		pr, pw := newSlowBody()
		writers[i] = func() { _, _ = pw.Write([]byte(`{"value":1}`)); _ = pw.Close() }
		held.Go(func() {
			req, _ := http.NewRequest("POST", srv.URL+"/plugins/c/increment", pr)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			results <- resp.StatusCode
		})
	}
	sendBodies := func() {
		release.Do(func() {
			for _, w := range writers {
				w()
			}
		})
		held.Wait()
	}
	t.Cleanup(sendBodies) // also when the test fails early
	testutil.EventuallyTrue(t, waitTimeout, "both slots taken", func() bool { return len(h.current.Load().entries["c"].slots) == 2 })

	// Reload again and again under the held requests and probing ones: every probe is
	// turned away, since both slots stay taken.
	var probes sync.WaitGroup
	var stopOnce sync.Once
	stop := make(chan struct{})
	stopProbes := func() { stopOnce.Do(func() { close(stop) }); probes.Wait() }
	t.Cleanup(stopProbes)
	var mu sync.Mutex
	codes := map[int]int{}
	for range 3 {
		probes.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(srv.URL + "/plugins/c/get")
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	for i := range 30 {
		if _, err := h.Apply([]byte(cfg(2 + i%2))); err != nil {
			t.Fatal(err)
		}
		r := do(t, "GET", srv.URL+"/plugins/c/get", "")
		if r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Body, "max_connections (2)") {
			t.Fatalf("reload %d: a third request ran while two held the slots: %d %s", i, r.Status, r.Body)
		}
	}
	stopProbes()
	if codes[http.StatusOK] != 0 || codes[http.StatusServiceUnavailable] == 0 {
		t.Fatalf("probes during reloads: %v, want only 503", codes)
	}

	// The held requests finish and release their slots; the bound frees up.
	sendBodies()
	close(results)
	for code := range results {
		if code != http.StatusOK {
			t.Fatalf("held request: %d", code)
		}
	}
	if n := len(h.current.Load().entries["c"].slots); n != 0 {
		t.Fatalf("%d slots still taken after every request finished", n)
	}
	if r := do(t, "GET", srv.URL+"/plugins/c/get", ""); r.Status != http.StatusOK || r.JSON["value"] == nil {
		t.Fatalf("after the held requests: %d %s", r.Status, r.Body)
	}
}

// Rotated credentials go through the same path as a config change: the instance and its
// value carry over, and a request admitted before the rotation still holds its slot after it.
func TestCredentialRotationKeepsInstancesAndSlots(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newTestHost(t, `{"plugins":[{"name":"c","type":"counter","auth":{"method":"bearer","token_file":"`+token+`"},`+
		`"connection":{"max_connections":1,"max_idle_connections":1,"connection_timeout":"20ms","request_timeout":"1m"}}]}`)
	srv := serve(t, h)
	do(t, "POST", srv.URL+"/plugins/c/increment", `{"value":4}`, "Authorization", "Bearer old").value(t)
	inst, _ := h.Instance("c")
	rev := h.Revision()

	// One increment holds the only slot: its body arrives when the test says.
	pr, pw := newSlowBody()
	var once sync.Once
	send := func() { once.Do(func() { _, _ = pw.Write([]byte(`{"value":1}`)); _ = pw.Close() }) }
	t.Cleanup(send)
	held := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", srv.URL+"/plugins/c/increment", pr)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer old")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			held <- 0
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	testutil.EventuallyTrue(t, waitTimeout, "the slot taken", func() bool { return len(h.current.Load().entries["c"].slots) == 1 })

	testutil.ReplaceFile(t, token, []byte("new"))
	if err := h.ReloadCredentials(); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.Instance("c"); got != inst || h.Revision() != rev {
		t.Fatal("rotating credentials replaced the instance or changed the revision")
	}
	if r := do(t, "GET", srv.URL+"/plugins/c/get", "", "Authorization", "Bearer old"); r.Status != http.StatusUnauthorized {
		t.Fatalf("old token after rotation: %d", r.Status)
	}
	if r := do(t, "GET", srv.URL+"/plugins/c/get", "", "Authorization", "Bearer new"); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("new token while the slot is held across the rotation: %d %s, want 503", r.Status, r.Body)
	}
	send()
	if code := <-held; code != http.StatusOK {
		t.Fatalf("request admitted before the rotation: %d", code)
	}
	if v := do(t, "GET", srv.URL+"/plugins/c/get", "", "Authorization", "Bearer new").value(t); v != 5 {
		t.Fatalf("value %d after the rotation, want 5", v)
	}
}
