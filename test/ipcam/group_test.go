package ipcam_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/supervisor"
	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/ipcam"
)

// Two IP cameras in one group config: the supervisor runs a producer and a
// recorder per camera and one streamer for both; each camera is served at
// rtsp://…/<name> (played by GStreamer's rtspsrc, which sees each camera's
// own size); framehubctl shows a row per camera without the credentials;
// one camera's producer killed with SIGKILL takes only itself down: the
// other camera's stream keeps its frame rate through the streamer and its
// recorder records on without a gap, and the killed one is restarted and
// served again.
func TestTwoCamerasInOneGroup(t *testing.T) {
	if _, err := exec.LookPath("gst-launch-1.0"); err != nil {
		t.Skipf("gst-launch-1.0 not installed (Debian package gstreamer1.0-tools): %v", err)
	}
	const user, pass = "cam-operator", "Sup3r$ecret"
	front := startCamera(t, camConfig{auth: ipcam.AuthDigest, user: user, pass: pass})
	back := startCamera(t, camConfig{small: true})
	dir := testutil.ShortDir(t)
	run := filepath.Join(dir, "run")
	tokenFile := filepath.Join(dir, "admin.token")
	supAdmin := "unix:" + filepath.Join(dir, "sup.admin")
	cfg := filepath.Join(dir, "group.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`admin: %q
grace: 3s
run-dir: %q
cameras:
  - name: front
    source: %q
  - name: back
    source: %q
processes:
  - name: recorder
    binary: framehub-recorder
    per-camera: true
    args: [-socket, "{socket}", -dir, "%s/rec/{camera}", -segment, 2s, -admin, "unix:{dir}/recorder.admin"]
    admin: "unix:{dir}/recorder.admin"
  - name: streamer
    binary: framehub-streamer
    args: [-rtsp-addr, "127.0.0.1:0", -udp-rtp-addr, "", -admin, "127.0.0.1:0"]
    camera-args: [-camera, "{camera}={socket}"]
`, supAdmin, run, front.url(user, pass), back.url("", ""), dir)), 0o600))
	cmd := exec.Command(filepath.Join(binDir, "framehub-supervisor"), "-config", cfg)
	cmd.Env = append(os.Environ(), "FRAMEHUB_ADMIN_TOKEN_FILE="+tokenFile)
	sup := testutil.StartDaemon(t, "framehub-supervisor", cmd, waitTimeout, nil)
	status := func() supervisor.StatusResponse {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tok, err := os.ReadFile(tokenFile)
		if err != nil {
			return supervisor.StatusResponse{}
		}
		code, body, err := testutil.HTTPDoToken(ctx, supAdmin, http.MethodGet, "/status", nil, strings.TrimSpace(string(tok)))
		if err != nil || code != http.StatusOK {
			return supervisor.StatusResponse{}
		}
		var st supervisor.StatusResponse
		require.NoError(t, json.Unmarshal(body, &st))
		return st
	}
	byName := func(st supervisor.StatusResponse) map[string]supervisor.ChildStatus {
		m := map[string]supervisor.ChildStatus{}
		for _, p := range st.Processes {
			m[p.Name] = p
		}
		return m
	}
	names := []string{"producer.front", "producer.back", "recorder.front", "recorder.back", "streamer"}
	testutil.WaitUntil(t, waitTimeout, func() bool {
		select {
		case <-sup.Exited():
			t.Fatalf("the supervisor exited: %v\n%s", sup.Err(), testutil.Tail(sup.Log.String(), 6000))
		default:
		}
		m := byName(status())
		for _, n := range names {
			if m[n].State != supervisor.StateReady {
				return false
			}
		}
		return true
	}, "every process ready")
	st := status()
	require.Len(t, st.Processes, len(names))
	require.Len(t, st.Cameras, 2)
	require.Equal(t, "rtsp://"+front.addr+"/cam", st.Cameras[0].Source, "/status shows the source without its credentials")

	prod := func(cam string) *proc {
		return &proc{t: t, admin: "unix:" + filepath.Join(run, cam, "producer.admin"), Daemon: sup}
	}
	rec := func(cam string) *proc {
		return &proc{t: t, admin: "unix:" + filepath.Join(run, cam, "recorder.admin"), Daemon: sup}
	}
	for _, cam := range []string{"front", "back"} {
		prod(cam).waitMetric("framehub_producer_camera_connected", func(v float64) bool { return v == 1 }, cam+" camera streaming")
		rec(cam).waitMetric("framehub_recorder_frames_total", func(v float64) bool { return v >= 30 }, cam+" recording")
	}
	fi, err := os.Stat(filepath.Join(run, "front", "producer.yaml"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the producer's config holds the camera's password")

	// The streamer's URL, from its log (it picked its port).
	var rtspURL string
	testutil.WaitUntil(t, waitTimeout, func() bool {
		for _, l := range strings.Split(sup.Log.String(), "\n") {
			if _, rest, ok := strings.Cut(l, `msg="streamer serving" url=`); ok {
				u, _, _ := strings.Cut(rest, " ")
				rtspURL = strings.TrimSuffix(strings.TrimSuffix(u, "/front"), "/back")
				return true
			}
		}
		return false
	}, "the streamer's URL in its log")
	streamerAdmin := ""
	for _, l := range strings.Split(sup.Log.String(), "\n") {
		if _, rest, ok := strings.Cut(l, `msg="streamer serving"`); ok {
			if _, a, ok := strings.Cut(rest, " admin="); ok {
				streamerAdmin, _, _ = strings.Cut(a, " ")
			}
		}
	}
	require.NotEmpty(t, streamerAdmin)
	streamer := &proc{t: t, admin: streamerAdmin, Daemon: sup}

	// Each path plays its own camera: GStreamer decodes 20 frames of the
	// camera's size (the caps filter refuses any other).
	play := func(path string, w, h int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, "gst-launch-1.0", "-q", "rtspsrc", "location="+rtspURL+"/"+path, "protocols=tcp", "latency=0", "!",
			"rtph264depay", "!", "h264parse", "!", "avdec_h264", "!", fmt.Sprintf("video/x-raw,width=%d,height=%d", w, h), "!",
			"fakesink", "num-buffers=20").CombinedOutput()
		require.NoError(t, err, "play %s/%s: %s", rtspURL, path, out)
	}
	play("front", 320, 240)
	play("back", 160, 120)

	// framehubctl: a row per camera, no password anywhere.
	ctl := exec.Command(filepath.Join(binDir, "framehubctl"), "status", "-cameras", "-json", "-addr", supAdmin, "-interval", "500ms",
		"-token-file", tokenFile)
	out, err := ctl.Output()
	require.NoError(t, err)
	var cams []struct {
		Name      string  `json:"name"`
		State     string  `json:"state"`
		Connected *bool   `json:"connected"`
		H264FPS   float64 `json:"h264_fps"`
		Source    string  `json:"source"`
	}
	require.NoError(t, json.Unmarshal(out, &cams), "%s", out)
	require.Len(t, cams, 2, "%s", out)
	for i, name := range []string{"front", "back"} {
		require.Equal(t, name, cams[i].Name)
		require.Equal(t, "ready", cams[i].State)
		require.NotNil(t, cams[i].Connected)
		require.True(t, *cams[i].Connected)
		require.Greater(t, cams[i].H264FPS, 20.0, "%s", out)
	}
	ctl = exec.Command(filepath.Join(binDir, "framehubctl"), "status", "-addr", supAdmin, "-interval", "500ms", "-token-file", tokenFile)
	text, err := ctl.Output()
	require.NoError(t, err)
	require.Contains(t, string(text), "CAMERA")
	// framehubctl consumers -camera: that camera's producer, found through
	// the supervisor.
	ctl = exec.Command(filepath.Join(binDir, "framehubctl"), "consumers", "-camera", "back", "-supervisor", supAdmin, "-json", "-token-file", tokenFile)
	cons, err := ctl.Output()
	require.NoError(t, err)
	require.Contains(t, string(cons), `"name": "framehub-recorder"`)
	require.Contains(t, string(cons), `"name": "streamer"`)
	ctl = exec.Command(filepath.Join(binDir, "framehubctl"), "consumers", "-camera", "side", "-supervisor", supAdmin, "-token-file", tokenFile)
	bad, err := ctl.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(bad), "runs no process producer.side (cameras: front, back)")
	for _, s := range []string{string(out), string(text), sup.Log.String()} {
		require.NotContains(t, s, pass)
	}

	// SIGKILL the front camera's producer. The back camera goes on: its
	// producer is not restarted, the streamer receives its access units at
	// the camera's rate all along, its recorder records without a gap.
	backPID := byName(status())["producer.back"].PID
	frontPID := byName(status())["producer.front"].PID
	const backReceived = `framehub_streamer_camera_frames_received_total{camera="back"}`
	before, t0 := streamer.metrics()[backReceived], time.Now()
	require.NoError(t, syscall.Kill(frontPID, syscall.SIGKILL))
	testutil.WaitUntil(t, waitTimeout, func() bool {
		p := byName(status())["producer.front"]
		return p.PID != 0 && p.PID != frontPID && p.State == supervisor.StateReady
	}, "the front camera's producer restarted")
	prod("front").waitMetric("framehub_producer_camera_connected", func(v float64) bool { return v == 1 }, "front camera streaming again")
	// At least 3 s of the back camera (90 access units) in the window.
	streamer.waitMetric(backReceived, func(v float64) bool { return v >= before+90 }, "3 s of the back camera")
	after, t1 := streamer.metrics()[backReceived], time.Now()
	rate := (after - before) / t1.Sub(t0).Seconds()
	t.Logf("back camera through the streamer while the front one's producer was down and restarting: %.1f access units/s over %v",
		rate, t1.Sub(t0).Round(time.Millisecond))
	require.Greater(t, rate, 25.0, "the back camera keeps its frame rate (30 fps)")
	require.Equal(t, backPID, byName(status())["producer.back"].PID, "the back camera's producer was not touched")
	require.Equal(t, float64(0), rec("back").metric("framehub_recorder_gaps_total"), "the back camera's recording has no gap")
	require.GreaterOrEqual(t, rec("front").metric("framehub_recorder_gaps_total"), float64(1), "the front camera's recording has its gap")
	play("front", 320, 240)

	for _, cam := range []string{"front", "back"} {
		files, err := filepath.Glob(filepath.Join(dir, "rec", cam, "*", "*.mp4"))
		require.NoError(t, err)
		require.NotEmpty(t, files, "recordings of %s in their own directory", cam)
	}
}
