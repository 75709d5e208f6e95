package streamer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/stretchr/testify/require"
)

func TestPlayTCPAndUDP(t *testing.T) {
	st := startTestStreamer(t, nil, nil)
	startFeeder(t, st.cams[0].hub, 30)
	for _, tr := range []gortsplib.Transport{gortsplib.TransportTCP, gortsplib.TransportUDP} {
		t.Run(tr.String(), func(t *testing.T) {
			v, err := play(t, st.URL(), tr)
			require.NoError(t, err)
			require.Equal(t, testSPS, v.forma.SPS, "the SDP carries the SPS")
			require.Equal(t, testPPS, v.forma.PPS, "the SDP carries the PPS")
			requireContinuous(t, v.waitFrames(t, 45))
			_, errs := v.received()
			require.Empty(t, errs)
		})
	}
}

// A new viewer asks for a keyframe and starts on it, long before the GOP
// would have brought one.
func TestNewViewerStartsOnRequestedKeyframe(t *testing.T) {
	f := newFeeder(300, 0)
	st := startTestStreamer(t, f.requestKey, nil)
	f.start(t, st.cams[0].hub) // a 10 s GOP
	for f.n.Load() < 5 {
		f.waitFrame(t)
	}
	v, err := play(t, st.URL(), gortsplib.TransportTCP)
	require.NoError(t, err)
	got := v.waitFrames(t, 10)
	requireContinuous(t, got)
	require.Greater(t, got[0].n, 0, "started on a fresh keyframe, not the stream's first")
	ttf := got[0].at.Sub(v.started)
	t.Logf("time to first frame (requested keyframe): %v", ttf)
	require.Less(t, ttf, time.Second)
}

// Without keyframes on request, a new viewer starts from the cached GOP
// after KeyframeWait.
func TestNewViewerStartsFromGOPCache(t *testing.T) {
	for _, wait := range []time.Duration{0, 200 * time.Millisecond} {
		t.Run(wait.String(), func(t *testing.T) {
			st := startTestStreamer(t, func() {}, func(o *Config) { o.KeyframeWait = wait })
			f := startFeeder(t, st.cams[0].hub, 300)
			for f.n.Load() < 20 {
				f.waitFrame(t)
			}
			v, err := play(t, st.URL(), gortsplib.TransportTCP)
			require.NoError(t, err)
			got := v.waitFrames(t, 30)
			requireContinuous(t, got)
			require.Equal(t, 0, got[0].n, "starts on the cached keyframe")
			ttf := got[0].at.Sub(v.started)
			t.Logf("time to first frame from the GOP cache (keyframe-wait %v): %v", wait, ttf)
			require.Less(t, ttf, wait+time.Second)
		})
	}
}

func TestAuthentication(t *testing.T) {
	st := startTestStreamer(t, nil, func(o *Config) { o.User, o.Pass = "viewer", "s3cret" })
	startFeeder(t, st.cams[0].hub, 30)
	_, err := play(t, st.URL(), gortsplib.TransportTCP)
	require.ErrorContains(t, err, "401")
	_, err = play(t, strings.Replace(st.URL(), "rtsp://", "rtsp://viewer:wrong@", 1), gortsplib.TransportTCP)
	require.ErrorContains(t, err, "401")
	v, err := play(t, strings.Replace(st.URL(), "rtsp://", "rtsp://viewer:s3cret@", 1), gortsplib.TransportTCP)
	require.NoError(t, err)
	requireContinuous(t, v.waitFrames(t, 5))
}

func TestUnknownPathAndTooManyViewers(t *testing.T) {
	st := startTestStreamer(t, nil, func(o *Config) { o.MaxViewers = 1 })
	startFeeder(t, st.cams[0].hub, 30)
	_, err := play(t, strings.TrimSuffix(st.URL(), "cam")+"other", gortsplib.TransportTCP)
	require.ErrorContains(t, err, "404")
	v, err := play(t, st.URL(), gortsplib.TransportTCP)
	require.NoError(t, err)
	v.waitFrames(t, 1)
	_, err = play(t, st.URL(), gortsplib.TransportUDP)
	require.ErrorContains(t, err, "503")
}

func TestMetricsAndHealth(t *testing.T) {
	st := startTestStreamer(t, nil, func(o *Config) { o.HealthStale = 300 * time.Millisecond })
	get := func(path string) (int, string) {
		t.Helper()
		res, err := http.Get("http://" + st.AdminAddr() + path)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res.StatusCode, string(b)
	}
	code, body := get("/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	var h Health
	require.NoError(t, json.Unmarshal([]byte(body), &h))
	require.Equal(t, "no_frames", h.Status)
	require.Contains(t, h.Reason, "no frame from the producer yet")
	require.Nil(t, h.LastFrameAgeSeconds)

	f := startFeeder(t, st.cams[0].hub, 30)
	f.waitFrame(t)
	code, body = get("/healthz")
	require.Equal(t, http.StatusOK, code, body)
	h = Health{}
	require.NoError(t, json.Unmarshal([]byte(body), &h))
	require.True(t, h.OK)
	require.Equal(t, "ok", h.Status)
	require.NotNil(t, h.LastFrameAgeSeconds)
	require.Less(t, *h.LastFrameAgeSeconds, 1.0)
	require.Equal(t, st.URL(), h.URL)
	v, err := play(t, st.URL(), gortsplib.TransportTCP)
	require.NoError(t, err)
	v.waitFrames(t, 10)
	_, body = get("/metrics")
	for _, want := range []string{
		"framehub_streamer_viewers 1",
		`framehub_streamer_viewer_dropped_total{remote="127.0.0.1:`,
		`framehub_streamer_viewer_bytes_sent_total{remote="127.0.0.1:`,
		"framehub_streamer_bytes_sent_total ",
		"framehub_streamer_producer_frames_received_total 0",
		`framehub_streamer_producer_frames_dropped_total{reason="producer"} 0`,
		"go_goroutines ",
		`framehub_build_info{daemon="framehub-streamer"`,
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, "framehub_streamer_publish_connected", "no publish series without -publish")
}

// waitFrame waits for the feeder to publish one more frame.
func (f *feeder) waitFrame(t *testing.T) {
	t.Helper()
	n0 := f.n.Load()
	require.Eventually(t, func() bool { return f.n.Load() > n0 }, waitTimeout, time.Millisecond)
}

// A viewer that stops reading loses its own frames (counted); another
// viewer keeps getting every frame.
func TestSlowViewerOnlyHurtsItself(t *testing.T) {
	st := startTestStreamer(t, nil, func(o *Config) { o.ViewerQueue = 10 })
	f := startFeederPadded(t, st.cams[0].hub, 30, 60_000) // ~2 MB/s
	good, err := play(t, st.URL(), gortsplib.TransportTCP)
	require.NoError(t, err)
	stalled := stallingViewer(t, st.URL())

	var sink *sink
	require.Eventually(t, func() bool {
		for _, s := range st.cams[0].hub.snapshot() {
			if s.remote == stalled {
				sink = s
			}
		}
		return sink != nil && sink.dropped.Load() > 0
	}, waitTimeout, 10*time.Millisecond, "the stalled viewer's drops must be counted")
	n0 := f.n.Load()
	got := good.waitFrames(t, int(n0)-good.firstFrame(t)+15)
	requireContinuous(t, got)
	t.Logf("stalled viewer: %d frames sent, %d dropped; healthy viewer: %d frames, none lost",
		sink.frames.Load(), sink.dropped.Load(), len(got))
}

// stallingViewer plays url over TCP with a tiny receive buffer and never
// reads after PLAY; it returns its local address (the server's remote).
func stallingViewer(t *testing.T, url string) string {
	t.Helper()
	u, err := base.ParseURL(url)
	require.NoError(t, err)
	c, err := net.DialTimeout("tcp", u.Host, waitTimeout)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.(*net.TCPConn).SetReadBuffer(4096))
	require.NoError(t, c.SetDeadline(time.Now().Add(waitTimeout)))
	br := bufio.NewReader(c)
	do := func(req string) *base.Response {
		t.Helper()
		_, err := io.WriteString(c, req)
		require.NoError(t, err)
		var res base.Response
		require.NoError(t, res.Unmarshal(br))
		require.Equal(t, base.StatusOK, res.StatusCode, "%s", req)
		return &res
	}
	do(fmt.Sprintf("DESCRIBE %s RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n", url))
	res := do(fmt.Sprintf("SETUP %s/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n", url))
	session := strings.Split(res.Header["Session"][0], ";")[0]
	_, err = io.WriteString(c, fmt.Sprintf("PLAY %s RTSP/1.0\r\nCSeq: 3\r\nSession: %s\r\n\r\n", url, session))
	require.NoError(t, err)
	return c.LocalAddr().String()
}

// firstFrame waits for v's first frame and returns its number.
func (v *rtspViewer) firstFrame(t *testing.T) int {
	t.Helper()
	return v.waitFrames(t, 1)[0].n
}

// Several cameras from one streamer: each at its own path, from its own
// hub; an unknown path is 404; the metrics have a series per camera.
func TestCameras(t *testing.T) {
	st := startTestStreamer(t, nil, func(o *Config) {
		o.Cameras = []Camera{{Name: "front", Socket: "@framehub-streamer-test-none-a"}, {Name: "back", Socket: "@framehub-streamer-test-none-b"}}
	})
	front := startFeeder(t, st.cams[0].hub, 30)
	for front.n.Load() < 200 {
		front.waitFrame(t)
	}
	startFeeder(t, st.cams[1].hub, 30)
	require.Equal(t, strings.Replace(st.URL(), "/front", "/back", 1), st.CameraURL("back"))
	vf, err := play(t, st.CameraURL("front"), gortsplib.TransportTCP)
	require.NoError(t, err)
	vb, err := play(t, st.CameraURL("back"), gortsplib.TransportUDP)
	require.NoError(t, err)
	gotF, gotB := vf.waitFrames(t, 20), vb.waitFrames(t, 20)
	requireContinuous(t, gotF)
	requireContinuous(t, gotB)
	// A viewer starts from its camera's GOP cache here (no producer to
	// ask for a keyframe): front's last keyframe is frame 180 or later.
	require.GreaterOrEqual(t, gotF[0].n, 180, "the front viewer gets the front camera's frames")
	require.Less(t, gotB[0].n, 100, "the back viewer gets the back camera's frames, which started later")

	_, err = play(t, strings.Replace(st.URL(), "/front", "/side", 1), gortsplib.TransportTCP)
	require.ErrorContains(t, err, "404")

	resp, err := http.Get("http://" + st.AdminAddr() + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	for _, want := range []string{
		"framehub_streamer_viewers 2",
		`framehub_streamer_camera_viewers{camera="front"} 1`,
		`framehub_streamer_camera_viewers{camera="back"} 1`,
		`framehub_streamer_camera_last_frame_age_seconds{camera="back"} `,
	} {
		require.Contains(t, string(body), want)
	}
	h := st.Health()
	require.True(t, h.OK, "%+v", h)
	require.Len(t, h.Cameras, 2)
	require.Equal(t, "back", h.Cameras[1].Name)
	require.Equal(t, st.CameraURL("back"), h.Cameras[1].URL)
}

func TestCamerasConfig(t *testing.T) {
	for _, c := range []struct {
		cams    []Camera
		publish string
		want    string
	}{
		{[]Camera{{Name: "Front", Socket: "/s"}}, "", `camera.0: camera name "Front" has 'F' at byte 0`},
		{[]Camera{{Name: "a", Socket: "/s"}, {Name: "a", Socket: "/t"}}, "", `camera.1: camera "a" is also camera 0`},
		{[]Camera{{Name: "a"}}, "", `camera "a" has no producer socket`},
		{[]Camera{{Name: "a", Socket: "/s"}, {Name: "b", Socket: "/t"}}, "rtsp://h:8554/x", "publish: publishes one stream: with 2 cameras"},
	} {
		o := Defaults()
		o.Cameras, o.Publish = c.cams, c.publish
		require.ErrorContains(t, o.Validate(), c.want)
	}
}
