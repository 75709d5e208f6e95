package cudamem_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/cuda/standin"
	"github.com/framehub/framehub/internal/sysinfo"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/producer/surface/cudamem"
)

// TestAlloc: sizes round up to the granularity, the memory has a device
// address and no CPU mapping, Info announces the device, and Close gives
// every fd back. Both exports.
func TestAlloc(t *testing.T) {
	ctx := standin.Context(t)
	fds := sysinfo.FDCount(os.Getpid())
	for _, export := range []ipc.Kind{ipc.KindCUDA, ipc.KindDMABuf} {
		a, err := cudamem.NewAllocator(cudamem.Config{Context: ctx, Export: export})
		require.NoError(t, err)
		require.Equal(t, export, a.Kind())
		require.Contains(t, a.Name(), ctx.Device().UUID.String())
		pool, err := surface.NewPool(surface.PoolConfig{Allocator: a, Size: 12_441_600, Min: 2, Max: 2})
		require.NoError(t, err)
		s, err := pool.Get()
		require.NoError(t, err)
		require.Equal(t, 12_582_912, s.Mem.Size(), "6 granules of 2 MiB")
		require.Nil(t, s.Mem.Bytes())
		require.NotZero(t, s.Mem.DevicePtr())
		require.NoError(t, s.Mem.BeginWrite(), "no CPU access to bracket")
		require.NoError(t, s.Mem.EndWrite())
		info := s.Info()
		require.Equal(t, export, info.Kind)
		uuid := ctx.Device().UUID
		require.Equal(t, uuid[:], info.Device.UUID)
		require.True(t, info.Device.NoCPUMap)
		require.False(t, info.CPUMappable())
		pool.Put(s)
		require.NoError(t, pool.Close())
	}
	require.Equal(t, fds, sysinfo.FDCount(os.Getpid()), "fds left open")

	_, err := cudamem.NewAllocator(cudamem.Config{})
	require.ErrorContains(t, err, "Context is required")
	_, err = cudamem.NewAllocator(cudamem.Config{Context: ctx, Export: ipc.KindMemfd})
	require.ErrorContains(t, err, "want cuda or dmabuf")
}
