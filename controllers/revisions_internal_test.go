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

package controllers

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

func testRevision(n int64, config string) *ownedRevision {
	c := config
	return &ownedRevision{
		obj:  &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "h-" + pluginconfig.Revision([]byte(config))[7:23]}, Revision: n},
		data: revisionData{Revision: pluginconfig.Revision([]byte(config)), Config: &c},
	}
}

// TestResolvePin: a pin by number or by hash prefix finds one recorded revision; anything
// else says why not, naming the pin.
func TestResolvePin(t *testing.T) {
	revs := []*ownedRevision{testRevision(3, `{"plugins":[]}`), testRevision(4, `{"plugins":[{"name":"a","type":"counter"}]}`)}
	omitted := testRevision(5, `{"plugins":[{"name":"k","type":"counter","auth":{"method":"api-key","api_key":"x"}}]}`)
	omitted.data.Config, omitted.data.ConfigOmitted = nil, "the entries of k carry inline credentials"
	revs = append(revs, omitted)
	// Two revisions whose hashes share a prefix: the pin must not pick one.
	twin := testRevision(6, `{"plugins":[ ]}`)
	twin.data.Revision = revs[0].data.Revision[:len("sha256:")+12] + strings.Repeat("0", 52)
	revs = append(revs, twin)

	for _, tc := range []struct {
		pin, want, why string
	}{
		{pin: "4", want: revs[1].obj.Name},
		{pin: revs[1].data.Revision, want: revs[1].obj.Name},
		{pin: revs[1].data.Revision[:len("sha256:")+12], want: revs[1].obj.Name},
		{pin: "9", why: `"9" names no recorded revision of this PluginHost (recorded: 4 revisions, 3 to 6)`},
		{pin: "sha256:ffffffffffff", why: "names no recorded revision"},
		{pin: revs[0].data.Revision[:len("sha256:")+12], why: "names 2 recorded revisions"},
		{pin: "5", why: "revision 5, recorded without its configuration (the entries of k carry inline credentials)"},
	} {
		got, why := resolvePin(tc.pin, revs)
		switch {
		case tc.want != "" && (got == nil || got.obj.Name != tc.want):
			t.Errorf("pin %q: got %v (%s), want %s", tc.pin, got, why, tc.want)
		case tc.want == "" && (got != nil || !strings.Contains(why, tc.why)):
			t.Errorf("pin %q: got %v, %q; want none, %q", tc.pin, got, why, tc.why)
		}
	}
}

// TestInlineCredentials: only entries with a credential inline are named; files are not
// credentials.
func TestInlineCredentials(t *testing.T) {
	cfg, err := pluginconfig.Decode([]byte(`{"plugins":[
		{"name":"files","type":"counter","auth":{"method":"bearer","token_file":"/var/run/plugins/secrets/files.token"}},
		{"name":"none","type":"counter"},
		{"name":"basic","type":"counter","auth":{"method":"basic","username":"u","password_file":"/p"}},
		{"name":"key","type":"counter","auth":{"method":"api-key","api_key":"k"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := inlineCredentials(cfg.Plugins); !slices.Equal(got, []string{"basic", "key"}) {
		t.Errorf("inlineCredentials = %v", got)
	}
}

// TestHistoryOf: newest first, at most n, with what the annotations recorded.
func TestHistoryOf(t *testing.T) {
	var revs []*ownedRevision
	for i := int64(1); i <= 12; i++ {
		r := testRevision(i, strings.Repeat(" ", int(i))+`{"plugins":[]}`)
		r.data.FirstRendered = metav1.NewTime(time.Date(2026, 12, 6, 21, 0, int(i), 0, time.UTC))
		r.data.PluginCount = int32(i)
		revs = append(revs, r)
	}
	revs[11].obj.Annotations = map[string]string{
		v1alpha1.RevisionAppliedPodsAnnotation: "2", v1alpha1.RevisionRefusedPodsAnnotation: "1",
		v1alpha1.RevisionAppliedAtAnnotation: "2026-12-06T21:01:00Z",
	}
	revs[10].obj.Annotations = map[string]string{v1alpha1.RevisionAppliedPodsAnnotation: "not a number"}
	h := historyOf(revs, MaxHistoryInStatus)
	if len(h) != MaxHistoryInStatus || h[0].Revision != 12 || h[9].Revision != 3 {
		t.Fatalf("history %+v: want revisions 12 to 3", h)
	}
	want := v1alpha1.RevisionHistoryEntry{Revision: 12, Hash: short(revs[11].data.Revision), Name: revs[11].obj.Name,
		FirstRendered: revs[11].data.FirstRendered, Plugins: 12, AppliedPods: 2, RefusedPods: 1,
		AppliedAt: &metav1.Time{Time: time.Date(2026, 12, 6, 21, 1, 0, 0, time.UTC)}}
	if !reflect.DeepEqual(h[0], want) {
		t.Errorf("newest entry %+v, want %+v", h[0], want)
	}
	if h[1].AppliedPods != 0 || h[1].AppliedAt != nil {
		t.Errorf("an unreadable annotation is reported as %+v", h[1])
	}
	if len(h[0].Hash) != len("sha256:")+12 {
		t.Errorf("hash %q is not the short form", h[0].Hash)
	}
}

// TestRBACCoversRevisions: the manager's ClusterRole lets it read, watch, create, patch and
// trim (delete) ControllerRevisions, and the cache selects them by the host label.
func TestRBACCoversRevisions(t *testing.T) {
	got := rbacRules(t)["apps/controllerrevisions"]
	for _, v := range []string{"get", "list", "watch", "create", "patch", "delete"} {
		if !slices.Contains(got, v) {
			t.Errorf("controllerrevisions: the RBAC markers grant %v, missing %q", got, v)
		}
	}
	found := false
	for o, by := range cacheOptions(nil).ByObject {
		if _, ok := o.(*appsv1.ControllerRevision); ok {
			found = true
			if by.Label == nil || by.Label.String() != v1alpha1.LabelHost {
				t.Errorf("the cache selects ControllerRevisions by %v, want the host label", by.Label)
			}
		}
	}
	if !found {
		t.Error("the cache does not select ControllerRevisions")
	}
}

// TestRevisionName: the name fits beside any host name that fits in a label value.
func TestRevisionName(t *testing.T) {
	host := &v1alpha1.PluginHost{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("h", 63)}}
	name := revisionName(host, pluginconfig.Revision([]byte("x")))
	if len(name) != 63+1+revisionHashDigits || !strings.HasPrefix(name, host.Name+"-") {
		t.Errorf("revisionName = %q", name)
	}
}

// TestStatusHistoryBounded: status.history at its largest (10 entries, the longest names,
// the largest numbers, every annotation set) stays under the 4 KiB that docs/security.md
// states, beside the 800 KiB of status.plugins.
func TestStatusHistoryBounded(t *testing.T) {
	host := &v1alpha1.PluginHost{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("h", 63)}}
	var revs []*ownedRevision
	for i := range 12 {
		r := testRevision(int64(1<<62+i), strings.Repeat(" ", i)+`{"plugins":[]}`)
		r.obj.Name = revisionName(host, r.data.Revision)
		r.data.FirstRendered = metav1.NewTime(time.Date(2026, 12, 6, 21, 0, i, 0, time.UTC))
		r.data.PluginCount = 1 << 30
		r.obj.Annotations = map[string]string{
			v1alpha1.RevisionAppliedPodsAnnotation: "2147483647", v1alpha1.RevisionRefusedPodsAnnotation: "2147483647",
			v1alpha1.RevisionAppliedAtAnnotation: "2026-12-06T21:01:00Z",
		}
		revs = append(revs, r)
	}
	b, err := json.Marshal(historyOf(revs, MaxHistoryInStatus))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("status.history at its largest: %d bytes", len(b))
	if len(b) > 4<<10 {
		t.Errorf("status.history at its largest is %d bytes, over the documented 4 KiB", len(b))
	}
}

// TestRevisionHeader: the header every reconcile decodes knows whether a config is there
// without keeping it, nor the Plugins; config and load read them from the object when the
// revision is served from.
func TestRevisionHeader(t *testing.T) {
	config := `{"plugins":[{"name":"a","type":"counter"}]}`
	for _, d := range []revisionData{
		{Revision: pluginconfig.Revision([]byte(config)), Config: &config, PluginCount: 1, Plugins: []revisionSource{{Name: "a", Generation: 3}}},
		{Revision: pluginconfig.Revision([]byte(config)), ConfigOmitted: "inline credentials", PluginCount: 1},
	} {
		raw, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var h revisionHeader
		if err := json.Unmarshal(raw, &h); err != nil {
			t.Fatal(err)
		}
		if bool(h.Config) != (d.Config != nil) || h.Revision != d.Revision || h.PluginCount != 1 || h.ConfigOmitted != d.ConfigOmitted {
			t.Errorf("header %+v of %s", h, raw)
		}
		o := &ownedRevision{obj: &appsv1.ControllerRevision{}, hasConfig: bool(h.Config)}
		o.obj.Data.Raw = raw
		got, ok, err := o.config(context.Background(), nil) // the data is at hand: no read
		if err != nil {
			t.Fatal(err)
		}
		if ok != (d.Config != nil) || (ok && got != config) {
			t.Errorf("config() = %q, %v of %s", got, ok, raw)
		}
		if err := o.load(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(o.data.Plugins, d.Plugins) {
			t.Errorf("load: Plugins %+v, want %+v, of %s", o.data.Plugins, d.Plugins, raw)
		}
	}
}
