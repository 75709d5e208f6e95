package plugin_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/producertest"
	"github.com/framehub/framehub/producer"
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
	// go-plugin's yamux logs through the standard logger when a plugin dies
	// ("[ERR] yamux: Failed to write header"), which these tests do on
	// purpose; the host's own logs say what happened.
	log.SetOutput(io.Discard)
	code := 1
	dir, err := testutil.BuildToTemp(context.Background(),
		"github.com/framehub/framehub/examples/plugin-motion", "github.com/framehub/framehub/test/plugin/testplugin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "plugin tests:", err)
	} else {
		built = bins{motion: filepath.Join(dir, "plugin-motion"), test: filepath.Join(dir, "testplugin")}
		code = m.Run()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// ---------------------------------------------------------------------------
// Producer (in the test process)

// producerOpts are the producer's settings (default 320x240 at 60 fps).
type producerOpts = producertest.Options

type testProducer struct{ *producertest.Producer }

// startProducer runs a producer with one raw stream fed by the synthetic
// source, its surfaces named poolName; everything stops at cleanup.
func startProducer(t *testing.T, o producerOpts) *testProducer {
	t.Helper()
	if o.FPS == 0 {
		o.FPS = 60
	}
	o.PoolMin, o.PoolMax, o.PoolName = 4, 24, poolName
	o.WaitTimeout = waitTimeout
	return &testProducer{producertest.StartProducer(t, o)}
}

// sessionOf returns the producer's session of process pid, if connected.
func (p *testProducer) sessionOf(pid int) (producer.SessionInfo, bool) {
	return p.Session(func(s producer.SessionInfo) bool { return s.PID == pid })
}

// ---------------------------------------------------------------------------
// Logging

// logBuffer collects log output for assertions, and forwards it to t.Log
// until the test ends.
type logBuffer struct {
	testutil.LockedBuffer
	fwd io.Writer // testutil.LogWriter
}

func newLogBuffer(t *testing.T) *logBuffer {
	return &logBuffer{fwd: testutil.LogWriter(t)}
}

func (l *logBuffer) Write(p []byte) (int, error) {
	_, _ = l.LockedBuffer.Write(p)
	return l.fwd.Write(p)
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
	// After the host stopped (cleanups run last registered first): the
	// plugins' stderr, which the host re-logs, holds any race report.
	t.Cleanup(func() { testutil.CheckNoRace(t, "a plugin", logs.String()) })
	run := testutil.RunBackground(t, "plugin host", waitTimeout, h.Run)
	return &testHost{h: h, logs: logs, stop: run.Stop}
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
	testutil.WaitUntil(t, waitTimeout, func() bool {
		last = th.status(t, name)
		return cond(last)
	}, "%s", what)
	return last
}

// ---------------------------------------------------------------------------
// A well-behaved in-process consumer, to show others are unaffected

type goodConsumer struct{ *producertest.GoodConsumer }

func startGoodConsumer(t *testing.T, p *testProducer) *goodConsumer {
	t.Helper()
	c := producertest.Dial(t, p.Addr, sdk.Options{Name: "good", MaxInFlight: 4, Logger: testutil.Logger(t, slog.LevelWarn)}, waitTimeout)
	return &goodConsumer{producertest.RunGoodConsumer(t, c, p.Layout.Width)}
}

// window measures the good consumer's frames against the frames the
// producer published over the same time, and the machine's CPU over it.
type window struct {
	g              *goodConsumer
	p              *testProducer
	cpu            *testutil.CPUWindow
	t0             time.Time
	frames0, publ0 uint64
	dropped0       uint64
}

func (g *goodConsumer) measure(t *testing.T, p *testProducer) *window {
	return &window{g: g, p: p, cpu: testutil.StartCPUWindow(t), t0: time.Now(),
		frames0: g.Frames.Load(), publ0: p.Stream.Stats().Published, dropped0: g.Dropped.Load()}
}

// measured is what a window saw.
type measured struct {
	got, published float64 // the good consumer's and the producer's rates, fps
	ratio          float64 // the good consumer's frames over the frames published
	dropped        uint64  // frames the producer skipped for the good consumer
	starved        string  // why the published rate cannot be judged (sysinfo.Starved), or ""
}

// end closes the window.
func (w *window) end() measured {
	d := time.Since(w.t0).Seconds()
	f := w.g.Frames.Load() - w.frames0
	pub := w.p.Stream.Stats().Published - w.publ0
	m := measured{got: float64(f) / d, published: float64(pub) / d, dropped: w.g.Dropped.Load() - w.dropped0, starved: w.cpu.Starved()}
	if pub > 0 {
		m.ratio = float64(f) / float64(pub)
	}
	return m
}

// requireOthersKeepTheirRate requires what "others keep their rate" means:
// the good consumer got at least 95% of the frames the producer published
// over the window, and the producer published at least 95% of its source's
// rate (a frozen producer would score a perfect ratio). The second is an
// absolute rate: on a starved machine it is not judged, and the test ends
// skipped saying so; call this after the test's other checks.
func requireOthersKeepTheirRate(t *testing.T, p *testProducer, m measured) {
	t.Helper()
	require.GreaterOrEqual(t, m.ratio, 0.95, "the well-behaved consumer keeps the producer's rate (%.1f of %.1f fps)", m.got, m.published)
	testutil.SkipUnjudged(t, m.starved, "the published rate, %.1f fps against the source's %.0f", m.published, p.FPS)
	require.GreaterOrEqual(t, m.published, 0.95*p.FPS, "the producer keeps 95%% of its source's %.0f fps", p.FPS)
}
