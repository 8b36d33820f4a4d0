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
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// countingMapper counts the RESTMapping calls that reach it.
type countingMapper struct {
	meta.RESTMapper
	calls int
}

func (m *countingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	m.calls++
	return m.RESTMapper.RESTMapping(gk, versions...)
}

func TestMappingCacheRemembersMappingsNotErrors(t *testing.T) {
	plugins := schema.GroupVersion{Group: "plugins.hotreload.io", Version: "v1alpha1"}
	defaults := meta.NewDefaultRESTMapper([]schema.GroupVersion{plugins})
	defaults.Add(plugins.WithKind("Plugin"), meta.RESTScopeNamespace)
	inner := &countingMapper{RESTMapper: defaults}
	c := newMappingCache(inner)

	gk := schema.GroupKind{Group: plugins.Group, Kind: "Plugin"}
	for range 3 {
		m, err := c.RESTMapping(gk, "v1alpha1")
		if err != nil {
			t.Fatal(err)
		}
		if m.Resource.Resource != "plugins" || m.Scope.Name() != meta.RESTScopeNameNamespace {
			t.Fatalf("mapping %+v, want plugins, namespaced", m)
		}
		m.Resource.Resource = "changed by a caller" // a copy: the cache keeps its own
	}
	if inner.calls != 1 {
		t.Errorf("the inner mapper answered %d times, want once", inner.calls)
	}
	if _, err := c.RESTMapping(gk); err != nil || inner.calls != 2 {
		t.Errorf("another version list is another lookup: err %v, %d calls, want 2", err, inner.calls)
	}

	missing := schema.GroupKind{Group: plugins.Group, Kind: "Missing"}
	for range 2 {
		if _, err := c.RESTMapping(missing, "v1alpha1"); !meta.IsNoMatchError(err) {
			t.Fatalf("err %v, want a no-match error", err)
		}
	}
	if inner.calls != 4 {
		t.Errorf("an unknown kind reached the inner mapper %d times in all, want every time (4 calls)", inner.calls)
	}
}
