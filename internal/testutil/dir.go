package testutil

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// ShortDir returns a fresh directory with a short path, removed at
// cleanup. Unix socket paths must fit in 108 bytes, which paths under
// t.TempDir() (named after the test, subtests included) can exceed.
func ShortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "fh-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// ModuleRoot returns the root of the module under test: the nearest
// directory at or above the test's working directory (its package's
// directory) that holds go.mod. Tests that build the repository's C or Go
// programs from their sources need it.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "no go.mod at or above the working directory")
		dir = parent
	}
}
