package recorder_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
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

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/consumers/recorder"
	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/sdk"
)

// waitTimeout bounds every wait for something that should happen soon. It
// is generous because the machine is two noisy cores running x264 and the
// race detector; it is only ever a deadline, never slept away.
const waitTimeout = 40 * time.Second

// frame is the producer's frame interval (-fps 30).
const frame = time.Second / 30

// binDir holds framehub-producer and framehub-recorder, built once by
// TestMain before any test runs; read-only afterwards.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // the first cgo build of go-gst is slow
	dir, err := testutil.BuildToTemp(ctx,
		"github.com/framehub/framehub/cmd/framehub-producer", "github.com/framehub/framehub/cmd/framehub-recorder")
	cancel()
	defer os.RemoveAll(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binDir = dir
	return m.Run()
}

func needGst(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"gst-launch-1.0", "gst-discoverer-1.0"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian package gstreamer1.0-tools / gstreamer1.0-plugins-base-apps): %v", tool, err)
		}
	}
}

// ---------------------------------------------------------------------------
// Processes

// proc is a running daemon with its admin API on a Unix socket.
type proc struct {
	*testutil.Daemon
	t     *testing.T
	admin string
}

// start runs binary bin of binDir with args; its logs are shown when the
// test fails, and it is killed at cleanup. It cannot outlive the test
// binary, even when a timeout kills it (PR_SET_PDEATHSIG, see
// testutil.StartDaemon).
func start(t *testing.T, bin, admin string, args ...string) *proc {
	t.Helper()
	d := testutil.StartDaemon(t, bin, exec.Command(filepath.Join(binDir, bin), args...), waitTimeout, nil)
	return &proc{Daemon: d, t: t, admin: admin}
}

// get fetches path from the process's admin API (a Unix socket).
func (p *proc) get(path string) (int, []byte, error) {
	return httpDo(p.admin, http.MethodGet, path, nil)
}

// httpDo sends a request to the admin API admin ("unix:/path"), with a
// 10 s deadline.
func httpDo(admin, method, path string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return testutil.HTTPDo(ctx, admin, method, path, body)
}

// postAuth POSTs body to path of the admin API at addr ("unix:/path") with
// the admin token of tokenFile ("" sends none), with a 10 s deadline.
func postAuth(addr, path, tokenFile string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok := ""
	if tokenFile != "" {
		var err error
		if tok, err = admin.ReadToken(tokenFile); err != nil {
			return 0, nil, err
		}
	}
	return testutil.HTTPDoToken(ctx, addr, http.MethodPost, path, body, tok)
}

// metrics scrapes /metrics into "name{labels}" → value.
func (p *proc) metrics() map[string]float64 {
	p.t.Helper()
	code, body, err := p.get("/metrics")
	require.NoError(p.t, err)
	require.Equal(p.t, http.StatusOK, code)
	return parseMetrics(body)
}

// parseMetrics parses /metrics, leaving out a sample whose value does not
// parse (it is polled while the daemon starts).
func parseMetrics(body []byte) map[string]float64 {
	out, _ := testutil.ParseMetrics(body)
	return out
}

// sum adds the samples of metric name whose labels contain every want.
func sum(m map[string]float64, name string, want ...string) float64 {
	total := 0.0
	for k, v := range m {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(k, w)
		}
		if ok {
			total += v
		}
	}
	return total
}

// ---------------------------------------------------------------------------
// Producer and recorder

type producerProc struct {
	*proc
	sock string
}

// startProducer runs framehub-producer on the test source: 320×240 at 30
// fps, a keyframe every 30 frames, 1 Mbit/s; it returns once h264 frames
// flow.
func startProducer(t *testing.T, dir string, extra ...string) *producerProc {
	t.Helper()
	sock := filepath.Join(dir, "p.sock")
	admin := "unix:" + filepath.Join(dir, "p-admin.sock")
	args := append([]string{"-source", "test", "-width", "320", "-height", "240", "-fps", "30", "-gop", "30", "-bitrate", "1000",
		"-socket", sock, "-admin", admin, "-admin-token", filepath.Join(dir, "admin.token"), "-max-hold", "10s"}, extra...)
	p := &producerProc{proc: start(t, "framehub-producer", admin, args...), sock: sock}
	testutil.WaitUntil(t, waitTimeout, func() bool {
		select {
		case <-p.Exited():
			t.Fatalf("producer exited: %v\n%s", p.Err(), testutil.Tail(p.Log.String(), 6000))
		default:
		}
		code, body, err := p.get("/metrics")
		return err == nil && code == http.StatusOK && sum(parseMetrics(body), "framehub_producer_frames_total", `stream="h264"`) > 0
	}, "producer serving h264")
	return p
}

// startRecorder runs framehub-recorder on dir/rec and returns once it is
// subscribed to the producer.
func startRecorder(t *testing.T, p *producerProc, dir string, extra ...string) *proc {
	t.Helper()
	admin := "unix:" + filepath.Join(dir, fmt.Sprintf("r-%d.sock", time.Now().UnixNano())) // one per start
	args := append([]string{"-socket", p.sock, "-dir", filepath.Join(dir, "rec"), "-admin", admin,
		"-admin-token", filepath.Join(dir, "admin.token"), "-log-level", "debug"}, extra...)
	r := start(t, "framehub-recorder", admin, args...)
	testutil.WaitUntil(t, waitTimeout, func() bool {
		select {
		case <-r.Exited():
			t.Fatalf("recorder exited: %v\n%s", r.Err(), testutil.Tail(r.Log.String(), 6000))
		default:
		}
		_, body, err := r.get("/healthz")
		var h recorder.Health
		return err == nil && json.Unmarshal(body, &h) == nil && h.Connected
	}, "recorder subscribed")
	return r
}

// ---------------------------------------------------------------------------
// A reference consumer in the test process: what the producer published

type refFrame struct {
	pts, dts int64
	mono     int64
	key      bool
}

type reference struct {
	mu       sync.Mutex
	frames   map[uint64]refFrame
	last     uint64
	disconts int
	gaps     int
	err      error
	cancel   context.CancelFunc
	done     chan struct{}
}

// watch subscribes to the h264 stream and records every frame's
// timestamps by sequence number, until the test ends. It starts with the
// producer's replay buffer, which holds every frame since the producer
// started: a recorder may record frames captured before watch was called
// (an event's pre-event buffer comes from there too).
func watch(t *testing.T, p *producerProc) *reference {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := testutil.Logger(t, slog.LevelError)
	c, err := sdk.Dial(ctx, p.sock, sdk.Options{Stream: "h264", Name: "reference", MaxInFlight: 32, Logger: log, ReplayFrom: 1})
	require.NoError(t, err)
	ref := &reference{frames: map[uint64]refFrame{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(ref.done)
		defer c.Close()
		for {
			f, err := c.Next(ctx)
			if err != nil {
				if ctx.Err() == nil {
					ref.mu.Lock()
					ref.err = err
					ref.mu.Unlock()
				}
				return
			}
			ref.mu.Lock()
			if f.Discont() && ref.last != 0 { // the first says the buffer does not reach back to 1 ns
				ref.disconts++
			}
			if ref.last != 0 && f.Seq() != ref.last+1 {
				ref.gaps++
			}
			ref.last = f.Seq()
			ref.frames[f.Seq()] = refFrame{pts: f.PTS(), dts: f.DTS(), mono: f.Capture(), key: f.Keyframe()}
			ref.mu.Unlock()
			f.Release()
		}
	}()
	t.Cleanup(ref.close)
	return ref
}

func (r *reference) close() {
	r.cancel()
	<-r.done
}

func (r *reference) lastSeq() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *reference) get(seq uint64) (refFrame, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.frames[seq]
	return f, ok
}

// ---------------------------------------------------------------------------
// Files

// segFile is a segment file and what the recorder's reader finds in it.
type segFile struct {
	path string
	seg  *recorder.Segment
}

// seqs returns the producer sequence numbers of every sample.
func (s segFile) seqs() []uint64 {
	var out []uint64
	for _, f := range s.seg.Fragments {
		for i := range f.Samples {
			out = append(out, f.Info.FirstSeq+uint64(i))
		}
	}
	return out
}

// lastDTS is the producer DTS (ns) of the last sample.
func (s segFile) lastDTS() int64 { return s.seg.Fragments[len(s.seg.Fragments)-1].Info.LastDTS }

// listSegments returns the segment files under dir (closed ones, and
// parts when withParts), oldest first.
func listSegments(t *testing.T, dir string, withParts bool) []segFile {
	t.Helper()
	var out []segFile
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if strings.HasSuffix(p, ".mp4") || withParts && strings.HasSuffix(p, ".mp4.part") {
			out = append(out, segFile{path: p})
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return filepath.Base(out[i].path) < filepath.Base(out[j].path) })
	for i := range out {
		seg, err := recorder.ReadSegmentFile(out[i].path)
		if err != nil {
			return nil // being created: the caller polls again
		}
		out[i].seg = seg
	}
	return out
}

// recordedPast reports whether the newest segment under dir holds a frame
// of sequence number seq or later.
func recordedPast(t *testing.T, dir string, seq uint64) bool {
	segs := listSegments(t, dir, true)
	if len(segs) == 0 { // none yet, or one being created: poll again
		return false
	}
	last := segs[len(segs)-1].seqs()
	return len(last) > 0 && last[len(last)-1] >= seq
}

var (
	durationRE = regexp.MustCompile(`Duration: (\d+):(\d+):(\d+)\.(\d{9})`)
	widthRE    = regexp.MustCompile(`Width: (\d+)`)
	heightRE   = regexp.MustCompile(`Height: (\d+)`)
)

// discovered is what gst-discoverer-1.0 says about a file.
type discovered struct {
	duration      time.Duration
	width, height int
	h264          bool
}

func discover(t *testing.T, path string) discovered {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "gst-discoverer-1.0", path).CombinedOutput()
	require.NoError(t, err, "gst-discoverer-1.0 %s:\n%s", path, out)
	var d discovered
	m := durationRE.FindStringSubmatch(string(out))
	require.NotNil(t, m, "no duration from gst-discoverer-1.0:\n%s", out)
	h, _ := strconv.Atoi(m[1])
	mi, _ := strconv.Atoi(m[2])
	s, _ := strconv.Atoi(m[3])
	ns, _ := strconv.Atoi(m[4])
	d.duration = time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute + time.Duration(s)*time.Second + time.Duration(ns)
	if m := widthRE.FindStringSubmatch(string(out)); m != nil {
		d.width, _ = strconv.Atoi(m[1])
	}
	if m := heightRE.FindStringSubmatch(string(out)); m != nil {
		d.height, _ = strconv.Atoi(m[1])
	}
	d.h264 = strings.Contains(string(out), "video #1: H.264")
	return d
}

// decodeFrames decodes the file with qtdemux ! h264parse ! avdec_h264 and
// returns how many frames came out: they are written raw (I420) to a file
// whose size says it, which no log parsing can miscount.
func decodeFrames(t *testing.T, path string, width, height int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	raw := filepath.Join(t.TempDir(), "decoded.i420")
	src := path
	if strings.HasSuffix(path, ".part") {
		// A part is decoded as it is: only the name changes.
		src = filepath.Join(t.TempDir(), "part.mp4")
		require.NoError(t, os.Link(path, src))
	}
	out, err := exec.CommandContext(ctx, "gst-launch-1.0", "-q", "filesrc", "location="+src, "!", "qtdemux", "!", "h264parse", "!",
		"avdec_h264", "!", "videoconvert", "!", "video/x-raw,format=I420", "!", "filesink", "location="+raw).CombinedOutput()
	require.NoError(t, err, "decode %s:\n%s", path, out)
	fi, err := os.Stat(raw)
	require.NoError(t, err)
	size := int64(width * height * 3 / 2)
	require.Zero(t, fi.Size()%size, "whole frames")
	return int(fi.Size() / size)
}

// checkPlays checks a closed segment with GStreamer: H.264 at 320×240, the
// duration its samples say (±1 frame), every sample decoded.
func checkPlays(t *testing.T, s segFile) {
	t.Helper()
	d := discover(t, s.path)
	require.True(t, d.h264, "%s: video codec", s.path)
	require.Equal(t, [2]int{320, 240}, [2]int{d.width, d.height}, "%s: size", s.path)
	content := time.Duration(s.seg.End()) * time.Second / 90000
	require.InDelta(t, content.Seconds(), d.duration.Seconds(), frame.Seconds(), "%s: duration", s.path)
	require.Equal(t, len(s.seqs()), decodeFrames(t, s.path, 320, 240), "%s: every frame decodes", s.path)
}
