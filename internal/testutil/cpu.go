package testutil

import (
	"fmt"
	"testing"

	"github.com/framehub/framehub/internal/sysinfo"
	"github.com/stretchr/testify/require"
)

// Thresholds past which a measurement window is starved: the machine had
// no CPU left to give (other test packages' processes run alongside, x264
// and GStreamer clients among them) or the hypervisor took it.
// The steal threshold is sysinfo.HeavySteal.
const starvedBusy = 0.90

// CPUWindow brackets a rate measurement with the machine's CPU counters,
// so that a producer slowed down by a starved machine is told apart from
// one slowed down by what the test did to it (a hung consumer blocking it
// leaves the CPU idle). Start it where the measurement starts; call
// Starved where it ends.
type CPUWindow struct {
	t    testing.TB
	from sysinfo.CPUTicks
}

// StartCPUWindow reads the machine's CPU counters now.
func StartCPUWindow(t testing.TB) *CPUWindow {
	t.Helper()
	c, err := sysinfo.ReadCPUTicks()
	require.NoError(t, err)
	return &CPUWindow{t: t, from: c}
}

// Starved reads the counters again and says why the window was starved
// (at least 90% of both CPUs busy, or at least 20% stolen by the host), or
// "" when the machine had CPU to spare. The window's figures are logged
// either way.
func (w *CPUWindow) Starved() string {
	w.t.Helper()
	c, err := sysinfo.ReadCPUTicks()
	require.NoError(w.t, err)
	busy, steal := c.Share(w.from)
	w.t.Logf("machine over the window: %.0f%% busy, %.0f%% stolen by the host", 100*busy, 100*steal)
	switch {
	case steal >= sysinfo.HeavySteal:
		return fmt.Sprintf("the host stole %.0f%% of the machine's CPU time (≥ %.0f%%)", 100*steal, 100*sysinfo.HeavySteal)
	case busy >= starvedBusy:
		return fmt.Sprintf("the machine was %.0f%% busy (≥ %.0f%%): other processes took the CPU", 100*busy, 100*starvedBusy)
	}
	return ""
}
