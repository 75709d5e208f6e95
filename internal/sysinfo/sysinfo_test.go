package sysinfo

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSelf(t *testing.T) {
	pid := os.Getpid()
	cpu0, err := ProcCPU(pid)
	require.NoError(t, err)
	x := 0
	for i := range 20_000_000 { // burn a little CPU
		x += i
	}
	cpu1, err := ProcCPU(pid)
	require.NoError(t, err)
	require.Greater(t, cpu1, cpu0, "CPU time grows (x=%d)", x)
	require.Positive(t, RSSKiB(pid))
	require.Positive(t, FDCount(pid))
	// The state is the main thread's, which need not be the one running
	// this test: running or sleeping.
	require.Regexp(t, `^[RS] \(`, StatusField(pid, "State"))

	_, err = ProcCPU(1 << 30)
	require.ErrorContains(t, err, "CPU time of pid")
	require.Equal(t, int64(-1), RSSKiB(1<<30))
	require.Equal(t, -1, FDCount(1<<30))
}

func TestMachine(t *testing.T) {
	m := Machine()
	for _, want := range []string{"- CPU: ", "- Kernel: Linux ", "- Go: go", "- GStreamer: "} {
		require.Contains(t, m, want)
	}
	require.NotContains(t, Kernel(), "\x00")
	require.True(t, strings.Contains(Summary(), "Linux"))
}

func TestCPUTicks(t *testing.T) {
	c0, err := ReadCPUTicks()
	require.NoError(t, err)
	require.Positive(t, c0.Total)
	require.GreaterOrEqual(t, c0.Steal, int64(0))
	require.LessOrEqual(t, c0.Steal+c0.Idle, c0.Total, "steal and idle are parts of the total")
	// Keep one CPU busy for a while: the window cannot be all idle.
	end := time.Now().Add(200 * time.Millisecond)
	for n := 0; time.Now().Before(end); n++ {
	}
	c1, err := ReadCPUTicks()
	require.NoError(t, err)
	require.Greater(t, c1.Total, c0.Total, "ticks only grow")
	require.GreaterOrEqual(t, c1.Steal, c0.Steal)
	busy, steal := c1.Share(c0)
	t.Logf("busy %.0f%%, steal %.0f%% over 200 ms of one spinning goroutine", 100*busy, 100*steal)
	require.Greater(t, busy, 0.0, "a spinning goroutine is busy time")
	require.LessOrEqual(t, busy, 1.0)
	require.LessOrEqual(t, steal, busy, "stolen time is not idle time")
	b, s := c0.Share(c0)
	require.Zero(t, b)
	require.Zero(t, s)
}
