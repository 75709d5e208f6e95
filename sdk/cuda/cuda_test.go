package cuda_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/cuda"
	"github.com/framehub/framehub/internal/cuda/standin"
	"github.com/framehub/framehub/internal/sysinfo"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/cudasrc"
	"github.com/framehub/framehub/sdk"
	sdkcuda "github.com/framehub/framehub/sdk/cuda"
	"github.com/framehub/framehub/sdk/stamp"
)

// gpuProducer is an in-process producer whose GPU source renders into cuda
// surfaces of the stand-in library.
type gpuProducer struct {
	addr string
	ctx  *cuda.Context
	src  *cudasrc.Source
	srv  *producer.Server
	st   *producer.Stream
}

func startProducer(t *testing.T, export ipc.Kind) *gpuProducer {
	t.Helper()
	ctx := standin.Context(t)
	// A pool of fixed size: its fds stay constant while a test counts its own.
	src, err := cudasrc.New(cudasrc.Config{Context: ctx, Width: 320, Height: 240, FPS: 120, Export: export, PoolMin: 6, PoolMax: 6})
	require.NoError(t, err)
	p := &gpuProducer{addr: filepath.Join(t.TempDir(), "p.sock"), ctx: ctx, src: src}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := producer.New(producer.Config{Addr: p.addr, Logger: log})
	require.NoError(t, err)
	p.srv = srv
	p.st, err = srv.AddStream(src.StreamConfig("raw"))
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(runCtx, p.st) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, srv.Close())
		require.NoError(t, src.Close())
	})
	return p
}

func dial(t *testing.T, addr string) *sdk.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, addr, sdk.Options{MaxInFlight: 2, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	require.NoError(t, err)
	return c
}

func next(t *testing.T, c *sdk.Client) *sdk.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := c.Next(ctx)
	require.NoError(t, err)
	return f
}

// TestImportOncePerSurface: each surface is imported on its first frame
// only, every frame verifies on the "GPU" at the pointers Map returns (a
// StampVerifier, with blocking synchronisation), the CPU accessors refuse
// GPU memory, and closing the client unmaps every surface and leaves no fd
// behind.
func TestImportOncePerSurface(t *testing.T) {
	p := startProducer(t, ipc.KindCUDA)
	fds := sysinfo.FDCount(os.Getpid())
	c := dial(t, p.addr)
	im, err := sdkcuda.NewImporter(sdkcuda.Options{Blocking: true})
	require.NoError(t, err)
	var v *sdkcuda.StampVerifier

	seen := map[uint32]bool{}
	for range 40 {
		f := next(t, c)
		info := f.Surface()
		require.Equal(t, sdk.KindCUDA, info.Kind)
		require.True(t, info.Device.NoCPUMap)
		require.EqualValues(t, 2<<20, info.Size, "320x240 NV12 rounded up to the 2 MiB granularity")
		_, err := f.Plane(0)
		require.ErrorIs(t, err, sdk.ErrNoCPUMapping)
		_, err = f.Data()
		require.ErrorIs(t, err, sdk.ErrNoCPUMapping)

		d, err := im.Map(f)
		require.NoError(t, err)
		seen[info.ID] = true
		require.Len(t, d.Planes, 2)
		caps := c.Caps()
		require.Equal(t, d.Ptr+uint64(caps.Planes[1].Offset), d.Planes[1].Ptr)
		require.Equal(t, [16]byte(info.Device.UUID), d.UUID)
		if v == nil {
			v, err = im.NewStampVerifier(d)
			require.NoError(t, err)
			require.Contains(t, v.Device(), p.ctx.Device().UUID.String())
		}
		require.NoError(t, v.Verify(d, caps.Width, caps.Height, f.Seq()))
		require.ErrorIs(t, v.Verify(d, caps.Width, caps.Height, f.Seq()+1), stamp.ErrSeq)
		f.Release()
	}
	st := im.Stats()
	require.Equal(t, len(seen), st.Imported, "one import per surface")
	require.Equal(t, len(seen), st.Mapped)
	require.Len(t, st.ImportTimes, len(seen))

	require.NoError(t, c.Close())
	st = im.Stats()
	require.Zero(t, st.Mapped, "closing the client closes its surfaces, and their mappings follow")
	require.Equal(t, st.Imported, st.Unmapped)
	require.NoError(t, v.Close())
	require.NoError(t, im.Close())
	// The producer's end of the socket closes when it notices the Bye.
	require.Eventually(t, func() bool { return len(p.srv.Sessions()) == 0 }, 10*time.Second, time.Millisecond)
	require.Equal(t, fds, sysinfo.FDCount(os.Getpid()))
}

// TestHeldAcrossDisconnect: a frame held when the producer goes away keeps
// its mapping, readable, until it is released; the other surfaces are
// unmapped at once. (bench/gpu checks the same with a producer process
// killed with SIGKILL on a real GPU.)
func TestHeldAcrossDisconnect(t *testing.T) {
	p := startProducer(t, ipc.KindCUDA)
	c := dial(t, p.addr)
	defer c.Close()
	im, err := sdkcuda.NewImporter(sdkcuda.Options{})
	require.NoError(t, err)
	defer im.Close()
	f := next(t, c)
	d, err := im.Map(f)
	require.NoError(t, err)
	for range 8 { // import a few more surfaces
		g := next(t, c)
		_, err := im.Map(g)
		require.NoError(t, err)
		g.Release()
	}
	require.Greater(t, im.Stats().Mapped, 1)
	require.NoError(t, p.srv.Close())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		g, err := c.Next(ctx)
		if err != nil {
			require.ErrorIs(t, err, sdk.ErrDisconnected)
			break
		}
		g.Release()
	}
	require.Equal(t, 1, im.Stats().Mapped, "only the held frame's surface stays mapped")
	buf := make([]byte, 4)
	require.NoError(t, p.ctx.CopyToHost(buf, cuda.DevPtr(d.Planes[0].Ptr)))
	require.Equal(t, "FHST", string(buf), "the held frame's stamp is still readable")
	f.Release()
	require.Zero(t, im.Stats().Mapped)
	_, err = im.Map(f)
	require.ErrorIs(t, err, sdk.ErrStale, "a released frame's surface is gone")
}

// TestWrongDevice: a surface on a GPU this process does not see fails to
// import with an error that names both devices.
func TestWrongDevice(t *testing.T) {
	p := startProducer(t, ipc.KindCUDA)
	c := dial(t, p.addr)
	defer c.Close()
	im, err := sdkcuda.NewImporter(sdkcuda.Options{})
	require.NoError(t, err)
	defer im.Close()
	// From now on the stand-in reports another UUID for its device.
	t.Setenv("FRAMEHUB_STANDIN_UUID", "00112233445566778899aabbccddeeff")
	f := next(t, c)
	defer f.Release()
	_, err = im.Map(f)
	require.ErrorContains(t, err, p.ctx.Device().UUID.String())
	require.ErrorContains(t, err, "GPU-00112233-4455-6677-8899-aabbccddeeff")
}

// TestDMABufExport: DMA-BUF exports of GPU memory are announced as dmabuf
// surfaces without a CPU mapping; the SDK refuses to map them and sdk/cuda
// does not import them.
func TestDMABufExport(t *testing.T) {
	p := startProducer(t, ipc.KindDMABuf)
	c := dial(t, p.addr)
	defer c.Close()
	im, err := sdkcuda.NewImporter(sdkcuda.Options{})
	require.NoError(t, err)
	defer im.Close()
	f := next(t, c)
	defer f.Release()
	info := f.Surface()
	require.Equal(t, sdk.KindDMABuf, info.Kind)
	require.NotNil(t, info.Device)
	require.True(t, info.Device.NoCPUMap)
	require.False(t, info.CPUMappable())
	_, err = f.Plane(1)
	require.ErrorIs(t, err, sdk.ErrNoCPUMapping)
	_, err = im.Map(f)
	require.ErrorIs(t, err, sdkcuda.ErrNotCUDA)
	require.False(t, errors.Is(err, sdk.ErrNoCPUMapping))
}
