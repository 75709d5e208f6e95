package snapshot

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

// FuzzAdminAPI sends arbitrary requests to the admin API behind the
// daemon's guard (with or without the token), the service not connected to
// a producer: whatever the method, path, parameters, headers and body, the
// answer is a refusal of the guard or one of the API's documented codes,
// never a crash or a 500.
func FuzzAdminAPI(f *testing.F) {
	for _, s := range []struct {
		method, target, accept, body string
		auth                         bool
	}{
		{"POST", "/snapshot?quality=90&scale=320", "", "", true},
		{"POST", "/snapshot", "image/jpeg;q=0, image/*", "quality=abc&after=-1&format=png", true},
		{"POST", "/snapshot?width=64&height=0&encoder=nvjpeg", "", "", true},
		{"POST", "/snapshot", "", "quality=90", false},
		{"GET", "/snapshot/abc?wait=5s", "", "", true},
		{"GET", "/snapshot/%ff?wait=-1h", "", "", true},
		{"GET", "/metrics", "", "", false},
		{"DELETE", "/snapshot", "", "", true},
	} {
		f.Add(s.method, s.target, s.accept, s.body, s.auth)
	}
	svc, err := New(Config{Producer: "/nonexistent/framehub.sock", Dir: filepath.Join(f.TempDir(), "snaps"), Encoder: EncoderGo,
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(f, err)
	tokenFile := filepath.Join(f.TempDir(), "admin.token")
	g, err := admin.NewGuard("127.0.0.1:7704", admin.Access{TokenFile: tokenFile})
	require.NoError(f, err)
	tok, err := admin.ReadToken(tokenFile)
	require.NoError(f, err)
	h := g.Wrap(svc.Handler())
	f.Fuzz(func(t *testing.T, method, target, accept, body string, auth bool) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n#") || strings.ContainsAny(method, " \t\r\n/") || method == "" {
			return // not a request line an HTTP server would parse
		}
		r, err := http.NewRequest(method, "http://127.0.0.1:7704"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		if auth {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		_, _ = io.Copy(io.Discard, w.Body)
		require.NotEqual(t, http.StatusInternalServerError, w.Code, "%s %s: %s", method, target, w.Body.String())
		open := (method == "GET" || method == "HEAD") && (r.URL.Path == "/metrics" || r.URL.Path == "/healthz")
		if !auth && !open {
			require.Equal(t, http.StatusUnauthorized, w.Code, "%s %s without the token", method, target)
		}
	})
}
