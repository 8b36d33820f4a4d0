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
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

func cachedConfigMap(rev string, seq uint64) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
		v1alpha1.ConfigRevisionAnnotation: rev, ConfigSequenceAnnotation: strconv.FormatUint(seq, 10)}}}
}

// A configuration keeps its sequence while its content stays (a restarted manager writes
// nothing); new content always gets a higher one than this manager handed out or the
// ConfigMap shows, whatever the clock and the cache say.
func TestConfigSequences(t *testing.T) {
	host := &v1alpha1.PluginHost{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "h", UID: "u1"}}
	t0 := time.Unix(1_800_000_000, 0)
	var s configSequences

	first := s.next(host, "A", nil, t0)
	if first != uint64(t0.UnixMicro()) {
		t.Fatalf("first sequence %d, want the time in microseconds %d", first, t0.UnixMicro())
	}
	s.rendered(host, "A", first)
	if got := s.next(host, "A", nil, t0.Add(time.Hour)); got != first {
		t.Fatalf("the same content again: %d, want %d", got, first)
	}
	// B, with the clock gone back an hour and the cache still showing nothing.
	b := s.next(host, "B", nil, t0.Add(-time.Hour))
	if b != first+1 {
		t.Fatalf("new content with the clock behind: %d, want %d", b, first+1)
	}
	s.rendered(host, "B", b)
	// Back to A while the cache still shows the first A: a new, higher sequence, never A's old one.
	if got := s.next(host, "A", cachedConfigMap("A", first), t0); got <= b {
		t.Fatalf("A again after B, with a stale cache: %d, want above %d", got, b)
	}

	// A restarted manager (nothing remembered) keeps the ConfigMap's sequence for the same
	// content, and goes above it for new content.
	var restarted configSequences
	if got := restarted.next(host, "B", cachedConfigMap("B", b), t0.Add(-time.Hour)); got != b {
		t.Fatalf("after a restart, the same content: %d, want %d", got, b)
	}
	if got := restarted.next(host, "C", cachedConfigMap("B", b), t0.Add(-time.Hour)); got != b+1 {
		t.Fatalf("after a restart, new content with the clock behind: %d, want %d", got, b+1)
	}
	// A host deleted and created again under the same name starts from its new ConfigMap.
	again := host.DeepCopy()
	again.UID = "u2"
	if got := s.next(again, "B", nil, t0.Add(-2*time.Hour)); got != uint64(t0.Add(-2*time.Hour).UnixMicro()) {
		t.Fatalf("a new incarnation of the host: %d", got)
	}
}
