package testutil

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// GoBuild builds the packages pkgs (import paths) into the directory dir
// with the go command that runs the tests, so that the binaries the tests
// start are those of the tree under test. When the test binary runs with
// the race detector (RaceEnabled), so do the binaries: a data race in a
// daemon or plugin under test is then reported on its stderr, which
// StartDaemon and CheckNoRace turn into a test failure. env is added to
// the environment of the build; CGO_ENABLED=0 in it (to prove a binary
// needs no cgo) builds without the race detector, which needs cgo. The
// build is killed when ctx ends: the first cgo build of the GStreamer
// bindings takes minutes, later ones come from the build cache.
//
// It takes no testing.TB because packages that share their binaries
// between tests build them once in TestMain, before any test exists. The
// caller removes dir.
func GoBuild(ctx context.Context, dir string, env []string, pkgs ...string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if RaceEnabled && !slices.Contains(env, "CGO_ENABLED=0") {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, goBin, append(args, pkgs...)...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(cmd.Args[1:], " "), err, out)
	}
	return nil
}

// BuildToTemp builds pkgs (see GoBuild) into a new temporary directory and
// returns it, for a TestMain that builds its binaries once for all tests.
// The caller removes the directory with os.RemoveAll after the tests ran,
// also when the build failed ("" when it could not even be made, which
// os.RemoveAll ignores).
func BuildToTemp(ctx context.Context, pkgs ...string) (string, error) {
	dir, err := os.MkdirTemp("", "framehub-bin-")
	if err != nil {
		return "", err
	}
	return dir, GoBuild(ctx, dir, nil, pkgs...)
}

// raceReport is how the race detector starts a report on stderr.
const raceReport = "WARNING: DATA RACE"

// CheckNoRace fails the test (without stopping it) when log, the stderr
// of a process GoBuild built, holds a race detector report; what names the
// process. Binaries built without the race detector never fail it.
func CheckNoRace(t testing.TB, what, log string) {
	t.Helper()
	if i := strings.Index(log, raceReport); i >= 0 {
		t.Errorf("%s: the race detector reported a data race:\n%s", what, Tail(log[i:], logTail))
	}
}
