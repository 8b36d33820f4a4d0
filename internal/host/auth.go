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

package host

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// authenticator checks a request's credentials against a plugin's auth section.
// Credentials come inline or from files (mounted Secrets), read at apply time; only their
// SHA-256 digests are kept. A request's credentials are hashed and the digests compared with
// subtle.ConstantTimeCompare: comparing the raw values would return at once on a length
// mismatch and so tell a client the secret's length; digests always have the same length.
type authenticator struct {
	method    string
	header    string // canonical header for api-key
	secret    digest // of the api key or bearer token
	user      digest
	pass      digest
	challenge []string
}

type digest [sha256.Size]byte

// matches compares presented with d in time independent of both values.
func (d *digest) matches(presented string) bool {
	p := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(p[:], d[:]) == 1
}

// newAuthenticator returns nil for method "none". Relative *_file paths are relative to
// baseDir, the directory of the config file: the operator renders "../secrets/<file>", which
// resolves in a pod (/var/run/plugins/config -> /var/run/plugins/secrets) and in local tests
// alike.
func newAuthenticator(a pluginconfig.Auth, baseDir string) (*authenticator, error) {
	read := func(inline, file, key string) (digest, error) {
		if file == "" {
			return sha256.Sum256([]byte(inline)), nil
		}
		if !filepath.IsAbs(file) && baseDir != "" {
			file = filepath.Join(baseDir, file)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return digest{}, fmt.Errorf("%s_file: %w", key, err)
		}
		b = []byte(strings.TrimRight(string(b), "\r\n"))
		if len(b) == 0 {
			return digest{}, fmt.Errorf("%s_file: %s is empty", key, file)
		}
		return sha256.Sum256(b), nil
	}
	au := &authenticator{method: a.Method}
	var err error
	switch a.Method {
	case pluginconfig.AuthNone:
		return nil, nil
	case pluginconfig.AuthAPIKey:
		au.header = textproto.CanonicalMIMEHeaderKey(a.Header)
		au.challenge = []string{fmt.Sprintf(`APIKey header="%s"`, au.header)}
		au.secret, err = read(a.APIKey, a.APIKeyFile, "api_key")
	case pluginconfig.AuthBearer:
		au.challenge = []string{`Bearer realm="pluginhost"`}
		au.secret, err = read(a.Token, a.TokenFile, "token")
	case pluginconfig.AuthBasic:
		au.challenge = []string{`Basic realm="pluginhost", charset="UTF-8"`}
		if au.user, err = read(a.Username, a.UsernameFile, "username"); err == nil {
			au.pass, err = read(a.Password, a.PasswordFile, "password")
		}
	default:
		return nil, fmt.Errorf("unsupported auth method %q", a.Method)
	}
	if err != nil {
		return nil, err
	}
	return au, nil
}

func (a *authenticator) allow(r *http.Request) bool {
	switch a.method {
	case pluginconfig.AuthAPIKey:
		v := r.Header[a.header]
		return len(v) == 1 && a.secret.matches(v[0])
	case pluginconfig.AuthBearer:
		v := r.Header["Authorization"]
		const prefix = "bearer "
		if len(v) != 1 || len(v[0]) < len(prefix) || !strings.EqualFold(v[0][:len(prefix)], prefix) {
			return false
		}
		return a.secret.matches(v[0][len(prefix):])
	case pluginconfig.AuthBasic:
		u, p, ok := r.BasicAuth()
		// Compare both always so the time does not tell which one was wrong.
		uok, pok := a.user.matches(u), a.pass.matches(p)
		return ok && uok && pok
	}
	return false
}
