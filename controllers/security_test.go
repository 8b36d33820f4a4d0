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
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

func TestTrustedPod(t *testing.T) {
	gvDeploy, gvRS := appsv1.SchemeGroupVersion.WithKind("Deployment"), appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "h", UID: "deploy-uid"}}
	other := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "other", UID: "other-uid"}}
	rs := func(name string, uid types.UID, owner *appsv1.Deployment) *appsv1.ReplicaSet {
		r := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, UID: uid}}
		if owner != nil {
			r.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(owner, gvDeploy)}
		}
		return r
	}
	sets := map[string]*appsv1.ReplicaSet{
		"h-abc":   rs("h-abc", "rs-uid", deploy),
		"h-other": rs("h-other", "rs-other-uid", other),
		"h-orph":  rs("h-orph", "rs-orph-uid", nil),
	}
	pod := func(refs ...metav1.OwnerReference) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{v1alpha1.LabelHost: "h"}, OwnerReferences: refs}}
	}
	ctrlRef := func(o metav1.Object, gvk schema.GroupVersionKind) metav1.OwnerReference {
		return *metav1.NewControllerRef(o, gvk)
	}
	notController := ctrlRef(sets["h-abc"], gvRS)
	notController.Controller = nil
	forgedUID := ctrlRef(sets["h-abc"], gvRS)
	forgedUID.UID = "forged"
	otherGroup := ctrlRef(sets["h-abc"], gvRS)
	otherGroup.APIVersion = "example.com/v1"
	for _, tc := range []struct {
		name   string
		pod    *corev1.Pod
		deploy *appsv1.Deployment
		want   bool
	}{
		{"through the host's ReplicaSet", pod(ctrlRef(sets["h-abc"], gvRS)), deploy, true},
		// The Deployment controller never makes such a pod: someone else did.
		{"controlled by the Deployment itself", pod(ctrlRef(deploy, gvDeploy)), deploy, false},
		{"labels only", pod(), deploy, false},
		{"a ReplicaSet of another Deployment", pod(ctrlRef(sets["h-other"], gvRS)), deploy, false},
		{"an orphaned ReplicaSet", pod(ctrlRef(sets["h-orph"], gvRS)), deploy, false},
		{"a ReplicaSet the cache does not hold", pod(ctrlRef(rs("h-gone", "gone", deploy), gvRS)), deploy, false},
		{"the right name, another UID", pod(forgedUID), deploy, false},
		{"an owner that is not the controller", pod(notController), deploy, false},
		{"another Deployment", pod(ctrlRef(other, gvDeploy)), deploy, false},
		{"a ReplicaSet of the host's Deployment, another API group", pod(otherGroup), deploy, false},
		{"no Deployment yet", pod(ctrlRef(sets["h-abc"], gvRS)), &appsv1.Deployment{}, false},
	} {
		if got := trustedPod(tc.pod, tc.deploy, sets); got != tc.want {
			t.Errorf("%s: trustedPod = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestTruncateText(t *testing.T) {
	long := strings.Repeat("é", 1000) // 2000 bytes
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{strings.Repeat("x", 30), 20, "xxxxx… (truncated)"},
	} {
		if got := truncateText(tc.in, tc.n); got != tc.want {
			t.Errorf("truncateText(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
	got := truncateText(long, MaxReportedTextBytes)
	if len(got) > MaxReportedTextBytes || !utf8.ValidString(got) || !strings.HasSuffix(got, "… (truncated)") {
		t.Errorf("truncated to %d bytes, valid UTF-8 %v: %q", len(got), utf8.ValidString(got), got[len(got)-20:])
	}
}

func TestValidRevision(t *testing.T) {
	good := "sha256:" + strings.Repeat("0a", 32)
	for rev, want := range map[string]bool{
		good:                                 true,
		strings.Repeat("0a", 32):             false,
		"sha256:" + strings.Repeat("0A", 32): false,
		"sha256:" + strings.Repeat("0a", 33): false,
		"sha256:abc":                         false,
		good + "\nInjected: line":            false,
	} {
		if got := validRevision(rev); got != want {
			t.Errorf("validRevision(%q) = %v, want %v", rev, got, want)
		}
	}
}

func TestImagePolicy(t *testing.T) {
	const def = "ghcr.io/hotreload/plugin-operator:v1"
	host := func(image string) *v1alpha1.PluginHost {
		return &v1alpha1.PluginHost{Spec: v1alpha1.PluginHostSpec{Image: image}}
	}
	for _, tc := range []struct {
		image   string
		allowed []string
		want    bool
	}{
		{"", nil, true},  // the default image
		{def, nil, true}, // named explicitly
		{"ghcr.io/hotreload/plugin-operator:v2", nil, false},
		{"evil.example.com/steal:latest", nil, false},
		{"example.com/h:2", []string{"example.com/h:2"}, true},
		{"example.com/h:3", []string{"example.com/h:2"}, false},
		{"registry.example.com/team/host:v9", []string{"registry.example.com/team/*"}, true},
		{"registry.example.com/team-evil/host:v9", []string{"registry.example.com/team/*"}, false},
		{"anything.example/x", []string{"*"}, true},
	} {
		msg := imageRefusal(host(tc.image), def, tc.allowed)
		if (msg == "") != tc.want {
			t.Errorf("image %q, allowed %q: refusal %q, want allowed=%v", tc.image, tc.allowed, msg, tc.want)
		}
		if msg != "" && (!strings.Contains(msg, strconv.Quote(tc.image)) || !strings.Contains(msg, "--allowed-host-images") ||
			!strings.Contains(msg, strconv.Quote(def))) {
			t.Errorf("refusal %q does not name the image, the flag and the default image", msg)
		}
	}
}

// statusServer serves GET /status with handler on a loopback port; pod is a running pod
// pointing at it.
func statusServer(t *testing.T, handler http.HandlerFunc) *corev1.Pod {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	host, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-" + port},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "host", Ports: []corev1.ContainerPort{{Name: HTTPPortName, ContainerPort: int32(p)}}}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: host},
	}
}

// TestStatusReaderBounds: a pod's reply is read only up to the bound, a redirect is not
// followed, and a malformed revision is refused, each with an error that says so.
func TestStatusReaderBounds(t *testing.T) {
	const limit = 4096
	rev := "sha256:" + strings.Repeat("ab", 32)
	var redirectTargetHits atomic.Int32
	target := statusServer(t, func(w http.ResponseWriter, _ *http.Request) {
		redirectTargetHits.Add(1)
		fmt.Fprintf(w, `{"revision":%q}`, rev)
	})
	targetAddr, _ := podAddress(target)
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		wantErr string
	}{
		{"well-formed", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, `{"revision":%q,"ready":true}`, rev) }, ""},
		{"over the bound", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, `{"revision":%q,"lastError":"%s"}`, rev, strings.Repeat("x", limit))
		}, fmt.Sprintf("over %d bytes (--max-status-bytes)", limit)},
		{"endless", func(w http.ResponseWriter, r *http.Request) {
			chunk := []byte(strings.Repeat("x", 32<<10))
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, fmt.Sprintf("over %d bytes (--max-status-bytes)", limit)},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://"+targetAddr+"/status", http.StatusFound)
		}, "HTTP 302"},
		{"malformed revision", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, `{"revision":"%s"}`, strings.Repeat("r", 2000))
		}, "revision is not a sha256: revision"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newStatusReader(30*time.Second, 2, 1, limit)
			st, err := r.read(context.Background(), statusServer(t, tc.handler))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("read: %v", err)
			case tc.wantErr == "" && (st.Revision != rev || !st.Ready):
				t.Errorf("status %+v", st)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	if n := redirectTargetHits.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}

// TestStatusReaderFairShare: the pods of one host that never answer hold only that host's
// share of the probe slots, so another host's reconcile reads its pod meanwhile.
func TestStatusReaderFairShare(t *testing.T) {
	release := make(chan struct{})
	var stuck atomic.Int32
	slow := func(w http.ResponseWriter, r *http.Request) {
		stuck.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	rev := "sha256:" + strings.Repeat("cd", 32)
	fast := statusServer(t, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, `{"revision":%q}`, rev) })
	var slowPods []*corev1.Pod
	for range 6 {
		slowPods = append(slowPods, statusServer(t, slow))
	}
	// 4 slots, 2 workers: each host's reconcile may hold 2.
	r := newStatusReader(time.Minute, 4, 2, DefaultMaxStatusBytes)
	slowDone := make(chan []probeResult, 1)
	go func() { slowDone <- r.readAll(context.Background(), slowPods) }()
	testutil.Eventually(t, time.Minute, "the slow host's requests in flight", func() error {
		if n := stuck.Load(); n < 2 {
			return fmt.Errorf("%d in flight", n)
		}
		return nil
	})
	if n := stuck.Load(); n != 2 {
		t.Fatalf("%d requests of the slow host in flight, want its share of 2", n)
	}
	// Before fair shares the slow host held all 4 slots and this waited for its minute.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := r.readAll(ctx, []*corev1.Pod{fast})
	if res[0].err != nil || res[0].status.Revision != rev {
		t.Errorf("the other host's pod: %+v, %v", res[0].status, res[0].err)
	}
	if n := stuck.Load(); n != 2 {
		t.Errorf("%d requests of the slow host in flight, want 2", n)
	}
	close(release)
	for i, pr := range <-slowDone {
		if pr.err == nil {
			t.Errorf("slow pod %d: want an error (empty reply), got %+v", i, pr.status)
		}
	}
}

// TestImageRules: --allowed-host-images entries are parsed image references, matched by
// registry, repository (whole path segments), tag and digest; an entry that is not one of
// the stated forms is an error of the manager's start naming it.
func TestImageRules(t *testing.T) {
	const def = "ghcr.io/hotreload/plugin-operator:v1"
	dig := "sha256:" + strings.Repeat("ab", 32)
	other := "sha256:" + strings.Repeat("cd", 32)
	for _, tc := range []struct {
		entry, image string
		want         bool
	}{
		// A repository prefix: whole path segments, any tag or digest.
		{"reg.example.com/img", "reg.example.com/img:v2", true},
		{"reg.example.com/img", "reg.example.com/img", true},
		{"reg.example.com/img", "reg.example.com/img@" + dig, true},
		{"reg.example.com/img", "reg.example.com/img/sub:v1", true},
		{"reg.example.com/img", "reg.example.com/img-evil:v1", false},
		{"reg.example.com/img", "reg.example.com/imgx", false},
		{"reg.example.com/img", "other.example.com/img:v1", false},
		{"reg.example.com/team/*", "reg.example.com/team/host:v9", true},
		{"reg.example.com/team/*", "reg.example.com/team-evil/host:v9", false},
		{"reg.example.com/team/*", "reg.example.com/team:v9", true},
		// A registry.
		{"reg.example.com", "reg.example.com/any/thing:v1", true},
		{"reg.example.com/*", "reg.example.com/any:v1", true},
		{"reg.example.com", "reg.example.com.evil.io/x:v1", false},
		{"reg.example.com", "evil.io/reg.example.com/x:v1", false},
		{"localhost:5000", "localhost:5000/x:v1", true},
		{"localhost:5000", "localhost/x:v1", false},
		// A tag: that tag only; an image by digest does not match it.
		{"reg.example.com/img:v2", "reg.example.com/img:v2", true},
		{"reg.example.com/img:v2", "reg.example.com/img:v3", false},
		{"reg.example.com/img:v2", "reg.example.com/img:v2-evil", false},
		{"reg.example.com/img:v2", "reg.example.com/img/sub:v2", false},
		{"reg.example.com/img:v2", "reg.example.com/img:v2@" + other, false},
		{"reg.example.com/img:latest", "reg.example.com/img", true},
		// A digest: that digest only, whatever tag the image also names.
		{"reg.example.com/img@" + dig, "reg.example.com/img@" + dig, true},
		{"reg.example.com/img@" + dig, "reg.example.com/img:v1@" + dig, true},
		{"reg.example.com/img@" + dig, "reg.example.com/img@" + other, false},
		{"reg.example.com/img@" + dig, "reg.example.com/img:v1", false},
		// Docker Hub, named explicitly, and its short forms in spec.image.
		{"docker.io/library/ubuntu", "ubuntu:24.04", true},
		{"docker.io/library/ubuntu", "index.docker.io/library/ubuntu", true},
		{"docker.io/library/ubuntu", "ubuntu-evil", false},
		// Anything.
		{"*", "whatever.example/x:y", true},
		// An image that is not a reference matches nothing but "*".
		{"reg.example.com", "reg.example.com/UPPER:v1", false},
	} {
		if err := ValidateAllowedHostImages([]string{tc.entry}); err != nil {
			t.Errorf("entry %q refused: %v", tc.entry, err)
			continue
		}
		if got := imageAllowed(tc.image, def, []string{tc.entry}); got != tc.want {
			t.Errorf("entry %q, image %q: allowed %v, want %v", tc.entry, tc.image, got, tc.want)
		}
	}
	if !imageAllowed(def, def, nil) {
		t.Error("the default image is refused")
	}

	for _, entry := range []string{
		"reg.example.com/img*", "reg.example.com/*/img", "reg.example.com/img:v*", "*.example.com/img",
		"ubuntu", "library/ubuntu:24.04", "team/host", // no registry: never read as Docker Hub by mistake
		"reg.example.com/Img", "reg.example.com/img:", "reg.example.com/img@sha256:short", "reg.example.com/img:v1/*",
		"reg.example.com/", "reg.example.com/img@" + dig + "/*",
	} {
		err := ValidateAllowedHostImages([]string{"reg.example.com/ok", entry})
		if err == nil || !strings.Contains(err.Error(), strconv.Quote(entry)) || !strings.Contains(err.Error(), "--allowed-host-images") {
			t.Errorf("entry %q: error %v, want one naming the flag and the entry", entry, err)
		}
		// So the manager does not start with it.
		opts := DefaultOptions()
		opts.AllowedHostImages = []string{entry}
		if _, err := NewManager(context.Background(), &rest.Config{Host: "http://127.0.0.1:1"}, ManagerOptions{Controllers: opts}); err == nil ||
			!strings.Contains(err.Error(), strconv.Quote(entry)) {
			t.Errorf("NewManager with entry %q: %v, want an error naming it", entry, err)
		}
		// Nor does it admit anything.
		if imageAllowed("reg.example.com/img-evil:v1", def, []string{entry}) {
			t.Errorf("invalid entry %q admits reg.example.com/img-evil:v1", entry)
		}
	}
}
