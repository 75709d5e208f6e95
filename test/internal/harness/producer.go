package harness

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/producer/synth"
)

// ProducerOptions configures StartProducer. The zero value of a field
// means its default.
type ProducerOptions struct {
	Width, Height    int           // default 320x240
	FPS              float64       // default 30
	Pattern          synth.Pattern // what the synthetic source draws; default synth.PatternMoving
	PoolMin, PoolMax int           // surfaces in the pool; default 4, 16
	// PoolName names the memfd surfaces, as they show in /proc/PID/maps and
	// /proc/PID/fd of the processes holding them; default "framehub-test".
	PoolName string
	// Addr is the socket path; default a new one in a ShortDir. A test
	// restarting a producer passes the address of the one it stopped.
	Addr string
	// Config is the server configuration; Addr is filled in, and Logger,
	// when nil, logs at Warn and above to t.Log.
	Config producer.Config
	// WaitTimeout bounds the wait for the synthetic source to stop at
	// cleanup (required: it is the calling package's "soon").
	WaitTimeout time.Duration
}

// Producer is a producer running in the test process with one raw NV12
// stream, "raw", fed by the synthetic source.
type Producer struct {
	Addr   string
	Srv    *producer.Server
	Stream *producer.Stream
	Pool   *surface.Pool
	Layout surface.Layout
	FPS    float64
	stop   func()
}

// StartProducer runs a producer as o says, serving as soon as it returns.
// It is stopped at cleanup (see Stop); nothing else to clean up.
func StartProducer(t testing.TB, o ProducerOptions) *Producer {
	t.Helper()
	require.Positive(t, o.WaitTimeout, "ProducerOptions.WaitTimeout")
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
	if o.Addr == "" {
		o.Addr = filepath.Join(ShortDir(t), "fh.sock")
	}

	layout, err := surface.NV12(o.Width, o.Height, 64)
	require.NoError(t, err)
	renderer, err := synth.NewRenderer(producer.SynthLayout(layout), o.Pattern)
	require.NoError(t, err)
	pool, err := surface.NewPool(surface.PoolConfig{
		Allocator: surface.NewMemfd(o.PoolName), Size: layout.Size, Min: o.PoolMin, Max: o.PoolMax,
	})
	require.NoError(t, err)

	cfg := o.Config
	cfg.Addr = o.Addr
	if cfg.Logger == nil {
		cfg.Logger = Logger(t, slog.LevelWarn)
	}
	srv, err := producer.New(cfg)
	if err != nil {
		_ = pool.Close()
		require.NoError(t, err)
	}
	st, err := srv.AddStream(producer.StreamConfig{
		Name: "raw", Caps: producer.RawCaps(layout, uint32(o.FPS), 1), Pool: pool,
	})
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
	src := &producer.Synthetic{Stream: st, Renderer: renderer, FPS: o.FPS}
	go func() { srcDone <- src.Run(ctx) }()
	var once sync.Once
	p := &Producer{Addr: o.Addr, Srv: srv, Stream: st, Pool: pool, Layout: layout, FPS: o.FPS}
	p.stop = func() {
		once.Do(func() {
			cancel()
			var srcErr error
			select {
			case srcErr = <-srcDone:
			case <-time.After(o.WaitTimeout):
				t.Error("synthetic source did not stop")
			}
			// Close the server and the pool even when the source failed,
			// then report that failure.
			require.NoError(t, srv.Close())
			require.NoError(t, pool.Close())
			require.NoError(t, srcErr, "synthetic source failed")
		})
	}
	t.Cleanup(p.stop)
	return p
}

// Stop stops the source, then the server (its consumers see the
// connection end), then the pool. It runs at cleanup too; only the first
// call does anything.
func (p *Producer) Stop() { p.stop() }

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
