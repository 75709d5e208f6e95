package testutil

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FDCount returns the number of open descriptors of process pid, or -1
// when /proc/PID/fd cannot be read. When pid is this process, the
// descriptor of the directory being read is not counted, so that two
// readings compare. It takes no testing.TB so that conditions polled by
// require.Eventually (on another goroutine) can use it.
func FDCount(pid int) int {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return -1
	}
	if pid == os.Getpid() {
		return len(ents) - 1
	}
	return len(ents)
}

// CountFDs is FDCount that fails the test when /proc/PID/fd cannot be
// read, for the readings a leak check starts from.
func CountFDs(t testing.TB, pid int) int {
	t.Helper()
	n := FDCount(pid)
	require.GreaterOrEqual(t, n, 0, "cannot read /proc/%d/fd", pid)
	return n
}

// FDsLinkingTo counts the descriptors of process pid whose link target
// contains s (e.g. "memfd:framehub-test"), or -1 when /proc/PID/fd cannot
// be read: it tells a leaked surface from any other descriptor.
func FDsLinkingTo(pid int, s string) int {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(dir + e.Name()); err == nil && strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// CountOwnFDs is CountFDs of the test process itself, for leak checks of
// code running in it.
func CountOwnFDs(t testing.TB) int {
	t.Helper()
	return CountFDs(t, os.Getpid())
}
