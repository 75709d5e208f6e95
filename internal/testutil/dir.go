package testutil

import (
	"os"
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
