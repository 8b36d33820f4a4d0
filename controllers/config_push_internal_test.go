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
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/host"
	"github.com/hotreload/plugin-operator/internal/hostapi"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
	"github.com/hotreload/plugin-operator/pkg/plugins/counter"
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

// pushPod is a running pod whose ops port is srv's.
func pushPod(t *testing.T, srv *httptest.Server) *corev1.Pod {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "h-0"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "pluginhost", Ports: []corev1.ContainerPort{{Name: OpsPortName, ContainerPort: int32(port)}}}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: u.Hostname()},
	}
}

// The runtime answers a push with its status: the manager reports the pod from it without
// reading /status again. The real runtime, over HTTP.
func TestConfigPushAnswerCarriesTheStatus(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("t0ken"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := host.New(host.Options{Registry: host.MustRegistry(counter.Factory{}), PushTokenFile: tokenFile, Logger: slog.New(slog.DiscardHandler)})
	seed, err := os.ReadFile("../internal/pluginconfig/testdata/seed-full.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Apply(seed); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.OpsHandler())
	t.Cleanup(srv.Close)
	step2, err := os.ReadFile("../internal/pluginconfig/testdata/seed-step2.json")
	if err != nil {
		t.Fatal(err)
	}
	push := &configPush{data: step2, revision: pluginconfig.Revision(step2), sequence: 7}

	result, st, err := newConfigPusher(time.Second, 0).push(context.Background(), pushPod(t, srv), push, []byte("t0ken"))
	if err != nil || result != pushApplied {
		t.Fatalf("push: %s, %v", result, err)
	}
	if st == nil || st.Revision != push.revision || st.Sequence != 7 || st.Reloads.Applied != 2 {
		t.Fatalf("status in the answer: %+v, want revision %s at sequence 7 after 2 applies", st, push.revision)
	}
	result, st, err = newConfigPusher(time.Second, 0).push(context.Background(), pushPod(t, srv), push, []byte("t0ken"))
	if err != nil || result != pushUnchanged || st == nil || st.Revision != push.revision {
		t.Fatalf("the same push again: %s, status %+v, %v", result, st, err)
	}
}

// An older runtime answers without its status (the manager then reads /status); a hostile
// one gets no further than a failed push.
func TestConfigPushAnswers(t *testing.T) {
	rev := pluginconfig.Revision([]byte("{}"))
	for _, tc := range []struct {
		name       string
		code       int
		body       string
		maxBytes   int64
		wantResult string
		wantStatus bool
		wantErr    string
	}{
		{name: "older runtime", code: 200, body: `{"revision":"` + rev + `","sequence":7}`, wantResult: pushApplied},
		{name: "with status", code: 200, body: `{"revision":"` + rev + `","sequence":7,"unchanged":true,"status":{"revision":"` + rev + `","sequence":7}}`, wantResult: pushUnchanged, wantStatus: true},
		{name: "status with a bad revision", code: 200, body: `{"revision":"` + rev + `","sequence":7,"status":{"revision":"sha256:../../etc"}}`, wantResult: pushFailed, wantErr: "revision is not a sha256"},
		{name: "answer too large", code: 200, body: `{"revision":"` + rev + `","sequence":7,"status":{"revision":"` + rev + `"}}`, maxBytes: 64, wantResult: pushFailed, wantErr: "over 64 bytes"},
		{name: "another revision", code: 200, body: `{"revision":"sha256:00","sequence":7}`, wantResult: pushFailed, wantErr: "unexpected answer"},
		{name: "stale", code: 409, body: `{"error":"older"}`, wantResult: pushStale, wantErr: "409"},
		{name: "refused", code: 422, body: `{"error":"no"}`, wantResult: pushRefused, wantErr: "422"},
		{name: "no push here", code: 404, body: `404 page not found`, wantResult: pushUnsupported, wantErr: "404"},
		{name: "push off", code: 403, body: `{"error":"off"}`, wantResult: pushUnsupported, wantErr: "403"},
		{name: "unavailable", code: 503, body: `{"error":"draining"}`, wantResult: pushFailed, wantErr: "503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get(hostapi.PushStatusHeader) != "1" || r.Header.Get(hostapi.SequenceHeader) != "7" || r.Header.Get("Authorization") != "Bearer tok" {
					t.Errorf("push request headers: %v", r.Header)
				}
				w.WriteHeader(tc.code)
				_, _ = io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			push := &configPush{data: []byte("{}"), revision: rev, sequence: 7}
			result, st, err := newConfigPusher(time.Second, tc.maxBytes).push(context.Background(), pushPod(t, srv), push, []byte("tok"))
			if result != tc.wantResult || (st != nil) != tc.wantStatus {
				t.Errorf("result %s, status %+v; want %s, status %v", result, st, tc.wantResult, tc.wantStatus)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
