// Package cprog builds the peer benchmark's C programs with gcc:
// bench/cconsumer (framehub's consumer in C, the framehub-c system) and
// bench/gstcount (the GStreamer consumers' frame counter). Both are built
// into a directory the caller owns, from the module's root.
package cprog

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// pkgConfig returns the compiler and linker flags of packages.
func pkgConfig(packages ...string) ([]string, error) {
	out, err := exec.Command("pkg-config", append([]string{"--cflags", "--libs"}, packages...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("pkg-config %s (the Makefile's deps install it): %w", strings.Join(packages, " "), err)
	}
	return strings.Fields(string(out)), nil
}

// gcc compiles sources (relative to root) into dir/name with the flags of
// packages.
func gcc(root, dir, name string, sources []string, packages ...string) (string, error) {
	flags, err := pkgConfig(packages...)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, name)
	args := []string{"-O2", "-Wall", "-o", bin}
	for _, s := range sources {
		args = append(args, filepath.Join(root, s))
	}
	out, err := exec.Command("gcc", append(args, flags...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build %s with gcc: %w: %s", sources[0], err, out)
	}
	return bin, nil
}

// CConsumer builds bench/cconsumer, with framehubsrc's protocol code, and
// returns the binary's path.
func CConsumer(root, dir string) (string, error) {
	return gcc(root, dir, "cconsumer", []string{"bench/cconsumer/cconsumer.c",
		"gst/framehubsrc/fhproto.c", "gst/framehubsrc/fhconn.c"}, "glib-2.0")
}

// GstCount builds bench/gstcount and returns the binary's path.
func GstCount(root, dir string) (string, error) {
	return gcc(root, dir, "gstcount", []string{"bench/gstcount/gstcount.c"}, "gstreamer-1.0")
}
