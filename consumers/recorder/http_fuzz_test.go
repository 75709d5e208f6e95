package recorder

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/admin/admintest"
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
	r, err := New(Config{Dir: f.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(f, err)
	g, tok := admintest.Guard(f, "unix:/run/recorder.sock", false)
	h := g.Wrap(r.Handler())
	f.Fuzz(func(t *testing.T, method, path, body string, auth bool) {
		var token string
		if auth {
			token = tok
		}
		req := admintest.Request("localhost", method, path, body, token)
		if req == nil || req.URL.RawQuery != "" {
			return
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		admintest.CheckAnswer(t, req, auth, w.Code, w.Body.String())
		if auth && method == "POST" && req.URL.Path == "/record/event" {
			require.Contains(t, []int{http.StatusBadRequest, http.StatusConflict}, w.Code, "%s", w.Body.String())
		}
	})
}
