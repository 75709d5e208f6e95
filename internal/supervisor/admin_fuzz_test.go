package supervisor

import (
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/admin/admintest"
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
	g, tok := admintest.Guard(f, "127.0.0.1:7700", false)
	h := g.Wrap(s.Handler())
	f.Fuzz(func(t *testing.T, method, target string, auth bool) {
		var token string
		if auth {
			token = tok
		}
		req := admintest.Request("127.0.0.1:7700", method, target, "", token)
		if req == nil {
			return
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		admintest.CheckAnswer(t, req, auth, w.Code, w.Body.String())
		require.Less(t, w.Code, 500, "%s %s: %s", method, target, w.Body.String())
	})
}
