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
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/hostapi"
	"github.com/hotreload/plugin-operator/internal/typeschema"
)

// hostTypes is what a reconcile knows of the plugin types of a host's current image: the
// compiled set, or why there is none (Reason AwaitingHostTypes or HostTypesInvalid).
type hostTypes struct {
	// Set is nil until a pod of Image has advertised types the manager accepts.
	Set *typeschema.Set
	// Image is the image the host renders, whose types count.
	Image string
	// Reason and Message say why Set is nil.
	Reason, Message string
}

// advertisement is the types one running pod of a host advertised on /status.
type advertisement struct {
	Pod   string
	Types []hostapi.TypeInfo
}

// findAdvertisement picks, among a host's running trusted pods (sorted by name) and their
// /status answers, the first pod whose host container runs image and that answers with a
// /status version of 1 or more. preSDK names the pods of image that answered version 0: an
// image built before the plugin SDK, which never advertises types.
func findAdvertisement(image string, pods []*corev1.Pod, results []probeResult) (adv *advertisement, preSDK []string) {
	for i, pod := range pods {
		if len(pod.Spec.Containers) == 0 || pod.Spec.Containers[0].Image != image || i >= len(results) {
			continue
		}
		st := results[i].status
		switch {
		case results[i].err != nil || st == nil:
		case st.Version < 1:
			preSDK = append(preSDK, pod.Name)
		case adv == nil:
			adv = &advertisement{Pod: pod.Name, Types: st.Types}
		}
	}
	return adv, preSDK
}

// awaitingTypesMessage says what a host waits for before its Plugins can be checked.
func awaitingTypesMessage(host, image string, preSDK []string) string {
	if len(preSDK) > 0 {
		return fmt.Sprintf("PluginHost %s: pod %s of image %s answers /status without a version: the image was built before the plugin SDK and never advertises its plugin types, so its Plugins are not rendered; rebuild the image on pkg/pluginhost (docs/plugins.md) or set spec.image to the operator's pluginhost image",
			host, strings.Join(preSDK, ", "), image)
	}
	return fmt.Sprintf("PluginHost %s has not recorded the plugin types of image %s yet: waiting for a running pod of that image to advertise them on /status; the pods keep the last rendered configuration",
		host, image)
}

// typesToStatus converts declarations to status.types, each schema as canonical JSON
// (sorted keys, compact), as the API server returns it, so that a status compares equal to
// what it was written from.
func typesToStatus(types []hostapi.TypeInfo) []v1alpha1.PluginTypeStatus {
	if len(types) == 0 {
		return nil
	}
	out := make([]v1alpha1.PluginTypeStatus, 0, len(types))
	for _, t := range types {
		st := v1alpha1.PluginTypeStatus{Name: t.Name}
		for _, op := range t.Operations {
			st.Operations = append(st.Operations, v1alpha1.PluginOperationStatus{Name: op.Name, Method: op.Method, Mutating: op.Mutating})
		}
		if raw := canonicalJSON(t.OptionsSchema); raw != nil {
			st.OptionsSchema = &apiextensionsv1.JSON{Raw: raw}
		}
		out = append(out, st)
	}
	return out
}

// typesFromStatus converts status.types back to declarations.
func typesFromStatus(types []v1alpha1.PluginTypeStatus) []hostapi.TypeInfo {
	out := make([]hostapi.TypeInfo, 0, len(types))
	for _, t := range types {
		ti := hostapi.TypeInfo{Name: t.Name}
		for _, op := range t.Operations {
			ti.Operations = append(ti.Operations, hostapi.Operation{Name: op.Name, Method: op.Method, Mutating: op.Mutating})
		}
		if t.OptionsSchema != nil {
			ti.OptionsSchema = json.RawMessage(t.OptionsSchema.Raw)
		}
		out = append(out, ti)
	}
	return out
}

// sameTypes reports whether two status.types lists say the same, schemas compared as
// canonical JSON.
func sameTypes(a, b []v1alpha1.PluginTypeStatus) bool {
	ja, errA := json.Marshal(typesToStatus(typesFromStatus(a)))
	jb, errB := json.Marshal(typesToStatus(typesFromStatus(b)))
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// canonicalJSON re-encodes a JSON value with sorted keys and no spaces, numbers exact; nil
// for an absent or null value, or one that is not JSON.
func canonicalJSON(raw json.RawMessage) []byte {
	if t := bytes.TrimSpace(raw); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return out
}

// typesCache keeps compiled type sets by the digest of their declarations: hosts of one
// image share one, and a reconcile compiles only what it has not seen. It holds at most
// maxCachedTypeSets sets and starts over when full.
type typesCache struct {
	mu   sync.Mutex
	sets map[[sha256.Size]byte]*typeschema.Set
}

const maxCachedTypeSets = 64

// compile returns the compiled set of types, from the cache when it holds them.
func (c *typesCache) compile(types []hostapi.TypeInfo) (*typeschema.Set, error) {
	b, err := json.Marshal(types)
	if err != nil {
		return nil, err
	}
	key := sha256.Sum256(b)
	c.mu.Lock()
	set, ok := c.sets[key]
	c.mu.Unlock()
	if ok {
		return set, nil
	}
	set, err = typeschema.Compile(types)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sets == nil || len(c.sets) >= maxCachedTypeSets {
		c.sets = map[[sha256.Size]byte]*typeschema.Set{}
	}
	c.sets[key] = set
	return set, nil
}

// anyTypes stands for the types of a host that has not advertised them: every type is
// known and any options pass, so that only the rest of a configuration is checked.
type anyTypes struct{}

func (anyTypes) TypeNames() []string { return nil }

func (anyTypes) ValidateOptions(string, map[string]any, *field.Path) (bool, field.ErrorList) {
	return true, nil
}
