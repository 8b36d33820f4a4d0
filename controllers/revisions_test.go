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

package controllers_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// storedRevision is what the test reads of a host's ControllerRevision.
type storedRevision struct {
	obj      appsv1.ControllerRevision
	revision string
	config   *string
	omitted  string
	plugins  []struct {
		Name       string `json:"name"`
		Generation int64  `json:"generation"`
	}
}

// hostRevisions lists the ControllerRevisions that carry the host label of host, oldest
// first, and decodes their data.
func hostRevisions(t testing.TB, ns, host string) []storedRevision {
	t.Helper()
	list := &appsv1.ControllerRevisionList{}
	if err := env.Client.List(context.Background(), list, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelHost: host}); err != nil {
		t.Fatalf("listing ControllerRevisions: %v", err)
	}
	out := make([]storedRevision, 0, len(list.Items))
	for _, cr := range list.Items {
		var d struct {
			Revision      string  `json:"revision"`
			Config        *string `json:"config"`
			ConfigOmitted string  `json:"configOmitted"`
			Plugins       []struct {
				Name       string `json:"name"`
				Generation int64  `json:"generation"`
			} `json:"plugins"`
		}
		if err := json.Unmarshal(cr.Data.Raw, &d); err != nil {
			t.Fatalf("ControllerRevision %s: data %s: %v", cr.Name, cr.Data.Raw, err)
		}
		out = append(out, storedRevision{obj: cr, revision: d.Revision, config: d.Config, omitted: d.ConfigOmitted, plugins: d.Plugins})
	}
	slices.SortFunc(out, func(a, b storedRevision) int { return int(a.obj.Revision - b.obj.Revision) })
	return out
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// servedAndRecorded waits until every pod of host runs its desired revision, and returns the host.
func servedAndRecorded(t testing.TB, ns, name string) *v1alpha1.PluginHost {
	t.Helper()
	h := &v1alpha1.PluginHost{}
	testutil.Eventually(t, wait, "PluginHost "+name+" rolled out and recorded", func() error { return servedRecorded(t, h, ns, name) })
	return h
}

// servedRecorded reads host into h and says why it is not yet Ready with its revision
// recorded, or nil.
func servedRecorded(t testing.TB, h *v1alpha1.PluginHost, ns, name string) error {
	if err := get(t, h, ns, name); err != nil {
		return err
	}
	if err := condition(h.Status.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRolledOut, h.Generation); err != nil {
		return err
	}
	if h.Status.AppliedRevision != h.Status.ConfigRevision || h.Status.Revision == 0 {
		return fmt.Errorf("applied %s, desired %s, revision %d", h.Status.AppliedRevision, h.Status.ConfigRevision, h.Status.Revision)
	}
	for _, e := range h.Status.History {
		if e.Revision == h.Status.Revision {
			return nil
		}
	}
	return fmt.Errorf("revision %d is not in status.history %+v", h.Status.Revision, h.Status.History)
}

// TestRevisionsHistoryPinRollback runs the real manager binary and a real pluginhost (its
// ConfigMap volume projected by kubeletsim): 15 Plugin edits, each waited for, are 15
// revisions whose stored config is what the pod reports applying, trimmed to
// spec.revisionHistoryLimit; a pin serves an older revision byte for byte and keeps the
// counter, a pin of an unknown or forged revision stalls, unpinning returns to the render,
// and a manager restart records nothing new.
func TestRevisionsHistoryPinRollback(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	mgr := startManagerBinary(t, "--watch-namespaces="+ns)

	const name, limit = "rev", 10
	host := newHost(ns, name, name)
	host.Spec.PollInterval = &metav1.Duration{Duration: 100 * time.Millisecond}
	plugin := newPlugin(ns, "counter", name, 1)
	create(t, host, plugin)
	pod := startPod(t, ns, name, name+"-0")
	pluginCondition(t, ns, "counter", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	h := servedAndRecorded(t, ns, name)
	first := h.Status.Revision

	// 15 edits, each waited for: each is a new revision, the pod's applied bytes.
	applied := map[int64]string{}
	for i := 2; i <= 16; i++ {
		update(t, plugin, func(p *v1alpha1.Plugin) { p.Spec.Options.Increment = ptr.To(int32(i)) })
		testutil.Eventually(t, wait, fmt.Sprintf("edit %d rolled out", i-1), func() error {
			if err := servedRecorded(t, h, ns, name); err != nil {
				return err
			}
			e := findEntry(h, "counter")
			if e == nil || e.AppliedGeneration != plugin.Generation {
				return fmt.Errorf("the pods run generation %v of %d", e, plugin.Generation)
			}
			return nil
		})
		st, err := pod.status()
		if err != nil {
			t.Fatal(err)
		}
		if st.Revision != h.Status.ConfigRevision {
			t.Fatalf("edit %d: the pod runs %s, the host reports %s", i-1, st.Revision, h.Status.ConfigRevision)
		}
		applied[h.Status.Revision] = st.Revision
	}
	if got := h.Status.Revision - first; got != 15 {
		t.Errorf("15 edits made %d revisions (from %d to %d)", got, first, h.Status.Revision)
	}
	revs := hostRevisions(t, ns, name)
	if len(revs) != limit {
		t.Errorf("%d ControllerRevisions, want spec.revisionHistoryLimit's default %d", len(revs), limit)
	}
	for _, r := range revs {
		if metav1.GetControllerOf(&r.obj) == nil || metav1.GetControllerOf(&r.obj).UID != h.UID {
			t.Errorf("ControllerRevision %s is not controlled by the host", r.obj.Name)
		}
		if r.config == nil {
			t.Fatalf("revision %d has no config: %s", r.obj.Revision, r.omitted)
		}
		// What the pod reported applying is the hash of the stored bytes.
		if want, ok := applied[r.obj.Revision]; ok && sha(*r.config) != want {
			t.Errorf("revision %d stores a config of hash %s; the pod applied %s", r.obj.Revision, sha(*r.config), want)
		}
		if sha(*r.config) != r.revision {
			t.Errorf("revision %d: data.revision %s is not the hash of its config %s", r.obj.Revision, r.revision, sha(*r.config))
		}
	}
	if n := revs[0].obj.Revision; n != h.Status.Revision-limit+1 {
		t.Errorf("the oldest kept revision is %d, want %d: trimmed oldest first", n, h.Status.Revision-limit+1)
	}
	if len(h.Status.History) != limit || h.Status.History[0].Revision != h.Status.Revision ||
		h.Status.History[0].AppliedPods != 1 || h.Status.History[0].AppliedAt == nil {
		t.Errorf("status.history %+v: want %d entries, newest first, the newest applied by the pod", h.Status.History, limit)
	}
	latest := h.Status.ConfigRevision

	// The counter's value, to be kept across the pin.
	if code, _ := pod.call(t, http.MethodPost, "counter", "increment", `{"value": 1}`, ""); code != http.StatusOK {
		t.Fatalf("increment: %d", code)
	}
	_, value := pod.call(t, http.MethodGet, "counter", "get", "", "")
	if value == 0 {
		t.Fatal("the counter did not count")
	}

	// Pin an older revision: served byte for byte, the counter kept, the Plugin HostPinned.
	old := revs[2]
	update(t, h, func(h *v1alpha1.PluginHost) { h.Spec.PinnedRevision = strconv.FormatInt(old.obj.Revision, 10) })
	configMapData(t, ns, name, func(s string) error {
		if s != *old.config {
			return fmt.Errorf("serving %s, want revision %d", sha(s), old.obj.Revision)
		}
		return nil
	})
	h = servedAndRecorded(t, ns, name)
	if h.Status.ConfigRevision != old.revision || h.Status.PinnedRevision != old.obj.Revision || h.Status.Revision != old.obj.Revision {
		t.Errorf("pinned: configRevision %s, pinnedRevision %d, revision %d; want %s, %d", h.Status.ConfigRevision,
			h.Status.PinnedRevision, h.Status.Revision, old.revision, old.obj.Revision)
	}
	if st, err := pod.status(); err != nil || st.Revision != old.revision {
		t.Errorf("the pod runs %v (%v), want the pinned %s", st, err, old.revision)
	}
	// The generation the pods run is the one the pinned revision holds, read from the
	// revision itself (the manager keeps no revision's Plugins between reconciles).
	if e := findEntry(h, "counter"); e == nil || len(old.plugins) != 1 || e.AppliedGeneration != old.plugins[0].Generation {
		t.Errorf("pinned: the host's entry of counter is %+v; want appliedGeneration %+v, the generation revision %d holds", e, old.plugins, old.obj.Revision)
	}
	if _, v := pod.call(t, http.MethodGet, "counter", "get", "", ""); v != value {
		t.Errorf("the counter is %d after the pin, was %d", v, value)
	}
	pluginCondition(t, ns, "counter", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonHostPinned)
	pluginCondition(t, ns, "counter", v1alpha1.ConditionApplied, metav1.ConditionFalse, v1alpha1.ReasonHostPinned)
	// The Plugin's spec is not what runs until someone unpins: Failed. The host does what its
	// spec says: Current.
	waitKstatus(t, &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "counter"}}, "Plugin", kstatus.FailedStatus)
	waitKstatus(t, &v1alpha1.PluginHost{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}, "PluginHost", kstatus.CurrentStatus)
	if n := len(hostRevisions(t, ns, name)); n != limit {
		t.Errorf("pinning made %d ControllerRevisions, want %d: a pin records nothing", n, limit)
	}

	// A forged revision (the label and a controller reference to the host, made by someone
	// else) is not served: pinning it is PinnedRevisionNotFound.
	forged := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-forged", Labels: map[string]string{v1alpha1.LabelHost: name},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(h, v1alpha1.GroupVersion.WithKind("PluginHost"))}},
		Revision: 1000,
		Data: runtime.RawExtension{Raw: fmt.Appendf(nil, `{"revision":%q,"firstRendered":"2026-01-01T00:00:00Z","config":%q,"pluginCount":0}`,
			sha(`{"plugins":[]}`), `{"plugins":[]}`)},
	}
	create(t, forged)
	update(t, h, func(h *v1alpha1.PluginHost) { h.Spec.PinnedRevision = "1000" })
	h = hostCondition(t, ns, name, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonPinnedRevisionNotFound)
	if msg := findCondition(h.Status.Conditions, v1alpha1.ConditionStalled).Message; !strings.Contains(msg, `"1000"`) {
		t.Errorf("Stalled %q: want the pin named", msg)
	}
	waitKstatus(t, h, "PluginHost", kstatus.FailedStatus)
	if _, data := configMapData(t, ns, name, func(string) error { return nil }); data != *old.config {
		t.Errorf("an unknown pin changed the served configuration to %s", sha(data))
	}
	for _, e := range h.Status.History {
		if e.Name == forged.Name {
			t.Errorf("status.history lists the forged revision: %+v", e)
		}
	}

	// Unknown by number, then by hash.
	update(t, h, func(h *v1alpha1.PluginHost) { h.Spec.PinnedRevision = "999" })
	hostCondition(t, ns, name, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonPinnedRevisionNotFound)
	byHash := revs[4]
	update(t, h, func(h *v1alpha1.PluginHost) { h.Spec.PinnedRevision = byHash.revision[:len("sha256:")+12] })
	configMapData(t, ns, name, func(s string) error {
		if s != *byHash.config {
			return fmt.Errorf("serving %s, want revision %d", sha(s), byHash.obj.Revision)
		}
		return nil
	})
	servedAndRecorded(t, ns, name)

	// Unpin: back to the Plugins' render, the newest revision, without a new one.
	update(t, h, func(h *v1alpha1.PluginHost) { h.Spec.PinnedRevision = "" })
	p := pluginCondition(t, ns, "counter", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	h = servedAndRecorded(t, ns, name)
	if h.Status.ConfigRevision != latest || h.Status.PinnedRevision != 0 || p.Status.AppliedRevision != latest {
		t.Errorf("unpinned: configRevision %s, pinnedRevision %d, the Plugin's appliedRevision %s; want %s",
			h.Status.ConfigRevision, h.Status.PinnedRevision, p.Status.AppliedRevision, latest)
	}
	if _, v := pod.call(t, http.MethodGet, "counter", "get", "", ""); v != value {
		t.Errorf("the counter is %d after unpinning, was %d", v, value)
	}
	before := hostRevisions(t, ns, name)
	if len(before) != limit+1 { // the forged one is neither ours nor trimmed
		t.Errorf("%d ControllerRevisions with the label after unpinning, want %d and the forged one", len(before), limit)
	}

	// A restarted manager finds the served revision: it records and renumbers nothing.
	mgr.stop()
	restarted := time.Now()
	startManagerBinary(t, "--watch-namespaces="+ns)
	var poked time.Time
	testutil.Eventually(t, wait, "the restarted manager read the pod", func() error {
		// A converged host is read again only when something happens: poke it, once a
		// second, until a read lands after the restart (lastChecked is to the second).
		if time.Since(poked) > time.Second {
			poke(t, ns, name)
			poked = time.Now()
		}
		if err := get(t, h, ns, name); err != nil {
			return err
		}
		if len(h.Status.Pods) != 1 || !h.Status.Pods[0].LastChecked.After(restarted) {
			return fmt.Errorf("pods %+v", h.Status.Pods)
		}
		return nil
	})
	after := hostRevisions(t, ns, name)
	if len(after) != len(before) {
		t.Fatalf("%d ControllerRevisions after the restart, %d before", len(after), len(before))
	}
	for i := range after {
		if after[i].obj.UID != before[i].obj.UID || after[i].obj.Revision != before[i].obj.Revision {
			t.Errorf("revision %s: %d (%s) after the restart, %d (%s) before", after[i].obj.Name, after[i].obj.Revision,
				after[i].obj.UID, before[i].obj.Revision, before[i].obj.UID)
		}
	}
}

// TestRevisionsHoldNoCredentials: a revision holds the paths of a Plugin's credential files,
// never their content, and a configuration with inline credentials (the user's ConfigMap) is
// recorded without its bytes: pinning it is PinnedRevisionNotFound, saying why.
func TestRevisionsHoldNoCredentials(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManagerBinary(t, "--watch-namespaces="+ns)

	const name, token, inline = "cred", "tok-3f9a1c0e5b7d", "inline-key-8e2b4d6f"
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth", Labels: consentLabels()},
		Data: map[string][]byte{"token": []byte(token)}}
	p := newPlugin(ns, "guarded", name, 1)
	p.Spec.Auth = &v1alpha1.PluginAuth{Method: v1alpha1.AuthMethodBearer, SecretRef: &v1alpha1.SecretReference{Name: "auth"}}
	create(t, secret, newHost(ns, name, name), p)
	advertise(t, ns, name)
	configMapData(t, ns, name, contains(`"guarded"`, "token_file"))

	user := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "user", Labels: consentLabels()},
		Data: map[string]string{"config.json": fmt.Sprintf(`{"plugins":[{"name":"inline","type":"counter","auth":{"method":"api-key","api_key":%q}}]}`, inline)}}
	create(t, user)
	h := &v1alpha1.PluginHost{}
	if err := get(t, h, ns, name); err != nil {
		t.Fatal(err)
	}
	update(t, h, func(h *v1alpha1.PluginHost) { h.Spec.ConfigMapRef = &v1alpha1.ConfigMapKeyReference{Name: "user"} })
	configMapData(t, ns, name, contains(`"inline"`))

	var withInline storedRevision
	testutil.Eventually(t, wait, "two revisions recorded", func() error {
		revs := hostRevisions(t, ns, name)
		if len(revs) < 2 || revs[len(revs)-1].omitted == "" {
			return fmt.Errorf("%d revisions", len(revs))
		}
		withInline = revs[len(revs)-1]
		return nil
	})
	for _, r := range hostRevisions(t, ns, name) {
		raw := string(r.obj.Data.Raw)
		if strings.Contains(raw, token) || strings.Contains(raw, inline) {
			t.Errorf("ControllerRevision %s holds a credential: %s", r.obj.Name, raw)
		}
	}
	if withInline.config != nil || !strings.Contains(withInline.omitted, "inline") {
		t.Errorf("the revision with an inline credential: config %v, omitted %q", withInline.config, withInline.omitted)
	}
	update(t, h, func(h *v1alpha1.PluginHost) { h.Spec.PinnedRevision = strconv.FormatInt(withInline.obj.Revision, 10) })
	h = hostCondition(t, ns, name, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonPinnedRevisionNotFound)
	if msg := findCondition(h.Status.Conditions, v1alpha1.ConditionStalled).Message; !strings.Contains(msg, "without its configuration") {
		t.Errorf("Stalled %q: want why the revision cannot be served", msg)
	}

	// Pinned, the credentials are the current ones: the pinned revision's entry of the
	// guarded Plugin gets the Secret's token, and loses it with the Secret owner's consent.
	var guarded storedRevision
	for _, r := range hostRevisions(t, ns, name) {
		if r.config != nil && strings.Contains(*r.config, `"guarded"`) && !strings.Contains(*r.config, `"inline"`) {
			guarded = r
		}
	}
	if guarded.config == nil {
		t.Fatal("no revision holds the guarded Plugin alone")
	}
	update(t, h, func(h *v1alpha1.PluginHost) { h.Spec.PinnedRevision = strconv.FormatInt(guarded.obj.Revision, 10) })
	configMapData(t, ns, name, func(s string) error {
		if s != *guarded.config {
			return fmt.Errorf("serving %s, want revision %d", sha(s), guarded.obj.Revision)
		}
		return nil
	})
	creds := &corev1.Secret{}
	testutil.Eventually(t, wait, "the guarded Plugin's token in "+name+"-credentials", func() error {
		if err := get(t, creds, ns, name+"-credentials"); err != nil {
			return err
		}
		if string(creds.Data["guarded.token"]) != token {
			return fmt.Errorf("keys %v", slices.Collect(maps.Keys(creds.Data)))
		}
		return nil
	})
	update(t, secret, func(s *corev1.Secret) { delete(s.Labels, v1alpha1.LabelPluginAuth) })
	_, served := configMapData(t, ns, name, lacks(`"guarded"`))
	testutil.Eventually(t, wait, "the token gone from "+name+"-credentials", func() error {
		if err := get(t, creds, ns, name+"-credentials"); err != nil {
			return err
		}
		if _, ok := creds.Data["guarded.token"]; ok {
			return errors.New("still there")
		}
		return nil
	})
	// Still pinned; what is served is recorded (here the same bytes as the first, empty,
	// revision: found again, not recorded twice).
	testutil.Eventually(t, wait, "the revoked configuration recorded, still pinned", func() error {
		if err := get(t, h, ns, name); err != nil {
			return err
		}
		if h.Status.PinnedRevision != guarded.obj.Revision || h.Status.ConfigRevision != sha(served) ||
			h.Status.Revision == 0 || h.Status.Revision == guarded.obj.Revision {
			return fmt.Errorf("pinnedRevision %d, revision %d (%s)", h.Status.PinnedRevision, h.Status.Revision, h.Status.ConfigRevision)
		}
		return nil
	})
	if n := len(hostRevisions(t, ns, name)); n != 3 {
		t.Errorf("%d revisions, want 3: the revocation served recorded bytes", n)
	}
}

// findEntry returns host's status.plugins entry of a Plugin, or nil.
func findEntry(h *v1alpha1.PluginHost, name string) *v1alpha1.SelectedPluginStatus {
	for i := range h.Status.Plugins {
		if h.Status.Plugins[i].Name == name {
			return &h.Status.Plugins[i]
		}
	}
	return nil
}

// TestRevisionNameTakenAfterTheConfigIsServed: someone else's object holds the
// ControllerRevision name of a host's next configuration. That name is known only once the
// configuration is rendered, so the ConfigMap is written and the pods get it (the push)
// before the conflict is found: the pods serve it, so the Plugin is Ready for its new
// generation, and the host reports ChildConflict, Stalled, until the name is free; then it
// records the revision (docs/troubleshooting.md).
func TestRevisionNameTakenAfterTheConfigIsServed(t *testing.T) {
	needEnv(t)
	ns := newNamespace(t)
	startManager(t, ns, testOptions())
	const name = "taken"
	host := newHost(ns, name, name)
	host.Spec.PollInterval = &metav1.Duration{Duration: 100 * time.Millisecond}
	plugin := newPlugin(ns, "counter", name, 1)
	create(t, host, plugin)
	pod := startPod(t, ns, name, name+"-0")
	pluginCondition(t, ns, "counter", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)

	// The next configuration's bytes, as the manager renders them (indented JSON).
	_, data := configMapData(t, ns, name, contains(`"increment": 1`))
	next := strings.Replace(data, `"increment": 1`, `"increment": 3`, 1)
	taken := name + "-" + strings.TrimPrefix(sha(next), "sha256:")[:16]
	foreign := &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: taken}, Revision: 1,
		Data: runtime.RawExtension{Raw: []byte(`{"mine":true}`)}}
	create(t, foreign)

	update(t, plugin, func(p *v1alpha1.Plugin) { p.Spec.Options.Increment = ptr.To(int32(3)) })
	configMapData(t, ns, name, func(s string) error {
		if s != next {
			return fmt.Errorf("rendered %s, want the predicted %s", sha(s), sha(next))
		}
		return nil
	})
	h := hostCondition(t, ns, name, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonChildConflict)
	if msg := findCondition(h.Status.Conditions, v1alpha1.ConditionStalled).Message; !strings.Contains(msg, taken) {
		t.Errorf("Stalled %q does not name ControllerRevision %s", msg, taken)
	}
	p := &v1alpha1.Plugin{}
	testutil.Eventually(t, wait, "Plugin counter Ready for its new generation", func() error {
		if err := get(t, p, ns, "counter"); err != nil {
			return err
		}
		c := findCondition(p.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonServing || c.ObservedGeneration != p.Generation {
			return fmt.Errorf("Ready %+v, generation %d", c, p.Generation)
		}
		return nil
	})
	if _, v := pod.call(t, http.MethodPost, "counter", "increment", `{"value": 1}`, ""); v != 3 {
		t.Errorf("the pod's counter after one increment is %d, want 3: the configuration was given to it before the conflict", v)
	}
	live := &appsv1.ControllerRevision{}
	if err := get(t, live, ns, taken); err != nil || string(live.Data.Raw) != `{"mine":true}` || len(live.OwnerReferences) != 0 {
		t.Errorf("the foreign ControllerRevision was changed: %+v, %v", live, err)
	}

	if err := env.Client.Delete(context.Background(), foreign); err != nil {
		t.Fatal(err)
	}
	pluginCondition(t, ns, "counter", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonServing)
	h = servedAndRecorded(t, ns, name)
	if !slices.ContainsFunc(hostRevisions(t, ns, name), func(r storedRevision) bool { return r.obj.Name == taken && r.revision == sha(next) }) {
		t.Errorf("no revision %s recorded once the name was free", taken)
	}
	if h.Status.ConfigRevision != sha(next) {
		t.Errorf("configRevision %s, want %s", h.Status.ConfigRevision, sha(next))
	}
}
