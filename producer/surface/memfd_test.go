package surface

import (
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/internal/dmabuf"
	"github.com/framehub/framehub/ipc"
)

func allocMemfdT(t *testing.T, size int) *Memory {
	t.Helper()
	m, err := NewMemfd("surface-test").Alloc(size)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	return m
}

func TestMemfdAllocSizes(t *testing.T) {
	page := os.Getpagesize()
	tests := []struct {
		size, want int
	}{
		{1, page},
		{page, page},
		{page + 1, 2 * page},
		{1 << 20, 1 << 20},
		{3110400, 3112960}, // 1920*1080*3/2 (page 4096)
	}
	if page != 4096 {
		tests = tests[:4]
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.size), func(t *testing.T) {
			m := allocMemfdT(t, tc.size)
			require.Equal(t, tc.want, m.Size())
			require.Len(t, m.Bytes(), tc.want)
			require.Equal(t, ipc.KindMemfd, m.Kind())
			require.NotEqual(t, m.FD(), m.ShareFD())
			require.False(t, dmabuf.IsDMABuf(m.FD()))
			require.False(t, dmabuf.IsDMABuf(m.ShareFD()))
			var st unix.Stat_t
			require.NoError(t, unix.Fstat(m.ShareFD(), &st))
			require.Equal(t, int64(tc.want), st.Size)
		})
	}
}

func TestMemfdAllocInvalid(t *testing.T) {
	a := NewMemfd("")
	require.Equal(t, "memfd", a.Name())
	require.Equal(t, ipc.KindMemfd, a.Kind())
	for _, size := range []int{0, -1, maxAlloc} {
		m, err := a.Alloc(size)
		require.Error(t, err, "size %d", size)
		require.Nil(t, m)
		require.Contains(t, err.Error(), strconv.Itoa(size))
	}
}

func TestMemfdShareReadOnly(t *testing.T) {
	m := allocMemfdT(t, 8192)

	// Close-on-exec everywhere.
	for _, fd := range []int{m.FD(), m.ShareFD()} {
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		require.NoError(t, err)
		require.NotZero(t, fl&unix.FD_CLOEXEC, "fd %d not close-on-exec", fd)
	}
	// Access modes.
	fl, err := unix.FcntlInt(uintptr(m.ShareFD()), unix.F_GETFL, 0)
	require.NoError(t, err)
	require.Equal(t, unix.O_RDONLY, fl&unix.O_ACCMODE)
	fl, err = unix.FcntlInt(uintptr(m.FD()), unix.F_GETFL, 0)
	require.NoError(t, err)
	require.Equal(t, unix.O_RDWR, fl&unix.O_ACCMODE)

	// Seals.
	seals, err := unix.FcntlInt(uintptr(m.FD()), unix.F_GET_SEALS, 0)
	require.NoError(t, err)
	want := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
	require.Equal(t, want, seals&want)
	require.Zero(t, seals&unix.F_SEAL_WRITE, "F_SEAL_WRITE would forbid the producer's mapping")
	t.Logf("seals %#x (F_SEAL_EXEC %v)", seals, seals&unix.F_SEAL_EXEC != 0)
	require.Equal(t, m.FutureWriteSealed(), seals&unix.F_SEAL_FUTURE_WRITE != 0)
	if !m.FutureWriteSealed() {
		t.Log("kernel without F_SEAL_FUTURE_WRITE (< 5.1)")
	}

	// The producer writes, a read-only mapping of ShareFD sees it.
	b := m.Bytes()
	require.NoError(t, m.BeginWrite())
	copy(b, "hello")
	b[8191] = 0x42
	require.NoError(t, m.EndWrite())
	ro, err := unix.Mmap(m.ShareFD(), 0, m.Size(), unix.PROT_READ, unix.MAP_SHARED)
	require.NoError(t, err)
	defer unix.Munmap(ro)
	require.Equal(t, "hello", string(ro[:5]))
	require.Equal(t, byte(0x42), ro[8191])

	// Later producer writes still land (the seals did not break Bytes).
	copy(b, "HELLO")
	require.Equal(t, "HELLO", string(ro[:5]))
}

func TestMemfdSafety(t *testing.T) {
	m := allocMemfdT(t, 4096)
	share := m.ShareFD()
	copy(m.Bytes(), "producer")

	t.Run("ShareFD", func(t *testing.T) {
		_, err := unix.Mmap(share, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		require.ErrorIs(t, err, unix.EACCES)

		ro, err := unix.Mmap(share, 0, 4096, unix.PROT_READ, unix.MAP_SHARED)
		require.NoError(t, err)
		defer unix.Munmap(ro)
		require.ErrorIs(t, unix.Mprotect(ro, unix.PROT_READ|unix.PROT_WRITE), unix.EACCES)

		_, err = unix.Pwrite(share, []byte("x"), 0)
		require.ErrorIs(t, err, unix.EBADF)
		require.ErrorIs(t, unix.Ftruncate(share, 0), unix.EINVAL) // not open for writing
		_, err = unix.FcntlInt(uintptr(share), unix.F_ADD_SEALS, unix.F_SEAL_WRITE)
		require.ErrorIs(t, err, unix.EPERM)

		// A private writable mapping is allowed but copy-on-write: the
		// producer's memory is untouched.
		priv, err := unix.Mmap(share, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
		require.NoError(t, err)
		defer unix.Munmap(priv)
		copy(priv, "consumer")
		require.Equal(t, "producer", string(m.Bytes()[:8]))
	})

	t.Run("reopen O_RDWR", func(t *testing.T) {
		rw, err := unix.Open("/proc/self/fd/"+strconv.Itoa(share), unix.O_RDWR|unix.O_CLOEXEC, 0)
		require.NoError(t, err)
		defer unix.Close(rw)

		require.ErrorIs(t, unix.Ftruncate(rw, 0), unix.EPERM)
		require.ErrorIs(t, unix.Ftruncate(rw, 1<<20), unix.EPERM)
		_, err = unix.FcntlInt(uintptr(rw), unix.F_ADD_SEALS, unix.F_SEAL_WRITE)
		require.ErrorIs(t, err, unix.EPERM) // F_SEAL_SEAL

		if !m.FutureWriteSealed() {
			t.Skip("kernel without F_SEAL_FUTURE_WRITE (< 5.1): writes through a reopened fd are possible")
		}
		_, err = unix.Mmap(rw, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		require.ErrorIs(t, err, unix.EPERM)
		_, err = unix.Pwrite(rw, []byte("x"), 0)
		require.ErrorIs(t, err, unix.EPERM)
		_, err = unix.Write(rw, []byte("x"))
		require.ErrorIs(t, err, unix.EPERM)
		err = unix.Fallocate(rw, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 4096)
		require.ErrorIs(t, err, unix.EPERM)

		ro, err := unix.Mmap(rw, 0, 4096, unix.PROT_READ, unix.MAP_SHARED)
		require.NoError(t, err)
		defer unix.Munmap(ro)
		require.ErrorIs(t, unix.Mprotect(ro, unix.PROT_READ|unix.PROT_WRITE), unix.EACCES)
		require.Equal(t, "producer", string(ro[:8]))
	})

	// The producer's mapping still works after all of that.
	copy(m.Bytes(), "PRODUCER")
	buf := make([]byte, 8)
	_, err := unix.Pread(share, buf, 0)
	require.NoError(t, err)
	require.Equal(t, "PRODUCER", string(buf))
}

func TestMemoryClose(t *testing.T) {
	m, err := NewMemfd("close").Alloc(4096)
	require.NoError(t, err)
	fds := []int{m.FD(), m.ShareFD()}
	require.NoError(t, m.Close())
	require.Nil(t, m.Bytes())
	for _, fd := range fds {
		_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		require.ErrorIs(t, err, unix.EBADF, "fd %d still open", fd)
	}
	require.NoError(t, m.Close()) // idempotent
}

func TestOpen(t *testing.T) {
	type test struct {
		spec    string
		name    string   // allocator name on success
		errWant []string // substrings of the error, nil for success
	}
	tests := []test{
		{spec: "", name: "memfd"},
		{spec: "memfd", name: "memfd"},
		{spec: "bogus", errWant: []string{`"bogus"`, `"memfd"`, `"dma-heap"`, `"dma-heap:/dev/dma_heap/NAME"`, `"udmabuf"`}},
		{spec: "dma-heap:", errWant: []string{"empty heap path"}},
		{spec: "dma-heap:/nonexistent/heap", errWant: []string{"/nonexistent/heap", "absent"}},
	}
	if _, err := os.Stat(DefaultHeap); err == nil {
		tests = append(tests, test{spec: "dma-heap", name: "dma-heap:" + DefaultHeap})
	} else {
		tests = append(tests, test{spec: "dma-heap", errWant: []string{DefaultHeap, "CONFIG_DMABUF_HEAPS_SYSTEM"}})
	}
	if _, err := os.Stat(UdmabufDevice); err == nil {
		tests = append(tests, test{spec: "udmabuf", name: "udmabuf"})
	} else {
		tests = append(tests, test{spec: "udmabuf", errWant: []string{UdmabufDevice, "CONFIG_UDMABUF"}})
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			a, err := Open(tc.spec)
			if tc.errWant != nil {
				require.Error(t, err)
				require.Nil(t, a)
				for _, s := range tc.errWant {
					require.Contains(t, err.Error(), s)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.name, a.Name())
		})
	}
}

// withoutFutureWrite behaves as fcntl(F_ADD_SEALS) on a kernel older than
// 5.1, which does not know F_SEAL_FUTURE_WRITE.
func withoutFutureWrite(fd, seals int) error {
	if seals&unix.F_SEAL_FUTURE_WRITE != 0 {
		return os.NewSyscallError("fcntl F_ADD_SEALS", unix.EINVAL)
	}
	return AddSeals(fd, seals)
}

// TestMemfdWithoutFutureWriteSeal is the "read-only depends on one seal"
// hole of issue 16: without F_SEAL_FUTURE_WRITE a consumer can reopen a
// surface read-write, so a memfd pool must not start unless told to.
func TestMemfdWithoutFutureWriteSeal(t *testing.T) {
	require.NoError(t, CheckFutureWriteSeal(nil), "this kernel has the seal (Linux ≥ 5.1)")
	require.ErrorIs(t, CheckFutureWriteSeal(withoutFutureWrite), ErrNoFutureWriteSeal)

	before := openFDs(t)
	_, err := NewMemfdWith(MemfdConfig{Name: "unsealed", AddSeals: withoutFutureWrite}).Alloc(4096)
	require.ErrorIs(t, err, ErrNoFutureWriteSeal)
	require.EqualError(t, err, `surface: memfd "unsealed": surface: the kernel has no F_SEAL_FUTURE_WRITE (Linux < 5.1): `+
		"a consumer could reopen a surface read-write and change frames other consumers read")
	_, err = NewPool(PoolConfig{Allocator: NewMemfdWith(MemfdConfig{AddSeals: withoutFutureWrite}), Size: 4096, Min: 2, Max: 4})
	require.ErrorIs(t, err, ErrNoFutureWriteSeal, "the pool refuses to start")
	require.Equal(t, before, openFDs(t), "the refused allocations closed their fds")

	// Allowed: the memfd works, says it is not sealed, and is indeed
	// writable through a reopen: what the operator accepted.
	m, err := NewMemfdWith(MemfdConfig{Name: "unsealed", AllowWritable: true, AddSeals: withoutFutureWrite}).Alloc(4096)
	require.NoError(t, err)
	defer m.Close()
	require.False(t, m.FutureWriteSealed())
	rw, err := unix.Open("/proc/self/fd/"+strconv.Itoa(m.ShareFD()), unix.O_RDWR|unix.O_CLOEXEC, 0)
	require.NoError(t, err, "without the seal a reopen gets write access")
	defer unix.Close(rw)
	_, err = unix.Pwrite(rw, []byte("consumer"), 0)
	require.NoError(t, err)
	require.Equal(t, "consumer", string(m.Bytes()[:8]))
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}
