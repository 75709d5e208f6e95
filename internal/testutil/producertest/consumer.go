package producertest

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/sdk"
	"github.com/framehub/framehub/sdk/stamp"
)

// VerifyFrame checks that f's pixels carry the stamp of f.Seq(), which the
// synthetic source draws into every frame of a width-pixel-wide stream: a
// surface that changed under a consumer fails it.
func VerifyFrame(f *sdk.Frame, width int) error {
	y, err := f.Plane(0)
	if err != nil {
		return err
	}
	_, err = stamp.Verify(y, f.Planes()[0].Stride, width, f.Seq())
	return err
}

// GoodConsumer is a well-behaved in-process consumer, there to show that
// what a test does to other consumers costs them only: it releases every
// frame at once, counting and verifying it.
type GoodConsumer struct {
	Frames     atomic.Uint64 // frames received
	Mismatches atomic.Uint64 // frames whose stamp did not verify
	Dropped    atomic.Uint64 // frames the producer skipped for it
	errc       chan error
}

// RunGoodConsumer receives from c, a client subscribed to a stream of
// width-pixel-wide frames, until cleanup. The caller must close c after
// the consumer stops: register c.Close with t.Cleanup before calling, as
// cleanups run last registered first.
func RunGoodConsumer(t testing.TB, c *sdk.Client, width int) *GoodConsumer {
	g := &GoodConsumer{errc: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			f, err := c.Next(ctx)
			if err != nil {
				if ctx.Err() == nil {
					g.errc <- err
				}
				return
			}
			if VerifyFrame(f, width) != nil {
				g.Mismatches.Add(1)
			}
			g.Dropped.Add(uint64(f.Dropped()))
			f.Release()
			g.Frames.Add(1)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
	})
	return g
}

// Check fails the test if the consumer's Next failed or it saw a frame
// whose stamp did not verify.
func (g *GoodConsumer) Check(t testing.TB) {
	t.Helper()
	select {
	case err := <-g.errc:
		t.Fatalf("the well-behaved consumer failed: %v", err)
	default:
	}
	require.Zero(t, g.Mismatches.Load(), "the well-behaved consumer saw stamp mismatches")
}

// Dial subscribes an in-process SDK consumer to the producer at addr,
// failing the test when that takes longer than timeout. opts.Logger
// defaults to errors on t.Log. The client is closed at cleanup.
func Dial(t testing.TB, addr string, opts sdk.Options, timeout time.Duration) *sdk.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return DialContext(t, ctx, addr, opts)
}

// DialContext is Dial bounded by ctx instead, which may carry what the
// SDK takes from Dial's context: a stand-in for the kernel's DMA-BUF
// support (internal/dmabuf.NewContext).
func DialContext(t testing.TB, ctx context.Context, addr string, opts sdk.Options) *sdk.Client {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testutil.Logger(t, slog.LevelError)
	}
	c, err := sdk.Dial(ctx, addr, opts)
	require.NoError(t, err, "dial %s", addr)
	t.Cleanup(func() { _ = c.Close() })
	return c
}
