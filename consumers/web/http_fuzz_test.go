package web

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/admin/admintest"
)

// FuzzWebAPI sends arbitrary requests to framehub-web's endpoints behind
// its guard (with or without the admin token), its camera not connected to
// a producer, its recordings the fixture: whatever the method, path,
// parameters and body, the answer is one of the documented codes, never a
// crash or a 500, and a state change without the token is refused.
func FuzzWebAPI(f *testing.F) {
	for _, s := range []struct {
		method, target, body string
		auth                 bool
	}{
		{"GET", "/list?camera=cam&start=2026-12-06T05:53:00Z&end=2026-12-06T05:54:00Z", "", false},
		{"GET", "/get?camera=cam&start=2026-12-06T05:53:46.5Z&duration=2s", "", false},
		{"GET", "/get?start=2026-12-06T05:53:46.5%2B01:00&duration=1e9", "", false},
		{"GET", "/get?camera=%ff&start=&duration=-0", "", false},
		{"GET", "/cam/snapshot.jpg?width=-2", "", false},
		{"GET", "/cam/snapshots/../../etc/passwd.jpg", "", false},
		{"GET", "/cam/snapshots/", "", false},
		{"POST", "/cam/whep", "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", false},
		{"DELETE", "/cam/whep/00112233445566778899aabbccddeeff", "", false},
		{"DELETE", "/cam/whep/00112233445566778899aabbccddeeff", "", true},
		{"PATCH", "/cam/whep/x", "a=candidate", true},
		{"GET", "/api/cameras", "", false},
	} {
		f.Add(s.method, s.target, s.body, s.auth)
	}
	s, err := New(Config{Cameras: []Camera{{Name: "cam", Socket: "@framehub-web-fuzz-no-producer-" + strconv.Itoa(os.Getpid()),
		Recordings: "testdata/recordings", Snapshots: f.TempDir()}}, SnapshotTimeout: 100 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(f, err)
	f.Cleanup(s.webrtc.closeAll)
	g, tok := admintest.Guard(f, "127.0.0.1:8889", false)
	h := s.Handler(g)
	f.Fuzz(func(t *testing.T, method, target, body string, auth bool) {
		var token string
		if auth {
			token = tok
		}
		r := admintest.Request("127.0.0.1:8889", method, target, body, token)
		if r == nil {
			return
		}
		if p := r.URL.Path; strings.HasSuffix(p, ".m3u8") || strings.HasSuffix(p, ".mp4") {
			return // LL-HLS waits for a keyframe of the absent producer: tested in TestLLHLS
		}
		r.Header.Set("Content-Type", "application/sdp")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.NotEqual(t, http.StatusInternalServerError, w.Code, "%s %s: %s", r.Method, r.URL, w.Body.String())
		if id, ok := strings.CutPrefix(r.URL.Path, "/cam/whep/"); ok && id != "" && !strings.Contains(id, "/") &&
			r.Method == http.MethodDelete && !auth {
			require.Equal(t, http.StatusUnauthorized, w.Code, "%s %s without the token: %s", r.Method, r.URL, w.Body.String())
		}
	})
}
