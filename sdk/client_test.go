package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/producertest"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/sdk"
	"github.com/framehub/framehub/sdk/stamp"
)

// startProducer runs an in-process producer of a 320x240 synthetic raw
// stream at fps on addr, stopped at cleanup.
func startProducer(t *testing.T, addr string, fps float64, cfg producer.Config) *producertest.Producer {
	t.Helper()
	return producertest.StartProducer(t, producertest.Options{Addr: addr, FPS: fps, PoolMin: 2, PoolMax: 16, PoolName: "sdk-test", Config: cfg})
}

// quietLogger logs errors to t.Log, or, when logs is not nil, warnings and
// above into logs for the test to read.
func quietLogger(t *testing.T, logs *testutil.LockedBuffer) *slog.Logger {
	if logs == nil {
		return testutil.Logger(t, slog.LevelError)
	}
	return slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestNextVerifiesStampAndRelease(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "p.sock")
	startProducer(t, addr, 200, producer.Config{})
	ctx := ctxT(t, 10*time.Second)
	c, err := sdk.Dial(ctx, addr, sdk.Options{MaxInFlight: 2, Logger: quietLogger(t, nil)})
	require.NoError(t, err)
	defer c.Close()
	caps := c.Caps()
	require.Equal(t, "NV12", caps.Format)
	require.Equal(t, 2, c.Subscription().MaxInFlight)
	var last uint64
	for i := 0; i < 50; i++ {
		f, err := c.Next(ctx)
		require.NoError(t, err)
		require.Greater(t, f.Seq(), last)
		last = f.Seq()
		y, err := f.Plane(0)
		require.NoError(t, err)
		_, err = stamp.Verify(y, f.Planes()[0].Stride, caps.Width, f.Seq())
		require.NoError(t, err)
		require.True(t, f.Valid())
		require.GreaterOrEqual(t, f.Latency(), time.Duration(0))
		f.Release()
		f.Release() // idempotent: a second release must not reach the producer
		require.False(t, f.Valid())
		_, err = f.Data()
		require.ErrorIs(t, err, sdk.ErrStale)
	}
	st := c.Stats()
	require.Equal(t, uint64(50), st.Received)
	require.Equal(t, uint64(50), st.Released)
	require.Zero(t, st.Unreleased)
}

// A release from another goroutine while Next is blocked reaches the
// producer at once, within Release: the producer publishes one frame only
// after Release returned, and with a budget of 1 that frame can reach the
// consumer only if the release was already in the socket (the producer
// reads releases before it hands out a frame). A release left for later
// would leave the frame skipped and Next blocked until its deadline.
func TestReleaseFromOtherGoroutineWhileNextBlocks(t *testing.T) {
	p := producertest.StartProducer(t, producertest.Options{Manual: true, PoolMax: 8, PoolName: "sdk-test"})
	ctx := ctxT(t, 10*time.Second)
	c, err := sdk.Dial(ctx, p.Addr, sdk.Options{MaxInFlight: 1, Logger: quietLogger(t, nil)})
	require.NoError(t, err)
	defer c.Close()
	publish := func() {
		s, err := p.Stream.Acquire()
		require.NoError(t, err)
		p.Stream.Publish(s, producer.FrameInfo{})
	}
	publish()
	held, err := c.Next(ctx)
	require.NoError(t, err)
	for i := 0; i < 10; i++ {
		type result struct {
			f   *sdk.Frame
			err error
		}
		next := make(chan result, 1)
		go func() {
			f, err := c.Next(ctx)
			next <- result{f, err}
		}()
		waitBlockedIn(t, "sdk.(*Client).recv")
		skipped0 := p.Stream.Stats().SkippedBudget
		held.Release()
		publish()
		r := <-next
		require.NoError(t, r.err, "round %d: the frame published after Release never came", i)
		require.Equal(t, held.Seq()+1, r.f.Seq(), "round %d", i)
		require.Equal(t, skipped0, p.Stream.Stats().SkippedBudget, "round %d: the frame was skipped: the release had not reached the producer", i)
		held = r.f
	}
	held.Release()
}

// waitBlockedIn waits until a goroutine of this process is blocked in
// function fn (as runtime.Stack names it), failing the test after 10 s.
func waitBlockedIn(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	testutil.WaitUntil(t, 10*time.Second, func() bool {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			// Only a goroutine that is waiting, not one running through fn.
			if strings.Contains(g, fn+"(") && !strings.Contains(strings.SplitN(g, "\n", 2)[0], "[running]") {
				return true
			}
		}
		return false
	}, "a goroutine blocked in %s", fn)
}

// The SDK warns, once per frame, when a frame has been held for ¾ of the
// deadline the producer granted (docs/SDK.md), before the producer would
// evict the consumer: the warning comes from the next Next call after
// that point.
func TestWarnsAtThreeQuartersOfMaxHold(t *testing.T) {
	p := startProducer(t, filepath.Join(t.TempDir(), "p.sock"), 100, producer.Config{})
	var logs testutil.LockedBuffer
	ctx := ctxT(t, 10*time.Second)
	// 2 s: the ½ s from the warning to the eviction leaves room for a
	// loaded machine to release the frame in time.
	c, err := sdk.Dial(ctx, p.Addr, sdk.Options{MaxInFlight: 2, MaxHold: 2 * time.Second, Logger: quietLogger(t, &logs)})
	require.NoError(t, err)
	defer c.Close()
	hold := c.Subscription().MaxHold
	require.Equal(t, 2*time.Second, hold, "the producer grants the deadline asked for")

	held, err := c.Next(ctx)
	require.NoError(t, err)
	const warning = "frame held close to max_hold"
	late := 0 // Next calls that returned past ¾ of max_hold without a warning
	testutil.WaitUntil(t, 5*time.Second, func() bool {
		f, err := c.Next(ctx) // each Next checks the frames held
		require.NoError(t, err)
		f.Release()
		if strings.Contains(logs.String(), warning) {
			return true
		}
		if time.Duration(clock.Mono()-held.Received()) >= hold*3/4 {
			late++
		}
		return false
	}, "the ¾ max_hold warning")
	var heldFor time.Duration
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, warning) {
			require.Contains(t, l, fmt.Sprintf("seq=%d ", held.Seq()), "the warning names the frame")
			require.Contains(t, l, "max_hold=2s")
			i := strings.Index(l, " held=")
			require.GreaterOrEqual(t, i, 0, l)
			heldFor, err = time.ParseDuration(strings.Fields(l[i+len(" held="):])[0])
			require.NoError(t, err, l)
		}
	}
	t.Logf("warned after %v of %v (%d Next calls returned past ¾ before it)", heldFor, hold, late)
	require.GreaterOrEqual(t, heldFor, hold*3/4, "no warning before ¾ of max_hold")
	require.Less(t, heldFor, hold, "the warning comes before the producer would evict")
	// The Next that returned just past ¾ may have started before it.
	require.LessOrEqual(t, late, 1, "the first Next that starts past ¾ of max_hold warns")
	require.True(t, held.Valid(), "not evicted")
	held.Release()
	require.NoError(t, c.Flush())

	// Once per frame: more Next calls do not repeat it.
	for i := 0; i < 5; i++ {
		f, err := c.Next(ctx)
		require.NoError(t, err)
		f.Release()
	}
	require.Equal(t, 1, strings.Count(logs.String(), warning))
}

func TestCloseReportsUnreleasedFrames(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "p.sock")
	startProducer(t, addr, 100, producer.Config{})
	var logs testutil.LockedBuffer
	ctx := ctxT(t, 10*time.Second)
	c, err := sdk.Dial(ctx, addr, sdk.Options{MaxInFlight: 4, Logger: quietLogger(t, &logs)})
	require.NoError(t, err)
	f1, err := c.Next(ctx)
	require.NoError(t, err)
	_, err = c.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, c.Stats().Unreleased)
	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	require.Contains(t, logs.String(), "unreleased=2")
	f1.Release() // after Close: harmless
	_, err = c.Next(ctx)
	require.ErrorIs(t, err, sdk.ErrClosed)
}

func TestReconnectAfterProducerRestart(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "p.sock")
	p := startProducer(t, addr, 100, producer.Config{})
	ctx := ctxT(t, 20*time.Second)
	c, err := sdk.Dial(ctx, addr, sdk.Options{Reconnect: true, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond, Logger: quietLogger(t, nil)})
	require.NoError(t, err)
	defer c.Close()
	held, err := c.Next(ctx)
	require.NoError(t, err)

	p.Stop(t)
	startProducer(t, addr, 100, producer.Config{})
	var f *sdk.Frame
	for {
		f, err = c.Next(ctx)
		require.NoError(t, err)
		if c.Stats().Reconnects > 0 {
			break
		}
		f.Release()
	}
	require.True(t, f.Discont(), "first frame after a reconnect must say discont")
	f.Release()
	require.False(t, held.Valid(), "a frame of the old connection is invalid")
	_, err = held.Data()
	require.ErrorIs(t, err, sdk.ErrStale)
	held.Release()
	require.Equal(t, uint64(1), c.Stats().Reconnects)
}

func TestDisconnectWithoutReconnect(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "p.sock")
	p := startProducer(t, addr, 100, producer.Config{})
	ctx := ctxT(t, 10*time.Second)
	c, err := sdk.Dial(ctx, addr, sdk.Options{Logger: quietLogger(t, nil)})
	require.NoError(t, err)
	defer c.Close()
	p.Stop(t)
	for {
		f, err := c.Next(ctx)
		if err != nil {
			require.ErrorIs(t, err, sdk.ErrDisconnected)
			var bye *sdk.ByeError
			require.True(t, errors.As(err, &bye), "producer shutdown says Bye: %v", err)
			return
		}
		f.Release()
	}
}

func TestBlockingModeAndCancel(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "p.sock")
	startProducer(t, addr, 100, producer.Config{})
	ctx := ctxT(t, 10*time.Second)
	c, err := sdk.Dial(ctx, addr, sdk.Options{Blocking: true, Logger: quietLogger(t, nil)})
	require.NoError(t, err)
	defer c.Close()
	for i := 0; i < 20; i++ {
		f, err := c.Next(ctx)
		require.NoError(t, err)
		f.Release()
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	for {
		f, err := c.Next(cctx)
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			return
		}
		f.Release()
	}
}

func TestFramesChannel(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "p.sock")
	startProducer(t, addr, 100, producer.Config{})
	ctx := ctxT(t, 10*time.Second)
	c, err := sdk.Dial(ctx, addr, sdk.Options{Logger: quietLogger(t, nil)})
	require.NoError(t, err)
	defer c.Close()
	fctx, cancel := context.WithCancel(ctx)
	frames, errc := c.Frames(fctx)
	for i := 0; i < 10; i++ {
		f := <-frames
		require.NotNil(t, f)
		f.Release()
	}
	cancel()
	for f := range frames {
		f.Release()
	}
	require.ErrorIs(t, <-errc, context.Canceled)
}

func TestDialRejected(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "p.sock")
	startProducer(t, addr, 30, producer.Config{})
	ctx := ctxT(t, 5*time.Second)
	_, err := sdk.Dial(ctx, addr, sdk.Options{Stream: "nope", Logger: quietLogger(t, nil)})
	var rej *sdk.RejectError
	require.True(t, errors.As(err, &rej), "err = %v", err)
	require.Contains(t, rej.Reason, "nope")
	_, err = sdk.Dial(ctx, addr, sdk.Options{Lossless: true, Logger: quietLogger(t, nil)})
	require.True(t, errors.As(err, &rej), "lossless not allowed: err = %v", err)
	_, err = sdk.Dial(ctx, filepath.Join(t.TempDir(), "missing.sock"), sdk.Options{Logger: quietLogger(t, nil)})
	require.Error(t, err)
	require.Contains(t, err.Error(), "missing.sock")
}

// TestConsume: Consume hands every frame to fn in order, goes on after an
// eviction (the SDK reconnects), returns fn's error, and returns nil when
// its context ends.
func TestConsume(t *testing.T) {
	p := startProducer(t, filepath.Join(t.TempDir(), "p.sock"), 100, producer.Config{})
	var logs testutil.LockedBuffer
	ctx := ctxT(t, 20*time.Second)
	c, err := sdk.Dial(ctx, p.Addr, sdk.Options{MaxInFlight: 1, MaxHold: 300 * time.Millisecond, Reconnect: true, Logger: quietLogger(t, &logs)})
	require.NoError(t, err)
	defer c.Close()

	var seqs []uint64
	var held *sdk.Frame
	stop := errors.New("enough")
	err = c.Consume(ctx, func(f *sdk.Frame) error {
		switch {
		case held == nil && c.Stats().Evictions == 0:
			held = f // never released: the producer evicts this consumer
			return nil
		case len(seqs) == 10:
			f.Release()
			return stop
		}
		seqs = append(seqs, f.Seq())
		f.Release()
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.EqualValues(t, 1, c.Stats().Evictions, "evicted once, and the loop went on")
	require.EqualValues(t, 1, c.Stats().Reconnects)
	require.False(t, held.Valid(), "the frame held through the eviction is stale")
	held.Release()
	require.True(t, slices.IsSorted(seqs), "frames in order: %v", seqs)

	cctx, cancel := context.WithCancel(ctx)
	n := 0
	require.NoError(t, c.Consume(cctx, func(f *sdk.Frame) error {
		f.Release()
		if n++; n == 3 {
			cancel()
		}
		return nil
	}), "the end of its context ends the loop without an error")
	require.Equal(t, 3, n)
}
