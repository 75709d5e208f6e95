// Package producertest runs a framehub producer inside a test process: a
// server with one stream whose surfaces are memfds, fed by the pure-Go
// synthetic source (or by the test itself), and a well-behaved consumer of
// it. Every package's tests use it, from sdk/ and producer/ to the
// multi-process suites under test/, so that there is one way to stand up
// a producer in a test.
//
// It lives apart from internal/testutil because it imports producer and
// sdk: the tests of packages those import (fdpass, ipc, lease,
// producer/surface) use internal/testutil alone.
package producertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/producer/synth"
)

// Options configures a producer. The zero value of a field means its
// default.
type Options struct {
	Width, Height int           // default 320x240
	FPS           float64       // default 30; also the stream's advertised rate
	Pattern       synth.Pattern // what the synthetic source draws; default synth.PatternMoving
	// Manual leaves the stream without a source: the test acquires and
	// publishes frames itself through Producer.Stream.
	Manual bool
	// PoolMin and PoolMax bound the surfaces in the pool; when PoolMax is
	// 0 they default to 4 and 16.
	PoolMin, PoolMax int
	// SurfaceSize is the size of each surface; default the NV12 layout's
	// (a stream of another format, such as H.264 slabs, sets its own).
	SurfaceSize int
	// PoolName names the memfd surfaces, as they show in /proc/PID/maps and
	// /proc/PID/fd of the processes holding them; default "framehub-test".
	PoolName string
	// Addr is the socket path; default "fh.sock" in a new short temporary
	// directory (removed by Close). A test restarting a producer passes the
	// address of the one it stopped.
	Addr string
	// Config is the server configuration; Addr is filled in. Logger is
	// required by Start; StartProducer defaults it to Warn and above on
	// t.Log.
	Config producer.Config
	// Stream is the stream's configuration. Name defaults to "raw", Caps
	// to NV12 of Width x Height at FPS, Pool to the pool made here.
	Stream producer.StreamConfig
	// WaitTimeout bounds the wait for the synthetic source to stop at
	// Close; default 20 s, the slowest "soon" of the packages using it.
	WaitTimeout time.Duration
}

// Producer is a producer running in this process with one stream.
type Producer struct {
	Addr   string
	Srv    *producer.Server
	Stream *producer.Stream
	Pool   *surface.Pool
	Layout surface.Layout
	FPS    float64

	cancel  context.CancelFunc
	srcDone chan error // nil when Manual
	dir     string     // removed by Close; "" when the caller gave Addr
	timeout time.Duration
	once    sync.Once
	err     error
}

// Start runs a producer as o says, serving as soon as it returns. The
// caller must Close it. Tests use StartProducer; Start is for Example
// functions, which have no testing.TB.
func Start(o Options) (*Producer, error) {
	if o.Config.Logger == nil {
		return nil, errors.New("producertest: Options.Config.Logger is required")
	}
	if o.Width == 0 {
		o.Width, o.Height = 320, 240
	}
	if o.FPS == 0 {
		o.FPS = 30
	}
	if o.PoolMax == 0 {
		o.PoolMin, o.PoolMax = 4, 16
	}
	if o.PoolName == "" {
		o.PoolName = "framehub-test"
	}
	if o.WaitTimeout == 0 {
		o.WaitTimeout = 20 * time.Second
	}
	p := &Producer{FPS: o.FPS, timeout: o.WaitTimeout, cancel: func() {}}
	if o.Addr == "" {
		// Unix socket paths must fit in 108 bytes: not under t.TempDir().
		dir, err := os.MkdirTemp("", "fh-")
		if err != nil {
			return nil, fmt.Errorf("producertest: socket directory: %w", err)
		}
		p.dir, o.Addr = dir, filepath.Join(dir, "fh.sock")
	}
	p.Addr = o.Addr
	if err := p.start(o); err != nil {
		_ = p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Producer) start(o Options) error {
	layout, err := surface.NV12(o.Width, o.Height, 64)
	if err != nil {
		return fmt.Errorf("producertest: layout %dx%d: %w", o.Width, o.Height, err)
	}
	p.Layout = layout
	size := o.SurfaceSize
	if size == 0 {
		size = layout.Size
	}
	p.Pool, err = surface.NewPool(surface.PoolConfig{
		Allocator: surface.NewMemfd(o.PoolName), Size: size, Min: o.PoolMin, Max: o.PoolMax,
	})
	if err != nil {
		return fmt.Errorf("producertest: pool: %w", err)
	}
	cfg := o.Config
	cfg.Addr = o.Addr
	if p.Srv, err = producer.New(cfg); err != nil {
		return fmt.Errorf("producertest: server on %s: %w", o.Addr, err)
	}
	sc := o.Stream
	if sc.Name == "" {
		sc.Name = "raw"
	}
	if sc.Caps.Format == "" {
		sc.Caps = producer.RawCaps(layout, uint32(o.FPS), 1)
	}
	if sc.Pool == nil {
		sc.Pool = p.Pool
	}
	if p.Stream, err = p.Srv.AddStream(sc); err != nil {
		return fmt.Errorf("producertest: stream %q: %w", sc.Name, err)
	}
	if err := p.Srv.Start(); err != nil {
		return fmt.Errorf("producertest: start server: %w", err)
	}
	if o.Manual {
		return nil
	}
	renderer, err := synth.NewRenderer(producer.SynthLayout(layout), o.Pattern)
	if err != nil {
		return fmt.Errorf("producertest: renderer: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.srcDone = cancel, make(chan error, 1)
	src := &producer.Synthetic{Stream: p.Stream, Renderer: renderer, FPS: o.FPS}
	go func() { p.srcDone <- src.Run(ctx) }()
	return nil
}

// Close stops the source, then the server (its consumers see the
// connection end), then the pool, and removes the socket's directory when
// Start made it. It returns the first failure, a source that failed or did
// not stop included. Only the first call does anything; later calls return
// the same error.
func (p *Producer) Close() error {
	p.once.Do(func() {
		p.cancel()
		var errs []error
		if p.srcDone != nil {
			select {
			case err := <-p.srcDone:
				if err != nil {
					errs = append(errs, fmt.Errorf("producertest: synthetic source: %w", err))
				}
			case <-time.After(p.timeout):
				errs = append(errs, fmt.Errorf("producertest: synthetic source did not stop within %v", p.timeout))
			}
		}
		if p.Srv != nil {
			errs = append(errs, p.Srv.Close())
		}
		if p.Pool != nil {
			errs = append(errs, p.Pool.Close())
		}
		if p.dir != "" {
			errs = append(errs, os.RemoveAll(p.dir))
		}
		p.err = errors.Join(errs...)
	})
	return p.err
}

// StartProducer runs a producer as o says (see Start), serving as soon as
// it returns, and fails the test when it cannot. It is closed at cleanup,
// which requires Close to succeed; nothing else to clean up.
func StartProducer(t testing.TB, o Options) *Producer {
	t.Helper()
	if o.Config.Logger == nil {
		o.Config.Logger = testutil.Logger(t, slog.LevelWarn)
	}
	if o.Addr == "" {
		o.Addr = filepath.Join(testutil.ShortDir(t), "fh.sock")
	}
	p, err := Start(o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

// Stop is Close for tests: it fails the test when closing fails. A test
// restarting its producer stops it with Stop and starts another on the
// same Addr.
func (p *Producer) Stop(t testing.TB) {
	t.Helper()
	require.NoError(t, p.Close())
}

// Session returns the producer's view of the first connected session that
// match accepts, if any: tests find their consumer by ID, name or PID.
func (p *Producer) Session(match func(producer.SessionInfo) bool) (producer.SessionInfo, bool) {
	for _, s := range p.Srv.Sessions() {
		if match(s) {
			return s, true
		}
	}
	return producer.SessionInfo{}, false
}
