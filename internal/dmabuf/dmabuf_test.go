package dmabuf

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestIoctlNumber(t *testing.T) {
	require.Equal(t, uint64(0x40086200), uint64(IoctlSync))
	require.Equal(t, uint64(1), SyncRead)
	require.Equal(t, uint64(2), SyncWrite)
	require.Equal(t, uint64(3), SyncRW)
	require.Equal(t, uint64(0), SyncStart)
	require.Equal(t, uint64(4), SyncEnd)
}

func memfd(t *testing.T) int {
	t.Helper()
	fd, err := unix.MemfdCreate("dmabuf-test", unix.MFD_CLOEXEC)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	require.NoError(t, unix.Ftruncate(fd, 4096))
	return fd
}

func TestSyncOnMemfd(t *testing.T) {
	fd := memfd(t)
	tests := []struct {
		name string
		call func(int, uint64) error
	}{
		{"begin", BeginCPUAccess},
		{"end", EndCPUAccess},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, f := range []uint64{SyncRead, SyncWrite, SyncRW} {
				err := tc.call(fd, f)
				require.Error(t, err)
				require.ErrorIs(t, err, unix.ENOTTY)
			}
		})
	}
}

func TestSyncInvalidFlags(t *testing.T) {
	fd := memfd(t)
	for _, f := range []uint64{0, SyncEnd, SyncEnd | SyncRead, 8} {
		require.ErrorIs(t, BeginCPUAccess(fd, f), unix.EINVAL, "flags %#x", f)
		require.ErrorIs(t, EndCPUAccess(fd, f), unix.EINVAL, "flags %#x", f)
	}
}

func TestSyncBadFD(t *testing.T) {
	require.ErrorIs(t, BeginCPUAccess(-1, SyncRead), unix.EBADF)
}

func TestIsDMABuf(t *testing.T) {
	fd := memfd(t)
	f, err := os.CreateTemp(t.TempDir(), "x")
	require.NoError(t, err)
	defer f.Close()
	tests := []struct {
		name string
		fd   int
	}{
		{"memfd", fd},
		{"regular file", int(f.Fd())},
		{"stdin", 0},
		{"negative", -1},
		{"closed", 1 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.False(t, IsDMABuf(tc.fd))
		})
	}
}

// The ioctl Kernel makes: request DMA_BUF_IOCTL_SYNC, flags phase|access,
// retried on EINTR and (a bounded number of times) EAGAIN, other errnos
// returned wrapped. The system call itself runs in TestSyncOnMemfd (a
// memfd answers ENOTTY); no dma-buf exporter exists on the test machines.
func TestKernelSyncIoctl(t *testing.T) {
	type call struct {
		fd    int
		req   uintptr
		flags uint64
	}
	var calls []call
	var answers []unix.Errno
	k := Kernel{Ioctl: func(fd int, req uintptr, flags uint64) unix.Errno {
		calls = append(calls, call{fd, req, flags})
		if len(answers) == 0 {
			return 0
		}
		a := answers[0]
		answers = answers[1:]
		return a
	}}

	require.NoError(t, k.BeginCPUAccess(7, SyncRead))
	require.NoError(t, k.EndCPUAccess(7, SyncRead))
	require.NoError(t, k.BeginCPUAccess(8, SyncRW))
	require.NoError(t, k.EndCPUAccess(8, SyncWrite))
	require.Equal(t, []call{
		{7, IoctlSync, SyncStart | SyncRead}, {7, IoctlSync, SyncEnd | SyncRead},
		{8, IoctlSync, SyncStart | SyncRW}, {8, IoctlSync, SyncEnd | SyncWrite},
	}, calls)

	calls, answers = nil, []unix.Errno{unix.EINTR, unix.EAGAIN, unix.EINTR, 0}
	require.NoError(t, k.BeginCPUAccess(9, SyncRead), "EINTR and EAGAIN are retried")
	require.Len(t, calls, 4)

	calls, answers = nil, make([]unix.Errno, maxEAGAIN+1)
	for i := range answers {
		answers[i] = unix.EAGAIN
	}
	err := k.EndCPUAccess(9, SyncRead)
	require.ErrorIs(t, err, unix.EAGAIN, "a driver that keeps answering EAGAIN is given up on")
	require.Len(t, calls, maxEAGAIN+1)
	require.EqualError(t, err, "dmabuf: sync end fd 9 flags 0x1: ioctl DMA_BUF_IOCTL_SYNC: resource temporarily unavailable")

	calls, answers = nil, []unix.Errno{unix.EBADF}
	require.ErrorIs(t, k.BeginCPUAccess(10, SyncWrite), unix.EBADF)
	require.Len(t, calls, 1, "other errors are not retried")

	calls = nil
	require.ErrorIs(t, k.BeginCPUAccess(10, SyncEnd), unix.EINVAL)
	require.Empty(t, calls, "invalid flags never reach the kernel")
}

// Kernel maps for real, and the context carries a substitute CPU.
func TestKernelMapAndContext(t *testing.T) {
	fd := memfd(t)
	m, err := Kernel{}.Map(fd, 4096, unix.PROT_READ)
	require.NoError(t, err)
	require.Len(t, m, 4096)
	require.NoError(t, Kernel{}.Unmap(m))
	_, err = Kernel{}.Map(-1, 4096, unix.PROT_READ)
	require.ErrorIs(t, err, unix.EBADF)

	require.Equal(t, Kernel{}, FromContext(context.Background()))
	k := Kernel{Ioctl: func(int, uintptr, uint64) unix.Errno { return 0 }}
	require.NotNil(t, FromContext(NewContext(context.Background(), k)).(Kernel).Ioctl)
}
