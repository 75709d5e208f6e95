// Package examples_test checks that every Go example builds the way a third
// party would build it: copied out of this repository into a module of its
// own, which requires framehub (replaced by this checkout) and nothing else
// of it. Go refuses a copy that imports one of framehub's internal
// packages, which the examples' build inside the module would not notice.
package examples_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// goExamples returns the example directories that hold a Go program.
func goExamples(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(".")
	require.NoError(t, err)
	var dirs []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		files, err := filepath.Glob(filepath.Join(e.Name(), "*.go"))
		require.NoError(t, err)
		for _, f := range files {
			if !strings.HasSuffix(f, "_test.go") {
				dirs = append(dirs, e.Name())
				break
			}
		}
	}
	return dirs
}

// TestExamplesBuildOutsideTheModule copies each Go example (without its
// tests, which may use framehub's test helpers) into a temporary directory
// with a go.mod of its own and builds it with CGO_ENABLED=0, offline: the
// module cache `make deps` filled has every module needed.
func TestExamplesBuildOutsideTheModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every example in a module of its own")
	}
	repo, err := filepath.Abs("..")
	require.NoError(t, err)
	goVersion := moduleGoVersion(t, filepath.Join(repo, "go.mod"))
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	require.NoError(t, err)
	dirs := goExamples(t)
	require.Subset(t, dirs, []string{"consumer-go", "consumer-cuda", "plugin-motion"}, "the examples the README lists")
	for _, name := range dirs {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			require.NoError(t, os.Mkdir(dir, 0o755))
			copyExample(t, name, dir)
			mod := fmt.Sprintf("module example.com/%s\n\ngo %s\n\nrequire github.com/framehub/framehub v0.0.0\n\nreplace github.com/framehub/framehub => %s\n",
				name, goVersion, repo)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644))
			// framehub's go.sum holds the hashes of every module it
			// needs; -mod=mod lets the build add to go.mod what the
			// program's imports need (go mod tidy would also want the
			// modules of the dependencies' tests, which no build needs).
			require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))
			runGo(t, dir, "build", "-o", os.DevNull, ".")
		})
	}
}

// copyExample copies the files of example name, tests excepted, into dir.
func copyExample(t *testing.T, name, dir string) {
	t.Helper()
	entries, err := os.ReadDir(name)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(name, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644))
	}
}

// moduleGoVersion returns the go directive of a go.mod.
func moduleGoVersion(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return v
		}
	}
	t.Fatalf("%s has no go directive", path)
	return ""
}

// runGo runs the go command in dir, offline and without cgo, and fails the
// test with its output when it fails.
func runGo(t *testing.T, dir string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go %s in a copy of the example:\n%s", strings.Join(args, " "), out)
}
