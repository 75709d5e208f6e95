package testutil

import (
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/sysinfo"
)

// CPUWindow brackets a rate measurement with the machine's CPU counters
// and the CPU time of the test's own processes (the test binary and every
// process under it), so that a producer slowed down by a machine that
// other processes starved is told apart from one slowed down by what the
// test did to it (a hung consumer blocking it leaves the CPU idle; a
// flooding one makes the machine busy itself). Start it where the
// measurement starts; call Starved where it ends.
type CPUWindow struct {
	t       testing.TB
	from    sysinfo.CPUTicks
	oursNS0 int64
}

// StartCPUWindow reads the machine's CPU counters now.
func StartCPUWindow(t testing.TB) *CPUWindow {
	t.Helper()
	ours, err := sysinfo.TreeCPU(os.Getpid())
	require.NoError(t, err)
	c, err := sysinfo.ReadCPUTicks()
	require.NoError(t, err)
	return &CPUWindow{t: t, from: c, oursNS0: ours}
}

// Starved reads the counters again and says, by the machine-busy rule
// (sysinfo.Starved: busy, and busy by processes outside the test), why an absolute rate measured over the window cannot
// be judged, or "" when the machine had CPU to spare. The window's figures
// are logged either way.
func (w *CPUWindow) Starved() string {
	w.t.Helper()
	c, err := sysinfo.ReadCPUTicks()
	require.NoError(w.t, err)
	ours, err := sysinfo.TreeCPU(os.Getpid())
	require.NoError(w.t, err)
	busy, steal := c.Share(w.from)
	// The test's processes' share, from ns of CPU time over the window's
	// CPU time in ticks; what is left of busy is everyone else's.
	var own float64
	if total := float64(c.Total - w.from.Total); total > 0 {
		own = float64(ours-w.oursNS0) / 1e9 * sysinfo.ClockTicks / total
	}
	others := max(0, busy-own)
	w.t.Logf("machine over the window: %.0f%% busy (%.0f%% by this test's processes, %.0f%% by others), %.0f%% stolen by the host",
		100*busy, 100*min(own, busy), 100*others, 100*steal)
	return sysinfo.Starved(busy, others, steal)
}

// SkipUnjudged ends the test as skipped, saying loudly which check was not
// judged and why, when starved (from Starved) is not empty; it does
// nothing otherwise. A check that was never judged must not pass: call it
// after every other assertion of the test, where the absolute check would
// run, since skipping ends the test. format and args name the check and
// its measured value.
func SkipUnjudged(t testing.TB, starved, format string, args ...any) {
	t.Helper()
	if starved == "" {
		return
	}
	t.Skipf("NOT JUDGED: %s: %s", fmt.Sprintf(format, args...), starved)
}
