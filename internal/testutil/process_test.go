package testutil

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	RunHelper(map[string]func() int{
		"greet": func() int {
			// The testing package never ran: its flags were not parsed
			// and nothing but this line reaches stdout.
			_, _ = os.Stdout.WriteString("hello from " + os.Getenv("FH_WHO") + "\n")
			return 3
		},
		"nested": func() int {
			if _, ok := os.LookupEnv(helperVar); ok {
				return 1 // a child of this helper would run a helper again
			}
			return 0
		},
	})
	os.Exit(m.Run())
}

// A helper runs instead of the tests, owns stdout, exits with its own
// status and carries the orphan guard.
func TestHelperCommandRunsTheNamedHelper(t *testing.T) {
	cmd := HelperCommand("greet", "FH_WHO=the test")
	require.Equal(t, syscall.SIGKILL, cmd.SysProcAttr.Pdeathsig, "helpers die with the test binary")
	out, err := cmd.Output()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "want exit status 3, got %v", err)
	require.Equal(t, 3, ee.ExitCode())
	require.Equal(t, "hello from the test\n", string(out))

	require.NoError(t, HelperCommand("nested").Run(), "the helper's own environment no longer names a helper")
}

// A helper name the binary does not know fails loudly, naming those it
// knows.
func TestHelperCommandUnknownHelper(t *testing.T) {
	out, err := HelperCommand("nope").CombinedOutput()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "want exit status 2, got %v", err)
	require.Equal(t, 2, ee.ExitCode())
	require.Contains(t, string(out), `FRAMEHUB_TEST_HELPER="nope": no such helper in this test binary (it has greet, nested)`)
}
