package plugin_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/stamp"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/producer/synth"
	"github.com/framehub/framehub/sdk"
	"github.com/framehub/framehub/sdk/plugin/host"
)

// waitTimeout bounds every wait for something that should happen soon. It
// is generous because the machine is small and shared and the race
// detector slows the test process down; it is only ever a deadline.
const waitTimeout = 20 * time.Second

// poolName is the memfd name of the test producer's surfaces, as it shows
// in /proc/PID/maps of a process that mapped them.
const poolName = "framehub-plugin-test"

// bins holds the plugin binaries built by TestMain.
type bins struct{ motion, test string }

var built bins // set once by TestMain before any test runs; read-only after

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "framehub-plugins-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "plugin tests: temp dir:", err)
		os.Exit(1)
	}
	// go-plugin's yamux logs through the standard logger when a plugin dies
	// ("[ERR] yamux: Failed to write header"), which these tests do on
	// purpose; the host's own logs say what happened.
	log.SetOutput(io.Discard)
	code := 1
	if err := buildPlugins(dir); err != nil {
		fmt.Fprintln(os.Stderr, "plugin tests:", err)
	} else {
		built = bins{motion: filepath.Join(dir, "plugin-motion"), test: filepath.Join(dir, "testplugin")}
		code = m.Run()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// buildPlugins builds the example motion plugin and the test plugin into dir
// with the go command running this test.
func buildPlugins(dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	cmd := exec.Command(goBin, "build", "-o", dir+string(filepath.Separator), "./examples/plugin-motion", "./test/plugin/testplugin")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build the plugins in %s: %w\n%s", root, err, b)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Producer (in the test process)

type producerOpts struct {
	Width, Height int     // default 320x240
	FPS           float64 // default 60
	Pattern       synth.Pattern
	Config        producer.Config // Addr and Logger are filled in
}

type testProducer struct {
	Addr   string
	Srv    *producer.Server
	Stream *producer.Stream
	Layout surface.Layout
	FPS    float64
}

// startProducer runs a producer with one raw stream fed by the synthetic
// source; everything stops at cleanup.
func startProducer(t *testing.T, o producerOpts) *testProducer {
	t.Helper()
	if o.Width == 0 {
		o.Width, o.Height = 320, 240
	}
	if o.FPS == 0 {
		o.FPS = 60
	}
	layout, err := surface.NV12(o.Width, o.Height, 64)
	require.NoError(t, err)
	renderer, err := synth.NewRenderer(producer.SynthLayout(layout), o.Pattern)
	require.NoError(t, err)
	pool, err := surface.NewPool(surface.PoolConfig{Allocator: surface.NewMemfd(poolName), Size: layout.Size, Min: 4, Max: 24})
	require.NoError(t, err)
	cfg := o.Config
	cfg.Addr = filepath.Join(t.TempDir(), "fh.sock")
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t, slog.LevelWarn)
	}
	srv, err := producer.New(cfg)
	if err != nil {
		_ = pool.Close()
		require.NoError(t, err)
	}
	st, err := srv.AddStream(producer.StreamConfig{Name: "raw", Caps: producer.RawCaps(layout, uint32(o.FPS), 1), Pool: pool})
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		_ = srv.Close()
		_ = pool.Close()
		require.NoError(t, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srcDone := make(chan error, 1)
	go func() { srcDone <- (&producer.Synthetic{Stream: st, Renderer: renderer, FPS: o.FPS}).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-srcDone:
			require.NoError(t, err, "synthetic source")
		case <-time.After(waitTimeout):
			t.Error("synthetic source did not stop")
		}
		require.NoError(t, srv.Close())
		require.NoError(t, pool.Close())
	})
	return &testProducer{Addr: cfg.Addr, Srv: srv, Stream: st, Layout: layout, FPS: o.FPS}
}

// sessionOf returns the producer's session of process pid, if connected.
func (p *testProducer) sessionOf(pid int) (producer.SessionInfo, bool) {
	for _, s := range p.Srv.Sessions() {
		if s.PID == pid {
			return s, true
		}
	}
	return producer.SessionInfo{}, false
}

// ---------------------------------------------------------------------------
// Logging

// logBuffer collects log output for assertions, and forwards it to t.Log
// until the test ends.
type logBuffer struct {
	t    *testing.T
	mu   sync.Mutex
	b    bytes.Buffer
	done bool
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	if !l.done {
		l.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the logged lines that contain every one of parts.
func (l *logBuffer) lines(parts ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		ok := line != ""
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

func newLogBuffer(t *testing.T) *logBuffer {
	l := &logBuffer{t: t}
	t.Cleanup(func() {
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return l
}

// testLogger logs records at level or above to t.Log.
func testLogger(t *testing.T, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(newLogBuffer(t), &slog.HandlerOptions{Level: level}))
}

// ---------------------------------------------------------------------------
// Host

type testHost struct {
	h    *host.Host
	logs *logBuffer
	stop func() // stops the host and waits for it; idempotent
}

// startHost runs a plugin host with cfg (fast health checks and restarts
// unless cfg says otherwise) until cleanup, which stops it and its plugins.
func startHost(t *testing.T, p *testProducer, cfg host.Config) *testHost {
	t.Helper()
	logs := newLogBuffer(t)
	cfg.Socket = p.Addr
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.HealthInterval, 100*time.Millisecond)
	def(&cfg.HealthTimeout, 2*time.Second)
	def(&cfg.RestartMin, 100*time.Millisecond)
	def(&cfg.RestartMax, 400*time.Millisecond)
	def(&cfg.StartTimeout, waitTimeout)
	h, err := host.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(waitTimeout):
				t.Errorf("plugin host did not stop within %v", waitTimeout)
			}
		})
	}
	t.Cleanup(stop)
	return &testHost{h: h, logs: logs, stop: stop}
}

// status returns the named plugin's status.
func (th *testHost) status(t *testing.T, name string) host.Status {
	t.Helper()
	for _, s := range th.h.Status() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no plugin %q in the host's status", name)
	return host.Status{}
}

// waitStatus waits until the named plugin's status satisfies cond.
func (th *testHost) waitStatus(t *testing.T, name, what string, cond func(host.Status) bool) host.Status {
	t.Helper()
	var last host.Status
	waitFor(t, what, func() bool {
		last = th.status(t, name)
		return cond(last)
	})
	return last
}

// waitFor polls cond every 10 ms until it holds, failing the test after
// waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		<-tick.C
	}
}

// ---------------------------------------------------------------------------
// A well-behaved in-process consumer, to show others are unaffected

type goodConsumer struct {
	frames, mismatches, dropped atomic.Uint64
	errc                        chan error
}

func startGoodConsumer(t *testing.T, p *testProducer) *goodConsumer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	c, err := sdk.Dial(ctx, p.Addr, sdk.Options{Name: "good", MaxInFlight: 4, Logger: testLogger(t, slog.LevelWarn)})
	cancel()
	require.NoError(t, err)
	g := &goodConsumer{errc: make(chan error, 1)}
	rctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			f, err := c.Next(rctx)
			if err != nil {
				if rctx.Err() == nil {
					g.errc <- err
				}
				return
			}
			if y, err := f.Plane(0); err != nil {
				g.mismatches.Add(1)
			} else if _, err := stamp.Verify(y, int(f.Planes()[0].Stride), p.Layout.Width, f.Seq()); err != nil {
				g.mismatches.Add(1)
			}
			g.dropped.Add(uint64(f.Dropped()))
			f.Release()
			g.frames.Add(1)
		}
	}()
	t.Cleanup(func() {
		stop()
		<-stopped
		_ = c.Close()
	})
	return g
}

// check fails the test if the good consumer failed or saw a bad stamp.
func (g *goodConsumer) check(t *testing.T) {
	t.Helper()
	select {
	case err := <-g.errc:
		t.Fatalf("the well-behaved consumer failed: %v", err)
	default:
	}
	require.Zero(t, g.mismatches.Load(), "the well-behaved consumer saw stamp mismatches")
}

// window measures the good consumer's frames against the frames the
// producer published over the same time.
type window struct {
	g              *goodConsumer
	p              *testProducer
	t0             time.Time
	frames0, publ0 uint64
	dropped0       uint64
}

func (g *goodConsumer) measure(p *testProducer) *window {
	return &window{g: g, p: p, t0: time.Now(), frames0: g.frames.Load(), publ0: p.Stream.Stats().Published, dropped0: g.dropped.Load()}
}

// end returns the good consumer's rate, the published rate, their ratio
// and the frames the producer skipped for the good consumer.
func (w *window) end() (got, published, ratio float64, dropped uint64) {
	d := time.Since(w.t0).Seconds()
	f := w.g.frames.Load() - w.frames0
	pub := w.p.Stream.Stats().Published - w.publ0
	if pub > 0 {
		ratio = float64(f) / float64(pub)
	}
	return float64(f) / d, float64(pub) / d, ratio, w.g.dropped.Load() - w.dropped0
}
