package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/cuda/standin"
	"github.com/framehub/framehub/internal/sysinfo"
)

// TestMain lets run start this test binary as its producer and consumer
// processes, as it starts the gpu command on the GPU machine.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "producer" || os.Args[1] == "consumer") {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunStandin runs the whole benchmark, small, against the stand-in
// libcuda: the code docs/bench/gpu.md's figures come from, end to end, with
// real producer and consumer processes. Its figures mean nothing here; what
// it checks is that every frame verified, killed consumers' sessions ended,
// a frame held across the producer's SIGKILL still verified and unmapped on
// release, and the DMA-BUF export was refused a CPU mapping.
func TestRunStandin(t *testing.T) {
	standin.Use(t)
	fds := sysinfo.FDCount(os.Getpid())
	rc := runConfig{
		g:   gpuFlags{width: 320, height: 240, sched: "blocking"},
		fps: 60, consumers: 3, budget: 4, window: time.Second, kills: 2,
		self: os.Args[0], dir: t.TempDir(),
	}
	rep, err := run(&rc)
	require.NoError(t, err)
	var sb strings.Builder
	printReport(&sb, rep)
	t.Log(sb.String())

	f := rep.Fanout
	require.Positive(t, f.Published)
	require.Len(t, f.Consumers, 3)
	for _, k := range f.Consumers {
		require.Positive(t, k.Received)
		require.Equal(t, k.Received, k.Verified, "pid %d: %s", k.PID, k.FirstErr)
		require.Zero(t, k.Failed)
		require.Positive(t, k.WindowFrames)
		require.Positive(t, k.Imports)
		require.Equal(t, 32*k.Received, k.HostBytes, "only the 32-byte results come to the host")
	}
	require.Len(t, rep.Kill.Runs, 2)
	for _, r := range rep.Kill.Runs {
		require.Equal(t, 4, r.Leases)
	}
	s := rep.Survive
	require.NotZero(t, s.HeldSeq)
	require.Contains(t, s.Disconnect, "disconnected")
	require.Equal(t, "verified", s.AfterDeath)
	require.GreaterOrEqual(t, s.MappedAfterDeath, 1)
	require.Zero(t, s.MappedAtEnd)
	d := rep.DMABuf
	require.Equal(t, "dmabuf", d.SurfaceKind)
	require.True(t, d.NoCPUMap)
	require.Contains(t, d.PlaneErr, "no CPU mapping")
	require.Contains(t, d.ImportErr, "not a cuda surface")
	require.Equal(t, fds, sysinfo.FDCount(os.Getpid()), "the in-process producer left fds open")
}
