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
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// testPlugin is a Plugin as the API server stores it after defaulting (the CRD defaults),
// changed by the mutators.
func testPlugin(name string, mutate ...func(*v1alpha1.Plugin)) v1alpha1.Plugin {
	p := v1alpha1.Plugin{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Generation: 1,
			Labels: map[string]string{"app": "demo"}},
		Spec: v1alpha1.PluginSpec{
			Type:      v1alpha1.PluginTypeCounter,
			Transport: v1alpha1.TransportHTTP,
			Enabled:   ptr.To(true),
			Auth:      &v1alpha1.PluginAuth{Method: v1alpha1.AuthMethodNone},
			Connection: &v1alpha1.ConnectionSpec{
				MaxConnections: ptr.To[int32](10), MaxIdleConnections: ptr.To[int32](5),
				IdleTimeout: "30s", ConnectionTimeout: "10s", RequestTimeout: "30s", KeepAlive: ptr.To(true),
			},
		},
	}
	for _, m := range mutate {
		m(&p)
	}
	return p
}

func withIncrement(n int32) func(*v1alpha1.Plugin) {
	return func(p *v1alpha1.Plugin) { p.Spec.Options = &v1alpha1.PluginOptions{Increment: &n} }
}

func withAuth(method v1alpha1.AuthMethod, secret string) func(*v1alpha1.Plugin) {
	return func(p *v1alpha1.Plugin) {
		p.Spec.Auth = &v1alpha1.PluginAuth{Method: method, SecretRef: &v1alpha1.SecretReference{Name: secret}}
	}
}

func encodeEntry(t *testing.T, pl pluginconfig.Plugin) string {
	t.Helper()
	b, err := json.Marshal(pl)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConvertPlugin(t *testing.T) {
	const dir = "/var/run/plugins/secrets"
	tests := []struct {
		name   string
		plugin v1alpha1.Plugin
		want   string
	}{{
		name:   "defaults filled by the CRD",
		plugin: testPlugin("counter-1"),
		want:   `{"name":"counter-1","type":"counter","transport":"http","enabled":true,"auth":{"method":"none"},"connection":{"max_connections":10,"max_idle_connections":5,"idle_timeout":"30s","connection_timeout":"10s","request_timeout":"30s","keep_alive":true}}`,
	}, {
		name: "defaults filled here when the spec omits them",
		plugin: v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "bare"},
			Spec: v1alpha1.PluginSpec{Type: v1alpha1.PluginTypeCounter}},
		want: `{"name":"bare","type":"counter","transport":"http","enabled":true,"auth":{"method":"none"},"connection":{"max_connections":10,"max_idle_connections":5,"idle_timeout":"30s","connection_timeout":"10s","request_timeout":"30s","keep_alive":true}}`,
	}, {
		name: "seed counter-1 with endpoint, options and tuned connection",
		plugin: testPlugin("counter-1", withIncrement(7), func(p *v1alpha1.Plugin) {
			p.Spec.Endpoint = "http://localhost:9001"
			p.Spec.Enabled = ptr.To(false)
			p.Spec.Connection.MaxConnections = ptr.To[int32](20)
			p.Spec.Connection.IdleTimeout = "1m30s"
			p.Spec.Connection.KeepAlive = ptr.To(false)
		}),
		want: `{"name":"counter-1","type":"counter","transport":"http","endpoint":"http://localhost:9001","enabled":false,"auth":{"method":"none"},"connection":{"max_connections":20,"max_idle_connections":5,"idle_timeout":"1m30s","connection_timeout":"10s","request_timeout":"30s","keep_alive":false},"options":{"increment":7}}`,
	}, {
		name:   "api-key reads its file, default header",
		plugin: testPlugin("k", withAuth(v1alpha1.AuthMethodAPIKey, "s")),
		want:   `{"name":"k","type":"counter","transport":"http","enabled":true,"auth":{"method":"api-key","header":"X-API-Key","api_key_file":"/var/run/plugins/secrets/k.api-key"},"connection":{"max_connections":10,"max_idle_connections":5,"idle_timeout":"30s","connection_timeout":"10s","request_timeout":"30s","keep_alive":true}}`,
	}, {
		name: "api-key with a custom header",
		plugin: testPlugin("k", withAuth(v1alpha1.AuthMethodAPIKey, "s"), func(p *v1alpha1.Plugin) {
			p.Spec.Auth.Header = "X-Token"
		}),
		want: `{"name":"k","type":"counter","transport":"http","enabled":true,"auth":{"method":"api-key","header":"X-Token","api_key_file":"/var/run/plugins/secrets/k.api-key"},"connection":{"max_connections":10,"max_idle_connections":5,"idle_timeout":"30s","connection_timeout":"10s","request_timeout":"30s","keep_alive":true}}`,
	}, {
		name:   "bearer",
		plugin: testPlugin("b", withAuth(v1alpha1.AuthMethodBearer, "s")),
		want:   `{"name":"b","type":"counter","transport":"http","enabled":true,"auth":{"method":"bearer","token_file":"/var/run/plugins/secrets/b.token"},"connection":{"max_connections":10,"max_idle_connections":5,"idle_timeout":"30s","connection_timeout":"10s","request_timeout":"30s","keep_alive":true}}`,
	}, {
		name:   "basic",
		plugin: testPlugin("u", withAuth(v1alpha1.AuthMethodBasic, "s")),
		want:   `{"name":"u","type":"counter","transport":"http","enabled":true,"auth":{"method":"basic","username_file":"/var/run/plugins/secrets/u.username","password_file":"/var/run/plugins/secrets/u.password"},"connection":{"max_connections":10,"max_idle_connections":5,"idle_timeout":"30s","connection_timeout":"10s","request_timeout":"30s","keep_alive":true}}`,
	}, {
		name: "unknown options pass through, numbers exact",
		plugin: testPlugin("x", func(p *v1alpha1.Plugin) {
			p.Spec.Options = &v1alpha1.PluginOptions{Increment: ptr.To[int32](2),
				Extra: map[string]json.RawMessage{"big": json.RawMessage(`12345678901234567890`)}}
		}),
		want: `{"name":"x","type":"counter","transport":"http","enabled":true,"auth":{"method":"none"},"connection":{"max_connections":10,"max_idle_connections":5,"idle_timeout":"30s","connection_timeout":"10s","request_timeout":"30s","keep_alive":true},"options":{"big":12345678901234567890,"increment":2}}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := convertPlugin(&tt.plugin, dir)
			if len(errs) > 0 {
				t.Fatalf("convertPlugin: %v", errs)
			}
			if s := encodeEntry(t, got); s != tt.want {
				t.Errorf("got\n%s\nwant\n%s", s, tt.want)
			}
		})
	}
}

func TestValidatePluginNamesPluginFields(t *testing.T) {
	tests := []struct {
		name   string
		plugin v1alpha1.Plugin
		want   []string // substrings of the error
	}{
		{name: "valid", plugin: testPlugin("ok", withIncrement(3))},
		{
			name:   "timeout over the runtime's 24h cap (admission allows it)",
			plugin: testPlugin("slow", func(p *v1alpha1.Plugin) { p.Spec.Connection.IdleTimeout = "48h" }),
			want:   []string{"spec.connection.idleTimeout", "at most 24h"},
		},
		{
			name: "option the counter does not know",
			plugin: testPlugin("extra", func(p *v1alpha1.Plugin) {
				p.Spec.Options = &v1alpha1.PluginOptions{Extra: map[string]json.RawMessage{"step": json.RawMessage(`2`)}}
			}),
			want: []string{"spec.options.step", "Unsupported value"},
		},
		{
			name:   "malformed duration (admission normally refuses it)",
			plugin: testPlugin("bad", func(p *v1alpha1.Plugin) { p.Spec.Connection.RequestTimeout = "soon" }),
			want:   []string{"spec.connection.requestTimeout", "Go duration"},
		},
	}
	reg := builtinTypes()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, errs := convertPlugin(&tt.plugin, DefaultSecretsMountPath)
			if len(errs) == 0 {
				errs = validatePlugin(&pl, reg)
			}
			if len(tt.want) == 0 {
				if len(errs) > 0 {
					t.Fatalf("unexpected errors: %v", errs)
				}
				return
			}
			if len(errs) == 0 {
				t.Fatalf("no error, want %q", tt.want)
			}
			msg := errs.ToAggregate().Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

// TestCredentialKeyBounded: a name that fits keeps <plugin>.<key> (existing installs keep
// their keys); a longer one gets a key that the API server accepts as a Secret key and a
// node as a file name, distinct for two names sharing a long prefix, and the rendered
// configuration names that very file.
func TestCredentialKeyBounded(t *testing.T) {
	secretKey := regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	for _, name := range []string{"demo", strings.Repeat("a", 253-len(".api-key"))} {
		if got := credentialKey(name, v1alpha1.SecretKeyAPIKey); got != name+".api-key" {
			t.Errorf("credentialKey(%d characters) = %q, want the name and the key", len(name), got)
		}
	}
	long := strings.Repeat("a", 120) + "." + strings.Repeat("b", 128) // 249 characters
	other := strings.Repeat("a", 120) + "." + strings.Repeat("c", 128)
	keys := map[string]bool{}
	for _, name := range []string{long, other, strings.Repeat("x", 253)} {
		for _, k := range []string{v1alpha1.SecretKeyAPIKey, v1alpha1.SecretKeyToken, v1alpha1.SecretKeyUsername, v1alpha1.SecretKeyPassword} {
			got := credentialKey(name, k)
			if len(got) > 200 || !secretKey.MatchString(got) || !strings.HasSuffix(got, "."+k) || !strings.HasPrefix(got, name[:100]+"_") {
				t.Errorf("credentialKey(%d characters, %s) = %q (%d): not a bounded Secret key", len(name), k, got, len(got))
			}
			if keys[got] {
				t.Errorf("key %q given twice", got)
			}
			keys[got] = true
		}
	}
	p := testPlugin(long, func(p *v1alpha1.Plugin) {
		p.Spec.Auth = &v1alpha1.PluginAuth{Method: v1alpha1.AuthMethodAPIKey, SecretRef: &v1alpha1.SecretReference{Name: "s"}}
	})
	out, errs := convertPlugin(&p, "/secrets")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if want := "/secrets/" + credentialKey(long, v1alpha1.SecretKeyAPIKey); out.Auth.APIKeyFile != want {
		t.Errorf("apiKeyFile %q, want %q", out.Auth.APIKeyFile, want)
	}
}
