package snapshot

import (
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/admin/admintest"
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
	g, tok := admintest.Guard(f, "127.0.0.1:7704", false)
	h := g.Wrap(svc.Handler())
	f.Fuzz(func(t *testing.T, method, target, accept, body string, auth bool) {
		var token string
		if auth {
			token = tok
		}
		r := admintest.Request("127.0.0.1:7704", method, target, body, token)
		if r == nil {
			return
		}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		admintest.CheckAnswer(t, r, auth, w.Code, w.Body.String())
	})
}
