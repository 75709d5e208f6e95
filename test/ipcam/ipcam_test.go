package ipcam_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/consumers/recorder"
	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/ipcam"
	"github.com/framehub/framehub/sdk"
)

// sentBy is what a camera with these parameter settings sends.
func sentBy(params ipcam.Params) []ipcam.AU {
	var out []ipcam.AU
	for _, au := range stream.AUs {
		if params == ipcam.ParamsInSDP {
			au = au.Without(h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeSPS, h264.NALUTypePPS)
		}
		out = append(out, au)
	}
	return out
}

// The h264 stream of a framehub-producer reading a camera carries the
// camera's access units byte for byte (what PROTOCOL.md's format needs
// added, and nothing else), each flagged from its NAL units, over TCP and
// UDP, with digest and basic authentication.
func TestPassThrough(t *testing.T) {
	for _, ca := range []struct {
		name      string
		params    ipcam.Params
		auth      ipcam.AuthMethod
		transport string
	}{
		{"parameter sets in the SDP only, digest, TCP", ipcam.ParamsInSDP, ipcam.AuthDigest, "tcp"},
		{"parameter sets in-band, basic, UDP", ipcam.ParamsInBand, ipcam.AuthBasic, "udp"},
	} {
		t.Run(ca.name, func(t *testing.T) {
			// No ':' in the password: gortsplib's server (the stand-in camera)
			// cannot verify one in basic authentication.
			const user, pass = "cam-operator", "Sup3r$ecret/pw"
			cam := startCamera(t, camConfig{params: ca.params, auth: ca.auth, user: user, pass: pass, udp: ca.transport == "udp"})
			dir := testutil.ShortDir(t)
			p := startProducer(t, dir, cam.url(user, pass), "-rtsp-transport", ca.transport)
			c := dial(t, p, "h264", nil)
			fl := newFollower(sentBy(ca.params))
			var lastPTS int64
			for n := 0; n < 100; n++ { // more than the camera's loop of 90
				f := next(t, c)
				data, err := f.Data()
				require.NoError(t, err)
				require.NoError(t, fl.check(data, n == 0), "frame %d", n)
				idr := fl.idr[fl.at]
				require.Equal(t, idr, f.Keyframe(), "frame %d, the camera's access unit %d: keyframe", n, fl.at)
				require.Equal(t, idr, f.Header(), "frame %d, the camera's access unit %d: header", n, fl.at)
				if n > 0 {
					require.Zero(t, f.Dropped(), "frame %d", n)
					require.InDelta(t, float64(time.Second/30), float64(f.PTS()-lastPTS), 1, "frame %d: PTS advance by the camera's frame interval", n)
				}
				require.Equal(t, f.PTS(), f.DTS(), "no B-frames: DTS = PTS")
				lastPTS = f.PTS()
				f.Release()
			}
			caps := c.Caps()
			require.Equal(t, [4]int{320, 240, 30, 1}, [4]int{caps.Width, caps.Height, caps.FPSNum, caps.FPSDen}, "from the camera's SPS")
			require.Equal(t, float64(1), p.metric("framehub_producer_camera_connected"))
			require.Equal(t, float64(0), p.metric("framehub_producer_camera_packets_lost_total"))
			require.Equal(t, float64(0), p.metric("framehub_producer_decoder_running"), "no raw consumer: no decoding")
			secrets := []string{pass, url.QueryEscape(pass), url.PathEscape(pass), user}
			noSecret(t, "producer log", p.Log.String(), secrets...)
			_, body, err := p.get("/metrics")
			require.NoError(t, err)
			noSecret(t, "producer /metrics", string(body), secrets...)
			require.Contains(t, p.Log.String(), "camera=rtsp://***@"+cam.addr+"/cam", "the log names the camera without its credentials")
		})
	}
}

func noSecret(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if i := strings.Index(text, s); i >= 0 {
			t.Fatalf("%s shows a credential (%q) at %d: ...%s...", what, s, i, text[max(0, i-200):min(len(text), i+200)])
		}
	}
}

// watcher is a consumer of the h264 stream in the test process that
// follows the camera's access units byte for byte, also across a restart
// of the camera, and counts what an application sees.
type watcher struct {
	c   *sdk.Client
	eos *eosCounter

	mu         sync.Mutex
	fl         *follower
	frames     int
	afterEOS   int // frames since the first EOS
	firstAfter *firstFrame
	err        error
	done       chan struct{}
}

// firstFrame is what the watcher keeps of the first frame after an EOS.
type firstFrame struct{ discont, keyframe bool }

func watch(t *testing.T, p *producerProc, sent []ipcam.AU) *watcher {
	w := &watcher{eos: &eosCounter{}, fl: newFollower(sent), done: make(chan struct{})}
	w.c = dial(t, p, "h264", slog.New(w.eos))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		<-w.done
	})
	go func() {
		defer close(w.done)
		for n := 0; ; n++ {
			f, err := w.c.Next(ctx)
			if err != nil {
				if ctx.Err() == nil {
					w.fail(err)
				}
				return
			}
			data, err := f.Data()
			if err == nil {
				err = w.fl.check(data, n == 0 || f.Discont())
			}
			w.mu.Lock()
			w.frames++
			if w.eos.n.Load() > 0 {
				if w.afterEOS == 0 {
					w.firstAfter = &firstFrame{discont: f.Discont(), keyframe: f.Keyframe()}
				}
				w.afterEOS++
			}
			if err != nil && w.err == nil {
				w.err = fmt.Errorf("frame %d (seq %d): %w", n, f.Seq(), err)
			}
			w.mu.Unlock()
			f.Release()
		}
	}()
	return w
}

func (w *watcher) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *watcher) state() (frames, afterEOS int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.frames, w.afterEOS, w.err
}

// A camera killed (SIGKILL) and started again: consumers keep their
// sessions and see one EOS, then the camera's access units again from a
// keyframe flagged DISCONT; the recorder logs one gap, reconnects to
// nothing, and every file it wrote plays.
func TestCameraKilledAndRestarted(t *testing.T) {
	cam := startCamera(t, camConfig{params: ipcam.ParamsInSDP})
	dir := testutil.ShortDir(t)
	p := startProducer(t, dir, cam.url("", ""))
	recAdmin := "unix:" + filepath.Join(dir, "r-admin.sock")
	recDir := filepath.Join(dir, "rec")
	rec := start(t, "framehub-recorder", recAdmin, "-socket", p.sock, "-dir", recDir, "-admin", recAdmin,
		"-admin-token", filepath.Join(dir, "admin.token"), "-segment", "2s", "-log-level", "debug")
	w := watch(t, p, sentBy(ipcam.ParamsInSDP))
	rec.waitMetric("framehub_recorder_frames_total", func(v float64) bool { return v >= 60 }, "recording")
	testutil.WaitUntil(t, waitTimeout, func() bool { n, _, _ := w.state(); return n >= 30 }, "the watcher receives")

	cam.Kill()
	p.waitMetric("framehub_producer_camera_connected", func(v float64) bool { return v == 0 }, "camera lost")
	testutil.WaitUntil(t, waitTimeout, func() bool { return w.eos.n.Load() >= 1 }, "EOS told to the consumer")
	before := rec.metric("framehub_recorder_frames_total")

	cam = cam.restart(t)
	p.waitMetric("framehub_producer_camera_connected", func(v float64) bool { return v == 1 }, "camera back")
	testutil.WaitUntil(t, waitTimeout, func() bool { _, after, _ := w.state(); return after >= 60 }, "frames after the restart")
	rec.waitMetric("framehub_recorder_frames_total", func(v float64) bool { return v >= before+45 }, "recording after the restart")

	_, _, err := w.state()
	require.NoError(t, err, "every access unit is the camera's, in order, before and after the restart")
	require.Equal(t, int64(1), w.eos.n.Load(), "one EOS")
	require.Zero(t, w.c.Stats().Reconnects, "the consumer kept its session")
	w.mu.Lock()
	first := *w.firstAfter
	w.mu.Unlock()
	require.True(t, first.discont, "the first frame after the outage says DISCONT")
	require.True(t, first.keyframe, "and is a keyframe: a session publishes from its first IDR")
	require.GreaterOrEqual(t, p.metric("framehub_producer_pipeline_restarts_total"), float64(1), "reconnections to the camera")
	require.Equal(t, 2, strings.Count(p.Log.String(), "msg=\"camera connected\""), "two camera sessions")

	require.Equal(t, float64(1), rec.metric("framehub_recorder_gaps_total"))
	require.Equal(t, float64(0), rec.metric("framehub_recorder_reconnects_total"), "the recorder kept its session")
	require.Equal(t, 1, strings.Count(rec.Log.String(), "gap in the stream"), "the recorder logs one gap:\n%s", testutil.Tail(rec.Log.String(), 4000))

	rec.Stop(t) // closes the segment being written
	segs := segments(t, recDir)
	require.GreaterOrEqual(t, len(segs), 2)
	samples := 0
	for _, s := range segs {
		samples += checkPlays(t, s)
	}
	require.Equal(t, recordedFrames(rec), samples, "every frame the recorder closed a segment with is in its file")
}

var framesRE = regexp.MustCompile(`frames=(\d+)`)

// recordedFrames sums the frames of the recorder's "segment closed" lines.
func recordedFrames(p *proc) int {
	total := 0
	for _, line := range strings.Split(p.Log.String(), "\n") {
		if !strings.Contains(line, "segment closed") {
			continue
		}
		if m := framesRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			total += n
		}
	}
	return total
}

type segFile struct {
	path string
	seg  *recorder.Segment
}

// segments returns the closed segment files under dir, oldest first.
func segments(t *testing.T, dir string) []segFile {
	t.Helper()
	var out []segFile
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".mp4") {
			seg, err := recorder.ReadSegmentFile(p)
			require.NoError(t, err, p)
			out = append(out, segFile{path: p, seg: seg})
		}
		return err
	}))
	sort.Slice(out, func(i, j int) bool { return filepath.Base(out[i].path) < filepath.Base(out[j].path) })
	return out
}

var (
	widthRE  = regexp.MustCompile(`Width: (\d+)`)
	heightRE = regexp.MustCompile(`Height: (\d+)`)
)

// checkPlays checks a segment with GStreamer: gst-discoverer-1.0 finds
// H.264 at 320×240, and a real decode (qtdemux ! h264parse ! avdec_h264)
// gives one picture per sample. It returns the number of samples.
func checkPlays(t *testing.T, s segFile) int {
	t.Helper()
	for _, tool := range []string{"gst-launch-1.0", "gst-discoverer-1.0"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian packages gstreamer1.0-tools, gstreamer1.0-plugins-base-apps): %v", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "gst-discoverer-1.0", s.path).CombinedOutput()
	require.NoError(t, err, "gst-discoverer-1.0 %s:\n%s", s.path, out)
	require.Contains(t, string(out), "video #1: H.264", s.path)
	require.Equal(t, []string{"Width: 320", "Height: 240"}, []string{widthRE.FindString(string(out)), heightRE.FindString(string(out))}, s.path)

	raw := filepath.Join(t.TempDir(), "decoded.i420")
	out, err = exec.CommandContext(ctx, "gst-launch-1.0", "-q", "filesrc", "location="+s.path, "!", "qtdemux", "!", "h264parse", "!",
		"avdec_h264", "!", "videoconvert", "!", "video/x-raw,format=I420", "!", "filesink", "location="+raw).CombinedOutput()
	require.NoError(t, err, "decode %s:\n%s", s.path, out)
	fi, err := os.Stat(raw)
	require.NoError(t, err)
	const size = 320 * 240 * 3 / 2
	samples := 0
	for _, f := range s.seg.Fragments {
		samples += len(f.Samples)
	}
	require.Equal(t, int64(samples), fi.Size()/size, "%s: every sample decodes", s.path)
	require.Zero(t, fi.Size()%size, "%s: whole pictures", s.path)
	return samples
}

// Raw frames on demand: the producer decodes the camera only while a raw
// consumer is subscribed.
func TestRawOnDemand(t *testing.T) {
	cam := startCamera(t, camConfig{params: ipcam.ParamsInBand})
	dir := testutil.ShortDir(t)
	p := startProducer(t, dir, cam.url("", ""))
	h := dial(t, p, "h264", nil) // the h264 stream flows meanwhile
	for n := 0; n < 40; n++ {
		next(t, h).Release()
	}
	require.Equal(t, float64(0), p.metric("framehub_producer_decoder_running"))
	require.Equal(t, float64(0), p.metric("framehub_producer_decoder_starts_total"))
	require.Equal(t, float64(0), p.metric(`framehub_producer_frames_total{stream="raw"}`), "no decoding before a raw consumer")

	for round := 1; round <= 2; round++ {
		c := dial(t, p, "raw", nil)
		for n := 0; n < 15; n++ {
			f := next(t, c)
			caps := c.Caps()
			require.Equal(t, [3]any{"NV12", 320, 240}, [3]any{caps.Format, caps.Width, caps.Height}, "the camera's size")
			y, err := f.Plane(0)
			require.NoError(t, err)
			require.Len(t, y, int(f.Planes()[0].Size))
			f.Release()
		}
		require.Equal(t, float64(1), p.metric("framehub_producer_decoder_running"))
		require.NoError(t, c.Close())
		p.waitMetric("framehub_producer_decoder_running", func(v float64) bool { return v == 0 }, "decoder stopped after the last raw consumer left")
		require.Equal(t, float64(round), p.metric("framehub_producer_decoder_starts_total"))

		// Stopped means stopped: the h264 stream goes on, the raw one does not.
		raw := p.metric(`framehub_producer_frames_total{stream="raw"}`)
		for n := 0; n < 30; n++ {
			next(t, h).Release()
		}
		require.Equal(t, raw, p.metric(`framehub_producer_frames_total{stream="raw"}`), "no raw frame without a raw consumer")
	}
	require.Equal(t, float64(0), p.metric("framehub_producer_copied_frames_total"), "the decoder writes into the producer's memfd pool")
	require.Greater(t, p.metric("framehub_producer_zero_copy_frames_total"), float64(0))
	require.Equal(t, 2, strings.Count(p.Log.String(), "why=\"no raw consumer left\""))
}

// What an operator sees — the producers' logs and metrics, framehubctl
// status, logs and consumers, through the supervisor — never shows a
// camera's credentials: not for a camera that streams, nor for one that
// refuses them (its errors are logged), nor for a URL that does not parse
// (the producer exits with its error, which the status shows).
func TestCredentialsNeverShown(t *testing.T) {
	const user, pass = "ops-admin", "N0t$hown-ever"
	cam := startCamera(t, camConfig{auth: ipcam.AuthDigest, user: user, pass: pass})
	dir := testutil.ShortDir(t)
	token := filepath.Join(dir, "admin.token")
	bin := func(b string) string { return filepath.Join(binDir, b) }
	producer := func(name, source string, restart string) string {
		sock, admin := filepath.Join(dir, name+".sock"), "unix:"+filepath.Join(dir, name+"-admin.sock")
		args, _ := json.Marshal([]string{"-source", source, "-socket", sock, "-admin", admin, "-admin-token", token, "-log-level", "debug"})
		return fmt.Sprintf("  - name: %s\n    binary: %s\n    args: %s\n    admin: %s\n    restart: {policy: %s}\n",
			name, bin("framehub-producer"), args, admin, restart)
	}
	badURL := strings.Replace(cam.url(user, pass), cam.addr, "127.0.0.1:99999", 1)
	cfg := fmt.Sprintf("admin: unix:%s\nadmin-token: %s\ngrace: 2s\nprocesses:\n", filepath.Join(dir, "sup.sock"), token) +
		producer("good", cam.url(user, pass), "always") + producer("wrong", cam.url(user, "not-"+pass), "always") + producer("bad", badURL, "never")
	cfgFile := filepath.Join(dir, "group.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(cfg), 0o600))
	supAdmin := "unix:" + filepath.Join(dir, "sup.sock")
	sup := start(t, "framehub-supervisor", supAdmin, "-config", cfgFile)
	good := &proc{Daemon: sup.Daemon, t: t, admin: "unix:" + filepath.Join(dir, "good-admin.sock")}
	wrong := &proc{Daemon: sup.Daemon, t: t, admin: "unix:" + filepath.Join(dir, "wrong-admin.sock")}
	good.waitMetric("framehub_producer_camera_connected", func(v float64) bool { return v == 1 }, "good camera streaming")
	wrong.waitMetric("framehub_producer_pipeline_restarts_total", func(v float64) bool { return v >= 2 }, "wrong password retried")

	ctl := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin("framehubctl"), append([]string{args[0], "-token-file", token}, args[1:]...)...).CombinedOutput()
		require.NoError(t, err, "framehubctl %v:\n%s", args, out)
		return string(out)
	}
	var status string
	testutil.WaitUntil(t, waitTimeout, func() bool {
		status = ctl("status", "-json", "-addr", supAdmin)
		return strings.Contains(status, "99999")
	}, "the bad URL's error in the status")
	var shown []string
	shown = append(shown, status, ctl("status", "-addr", supAdmin))
	for _, name := range []string{"good", "wrong", "bad"} {
		shown = append(shown, ctl("logs", "-n", "1000", "-addr", supAdmin, name))
	}
	shown = append(shown, ctl("consumers", "-addr", good.admin), sup.Log.String())
	for _, p := range []*proc{good, wrong} {
		_, body, err := p.get("/metrics")
		require.NoError(t, err)
		shown = append(shown, string(body))
	}
	all := strings.Join(shown, "\n")
	noSecret(t, "what the operator sees", all, pass, url.QueryEscape(pass), url.PathEscape(pass), user)
	require.Contains(t, all, `rtsp://***@127.0.0.1:99999/cam`, "the bad URL, named without its credentials")
	require.Contains(t, all, "401", "the wrong password's refusal is logged")
	require.Contains(t, all, "camera connected")
}
