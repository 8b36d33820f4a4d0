package host

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// authenticator checks a request's credentials against a plugin's auth section, in constant
// time. Credentials come inline or from files (mounted Secrets), read at apply time.
type authenticator struct {
	method    string
	header    string // canonical header for api-key
	secret    []byte // api key or bearer token
	user      []byte
	pass      []byte
	challenge []string
}

// newAuthenticator returns nil for method "none". Relative *_file paths are relative to
// baseDir, the directory of the config file: the operator renders "../secrets/<file>", which
// resolves in a pod (/var/run/plugins/config -> /var/run/plugins/secrets) and in local tests
// alike.
func newAuthenticator(a pluginconfig.Auth, baseDir string) (*authenticator, error) {
	read := func(inline, file, key string) ([]byte, error) {
		if file == "" {
			return []byte(inline), nil
		}
		if !filepath.IsAbs(file) && baseDir != "" {
			file = filepath.Join(baseDir, file)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s_file: %w", key, err)
		}
		b = []byte(strings.TrimRight(string(b), "\r\n"))
		if len(b) == 0 {
			return nil, fmt.Errorf("%s_file: %s is empty", key, file)
		}
		return b, nil
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
		return len(v) == 1 && subtle.ConstantTimeCompare([]byte(v[0]), a.secret) == 1
	case pluginconfig.AuthBearer:
		v := r.Header["Authorization"]
		const prefix = "bearer "
		if len(v) != 1 || len(v[0]) < len(prefix) || !strings.EqualFold(v[0][:len(prefix)], prefix) {
			return false
		}
		return subtle.ConstantTimeCompare([]byte(v[0][len(prefix):]), a.secret) == 1
	case pluginconfig.AuthBasic:
		u, p, ok := r.BasicAuth()
		// Compare both always so the time does not tell which one was wrong.
		uok := subtle.ConstantTimeCompare([]byte(u), a.user)
		pok := subtle.ConstantTimeCompare([]byte(p), a.pass)
		return ok && uok&pok == 1
	}
	return false
}
