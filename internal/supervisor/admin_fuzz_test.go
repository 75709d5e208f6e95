package supervisor

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/admin"
)

// FuzzAdminAPI sends arbitrary requests to the supervisor's admin
// endpoints behind the guard: /status and /logs only with the token, and
// whatever the query (name, lines) never a crash or a 500.
func FuzzAdminAPI(f *testing.F) {
	for _, s := range []struct {
		method, target string
		auth           bool
	}{
		{"GET", "/status", true},
		{"GET", "/logs?name=p&lines=10", true},
		{"GET", "/logs?name=p&lines=-5", true},
		{"GET", "/logs?name=nobody&lines=99999999999999999999", true},
		{"GET", "/logs?name=p", false},
		{"GET", "/healthz", false},
		{"HEAD", "/metrics", false},
	} {
		f.Add(s.method, s.target, s.auth)
	}
	s, err := New(Config{Processes: []Process{{Name: "p", Binary: "/bin/true"}}}, slog.New(slog.DiscardHandler))
	require.NoError(f, err)
	s.byName["p"].logs.add("a line")
	tokenFile := filepath.Join(f.TempDir(), "admin.token")
	g, err := admin.NewGuard("127.0.0.1:7700", admin.Access{TokenFile: tokenFile})
	require.NoError(f, err)
	tok, err := admin.ReadToken(tokenFile)
	require.NoError(f, err)
	h := g.Wrap(s.Handler())
	f.Fuzz(func(t *testing.T, method, target string, auth bool) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n#") || strings.ContainsAny(method, " \t\r\n/") || method == "" {
			return // not a request line an HTTP server would parse
		}
		req, err := http.NewRequest(method, "http://127.0.0.1:7700"+target, nil)
		if err != nil {
			return
		}
		if auth {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		_, _ = io.Copy(io.Discard, w.Body)
		require.Less(t, w.Code, 500, "%s %s: %s", method, target, w.Body.String())
		open := (method == "GET" || method == "HEAD") && (req.URL.Path == "/metrics" || req.URL.Path == "/healthz")
		if !auth && !open {
			require.Equal(t, http.StatusUnauthorized, w.Code)
		}
	})
}
