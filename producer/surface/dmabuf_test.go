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
	"github.com/framehub/framehub/internal/dmabuf/dmabuftest"
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

// The producer's DMA-BUF write path, on this machine: DMA-BUF memory is
// mapped read-write and shared through its CPU, every write is bracketed
// by a write access (BeginWrite, EndWrite) on the dma-buf fd, and Close
// unmaps and closes it. A memfd stands in for the dma-buf, and
// dmabuftest.Fake for the kernel's DMA_BUF_IOCTL_SYNC (the hardware runs
// of the same path are exerciseDMABuf's, skipped without a heap or
// udmabuf).
func TestDMABufMemoryWritePath(t *testing.T) {
	fd, err := unix.MemfdCreate("fake-dmabuf", unix.MFD_CLOEXEC)
	require.NoError(t, err)
	const size = 8192
	require.NoError(t, unix.Ftruncate(fd, size))
	var cpu dmabuftest.Fake
	m, err := newDMABufMemory("test", fd, size, &cpu)
	require.NoError(t, err)
	require.Equal(t, ipc.KindDMABuf, m.Kind())
	require.Equal(t, fd, m.ShareFD())

	require.NoError(t, m.BeginWrite())
	copy(m.Bytes(), "written between the syncs")
	require.NoError(t, m.EndWrite())
	got := make([]byte, 25)
	_, err = unix.Pread(fd, got, 0)
	require.NoError(t, err)
	require.Equal(t, "written between the syncs", string(got), "the mapping is the fd's memory, shared")

	require.NoError(t, m.Close())
	require.Equal(t, []dmabuftest.Call{
		{Op: "map", FD: fd, Size: size, Prot: unix.PROT_READ | unix.PROT_WRITE},
		{Op: "begin", FD: fd, Flags: dmabuf.SyncWrite},
		{Op: "end", FD: fd, Flags: dmabuf.SyncWrite},
		{Op: "unmap", FD: -1, Size: size},
	}, cpu.Calls())
	require.Empty(t, cpu.Violations())
	_, err = unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	require.ErrorIs(t, err, unix.EBADF, "Close closed the dma-buf fd")

	// A sync the driver refuses fails the write.
	fd2, err := unix.MemfdCreate("fake-dmabuf", unix.MFD_CLOEXEC)
	require.NoError(t, err)
	require.NoError(t, unix.Ftruncate(fd2, size))
	failing := dmabuftest.Fake{FailBegin: unix.EIO}
	m2, err := newDMABufMemory("test", fd2, size, &failing)
	require.NoError(t, err)
	defer m2.Close()
	require.ErrorIs(t, m2.BeginWrite(), unix.EIO)

	// The mapping failing closes the fd.
	_, err = newDMABufMemory("test", -1, size, &cpu)
	require.ErrorIs(t, err, unix.EBADF)
}
