package producer_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/sdk"
)

// A frame a source drops before publishing (DroppedAtSource) uses up its
// sequence number: the consumer's next frame says Dropped 1 and DISCONT,
// and the stream counts it dropped at the source.
func TestDroppedAtSource(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "p.sock")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	l, err := surface.NV12(320, 240, 64)
	require.NoError(t, err)
	pool, err := surface.NewPool(surface.PoolConfig{Allocator: surface.NewMemfd("t"), Size: l.Size, Min: 2, Max: 8})
	require.NoError(t, err)
	defer pool.Close()
	srv, err := producer.New(producer.Config{Addr: addr, Logger: log})
	require.NoError(t, err)
	st, err := srv.AddStream(producer.StreamConfig{Name: "raw", Caps: producer.RawCaps(l, 30, 1), Pool: pool})
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, addr, sdk.Options{Logger: log})
	require.NoError(t, err)
	defer c.Close()
	publish := func() *sdk.Frame {
		s, err := st.Acquire()
		require.NoError(t, err)
		st.Publish(s, producer.FrameInfo{})
		f, err := c.Next(ctx)
		require.NoError(t, err)
		return f
	}
	f := publish()
	first := f.Seq()
	f.Release()
	st.DroppedAtSource()
	f = publish()
	require.Equal(t, first+2, f.Seq())
	require.Equal(t, uint32(1), f.Dropped())
	require.True(t, f.Discont())
	f.Release()
	require.Equal(t, uint64(1), st.Stats().DroppedExhausted)
}
