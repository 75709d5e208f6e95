package streamer_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/consumers/streamer"
	"github.com/framehub/framehub/internal/testutil"
)

// waitTimeout bounds every wait for something that should happen soon:
// generous, for a noisy two-core machine under the race detector. Nothing
// sleeps it away.
const waitTimeout = 20 * time.Second

// bins are the binaries TestMain built.
type bins struct {
	producer, streamer string
	err                error
}

// built is set once by TestMain, before any test runs.
var built bins

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	// The first build of the producer compiles the GStreamer bindings (cgo,
	// minutes); later ones come from the build cache. A failed build fails
	// the tests that need the binaries (see requireTools).
	dir, err := testutil.BuildToTemp(context.Background(),
		"github.com/framehub/framehub/cmd/framehub-producer", "github.com/framehub/framehub/cmd/framehub-streamer")
	defer os.RemoveAll(dir)
	built = bins{producer: filepath.Join(dir, "framehub-producer"), streamer: filepath.Join(dir, "framehub-streamer"), err: err}
	return m.Run()
}

// requireTools skips when the RTSP client is not installed, and fails when
// the binaries did not build.
func requireTools(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("gst-launch-1.0"); err != nil {
		t.Skipf("gst-launch-1.0 not installed (Debian package gstreamer1.0-tools): %v", err)
	}
	require.NoError(t, built.err)
}

// ---------------------------------------------------------------------------
// Producer process

// startProducer runs the producer on socket with the test source at w×h,
// 30 fps, a keyframe every 60 frames (2 s), and waits until it serves (its
// "media pipeline" log line). It cannot outlive the test binary
// (PR_SET_PDEATHSIG, see testutil.StartDaemon).
func startProducer(t *testing.T, socket string, w, h int) *testutil.Daemon {
	t.Helper()
	cmd := exec.Command(built.producer, "-socket", socket, "-source", "test", "-width", strconv.Itoa(w), "-height", strconv.Itoa(h),
		"-fps", "30", "-gop", "60", "-bitrate", "2000")
	return testutil.StartDaemon(t, "producer", cmd, waitTimeout, func(line string) bool {
		return strings.Contains(line, `msg="media pipeline"`)
	})
}

// ---------------------------------------------------------------------------
// Streamer

// runStreamer runs the streamer in the test process on free ports, until
// cleanup, and waits until the producer's stream flows through it.
func runStreamer(t *testing.T, socket string, mutate func(*streamer.Config)) *streamer.Streamer {
	t.Helper()
	st, _ := runStreamerWatched(t, socket, mutate)
	return st
}

// runStreamerWatched is runStreamer that also returns when each viewer
// started playing, read from the streamer's log as it is written.
func runStreamerWatched(t *testing.T, socket string, mutate func(*streamer.Config)) (*streamer.Streamer, *playLog) {
	t.Helper()
	o := streamer.Defaults()
	o.Socket = socket
	o.RTSPAddr, o.UDPRTPAddr, o.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	if mutate != nil {
		mutate(&o)
	}
	plays := &playLog{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testutil.LogWriter(t), plays), &slog.HandlerOptions{Level: slog.LevelInfo}))
	st, err := streamer.New(o, log)
	require.NoError(t, err)
	run := testutil.RunBackground(t, "streamer Run", waitTimeout, st.Run)
	select {
	case <-st.Ready():
	case <-run.Done():
		t.Fatalf("streamer ended before ready: %v", run.Err())
	case <-time.After(waitTimeout):
		t.Fatalf("streamer not ready within %v", waitTimeout)
	}
	waitHealthy(t, st.AdminAddr())
	return st, plays
}

// playLog records when the streamer logged each "rtsp: viewer playing":
// the moment a viewer's PLAY was accepted, which excludes the client's own
// start-up (gst-launch takes 0.4–0.8 s to reach PLAY on a loaded machine).
type playLog struct {
	mu    sync.Mutex
	plays []time.Time
}

func (l *playLog) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(`msg="rtsp: viewer playing"`)) {
		l.mu.Lock()
		l.plays = append(l.plays, time.Now())
		l.mu.Unlock()
	}
	return len(p), nil
}

// count returns how many viewers started playing so far.
func (l *playLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.plays)
}

// waitPlay waits until viewer i (0-based, in order of PLAY) plays, and
// returns when it started.
func (l *playLog) waitPlay(t *testing.T, i int) time.Time {
	t.Helper()
	testutil.WaitUntil(t, waitTimeout, func() bool { return l.count() > i }, "viewer %d to play", i)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.plays[i]
}

// waitHealthy waits until /healthz at admin says the stream flows.
func waitHealthy(t *testing.T, admin string) {
	t.Helper()
	var last string
	require.Eventually(t, func() bool {
		code, body, err := httpGet(admin, "/healthz")
		last = fmt.Sprint(code, " ", body, err)
		return err == nil && code == http.StatusOK
	}, waitTimeout, 20*time.Millisecond, "streamer never healthy; last /healthz: %s", last)
}

// httpGet GETs path from the admin API at admin (host:port), with a 5 s
// deadline.
func httpGet(admin, path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, body, err := testutil.HTTPDo(ctx, admin, http.MethodGet, path, nil)
	return code, string(body), err
}

// metric returns the value of the first sample of /metrics at admin whose
// line starts with prefix (-1 when absent).
func metric(t *testing.T, admin, prefix string) float64 {
	t.Helper()
	code, body, err := httpGet(admin, "/metrics")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			require.NoError(t, err, line)
			return v
		}
	}
	return -1
}

// ---------------------------------------------------------------------------
// RTSP client: gst-launch-1.0

// chainRE matches fakesink's per-buffer line of gst-launch -v and captures
// the buffer's PTS.
var chainRE = regexp.MustCompile(`last-message = chain .* pts: (\d+):(\d\d):(\d\d)\.(\d{9})`)

// gstClient is a running gst-launch-1.0 RTSP client that decodes H.264.
type gstClient struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	started time.Time
	out     testutil.LockedBuffer // everything it printed but the chain lines
	more    chan struct{}         // capacity 1: a frame was decoded
	exited  chan struct{}

	mu      sync.Mutex
	frames  []time.Time     // when each decoded frame was seen
	pts     []time.Duration // their PTS
	errs    []string        // ERROR/WARNING lines
	waitErr error
}

// startClient plays url with protocols (tcp or udp); extra are more
// rtspsrc properties (e.g. "latency=2000"); buffers > 0 stops the client
// after that many decoded frames.
func startClient(t *testing.T, name, url, protocols string, buffers int, extra ...string) *gstClient {
	t.Helper()
	args := []string{"-v", "rtspsrc", "location=" + url, "protocols=" + protocols}
	if len(extra) == 0 {
		extra = []string{"latency=0"}
	}
	args = append(args, extra...)
	args = append(args, "!", "rtph264depay", "!", "h264parse", "!", "avdec_h264", "!", "fakesink", "silent=false", "sync=false")
	if buffers > 0 {
		args = append(args, "num-buffers="+strconv.Itoa(buffers))
	}
	c := &gstClient{t: t, name: name, cmd: exec.Command("gst-launch-1.0", args...), more: make(chan struct{}, 1), exited: make(chan struct{})}
	c.cmd.Stderr = &c.out
	stdout, err := c.cmd.StdoutPipe()
	require.NoError(t, err)
	c.started = time.Now()
	require.NoError(t, testutil.StartOrphanless(c.cmd))
	go c.read(stdout)
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			_ = c.cmd.Process.Kill() // also ends a SIGSTOPped client
			select {
			case <-c.exited:
			case <-time.After(waitTimeout):
				t.Errorf("client %s (pid %d) did not exit after SIGKILL", name, c.cmd.Process.Pid)
			}
		}
		if t.Failed() {
			t.Logf("client %s output:\n%s", name, testutil.Tail(c.out.String(), 3000))
		}
	})
	return c
}

func (c *gstClient) read(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := chainRE.FindStringSubmatch(line); m != nil {
			h, _ := strconv.Atoi(m[1])
			mi, _ := strconv.Atoi(m[2])
			s, _ := strconv.Atoi(m[3])
			ns, _ := strconv.Atoi(m[4])
			pts := time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute + time.Duration(s)*time.Second + time.Duration(ns)
			c.mu.Lock()
			c.frames = append(c.frames, time.Now())
			c.pts = append(c.pts, pts)
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
			continue
		}
		if strings.Contains(line, "last-message") {
			continue // events
		}
		if strings.HasPrefix(line, "ERROR") || strings.HasPrefix(line, "WARNING") {
			c.mu.Lock()
			c.errs = append(c.errs, line)
			c.mu.Unlock()
		}
		_, _ = c.out.Write([]byte(line + "\n"))
	}
	_, _ = io.Copy(io.Discard, stdout)
	err := c.cmd.Wait()
	c.mu.Lock()
	c.waitErr = err
	c.mu.Unlock()
	close(c.exited)
}

// count returns how many frames were decoded.
func (c *gstClient) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.frames)
}

// waitFrames waits until n frames were decoded in all.
func (c *gstClient) waitFrames(n int) {
	c.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for c.count() < n {
		select {
		case <-c.more:
		case <-c.exited:
			if c.count() < n {
				c.t.Fatalf("client %s exited after %d frames, want %d: %v\n%s", c.name, c.count(), n, c.exitErr(), testutil.Tail(c.out.String(), 3000))
			}
		case <-deadline.C:
			c.t.Fatalf("client %s decoded %d frames within %v, want %d\n%s", c.name, c.count(), waitTimeout, n, testutil.Tail(c.out.String(), 3000))
		}
	}
}

// firstFrame returns the time from the client's start to its first decoded
// frame.
func (c *gstClient) firstFrame() time.Duration {
	c.t.Helper()
	return c.firstFrameAt().Sub(c.started)
}

// firstFrameAt waits for the client's first decoded frame and returns when
// it was seen.
func (c *gstClient) firstFrameAt() time.Time {
	c.t.Helper()
	c.waitFrames(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames[0]
}

// framesBetween counts the frames decoded in [from, to).
func (c *gstClient) framesBetween(from, to time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, at := range c.frames {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// requireHealthy requires no ERROR/WARNING line and decoded PTS that never
// go backwards. (Not strictly increasing: rtspsrc's jitter buffer derives
// PTS from arrival times too, and clamps a PTS that would go backwards to
// the previous one; the RTP timestamps themselves are checked strictly by
// rtpViewer.)
func (c *gstClient) requireHealthy() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	require.Empty(c.t, c.errs, "client %s reported errors", c.name)
	for i := 1; i < len(c.pts); i++ {
		require.GreaterOrEqual(c.t, c.pts[i], c.pts[i-1], "client %s: decoded PTS went backwards at frame %d", c.name, i)
	}
}

// waitExit waits for the client to end by itself and returns its error.
func (c *gstClient) waitExit() error {
	c.t.Helper()
	select {
	case <-c.exited:
	case <-time.After(waitTimeout):
		c.t.Fatalf("client %s still running after %v (%d frames)\n%s", c.name, waitTimeout, c.count(), testutil.Tail(c.out.String(), 3000))
	}
	return c.exitErr()
}

func (c *gstClient) exitErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waitErr
}

// running reports whether the client has not exited.
func (c *gstClient) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// signal sends sig to the client.
func (c *gstClient) signal(sig syscall.Signal) {
	c.t.Helper()
	require.NoError(c.t, syscall.Kill(c.cmd.Process.Pid, sig))
}

// socketPath returns a producer socket path in a fresh directory.
func socketPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "fh.sock")
}
