package testutil

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// GoBuild builds the packages pkgs (import paths) into the directory dir
// with the go command that runs the tests, so that the binaries the tests
// start are those of the tree under test. env is added to the environment
// of the build (e.g. CGO_ENABLED=0 to prove a binary needs no cgo). The
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
	cmd := exec.CommandContext(ctx, goBin, append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs, " "), err, out)
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
