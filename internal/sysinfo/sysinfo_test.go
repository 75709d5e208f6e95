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
	require.Contains(t, StatusField(pid, "State"), "R")

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
	s0, t0, err := CPUTicks()
	require.NoError(t, err)
	require.Positive(t, t0)
	require.GreaterOrEqual(t, s0, int64(0))
	require.LessOrEqual(t, s0, t0, "steal is part of the total")
	time.Sleep(50 * time.Millisecond)
	s1, t1, err := CPUTicks()
	require.NoError(t, err)
	require.GreaterOrEqual(t, t1, t0, "ticks only grow")
	require.GreaterOrEqual(t, s1, s0)
}
