package rundir

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// nobody is the uid of another local user in these tests.
const nobody = 65534

// needRoot skips a test that gives files to another uid.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test gives a directory to another uid (65534) with chown")
	}
}

func TestDefault(t *testing.T) {
	d, err := defaultFor(0, "/run/user/0")
	require.NoError(t, err)
	require.Equal(t, "/run/framehub", d, "root uses /run even with XDG_RUNTIME_DIR")
	d, err = defaultFor(1000, "/run/user/1000")
	require.NoError(t, err)
	require.Equal(t, "/run/user/1000/framehub", d)
	_, err = defaultFor(1000, "")
	require.ErrorIs(t, err, ErrNoDefault)
	require.EqualError(t, err, "XDG_RUNTIME_DIR is not set and uid 1000 is not root")
	_, err = defaultFor(1000, "run/user")
	require.ErrorIs(t, err, ErrNoDefault)
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	require.NoError(t, err)
	return fi.Mode().Perm()
}

func TestEnsureCreates(t *testing.T) {
	base := t.TempDir()
	d := filepath.Join(base, "a", "framehub")
	require.NoError(t, Ensure(d, -1))
	require.Equal(t, os.FileMode(0o700), mode(t, d))
	require.NoError(t, Ensure(d, -1), "its own directory again")

	g := filepath.Join(base, "grouped")
	gid := os.Getegid() + 1 // root may give any group; others only their own
	if os.Geteuid() != 0 {
		gid = os.Getegid()
	}
	require.NoError(t, Ensure(g, gid))
	require.Equal(t, os.FileMode(0o750), mode(t, g))
	fi, err := os.Stat(g)
	require.NoError(t, err)
	require.Equal(t, uint32(gid), fi.Sys().(*syscall.Stat_t).Gid)
}

func TestEnsureKeepsASafeDirectoryAsItIs(t *testing.T) {
	d := filepath.Join(t.TempDir(), "mine")
	require.NoError(t, os.Mkdir(d, 0o755))
	require.NoError(t, os.Chmod(d, 0o755))
	require.NoError(t, Ensure(d, -1))
	require.Equal(t, os.FileMode(0o755), mode(t, d), "an existing directory keeps its mode")
}

// TestEnsureRefusesSquatted is the squatted socket directory of issue 16:
// another user created the directory first.
func TestEnsureRefusesSquatted(t *testing.T) {
	needRoot(t)
	for _, m := range []os.FileMode{0o777, 0o755, 0o700} {
		d := filepath.Join(t.TempDir(), "framehub")
		require.NoError(t, os.Mkdir(d, m))
		require.NoError(t, os.Chmod(d, m))
		require.NoError(t, os.Chown(d, nobody, nobody))
		err := Ensure(d, -1)
		require.ErrorIs(t, err, ErrUnsafe, "mode %#o", m)
		require.ErrorContains(t, err, "belongs to uid 65534, not to uid 0")
		require.ErrorContains(t, err, "remove it")
	}
}

func TestEnsureRefusesWritableByOthers(t *testing.T) {
	for _, m := range []os.FileMode{0o777, 0o770, 0o777 | os.ModeSticky, 0o702} {
		d := filepath.Join(t.TempDir(), "framehub")
		require.NoError(t, os.Mkdir(d, m))
		require.NoError(t, os.Chmod(d, m))
		err := Ensure(d, -1)
		require.ErrorIs(t, err, ErrUnsafe, "mode %#o", m)
		require.ErrorContains(t, err, "writable by other users")
		require.ErrorContains(t, err, "chmod go-w")
	}
}

func TestEnsureRefusesUnsafeParents(t *testing.T) {
	t.Run("parent of another user", func(t *testing.T) {
		needRoot(t)
		p := filepath.Join(t.TempDir(), "theirs")
		require.NoError(t, os.Mkdir(p, 0o755))
		require.NoError(t, os.Chown(p, nobody, nobody))
		d := filepath.Join(p, "framehub")
		err := Ensure(d, -1)
		require.ErrorIs(t, err, ErrUnsafe)
		require.ErrorContains(t, err, p+", above "+d+", belongs to uid 65534")
		_, serr := os.Lstat(d)
		require.ErrorIs(t, serr, os.ErrNotExist, "a directory made under an unsafe parent is removed")
	})
	t.Run("parent writable by all", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "open")
		require.NoError(t, os.Mkdir(p, 0o777))
		require.NoError(t, os.Chmod(p, 0o777))
		err := Ensure(filepath.Join(p, "framehub"), -1)
		require.ErrorIs(t, err, ErrUnsafe)
		require.ErrorContains(t, err, "other users can rename what it holds")
	})
	t.Run("sticky parent writable by all", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "tmp")
		require.NoError(t, os.Mkdir(p, 0o777))
		require.NoError(t, os.Chmod(p, 0o777|os.ModeSticky))
		require.NoError(t, Ensure(filepath.Join(p, "framehub"), -1), "like /tmp: others cannot rename our entries")
	})
	t.Run("symbolic link of another user", func(t *testing.T) {
		needRoot(t)
		base := t.TempDir()
		real := filepath.Join(base, "real")
		require.NoError(t, os.Mkdir(real, 0o700))
		link := filepath.Join(base, "link")
		require.NoError(t, os.Symlink(real, link))
		require.NoError(t, os.Lchown(link, nobody, nobody))
		err := Ensure(filepath.Join(link, "framehub"), -1)
		require.ErrorIs(t, err, ErrUnsafe)
		require.ErrorContains(t, err, "is a symbolic link of uid 65534")
	})
	t.Run("the directory is a symbolic link", func(t *testing.T) {
		base := t.TempDir()
		real := filepath.Join(base, "real")
		require.NoError(t, os.Mkdir(real, 0o700))
		link := filepath.Join(base, "framehub")
		require.NoError(t, os.Symlink(real, link))
		err := Ensure(link, -1)
		require.ErrorIs(t, err, ErrUnsafe)
		require.ErrorContains(t, err, "is not a directory")
	})
	t.Run("own symbolic link", func(t *testing.T) {
		base := t.TempDir()
		real := filepath.Join(base, "real")
		require.NoError(t, os.Mkdir(real, 0o700))
		link := filepath.Join(base, "link")
		require.NoError(t, os.Symlink(real, link))
		require.NoError(t, Ensure(filepath.Join(link, "framehub"), -1))
	})
}
