package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/producertest"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/sdk"
)

const testSlabSize = 2 << 20

// slabStream is an h264-like stream whose pool holds slabs, on a started
// server, without GStreamer.
func slabStream(t *testing.T, poolMax int, replay time.Duration) (*producer.Stream, *surface.Pool, string) {
	t.Helper()
	p := producertest.StartProducer(t, producertest.Options{Manual: true, Addr: uniqueAddr(t),
		SurfaceSize: testSlabSize, PoolMax: poolMax, PoolName: "t-h264",
		Config: producer.Config{Logger: testutil.Logger(t, slog.LevelError), MaxInFlight: 64},
		Stream: producer.StreamConfig{Name: StreamH264, Caps: ipc.Caps{Format: "H264"}, Replay: replay}})
	return p.Stream, p.Pool, p.Addr
}

// fakeAU is access unit i: size bytes stamped with i, so a consumer can
// check it got exactly the bytes published.
func fakeAU(dst []byte, i int) {
	for off := 0; off+8 <= len(dst); off += 8 {
		binary.LittleEndian.PutUint64(dst[off:], uint64(i))
	}
}

func publishAUs(t *testing.T, w *slabWriter, st *producer.Stream, from, n, size int, base int64) {
	t.Helper()
	for i := from; i < from+n; i++ {
		sl, au, err := w.reserve(st, size)
		require.NoError(t, err, "access unit %d", i)
		fakeAU(au, i)
		w.publish(st, sl, size, producer.FrameInfo{MonoNS: base + int64(i)*int64(33*time.Millisecond), PTS: int64(i), DTS: int64(i)})
	}
}

// TestSlabsPackAccessUnits: many access units share a surface, a consumer
// reads each one's own bytes at its own offset, and slabs go back to the
// pool once their access units are released.
func TestSlabsPackAccessUnits(t *testing.T) {
	st, pool, addr := slabStream(t, 8, 0)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := sdk.Dial(ctx, addr, sdk.Options{Stream: StreamH264, MaxInFlight: 64, Logger: testutil.Logger(t, slog.LevelError)})
	require.NoError(t, err)
	defer c.Close()

	var w slabWriter
	const size = 16 << 10 // a P-frame at 4 Mbit/s, 30 fps
	perSlab := testSlabSize / size
	surfaces := map[uint32]int{}
	for i := 0; i < 1000; i++ {
		publishAUs(t, &w, st, i, 1, size, clock.Mono())
		f, err := c.Next(ctx)
		require.NoError(t, err)
		data, err := f.Data()
		require.NoError(t, err)
		want := make([]byte, size)
		fakeAU(want, i)
		offset, _ := f.Region()
		require.True(t, bytes.Equal(want, data), "access unit %d: wrong bytes at offset %d of surface %d", i, offset, f.SurfaceID())
		require.Equal(t, (i%perSlab)*size, offset, "access units are appended")
		surfaces[f.SurfaceID()]++
		f.Release()
	}
	require.NoError(t, c.Flush())
	for id, n := range surfaces {
		require.GreaterOrEqual(t, n, perSlab, "surface %d holds many access units", id)
	}
	// 1000 access units of 16 KiB (~16 MB) went through 2 or 3 slabs, again
	// and again.
	ps := pool.Stats()
	require.LessOrEqual(t, ps.Allocs, uint64(3), "slabs are recycled: %+v", ps)
	require.Len(t, surfaces, int(ps.Allocs))

	// Once the open slab is closed and everything is released, every slab
	// is back in the pool.
	w.close()
	require.Eventually(t, func() bool {
		st.Stats() // services the stream: reads the releases
		return pool.Stats().InUse == 0
	}, waitTimeout, 5*time.Millisecond, "slabs back in the pool: %+v", pool.Stats())
}

// TestSlabsUnderReplay: 30 s of access units at 4 Mbit/s kept for replay pin
// a handful of slabs, not 900 surfaces; beyond the window slabs recycle,
// and a pool too small for the window makes the buffer shed, not the
// stream drop.
func TestSlabsUnderReplay(t *testing.T) {
	st, _, _ := slabStream(t, 64, 30*time.Second)
	var w slabWriter
	const size = 4_000_000 / 8 / 30 // 4 Mbit/s at 30 fps
	base := clock.Mono() - int64(time.Hour)
	publishAUs(t, &w, st, 0, 900, size, base) // 30 s
	stats := st.Stats()
	require.Equal(t, 900, stats.ReplayFrames)
	require.LessOrEqual(t, stats.Pool.InUse, 9, "15 MB in 2 MiB slabs: %+v", stats.Pool)
	publishAUs(t, &w, st, 900, 2700, size, base) // 90 s more
	stats = st.Stats()
	require.LessOrEqual(t, stats.Pool.InUse, 9, "the window slides, slabs recycle: %+v", stats.Pool)
	require.LessOrEqual(t, stats.Pool.Allocs, uint64(10))
	require.Zero(t, stats.DroppedExhausted)
	w.close()

	// A pool of 4 slabs cannot hold 30 s: the buffer gives way.
	st, _, _ = slabStream(t, 4, 30*time.Second)
	w = slabWriter{}
	publishAUs(t, &w, st, 0, 900, size, base)
	stats = st.Stats()
	require.Zero(t, stats.DroppedExhausted, "the live stream lost nothing")
	require.Positive(t, stats.ReplayShed)
	require.Less(t, stats.ReplayFrames, 900)
	w.close()
}

func TestH264ReplayDefault(t *testing.T) {
	var c Config
	require.NoError(t, c.Validate())
	require.Equal(t, 30*time.Second, c.H264Replay)
	c = Config{H264Replay: -1}
	require.NoError(t, c.Validate())
	require.Equal(t, time.Duration(-1), c.H264Replay, "negative: no replay buffer, and Validate stays idempotent")
}
