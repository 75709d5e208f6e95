// Package standin builds the stand-in libcuda.so.1 (src/libcuda.c): a C
// library that implements the CUDA driver entry points package
// internal/cuda uses on memfd-backed host memory, and runs the kernels of
// internal/gpuframe/kernels.h on the CPU. With it the cuda surface kind,
// the GPU test source and the CUDA SDK run end to end, in real processes, on
// machines without a GPU; src/libcuda.c's comment lists where it differs from
// the driver.
//
// Point internal/cuda at it with cuda.Options.Library or, for child
// processes too, $FRAMEHUB_LIBCUDA (cuda.LibraryEnv).
package standin

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/framehub/framehub/internal/cuda"
	"github.com/framehub/framehub/internal/gpuframe"
)

//go:embed src/libcuda.c
var source []byte

// Build compiles the stand-in with gcc into a directory under dir named
// after the sources' hash, unless it is there already, and returns the
// library's path. Concurrent builds of the same sources are safe: each
// writes its own file and renames it into place.
func Build(dir string) (string, error) {
	header := gpuframe.Header()
	sum := sha256.Sum256(append(append([]byte(nil), source...), header...))
	out := filepath.Join(dir, "framehub-libcuda-standin-"+hex.EncodeToString(sum[:8]))
	lib := filepath.Join(out, "libcuda.so.1")
	if _, err := os.Stat(lib); err == nil {
		return lib, nil
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", fmt.Errorf("standin: %w", err)
	}
	src, err := os.MkdirTemp(out, "build-")
	if err != nil {
		return "", fmt.Errorf("standin: %w", err)
	}
	defer os.RemoveAll(src)
	for name, b := range map[string][]byte{"libcuda.c": source, "kernels.h": header} {
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			return "", fmt.Errorf("standin: %w", err)
		}
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return "", fmt.Errorf("standin: gcc is needed to build the stand-in libcuda (make deps installs it): %w", err)
	}
	tmp := filepath.Join(src, "libcuda.so.1")
	cmd := exec.Command(gcc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", tmp, "libcuda.c", "-lpthread")
	cmd.Dir = src
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("standin: gcc libcuda.c: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	if err := os.Rename(tmp, lib); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("standin: %w", err)
	}
	return lib, nil
}

// Use builds the stand-in (in the system's temporary directory, shared by
// test binaries) and points $FRAMEHUB_LIBCUDA at it for the rest of the
// test, so that cuda.Load in the test and in the processes it starts loads
// the stand-in. It returns the library's path. Tests that call it cannot
// run in parallel (t.Setenv).
func Use(t testing.TB) string {
	t.Helper()
	lib, err := Build(os.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(cuda.LibraryEnv, lib)
	return lib
}

// Context is Use, then loads the stand-in and retains its device's primary
// context, which the test's cleanup closes (after cleanups registered
// later, which release what was made in it).
func Context(t testing.TB) *cuda.Context {
	t.Helper()
	Use(t)
	d, err := cuda.Load(cuda.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := d.Device(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := d.Retain(dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ctx.Close(); err != nil {
			t.Error(err)
		}
	})
	return ctx
}
