package surface

import (
	"errors"
	"io/fs"
	"os"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/internal/dmabuf"
	"github.com/framehub/framehub/ipc"
)

func TestIoctlNumbers(t *testing.T) {
	require.Equal(t, uint64(0xc0184800), uint64(dmaHeapIoctlAlloc))
	require.Equal(t, uint64(0x40187542), uint64(udmabufCreate))
	require.Equal(t, uintptr(24), unsafe.Sizeof(dmaHeapAllocationData{}))
	require.Equal(t, uintptr(24), unsafe.Sizeof(udmabufCreateArg{}))
	require.Equal(t, uintptr(8), unsafe.Offsetof(dmaHeapAllocationData{}.fd))
	require.Equal(t, uintptr(16), unsafe.Offsetof(dmaHeapAllocationData{}.heapFlags))
	require.Equal(t, uintptr(8), unsafe.Offsetof(udmabufCreateArg{}.offset))
}

func TestNewHeapMissing(t *testing.T) {
	tests := []struct {
		path string
		want []string
	}{
		{"/dev/dma_heap/does-not-exist", []string{"/dev/dma_heap/does-not-exist", "absent", "CONFIG_DMABUF_HEAPS"}},
		{"/nonexistent/dir/heap", []string{"/nonexistent/dir/heap", "absent"}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			a, err := NewHeap(tc.path)
			require.Error(t, err)
			require.Nil(t, a)
			require.True(t, errors.Is(err, fs.ErrNotExist), "%v", err)
			for _, s := range tc.want {
				require.Contains(t, err.Error(), s)
			}
		})
	}
	_, err := NewHeap("")
	require.ErrorContains(t, err, "empty device path")
}

// exerciseDMABuf allocates from a, writes through the producer mapping
// inside BeginWrite/EndWrite, and reads it back through a second mapping of
// ShareFD bracketed by a read sync.
func exerciseDMABuf(t *testing.T, a Allocator) {
	t.Helper()
	require.Equal(t, ipc.KindDMABuf, a.Kind())
	m, err := a.Alloc(100000)
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()

	require.Equal(t, ipc.KindDMABuf, m.Kind())
	require.Zero(t, m.Size()%os.Getpagesize())
	require.GreaterOrEqual(t, m.Size(), 100000)
	require.Len(t, m.Bytes(), m.Size())
	require.Equal(t, m.FD(), m.ShareFD())
	require.False(t, m.FutureWriteSealed())
	require.True(t, dmabuf.IsDMABuf(m.FD()))
	fl, err := unix.FcntlInt(uintptr(m.FD()), unix.F_GETFD, 0)
	require.NoError(t, err)
	require.NotZero(t, fl&unix.FD_CLOEXEC)

	require.NoError(t, m.BeginWrite())
	b := m.Bytes()
	for i := range b {
		b[i] = byte(i)
	}
	require.NoError(t, m.EndWrite())

	ro, err := unix.Mmap(m.ShareFD(), 0, m.Size(), unix.PROT_READ, unix.MAP_SHARED)
	require.NoError(t, err)
	defer unix.Munmap(ro)
	require.NoError(t, dmabuf.BeginCPUAccess(m.ShareFD(), dmabuf.SyncRead))
	for _, i := range []int{0, 1, 4095, 4096, m.Size() - 1} {
		require.Equal(t, byte(i), ro[i], "byte %d", i)
	}
	require.NoError(t, dmabuf.EndCPUAccess(m.ShareFD(), dmabuf.SyncRead))
}

func TestDMAHeap(t *testing.T) {
	if _, err := os.Stat(DefaultHeap); err != nil {
		t.Skip(DefaultHeap + " absent: kernel built without CONFIG_DMABUF_HEAPS_SYSTEM")
	}
	a, err := NewHeap(DefaultHeap)
	require.NoError(t, err)
	require.Equal(t, "dma-heap:"+DefaultHeap, a.Name())
	exerciseDMABuf(t, a)
}

func TestUdmabuf(t *testing.T) {
	if _, err := os.Stat(UdmabufDevice); err != nil {
		t.Skip(UdmabufDevice + " absent: kernel built without CONFIG_UDMABUF (or module not loaded)")
	}
	a, err := NewUdmabuf()
	require.NoError(t, err)
	require.Equal(t, "udmabuf", a.Name())
	exerciseDMABuf(t, a)
}

func TestUdmabufMissing(t *testing.T) {
	if _, err := os.Stat(UdmabufDevice); err == nil {
		t.Skip(UdmabufDevice + " present: nothing to check about its absence")
	}
	a, err := NewUdmabuf()
	require.Error(t, err)
	require.Nil(t, a)
	require.True(t, errors.Is(err, fs.ErrNotExist), "%v", err)
	require.ErrorContains(t, err, UdmabufDevice)
	require.ErrorContains(t, err, "CONFIG_UDMABUF")
}
