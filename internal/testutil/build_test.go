package testutil

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The binaries GoBuild makes have the race detector exactly when this test
// binary has it, unless cgo is off (the race detector needs it).
func TestGoBuildFollowsTheRaceDetector(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const pkg = "github.com/framehub/framehub/examples/consumer-go"
	for _, tc := range []struct {
		env  []string
		race bool
	}{{nil, RaceEnabled}, {[]string{"CGO_ENABLED=0"}, false}} {
		dir := t.TempDir()
		require.NoError(t, GoBuild(ctx, dir, tc.env, pkg))
		out, err := exec.Command("go", "version", "-m", filepath.Join(dir, "consumer-go")).CombinedOutput()
		require.NoError(t, err, "%s", out)
		if tc.race {
			require.Contains(t, string(out), "-race=true", "env %v", tc.env)
		} else {
			require.NotContains(t, string(out), "-race=true", "env %v", tc.env)
		}
	}
}

func TestCheckNoRace(t *testing.T) {
	var ft fakeT
	CheckNoRace(&ft, "clean", "level=INFO msg=ok\n")
	require.Empty(t, ft.errors)
	CheckNoRace(&ft, "racy (pid 7)", "level=INFO msg=ok\n==================\nWARNING: DATA RACE\nWrite at 0x00c by goroutine 7:\n")
	require.Len(t, ft.errors, 1)
	require.Contains(t, ft.errors[0], "racy (pid 7): the race detector reported a data race:\nWARNING: DATA RACE\nWrite at")
}

// fakeT records what CheckNoRace reports.
type fakeT struct {
	testing.TB
	errors []string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}
