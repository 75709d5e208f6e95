package recorder

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/admin"
)

// FuzzAdminAPI sends arbitrary requests to the recorder's admin API behind
// the daemon's guard: refused without the token (but /metrics and
// /healthz), and with it answered by a documented code, never a crash or a
// 500. The recorder records continuously, so an event is parsed and then
// refused with 409 without waiting for video.
func FuzzAdminAPI(f *testing.F) {
	for _, s := range []struct {
		method, path, body string
		auth               bool
	}{
		{"POST", "/record/event", `{"pre_seconds": 5, "post_seconds": 10, "label": "door"}`, true},
		{"POST", "/record/event", `{"pre_seconds": -1, "label": "../../etc/passwd"}`, true},
		{"POST", "/record/event", `{bad`, true},
		{"POST", "/record/event", `{"label": "door"}`, false},
		{"GET", "/healthz", "", false},
		{"PUT", "/record/event", "", true},
	} {
		f.Add(s.method, s.path, s.body, s.auth)
	}
	r, err := New(Config{Dir: f.TempDir(), Logger: quietLogger()})
	require.NoError(f, err)
	tokenFile := filepath.Join(f.TempDir(), "admin.token")
	g, err := admin.NewGuard("unix:/run/recorder.sock", admin.Access{TokenFile: tokenFile})
	require.NoError(f, err)
	tok, err := admin.ReadToken(tokenFile)
	require.NoError(f, err)
	h := g.Wrap(r.Handler())
	f.Fuzz(func(t *testing.T, method, path, body string, auth bool) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n#?") || strings.ContainsAny(method, " \t\r\n/") || method == "" {
			return // not a request line an HTTP server would parse
		}
		req, err := http.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		if auth {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		require.NotEqual(t, http.StatusInternalServerError, w.Code, "%s %s: %s", method, path, w.Body.String())
		open := (method == "GET" || method == "HEAD") && (req.URL.Path == "/metrics" || req.URL.Path == "/healthz")
		if !auth && !open {
			require.Equal(t, http.StatusUnauthorized, w.Code)
		}
		if auth && method == "POST" && req.URL.Path == "/record/event" {
			require.Contains(t, []int{http.StatusBadRequest, http.StatusConflict}, w.Code, "%s", w.Body.String())
		}
	})
}
