package dmabuftest

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/internal/dmabuf"
)

func TestFakeEnforcesTheSyncRules(t *testing.T) {
	fd, err := unix.MemfdCreate("fake-dmabuf", unix.MFD_CLOEXEC)
	require.NoError(t, err)
	defer unix.Close(fd)
	require.NoError(t, unix.Ftruncate(fd, 4096))
	var f Fake

	m, err := f.Map(fd, 4096, unix.PROT_READ)
	require.NoError(t, err)
	require.NoError(t, f.BeginCPUAccess(fd, dmabuf.SyncRead))
	require.NoError(t, f.BeginCPUAccess(fd, dmabuf.SyncRead), "accesses nest")
	require.Equal(t, map[int]map[uint64]int{fd: {dmabuf.SyncRead: 2}}, f.Open())
	require.Error(t, f.EndCPUAccess(fd, dmabuf.SyncWrite), "other flags than begun")
	require.NoError(t, f.EndCPUAccess(fd, dmabuf.SyncRead))
	require.NoError(t, f.EndCPUAccess(fd, dmabuf.SyncRead))
	require.Empty(t, f.Open())
	require.Error(t, f.EndCPUAccess(fd, dmabuf.SyncRead), "ended twice")
	require.Error(t, f.BeginCPUAccess(fd, 0), "invalid flags")
	require.Error(t, f.BeginCPUAccess(1<<20, dmabuf.SyncRead), "not an fd of this process")
	require.NoError(t, f.Unmap(m))
	require.Len(t, f.Violations(), 4)

	f.FailBegin = unix.EIO
	require.ErrorIs(t, f.BeginCPUAccess(fd, dmabuf.SyncWrite), unix.EIO)
	require.Empty(t, f.Open(), "a failed begin leaves nothing to end")
	require.Equal(t, []Call{
		{Op: "map", FD: fd, Size: 4096, Prot: unix.PROT_READ},
		{Op: "begin", FD: fd, Flags: dmabuf.SyncRead},
		{Op: "begin", FD: fd, Flags: dmabuf.SyncRead},
		{Op: "end", FD: fd, Flags: dmabuf.SyncWrite},
		{Op: "end", FD: fd, Flags: dmabuf.SyncRead},
		{Op: "end", FD: fd, Flags: dmabuf.SyncRead},
		{Op: "end", FD: fd, Flags: dmabuf.SyncRead},
		{Op: "begin", FD: fd},
		{Op: "begin", FD: 1 << 20, Flags: dmabuf.SyncRead},
		{Op: "unmap", FD: -1, Size: 4096},
		{Op: "begin", FD: fd, Flags: dmabuf.SyncWrite},
	}, f.Calls())
}
