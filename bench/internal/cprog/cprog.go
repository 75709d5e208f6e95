// Package cprog builds the benchmarks' C programs with gcc: bench/floor
// (the machine's floor), bench/cconsumer (framehub's consumer in C, the
// peer benchmark's framehub-c system) and bench/gstcount (the GStreamer
// consumers' frame counter). Each is built into a directory the caller
// owns, from the module's root.
package cprog

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// Build compiles sources (relative to root, the module's root) with gcc
// into dir/name, with the compiler and linker flags of packages
// (pkg-config), and returns the binary's path.
func Build(root, dir, name string, sources []string, packages ...string) (string, error) {
	var flags []string
	if len(packages) > 0 {
		out, err := exec.Command("pkg-config", append([]string{"--cflags", "--libs"}, packages...)...).Output()
		if err != nil {
			return "", fmt.Errorf("pkg-config %s (the Makefile's deps install it): %w", strings.Join(packages, " "), err)
		}
		flags = strings.Fields(string(out))
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
	return Build(root, dir, "cconsumer", []string{"bench/cconsumer/cconsumer.c",
		"gst/framehubsrc/fhproto.c", "gst/framehubsrc/fhconn.c"}, "glib-2.0")
}

// GstCount builds bench/gstcount and returns the binary's path.
func GstCount(root, dir string) (string, error) {
	return Build(root, dir, "gstcount", []string{"bench/gstcount/gstcount.c"}, "gstreamer-1.0")
}
