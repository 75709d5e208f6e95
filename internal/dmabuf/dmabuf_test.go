package dmabuf

import (
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
