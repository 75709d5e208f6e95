package sdk

import (
	"errors"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// A refused connect names the directory or socket in the way, its owner,
// group and mode, and what the process lacks.
func TestPermissionProblem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test makes files of another owner and group")
	}
	grp, err := user.LookupGroup("daemon")
	if err != nil {
		t.Skip("no group daemon on this machine")
	}
	gid, _ := strconv.Atoi(grp.Gid)
	base := t.TempDir()
	for d := base; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o755)) // t.TempDir's directories are 0700
	}
	run := filepath.Join(base, "run")
	require.NoError(t, os.Mkdir(run, 0o750))
	require.NoError(t, os.Chown(run, 0, gid))
	require.NoError(t, os.Chmod(run, 0o750))
	sock := filepath.Join(run, "fh.sock")
	ln, err := net.Listen("unixpacket", sock)
	require.NoError(t, err)
	defer ln.Close()
	require.NoError(t, os.Chown(sock, 0, gid))
	require.NoError(t, os.Chmod(sock, 0o660))

	nobody := ids{uid: 65534, groups: []int{65534}}
	member := ids{uid: 65534, groups: []int{65534, gid}}
	require.Equal(t, "this process (user "+userName(65534)+", groups "+groupName(65534)+") may not search the directory "+run+
		" (owner root, group daemon, mode 0750): add "+userName(65534)+" to group daemon (systemd: SupplementaryGroups=daemon)",
		permissionProblem(sock, nobody))
	require.Empty(t, permissionProblem(sock, member), "a member of the group may connect")
	require.Empty(t, permissionProblem(sock, ids{uid: 0}), "root may")

	require.NoError(t, os.Chmod(sock, 0o600))
	require.Contains(t, permissionProblem(sock, member), "may not connect to the socket "+sock+" (owner root, group daemon, mode 0600): "+
		"run as root, or have the producer open its socket to a group (-socket-group)")
	require.NoError(t, os.Chmod(sock, 0o000))
	require.Contains(t, permissionProblem(sock, member), "its mode lets nobody but root in")

	// explainDial, for each errno a dial meets.
	err = explainDial(sock, &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ENOENT)})
	require.ErrorIs(t, err, syscall.ENOENT)
	require.ErrorContains(t, err, "no socket at "+sock+": is the producer running")
	err = explainDial(sock, &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})
	require.ErrorContains(t, err, "nothing listens on "+sock)
	plain := errors.New("other")
	require.Equal(t, plain, explainDial("@abstract", plain))
}
