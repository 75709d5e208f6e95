package producer_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/producertest"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/sdk"
)

// TestCapsForgetAndEOS drives a caps change (pool resize) and an end of
// stream through a real socket to an SDK consumer.
func TestCapsForgetAndEOS(t *testing.T) {
	log := testutil.Logger(t, slog.LevelError)
	p := producertest.StartProducer(t, producertest.Options{Manual: true, Width: 320, Height: 240, FPS: 30,
		PoolMin: 2, PoolMax: 8, PoolName: "t", Config: producer.Config{Logger: log}})
	addr, st, pool := p.Addr, p.Stream, p.Pool

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, addr, sdk.Options{Logger: log})
	require.NoError(t, err)
	defer c.Close()

	publish := func() {
		s, err := st.Acquire()
		require.NoError(t, err)
		st.Publish(s, producer.FrameInfo{})
	}
	publish()
	f, err := c.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, 320, c.Caps().Width)
	f.Release()

	l2, err := surface.NV12(640, 480, 64)
	require.NoError(t, err)
	forgotten, err := pool.Resize(l2.Size)
	require.NoError(t, err)
	require.NotEmpty(t, forgotten)
	st.SetCaps(producer.RawCaps(l2, 30, 1), forgotten)
	publish()
	f, err = c.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, 640, c.Caps().Width)
	require.True(t, f.Discont(), "a caps change is a discontinuity")
	y, err := f.Plane(1)
	require.NoError(t, err)
	require.Len(t, y, int(l2.Planes[1].Size))
	f.Release()

	st.EndOfStream("camera unplugged")
	publish()
	f, err = c.Next(ctx)
	require.NoError(t, err)
	require.True(t, f.Discont(), "the first frame after EOS says discont")
	f.Release()
	require.Equal(t, 1, st.Consumers())
}

// A queue-policy consumer that vanishes while frames flow is finished even
// when the failed send, not a read, is what notices it: it leaves
// Sessions() and gives its connection slot back.
func TestVanishedConsumerIsFinished(t *testing.T) {
	log := testutil.Logger(t, slog.LevelError)
	p := producertest.StartProducer(t, producertest.Options{Manual: true, Width: 64, Height: 64, FPS: 30,
		PoolMax: 16, PoolName: "t", Config: producer.Config{Logger: log}})
	addr, srv, st := p.Addr, p.Srv, p.Stream
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 5; i++ {
		c, err := sdk.Dial(ctx, addr, sdk.Options{MaxInFlight: 8, Logger: log})
		require.NoError(t, err)
		require.Len(t, srv.Sessions(), 1)
		require.NoError(t, c.Close())
		require.Eventually(t, func() bool {
			s, err := st.Acquire()
			if err == nil {
				st.Publish(s, producer.FrameInfo{})
			}
			return len(srv.Sessions()) == 0 && srv.Stats().Connections == 0
		}, 5*time.Second, time.Millisecond, "round %d: sessions %v, connections %d", i, srv.Sessions(), srv.Stats().Connections)
	}
}

// TestRealtimeIsCaptureTime: a frame published with only its capture time
// on the monotonic clock (an encoded frame, published after the encoder)
// carries the wall-clock time of that capture, not of its publication.
func TestRealtimeIsCaptureTime(t *testing.T) {
	log := testutil.Logger(t, slog.LevelError)
	p := producertest.StartProducer(t, producertest.Options{Manual: true, PoolMax: 4, PoolName: "t",
		Config: producer.Config{Logger: log}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, p.Addr, sdk.Options{Logger: log})
	require.NoError(t, err)
	defer c.Close()

	const age = 5 * time.Second
	s, err := p.Stream.Acquire()
	require.NoError(t, err)
	captured := clock.Mono() - int64(age)
	p.Stream.Publish(s, producer.FrameInfo{MonoNS: captured})
	f, err := c.Next(ctx)
	require.NoError(t, err)
	defer f.Release()
	require.Equal(t, captured, f.Capture())
	// The wall clock of the capture is age before now; publication time
	// would be now. A second of slack for a slow machine, well short of age.
	require.InDelta(t, time.Now().Add(-age).UnixNano(), f.Realtime().UnixNano(), float64(time.Second),
		"real_ns is the capture's wall-clock time")
}
