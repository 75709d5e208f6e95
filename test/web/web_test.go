package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/consumers/web"
	"github.com/framehub/framehub/internal/testutil"
)

// waitTimeout bounds every wait for something that should happen soon:
// generous for two noisy cores running x264, Chromium and the race
// detector; only ever a deadline, never slept away.
const waitTimeout = 40 * time.Second

// binDir holds the daemons, built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // the first cgo build of go-gst is slow
	dir, err := testutil.BuildToTemp(ctx, "github.com/framehub/framehub/cmd/framehub-producer",
		"github.com/framehub/framehub/cmd/framehub-recorder", "github.com/framehub/framehub/cmd/framehub-web",
		"github.com/framehub/framehub/cmd/framehub-streamer") // the streamer: TestLatencyReport's RTSP row
	cancel()
	defer os.RemoveAll(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// group is a producer (GStreamer test source, x264enc, 320×240 unless
// asked otherwise, at 30 fps, a keyframe every second), a recorder writing segments of segment and
// framehub-web, as separate processes.
type group struct {
	dir, sock, recordings, snapshots string
	base                             string // framehub-web's URL, without the trailing slash
	web                              *testutil.Daemon
	streamer                         *testutil.Daemon // only where startStreamer started it
}

var listening = regexp.MustCompile(`msg="web server listening" url=(http://\S+)/`)

func startGroup(t *testing.T, segment time.Duration) *group {
	return startGroupSize(t, segment, 320, 240)
}

func startGroupSize(t *testing.T, segment time.Duration, width, height int) *group {
	t.Helper()
	g := &group{dir: testutil.ShortDir(t)}
	g.sock = filepath.Join(g.dir, "fh.sock")
	g.recordings, g.snapshots = filepath.Join(g.dir, "rec"), filepath.Join(g.dir, "snap")
	env := append(os.Environ(), "FRAMEHUB_ADMIN_TOKEN_FILE="+filepath.Join(g.dir, "admin.token"))
	cmd := func(bin string, args ...string) *exec.Cmd {
		c := exec.Command(filepath.Join(binDir, bin), args...)
		c.Env = env
		return c
	}
	testutil.StartDaemon(t, "producer", cmd("framehub-producer", "-source", "test", "-encoder", "x264enc", "-width", strconv.Itoa(width),
		"-height", strconv.Itoa(height), "-fps", "30", "-gop", "30", "-socket", g.sock, "-admin", "unix:"+filepath.Join(g.dir, "producer.admin")), waitTimeout,
		func(line string) bool { return regexp.MustCompile(`media pipeline playing`).MatchString(line) })
	testutil.StartDaemon(t, "recorder", cmd("framehub-recorder", "-socket", g.sock, "-dir", g.recordings,
		"-segment", segment.String(), "-admin", ""), waitTimeout, nil)
	g.web = testutil.StartDaemon(t, "framehub-web", cmd("framehub-web", "-addr", "127.0.0.1:0", "-camera",
		"name=cam,socket="+g.sock+",recordings="+g.recordings+",snapshots="+g.snapshots+
			",admin=unix:"+filepath.Join(g.dir, "producer.admin")), waitTimeout,
		func(line string) bool {
			if m := listening.FindStringSubmatch(line); m != nil {
				g.base = m[1]
				return true
			}
			return false
		})
	return g
}

// list is GET /list of the last hour.
func (g *group) list(t *testing.T) web.ListJSON {
	t.Helper()
	q := url.Values{"camera": {"cam"}, "start": {time.Now().Add(-time.Hour).Format(time.RFC3339)}}
	resp, err := http.Get(g.base + "/list?" + q.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var l web.ListJSON
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&l))
	return l
}

// The player of camera cam on a page: its <video> and its state
// (static/app.js keeps it in window.framehub).
const (
	video  = `document.querySelector('section[data-camera="cam"] video')`
	player = `(window.framehub && window.framehub.players.cam)`
	diag   = `window.framehub && JSON.stringify({mode: window.framehub.players.cam && window.framehub.players.cam.mode,
		state: window.framehub.players.cam && window.framehub.players.cam.state,
		t: document.querySelector('section[data-camera="cam"] video') && document.querySelector('section[data-camera="cam"] video').currentTime,
		errors: window.framehub.errors})`
)

// playsFor waits until the page's player has played seconds of video.
func playsFor(p *page, seconds float64) {
	p.t.Helper()
	p.waitFor(video+".currentTime > 0", diag, waitTimeout)
	var t0 float64
	p.eval(video+".currentTime", &t0)
	p.waitFor(fmt.Sprintf("%s.currentTime >= %f", video, t0+seconds), diag, waitTimeout)
}

// TestBrowser plays a real group in headless Chromium: the page, its
// WebRTC player, a changing picture, its HLS player, and a 10 s MP4 of the
// recordings across two segments in a <video>.
func TestBrowser(t *testing.T) {
	needBrowser(t)
	g := startGroup(t, 6*time.Second)
	b := startBrowser(t)

	t.Run("page and WebRTC", func(t *testing.T) {
		p := b.open(t, g.base+"/?mode=webrtc")
		p.waitFor(`document.querySelectorAll("section.camera").length === 1`, `document.body.innerText`, waitTimeout)
		p.waitFor(player+` && `+player+`.state === "connected"`, diag, waitTimeout)
		playsFor(p, 2)
		// The status line: frame rate, viewers, and the producer's
		// consumers (the recorder, framehub-web itself).
		p.waitFor(`/fps.*viewers: 1 webrtc.*consumers: .*framehub-recorder/.test(document.querySelector('section[data-camera="cam"] .status').textContent)`,
			`document.querySelector('section[data-camera="cam"] .status').textContent`, waitTimeout)

		// The picture changes: two captures of the <video>, a second of
		// playback apart, differ.
		first := p.screenshot(`section[data-camera="cam"] video`)
		playsFor(p, 1)
		second := p.screenshot(`section[data-camera="cam"] video`)
		require.False(t, bytes.Equal(first, second), "two screenshots a second apart are the same picture")
	})

	t.Run("HLS", func(t *testing.T) {
		p := b.open(t, g.base+"/?mode=hls")
		p.waitFor(player+` && `+player+`.mode === "hls" && `+player+`.state === "playing"`, diag, waitTimeout)
		playsFor(p, 2)
	})

	t.Run("recording across two segments", func(t *testing.T) {
		// Two closed 6 s segments: the range from the first one's start
		// (a keyframe) for 10 s spans both.
		var l web.ListJSON
		require.Eventually(t, func() bool {
			l = g.list(t)
			return len(l.Recordings) >= 2 && !l.Recordings[1].Open
		}, waitTimeout, 200*time.Millisecond, "two closed segments")
		start := l.Recordings[0].Start
		q := url.Values{"camera": {"cam"}, "start": {start.Format(time.RFC3339Nano)}, "duration": {"10s"}}
		resp, err := http.Head(g.base + "/get?" + q.Encode())
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "2", resp.Header.Get("X-Clip-Segments"), "the clip spans two segment files")
		p := b.open(t, g.base+"/?mode=webrtc")
		var res struct {
			Duration, Played, End float64
			Error                 string
		}
		p.eval(fmt.Sprintf(`new Promise((resolve) => {
			const v = document.createElement("video");
			v.muted = true;
			let began = 0;
			v.onplaying = () => { if (!began) began = performance.now(); };
			v.onended = () => resolve({duration: v.duration, played: (performance.now() - began) / 1000, end: v.currentTime});
			v.onerror = () => resolve({error: "media error " + (v.error && v.error.code)});
			setTimeout(() => resolve({error: "not ended within 30 s", end: v.currentTime}), 30000);
			v.src = %q;
			document.body.append(v);
			v.play();
		})`, "/get?"+q.Encode()), &res)
		t.Logf("/get?%s in <video>: duration %.3f s, played %.3f s, ended at %.3f s", q.Encode(), res.Duration, res.Played, res.End)
		require.Empty(t, res.Error)
		// Cut on keyframes: from the first segment's first keyframe to the
		// first keyframe at or after 10 s (a keyframe every second).
		require.InDelta(t, 10.5, res.Duration, 0.6, "clip duration")
		require.InDelta(t, res.Duration, res.End, 0.1, "played to its end")
		require.InDelta(t, res.Duration, res.Played, 1.0, "played in real time")
	})
}
