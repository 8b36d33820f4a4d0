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

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/controllers"
	"github.com/hotreload/plugin-operator/internal/testing/testenv"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

func TestParseFlagsDefaults(t *testing.T) {
	f, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := controllers.DefaultOptions()
	if !reflect.DeepEqual(f.controllers, want) {
		t.Errorf("controller options %+v, want %+v", f.controllers, want)
	}
	if f.metricsAddr != ":8443" || !f.metricsSecure || f.probeAddr != ":8081" || f.leaderElect ||
		f.leaderElectionID != "plugin-operator.plugins.hotreload.io" || len(f.watchNamespaces) != 0 {
		t.Errorf("flags %+v", f)
	}
	if want.DefaultHostImage != "ghcr.io/hotreload/plugin-operator:dev" || !want.PodNudge || want.StatusPollInterval != time.Second ||
		want.StatusTimeout != 2*time.Second || want.MaxConcurrentProbes != 32 || want.MaxConcurrentReconciles != 16 || want.MaxStatusBytes != 256<<10 || len(want.AllowedHostImages) != 0 {
		t.Errorf("defaults %+v differ from the documented contract", want)
	}
}

func TestParseFlags(t *testing.T) {
	f, err := parseFlags([]string{
		"--watch-namespaces= team-a, team-b ,,", "--pod-nudge=false", "--status-poll-interval=250ms",
		"--status-timeout=500ms", "--max-concurrent-probes=2", "--default-host-image=example.com/h:1",
		"--leader-elect", "--metrics-bind-address=0", "--zap-log-level=debug",
		"--max-status-bytes=4096", "--allowed-host-images= example.com/h:2, registry.example.com/team/* ,",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := f.controllers
	if strings.Join(f.watchNamespaces, "|") != "team-a|team-b" || c.PodNudge || c.StatusPollInterval != 250*time.Millisecond ||
		c.StatusTimeout != 500*time.Millisecond || c.MaxConcurrentProbes != 2 || c.DefaultHostImage != "example.com/h:1" ||
		!f.leaderElect || f.metricsAddr != "0" || c.MaxStatusBytes != 4096 ||
		strings.Join(c.AllowedHostImages, "|") != "example.com/h:2|registry.example.com/team/*" {
		t.Errorf("flags %+v", f)
	}
	for _, bad := range [][]string{{"--status-poll-interval=0s"}, {"--max-concurrent-probes=0"}, {"--max-status-bytes=0"}, {"--nope"}, {"extra"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := parseFlags([]string{"--help"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
}

// The manager's own pods, which host NetworkPolicies admit to the operational port: the
// namespace from the downward API's POD_NAMESPACE unless the flag says otherwise, labels
// from the flag; an empty or malformed label list is refused, naming the flag.
func TestManagerPodFlags(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "ops-system")
	f, err := parseFlags([]string{"--manager-pod-labels=app.kubernetes.io/name=plugin-operator,control-plane=controller-manager"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"app.kubernetes.io/name": "plugin-operator", "control-plane": "controller-manager"}
	if f.controllers.ManagerNamespace != "ops-system" || !reflect.DeepEqual(f.controllers.ManagerPodLabels, want) {
		t.Errorf("namespace %q labels %v", f.controllers.ManagerNamespace, f.controllers.ManagerPodLabels)
	}
	if f, err = parseFlags([]string{"--manager-namespace=other"}, io.Discard); err != nil || f.controllers.ManagerNamespace != "other" ||
		!reflect.DeepEqual(f.controllers.ManagerPodLabels, controllers.DefaultOptions().ManagerPodLabels) {
		t.Errorf("--manager-namespace: %v %+v", err, f)
	}
	for _, bad := range []string{"--manager-pod-labels=", "--manager-pod-labels=novalue"} {
		if _, err := parseFlags([]string{bad}, io.Discard); err == nil || !strings.Contains(err.Error(), "manager-pod-labels") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// TestRun starts the manager against a real API server: health probes answer, it takes the
// leader-election Lease, and its metrics endpoint is HTTPS and requires an authorized token.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the envtest API server")
	}
	env, err := testenv.Start(testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})
	probeAddr, metricsAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testutil.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--kubeconfig=" + env.Kubeconfig, "--health-probe-bind-address=" + probeAddr,
			"--metrics-bind-address=" + metricsAddr, "--leader-elect", "--leader-election-namespace=default",
			"--watch-namespaces=default"}, logs)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		if t.Failed() {
			t.Logf("manager logs:\n%s", logs.String())
		}
	})

	testutil.Eventually(t, time.Minute, "probes", func() error {
		for _, path := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get("http://" + probeAddr + path)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", path, resp.Status)
			}
		}
		return nil
	})
	testutil.Eventually(t, time.Minute, "leader-election Lease", func() error {
		lease := &coordinationv1.Lease{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "plugin-operator.plugins.hotreload.io"}, lease); err != nil {
			return err
		}
		if ptr.Deref(lease.Spec.HolderIdentity, "") == "" {
			return errors.New("no holder")
		}
		return nil
	})

	// A ServiceAccount allowed to read /metrics, and its token.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "scraper"}}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "scraper-metrics"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "metrics-reader"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "default", Name: "scraper"}}}
	for _, o := range []client.Object{sa, role, binding} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}
	if err := env.Client.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatalf("requesting a token: %v", err)
	}

	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	scrape := func(token string) (int, string, error) {
		req, _ := http.NewRequest(http.MethodGet, "https://"+metricsAddr+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := insecure.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	testutil.Eventually(t, time.Minute, "metrics refuse anonymous scrapes", func() error {
		code, _, err := scrape("")
		if err != nil {
			return err
		}
		if code != http.StatusUnauthorized && code != http.StatusForbidden {
			return fmt.Errorf("anonymous scrape: %d", code)
		}
		return nil
	})
	testutil.Eventually(t, time.Minute, "metrics serve an authorized scrape", func() error {
		code, body, err := scrape(tr.Status.Token)
		if err != nil {
			return err
		}
		if code != http.StatusOK || !strings.Contains(body, "controller_runtime_reconcile_total") {
			return fmt.Errorf("authorized scrape: %d", code)
		}
		return nil
	})
	if resp, err := http.Get("http://" + metricsAddr + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("metrics served over plain HTTP")
		}
	}
}

// An --allowed-host-images entry that is not a registry, a repository prefix, a tagged or
// digested repository or "*" stops the manager before it starts, naming the entry.
func TestAllowedHostImagesFlagRefusesInvalidEntries(t *testing.T) {
	for _, entry := range []string{"registry.example.com/img*", "team/host"} {
		_, err := parseFlags([]string{"--allowed-host-images=registry.example.com/ok," + entry}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), `"`+entry+`"`) {
			t.Errorf("%s: %v, want an error naming the entry", entry, err)
		}
	}
	if err := run(context.Background(), []string{"--allowed-host-images=registry.example.com/img*"}, io.Discard); err == nil ||
		!strings.Contains(err.Error(), `"registry.example.com/img*"`) {
		t.Errorf("run: %v, want an error naming the entry", err)
	}
}
