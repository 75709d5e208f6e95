// Package admintest helps test admin endpoints behind an admin.Guard, and
// fuzz them: a guard with a fresh token, requests built from a fuzzer's
// strings, and the invariants every guarded answer keeps.
package admintest

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/admin"
)

// Guard returns the guard of an endpoint listening on addr, with a token
// file in a fresh directory, and the token.
func Guard(t testing.TB, addr string, public bool) (*admin.Guard, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin.token")
	g, err := admin.NewGuard(addr, admin.Access{TokenFile: path, Public: public})
	require.NoError(t, err)
	tok, err := admin.ReadToken(path)
	require.NoError(t, err)
	return g, tok
}

// Request returns the request a fuzzer's strings describe, to host (the
// listen address, or any name for a Unix socket), with the bearer token
// when token is not "", or nil when no HTTP server would parse such a
// request line.
func Request(host, method, target, body, token string) *http.Request {
	if method == "" || strings.ContainsAny(method, " \t\r\n/") || !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n#") {
		return nil
	}
	r, err := http.NewRequest(method, "http://"+host+target, strings.NewReader(body))
	if err != nil {
		return nil
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// Open reports whether r asks for an endpoint every caller may use: GET
// or HEAD of /metrics or /healthz.
func Open(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && (r.URL.Path == "/metrics" || r.URL.Path == "/healthz")
}

// CheckAnswer checks what every guarded endpoint keeps, whatever r was:
// no 500, and 401 for a request without the token (auth false) that is not
// for an open endpoint.
func CheckAnswer(t testing.TB, r *http.Request, auth bool, code int, body string) {
	t.Helper()
	require.NotEqual(t, http.StatusInternalServerError, code, "%s %s: %s", r.Method, r.URL, body)
	if !auth && !Open(r) {
		require.Equal(t, http.StatusUnauthorized, code, "%s %s without the token: %s", r.Method, r.URL, body)
	}
}
