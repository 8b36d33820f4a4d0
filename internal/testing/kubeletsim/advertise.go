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

package kubeletsim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
	"github.com/hotreload/plugin-operator/internal/typeschema"
	"github.com/hotreload/plugin-operator/pkg/plugins/counter"
	"github.com/hotreload/plugin-operator/pkg/plugins/ratelimit"
)

// BuiltinTypesJSON is the types array of the project's pluginhost /status, as its pods
// advertise it.
var BuiltinTypesJSON = func() string {
	b, err := json.Marshal(typeschema.Declarations(counter.Factory{}, ratelimit.Factory{}))
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// Advertise stands in for a host pod of the default image without running a pluginhost: a
// pod of host, controlled by a ReplicaSet of its Deployment (EnsureReplicaSet), running but not ready, whose /status answers
// version 1 with the built-in types and no applied revision. The manager records the types
// from it, so that the host's Plugins are checked and rendered; it reports the pod as
// running nothing yet. It returns once the PluginHost's status.types is set.
func Advertise(t testing.TB, c client.Client, ns, host string) {
	t.Helper()
	AdvertiseTypes(t, c, ns, host, BuiltinTypesJSON)
}

// AdvertiseTypes is Advertise with other types: typesJSON is the JSON array of
// hostapi.TypeInfo the pod's /status answers with.
func AdvertiseTypes(t testing.TB, c client.Client, ns, host, typesJSON string) {
	t.Helper()
	const wait = time.Minute
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	body := `{"version":1,"revision":"","ready":false,"types":` + typesJSON + `}`
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	deploy := &appsv1.Deployment{}
	testutil.Eventually(t, wait, "Deployment "+host, func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: host}, deploy)
	})
	// As the Deployment controller would: through a ReplicaSet of the current template.
	rs, err := EnsureReplicaSet(ctx, c, deploy, 1)
	if err != nil {
		t.Fatal(err)
	}
	pod := NewPod(rs, host+"-types")
	for i := range pod.Spec.Containers[0].Ports {
		pod.Spec.Containers[0].Ports[i].ContainerPort = int32(ln.Addr().(*net.TCPAddr).Port)
	}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if err := MarkPodRunning(ctx, c, pod, false, 0); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, wait, "PluginHost "+host+" records the advertised types", func() error {
		h := &v1alpha1.PluginHost{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: host}, h); err != nil {
			return err
		}
		if len(h.Status.Types) == 0 {
			return errors.New("status.types is empty")
		}
		return nil
	})
}
