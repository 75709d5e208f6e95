package sdk_test

import (
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/sdk"
)

// An encoded stream whose keyframes the test chooses.
func startEncoded(t *testing.T) (string, *producer.Stream, *atomic.Int32) {
	t.Helper()
	addr := filepath.Join(t.TempDir(), "p.sock")
	pool, err := surface.NewPool(surface.PoolConfig{Allocator: surface.NewMemfd("sdk-key-test"), Size: 4096, Max: 16})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pool.Close() })
	srv, err := producer.New(producer.Config{Addr: addr, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	requests := &atomic.Int32{}
	st, err := srv.AddStream(producer.StreamConfig{Name: "h264", Pool: pool, OnKeyframeRequest: func() { requests.Add(1) },
		Caps: ipc.Caps{Format: "H264", Width: 320, Height: 240, FPSNum: 30, FPSDen: 1}})
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Close() })
	return addr, st, requests
}

func publishAU(t *testing.T, st *producer.Stream, key bool) {
	t.Helper()
	s, err := st.Acquire()
	require.NoError(t, err)
	fi := producer.FrameInfo{Size: 100, PTS: -1, DTS: -1, Dur: -1}
	if key {
		fi.Flags = ipc.FlagKeyframe | ipc.FlagHeader
	}
	st.Publish(s, fi)
}

// StartAtKeyframe: Next returns nothing before a keyframe, at the start
// and after a discontinuity, releases what it passes over, asks for a
// keyframe once per wait, and marks the keyframe Discont. Without it, the
// first frame is whatever comes (mid-GOP).
func TestStartAtKeyframe(t *testing.T) {
	addr, st, requests := startEncoded(t)
	c, err := sdk.Dial(ctxT(t, 10*time.Second), addr, sdk.Options{Stream: "h264", MaxInFlight: 4, StartAtKeyframe: true,
		Logger: quietLogger(t, nil)})
	require.NoError(t, err)
	defer c.Close()
	plain, err := sdk.Dial(ctxT(t, 10*time.Second), addr, sdk.Options{Stream: "h264", MaxInFlight: 8, Logger: quietLogger(t, nil)})
	require.NoError(t, err)
	defer plain.Close()

	for _, key := range []bool{false, false, true, false} {
		publishAU(t, st, key)
	}
	f, err := plain.Next(ctxT(t, 10*time.Second))
	require.NoError(t, err)
	require.False(t, f.Keyframe(), "without the option the first frame is mid-GOP")
	first := f.Seq()
	f.Release()

	f, err = c.Next(ctxT(t, 10*time.Second))
	require.NoError(t, err)
	require.True(t, f.Keyframe())
	require.Equal(t, first+2, f.Seq())
	require.True(t, f.Discont(), "frames before it were passed over")
	f.Release()
	f, err = c.Next(ctxT(t, 10*time.Second))
	require.NoError(t, err)
	require.Equal(t, first+3, f.Seq())
	require.False(t, f.Discont())
	f.Release()
	require.Equal(t, uint64(2), c.Stats().WaitedForKeyframe)
	require.Eventually(t, func() bool { return requests.Load() == 1 }, 10*time.Second, time.Millisecond, "one keyframe request per wait")

	// A discontinuity (the stream ended and goes on) waits again; a
	// keyframe right after it needs no wait.
	st.EndOfStream("camera replugged")
	publishAU(t, st, false)
	publishAU(t, st, true)
	f, err = c.Next(ctxT(t, 10*time.Second))
	require.NoError(t, err)
	require.True(t, f.Keyframe())
	require.Equal(t, first+5, f.Seq())
	require.True(t, f.Discont())
	f.Release()
	st.EndOfStream("again")
	publishAU(t, st, true)
	f, err = c.Next(ctxT(t, 10*time.Second))
	require.NoError(t, err)
	require.Equal(t, first+6, f.Seq())
	require.True(t, f.Discont(), "the EOS's discontinuity")
	f.Release()
	require.Equal(t, uint64(3), c.Stats().WaitedForKeyframe)
	require.NoError(t, c.Flush())
	require.Zero(t, c.Stats().Unreleased, "what was passed over was released")
}
