package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/cuda/standin"
	"github.com/framehub/framehub/sdk"
	sdkcuda "github.com/framehub/framehub/sdk/cuda"
)

// TestSourceGPU: -source gpu serves cuda surfaces (here from the stand-in
// libcuda) that a consumer imports with sdk/cuda; a bad -allocator is
// refused with the values it takes.
func TestSourceGPU(t *testing.T) {
	standin.Use(t)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	o := Options{
		Socket: filepath.Join(t.TempDir(), "p.sock"), Source: "gpu", Allocator: "cuda", Width: 320, Height: 240,
		FPS: 60, PoolMin: 2, PoolMax: 8, MaxInFlight: 32, DefaultInFlight: 4, DefaultMaxHold: 2 * time.Second,
		MaxHold: time.Minute, MaxConnections: 8, SocketMode: 0o660,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- o.Run(runCtx, log) }()

	var c *sdk.Client
	require.Eventually(t, func() bool {
		var err error
		c, err = sdk.Dial(ctx, o.Socket, sdk.Options{Logger: log})
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "the producer's socket never accepted")
	im, err := sdkcuda.NewImporter(sdkcuda.Options{})
	require.NoError(t, err)
	for range 5 {
		f, err := c.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, sdk.KindCUDA, f.Surface().Kind)
		d, err := im.Map(f)
		require.NoError(t, err)
		require.Len(t, d.Planes, 2)
		f.Release()
	}
	require.NoError(t, c.Close())
	require.NoError(t, im.Close())
	stop()
	require.NoError(t, <-done)

	o.Allocator = "udmabuf"
	err = o.Run(ctx, log)
	require.ErrorContains(t, err, "cuda or cuda-dmabuf")
}
