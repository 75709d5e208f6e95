package ipcam_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/ipcam"
	"github.com/framehub/framehub/sdk"
)

// waitTimeout bounds every wait for something that should happen soon: a
// deadline on two noisy cores with the race detector, never slept away.
const waitTimeout = 40 * time.Second

// Set once by TestMain, read-only afterwards.
var (
	binDir     string        // framehub-producer, -recorder, -streamer, -supervisor and framehubctl
	stream     *ipcam.Stream // what the camera sends: 320×240 at 30 fps, an IDR every 30 frames
	streamFile string        // the same, Annex B, for the camera processes
	smallFile  string        // a 160×120 stream of the same kind, for a second camera that looks different
	streamErr  error         // why there is no stream (gst-launch-1.0 or x264enc missing)
)

func TestMain(m *testing.M) {
	testutil.RunHelper(map[string]func() int{"camera": cameraMain})
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // the first cgo build of go-gst is slow
	defer cancel()
	dir, err := testutil.BuildToTemp(ctx, "github.com/framehub/framehub/cmd/framehub-producer", "github.com/framehub/framehub/cmd/framehub-recorder",
		"github.com/framehub/framehub/cmd/framehub-supervisor", "github.com/framehub/framehub/cmd/framehubctl",
		"github.com/framehub/framehub/cmd/framehub-streamer")
	defer os.RemoveAll(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binDir = dir
	stream, streamErr = ipcam.Encode(ctx, ipcam.EncodeConfig{Width: 320, Height: 240, FPS: 30, Frames: 90, GOP: 30, BitrateKbps: 800})
	if streamErr == nil {
		var all []byte
		for _, au := range stream.AUs {
			all = append(all, au.AnnexB()...)
		}
		streamFile = filepath.Join(dir, "camera.h264")
		if err := os.WriteFile(streamFile, all, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		var small *ipcam.Stream
		small, streamErr = ipcam.Encode(ctx, ipcam.EncodeConfig{Width: 160, Height: 120, FPS: 30, Frames: 90, GOP: 30, BitrateKbps: 300})
		if streamErr == nil {
			all = nil
			for _, au := range small.AUs {
				all = append(all, au.AnnexB()...)
			}
			smallFile = filepath.Join(dir, "small.h264")
			if err := os.WriteFile(smallFile, all, 0o600); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
	}
	return m.Run()
}

// needStream skips a test when the camera's stream could not be encoded.
func needStream(t *testing.T) {
	t.Helper()
	if streamErr != nil {
		t.Skipf("no camera stream: %v", streamErr)
	}
}

// ---------------------------------------------------------------------------
// The camera: the test binary re-executed as helper "camera".

// cameraMain serves streamFile as ipcam.Camera with the settings of the
// FHI_* variables until SIGTERM (the tests mostly SIGKILL it), and says
// "camera ready addr=HOST:PORT" on stderr once it listens.
func cameraMain() int {
	b, err := os.ReadFile(os.Getenv("FHI_STREAM"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s, err := ipcam.Split(b)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s.Width, s.Height, s.FPS = 320, 240, 30
	if os.Getenv("FHI_SMALL") == "1" {
		s.Width, s.Height = 160, 120
	}
	params, _ := strconv.Atoi(os.Getenv("FHI_PARAMS"))
	auth, _ := strconv.Atoi(os.Getenv("FHI_AUTH"))
	cam, err := ipcam.Start(ipcam.Config{Stream: s, Addr: os.Getenv("FHI_ADDR"), Params: ipcam.Params(params), Auth: ipcam.AuthMethod(auth),
		User: os.Getenv("FHI_USER"), Pass: os.Getenv("FHI_PASS"), UDP: os.Getenv("FHI_UDP") == "1"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "camera ready addr=%s\n", cam.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	<-ctx.Done()
	cam.Close()
	return 0
}

// camConfig is a camera process's settings.
type camConfig struct {
	addr       string // "" picks a free port; a restarted camera gets the address of the one before
	params     ipcam.Params
	auth       ipcam.AuthMethod
	user, pass string
	udp        bool
	small      bool // serve the 160×120 stream
}

type cameraProc struct {
	*testutil.Daemon
	cfg  camConfig
	addr string
}

func startCamera(t *testing.T, cfg camConfig) *cameraProc {
	t.Helper()
	needStream(t)
	udp := "0"
	if cfg.udp {
		udp = "1"
	}
	file, small := streamFile, "0"
	if cfg.small {
		file, small = smallFile, "1"
	}
	cmd := testutil.HelperCommand("camera", "FHI_STREAM="+file, "FHI_SMALL="+small, "FHI_ADDR="+cfg.addr, fmt.Sprintf("FHI_PARAMS=%d", cfg.params),
		fmt.Sprintf("FHI_AUTH=%d", cfg.auth), "FHI_USER="+cfg.user, "FHI_PASS="+cfg.pass, "FHI_UDP="+udp)
	var addr atomic.Value
	d := testutil.StartDaemon(t, "camera", cmd, waitTimeout, func(line string) bool {
		a, ok := strings.CutPrefix(line, "camera ready addr=")
		if ok {
			addr.Store(a)
		}
		return ok
	})
	c := &cameraProc{Daemon: d, cfg: cfg, addr: addr.Load().(string)}
	c.cfg.addr = c.addr
	return c
}

// url is the camera's stream URL with user and pass in it (none when user
// is "").
func (c *cameraProc) url(user, pass string) string {
	u := url.URL{Scheme: "rtsp", Host: c.addr, Path: "/cam"}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return u.String()
}

// restart kills the camera (SIGKILL, as a power cut) and starts it again
// on the same address.
func (c *cameraProc) restart(t *testing.T) *cameraProc {
	t.Helper()
	c.Kill()
	return startCamera(t, c.cfg)
}

// ---------------------------------------------------------------------------
// Daemons

// proc is a running daemon with its admin API on a Unix socket.
type proc struct {
	*testutil.Daemon
	t     *testing.T
	admin string
}

func start(t *testing.T, bin, admin string, args ...string) *proc {
	t.Helper()
	d := testutil.StartDaemon(t, bin, exec.Command(filepath.Join(binDir, bin), args...), waitTimeout, nil)
	return &proc{Daemon: d, t: t, admin: admin}
}

func (p *proc) get(path string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return testutil.HTTPDo(ctx, p.admin, http.MethodGet, path, nil)
}

// metrics scrapes /metrics into "name{labels}" → value; nil when the
// daemon does not answer (yet).
func (p *proc) metrics() map[string]float64 {
	code, body, err := p.get("/metrics")
	if err != nil || code != http.StatusOK {
		return nil
	}
	m, _ := testutil.ParseMetrics(body)
	return m
}

// metric is the sample name (without labels) of /metrics, -1 when absent.
func (p *proc) metric(name string) float64 {
	v, ok := p.metrics()[name]
	if !ok {
		return -1
	}
	return v
}

// waitMetric waits until cond holds for the daemon's metric name, failing
// the test when the daemon exits first.
func (p *proc) waitMetric(name string, cond func(float64) bool, what string) {
	p.t.Helper()
	testutil.WaitUntil(p.t, waitTimeout, func() bool {
		select {
		case <-p.Exited():
			p.t.Fatalf("%s exited: %v\n%s", p.Name, p.Err(), testutil.Tail(p.Log.String(), 6000))
		default:
		}
		return cond(p.metric(name))
	}, "%s: %s", p.Name, what)
}

type producerProc struct {
	*proc
	sock string
}

// startProducer runs framehub-producer on source, given in its -config
// file (mode 0600), not on its command line, as docs/OPERATIONS.md
// advises for a URL with credentials, and waits until the camera streams.
func startProducer(t *testing.T, dir, source string, extra ...string) *producerProc {
	t.Helper()
	sock := filepath.Join(dir, "p.sock")
	admin := "unix:" + filepath.Join(dir, "p-admin.sock")
	cfg := filepath.Join(dir, "producer.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("source: "+strconv.Quote(source)+"\n"), 0o600))
	args := append([]string{"-config", cfg, "-socket", sock, "-admin", admin, "-admin-token", filepath.Join(dir, "admin.token"),
		"-max-hold", "10s", "-log-level", "debug"}, extra...)
	p := &producerProc{proc: start(t, "framehub-producer", admin, args...), sock: sock}
	p.waitMetric("framehub_producer_camera_connected", func(v float64) bool { return v == 1 }, "camera streaming")
	return p
}

// ---------------------------------------------------------------------------
// Consumers in the test process

// eosCounter is a slog handler counting the SDK's "end of stream" records
// (the SDK tells applications of EOS only through them and the next
// frame's Discont flag).
type eosCounter struct{ n atomic.Int64 }

func (h *eosCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *eosCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "producer reports end of stream" {
		h.n.Add(1)
	}
	return nil
}
func (h *eosCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *eosCounter) WithGroup(string) slog.Handler      { return h }

// dial subscribes to stream of the producer; the client is closed at
// cleanup.
func dial(t *testing.T, p *producerProc, stream string, log *slog.Logger) *sdk.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := sdk.Dial(ctx, p.sock, sdk.Options{Stream: stream, Name: "test-" + stream, MaxInFlight: 8, MaxHold: 10 * time.Second, Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func next(t *testing.T, c *sdk.Client) *sdk.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	f, err := c.Next(ctx)
	require.NoError(t, err)
	return f
}

// expected is what the h264 stream must carry for an access unit the
// camera sent: its NAL units unchanged, after an access unit delimiter
// when it had none, and with the SPS and PPS before an IDR that came
// without them (PROTOCOL.md §7, "Encoded streams").
func expected(au ipcam.AU) []byte {
	out := au
	if au.Type(0) != 9 {
		out = append(ipcam.AU{{0x09, 0xf0}}, out...)
		if au.IDR() {
			out = append(ipcam.AU{out[0], stream.SPS, stream.PPS}, out[1:]...)
		}
	}
	return out.AnnexB()
}

// follower checks that a consumer's access units are the camera's, byte
// for byte and in order, across the camera's loop.
type follower struct {
	want [][]byte
	idr  []bool
	at   int // index of the last access unit seen; -1 before the first
}

func newFollower(sent []ipcam.AU) *follower {
	f := &follower{at: -1}
	for _, au := range sent {
		f.want = append(f.want, expected(au))
		f.idr = append(f.idr, au.IDR())
	}
	return f
}

// check takes the next access unit: it must be the one after the last, or,
// when restart is set (the first, or the first after a gap), any of them.
func (fl *follower) check(data []byte, restart bool) error {
	if fl.at < 0 || restart {
		fl.at = -1
		for i := range fl.want {
			if bytes.Equal(fl.want[i], data) {
				fl.at = i
				return nil
			}
		}
		return fmt.Errorf("an access unit of %d bytes that the camera never sent", len(data))
	}
	fl.at = (fl.at + 1) % len(fl.want)
	if !bytes.Equal(fl.want[fl.at], data) {
		return fmt.Errorf("access unit %d of the camera differs (%d bytes, want %d)", fl.at, len(data), len(fl.want[fl.at]))
	}
	return nil
}
