package web

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/testutil"
)

// testdata/recordings holds two 2 s segments that framehub-recorder wrote
// (-segment 2s) of a 160×120 x264enc stream with a keyframe every second:
// 05:53:45.972 and 05:53:47.972 UTC on 2026-12-06.
var fixtureStart = time.Date(2026, 12, 6, 5, 53, 45, 972e6, time.UTC)

// testServer serves a Server of cams (default: one camera "cam" with the
// fixture recordings and no producer) over httptest; it returns the base
// URL and the admin token.
func testServer(t *testing.T, mutate func(*Config)) (*Server, string, string) {
	t.Helper()
	cfg := Config{Cameras: []Camera{{Name: "cam", Socket: "@framehub-web-test-no-producer-" + strconv.Itoa(os.Getpid()),
		Recordings: "testdata/recordings", Snapshots: t.TempDir()}}, Logger: testutil.Logger(t, slog.LevelError)}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	require.NoError(t, err)
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	ts := httptest.NewUnstartedServer(nil)
	guard, err := admin.NewGuard(ts.Listener.Addr().String(), admin.Access{TokenFile: tokenFile})
	require.NoError(t, err)
	ts.Config.Handler = s.Handler(guard)
	ts.Start()
	t.Cleanup(ts.Close)
	tok, err := admin.ReadToken(tokenFile)
	require.NoError(t, err)
	return s, ts.URL, tok
}

func get(t *testing.T, u string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

func TestList(t *testing.T) {
	_, base, _ := testServer(t, nil)
	q := url.Values{"camera": {"cam"}, "start": {fixtureStart.Add(-time.Minute).Format(time.RFC3339)},
		"end": {fixtureStart.Add(time.Minute).Format(time.RFC3339)}}
	resp, body := get(t, base+"/list?"+q.Encode(), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var l ListJSON
	require.NoError(t, json.Unmarshal(body, &l))
	require.Len(t, l.Recordings, 2)
	require.Equal(t, "2026-12-06/2026-12-06T05-53-45.972Z.mp4", l.Recordings[0].File)
	require.WithinDuration(t, fixtureStart, l.Recordings[0].Start, time.Millisecond)
	require.InDelta(t, 2.0, l.Recordings[0].Duration, 0.05)
	require.Contains(t, l.Recordings[1].URL, "/get?camera=cam")

	// The camera may be left out when there is only one.
	q.Del("camera")
	q.Set("start", fixtureStart.Add(3*time.Second).Format(time.RFC3339Nano))
	resp, body = get(t, base+"/list?"+q.Encode(), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.NoError(t, json.Unmarshal(body, &l))
	require.Len(t, l.Recordings, 1, "only the second segment holds video after 05:53:48.972")
}

func TestRecordingsBadParameters(t *testing.T) {
	_, base, _ := testServer(t, nil)
	start := fixtureStart.Format(time.RFC3339Nano)
	cases := []struct {
		path, query string
		code        int
		want        string
	}{
		{"/list", "camera=nope", 400, `camera=\"nope\": no such camera`},
		{"/list", "start=yesterday", 400, `start=\"yesterday\": not an RFC 3339 time`},
		{"/list", "start=" + start + "&end=2026-12-06T05:00:00Z", 400, "end=\\\"2026-12-06T05:00:00Z\\\": must be after start"},
		{"/list", "start=2026-01-01T00:00:00Z&end=2026-12-06T00:00:00Z", 400, "exceeds 744h0m0s"},
		{"/get", "duration=10s", 400, `start=\"\": required`},
		{"/get", "start=" + start, 400, `duration=\"\": required`},
		{"/get", "start=" + start + "&duration=soon", 400, `duration=\"soon\": not a duration`},
		{"/get", "start=" + start + "&duration=-3s", 400, `duration=\"-3s\": must be positive`},
		{"/get", "start=" + start + "&duration=2h", 400, `duration=\"2h\": longer than the limit of 1h0m0s`},
		{"/get", "start=2026-12-06T06:00:00Z&duration=10s", 404, "no recording of camera \\\"cam\\\" between 2026-12-06T06:00:00Z and 2026-12-06T06:00:10Z"},
	}
	for _, c := range cases {
		resp, body := get(t, base+c.path+"?"+strings.ReplaceAll(c.query, "+", "%2B"), nil)
		require.Equal(t, c.code, resp.StatusCode, "%s?%s: %s", c.path, c.query, body)
		require.Contains(t, string(body), c.want, "%s?%s", c.path, c.query)
	}
}

func TestGetClipAcrossSegments(t *testing.T) {
	_, base, _ := testServer(t, nil)
	// 46.5 s .. 48.5 s: cut on the keyframes at 45.972 and 48.972, across
	// the two segments.
	q := url.Values{"camera": {"cam"}, "start": {fixtureStart.Add(530 * time.Millisecond).Format(time.RFC3339Nano)}, "duration": {"2s"}}
	resp, body := get(t, base+"/get?"+q.Encode(), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "video/mp4", resp.Header.Get("Content-Type"))
	require.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))
	require.Equal(t, "2", resp.Header.Get("X-Clip-Segments"))
	clipStart, err := time.Parse(time.RFC3339Nano, resp.Header.Get("X-Clip-Start"))
	require.NoError(t, err)
	require.WithinDuration(t, fixtureStart, clipStart, 2*time.Millisecond)

	// A real demuxer reads it: 3 s (from the keyframe before the start to
	// the keyframe after the end).
	path := filepath.Join(t.TempDir(), "clip.mp4")
	require.NoError(t, os.WriteFile(path, body, 0o644))
	if _, err := exec.LookPath("ffprobe"); err == nil {
		out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
			"stream=nb_read_frames,width,height:format=duration", "-of", "default=noprint_wrappers=1", path).CombinedOutput()
		require.NoError(t, err, string(out))
		require.Contains(t, string(out), "nb_read_frames=90", string(out))
		require.Contains(t, string(out), "width=160")
		require.Regexp(t, `duration=(2\.9|3\.0)`, string(out))
	}

	// Range requests, as <video> sends them, get the same bytes.
	resp, part := get(t, base+"/get?"+q.Encode(), map[string]string{"Range": "bytes=100-199"})
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	require.Equal(t, fmt.Sprintf("bytes 100-199/%d", len(body)), resp.Header.Get("Content-Range"))
	require.Equal(t, body[100:200], part)
	resp, _ = get(t, base+"/get?"+q.Encode(), map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(body)+10)})
	require.Equal(t, http.StatusRequestedRangeNotSatisfiable, resp.StatusCode)

	// Clips of other ranges open and close the segment files: no fd stays.
	http.DefaultClient.CloseIdleConnections()
	before := testutil.CountFDs(t, os.Getpid())
	for i := range 10 {
		q.Set("start", fixtureStart.Add(time.Duration(i)*100*time.Millisecond).Format(time.RFC3339Nano))
		resp, _ = get(t, base+"/get?"+q.Encode(), nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()
	require.Eventually(t, func() bool { return testutil.FDCount(os.Getpid()) <= before }, 10*time.Second, 20*time.Millisecond,
		"fds after 10 clips: %d, before: %d", testutil.FDCount(os.Getpid()), before)
}

func TestViewsCheckHost(t *testing.T) {
	_, base, _ := testServer(t, nil)
	resp, body := get(t, base+"/list", map[string]string{"Host": "evil.example:8889"})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, string(body), "DNS rebinding")
	resp, _ = get(t, base+"/list", map[string]string{"Host": "localhost:8889"})
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestPage(t *testing.T) {
	_, base, _ := testServer(t, nil)
	resp, body := get(t, base+"/", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'")
	require.Contains(t, string(body), `<script src="/static/app.js">`)
	for _, f := range []string{"/static/app.js", "/static/style.css", "/static/hls.js/hls.light.min.js", "/static/hls.js/LICENSE"} {
		resp, body = get(t, base+f, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, f)
		require.NotEmpty(t, body, f)
	}
	resp, body = get(t, base+"/api/cameras", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var cams CamerasJSON
	require.NoError(t, json.Unmarshal(body, &cams))
	require.Len(t, cams.Cameras, 1)
	require.Equal(t, "cam", cams.Cameras[0].Name)
	require.False(t, cams.Cameras[0].Connected)
	require.NotNil(t, cams.Cameras[0].Recording)
	require.False(t, cams.Cameras[0].Recording.Active, "the fixture's recordings are old")
}

func TestHealth(t *testing.T) {
	_, base, _ := testServer(t, nil)
	resp, body := get(t, base+"/healthz", nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
	var h Health
	require.NoError(t, json.Unmarshal(body, &h))
	require.Equal(t, "not_connected", h.Status)
	require.Contains(t, h.Reason, `camera "cam" is not subscribed`)
}

// TestProducerConsumers: with the producer's admin address, /api/cameras
// lists its consumers (names, streams, counters: no pid, uid or gid), read
// with the group's admin token.
func TestProducerConsumers(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	guard, err := admin.NewGuard("127.0.0.1:7701", admin.Access{TokenFile: tokenFile})
	require.NoError(t, err)
	prod := httptest.NewServer(guard.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/consumers", r.URL.Path)
		_, _ = io.WriteString(w, `[{"session":1,"name":"framehub-recorder","stream":"h264","pid":42,"uid":1000,"gid":1000,`+
			`"delivered":900,"skipped_budget":2,"skipped_socket":1},{"session":2,"name":"framehub-web/cam","stream":"h264","pid":43}]`)
	})))
	defer prod.Close()
	_, base, _ := testServer(t, func(c *Config) {
		c.Cameras[0].Admin = strings.TrimPrefix(prod.URL, "http://")
		c.AdminTokenFile = tokenFile
	})
	resp, body := get(t, base+"/api/cameras", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var cams CamerasJSON
	require.NoError(t, json.Unmarshal(body, &cams))
	require.Empty(t, cams.Cameras[0].ConsumersError)
	require.Equal(t, []ConsumerJSON{{Name: "framehub-recorder", Stream: "h264", Delivered: 900, Dropped: 3},
		{Name: "framehub-web/cam", Stream: "h264"}}, cams.Cameras[0].Consumers)
	require.NotContains(t, string(body), "pid")
	require.NotContains(t, string(body), "uid")

	// A wrong token file: the page says why it lists none.
	_, base, _ = testServer(t, func(c *Config) {
		c.Cameras[0].Admin = strings.TrimPrefix(prod.URL, "http://")
		c.AdminTokenFile = filepath.Join(t.TempDir(), "missing.token")
	})
	_, body = get(t, base+"/api/cameras", nil)
	require.NoError(t, json.Unmarshal(body, &cams))
	require.Contains(t, cams.Cameras[0].ConsumersError, "missing.token")
}

func TestMetrics(t *testing.T) {
	_, base, _ := testServer(t, nil)
	resp, body := get(t, base+"/metrics", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, want := range []string{`framehub_web_connected{camera="cam"} 0`, `framehub_web_viewers{camera="cam",kind="webrtc"} 0`,
		`framehub_web_viewer_drops_total{camera="cam"} 0`, "framehub_web_webrtc_sessions 0", `framehub_build_info{daemon="framehub-web"`} {
		require.Contains(t, string(body), want)
	}
}
