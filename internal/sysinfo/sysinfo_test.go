package sysinfo

import (
	"os"
	"os/exec"
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

	sw0, err := ProcSwitches(pid)
	require.NoError(t, err)
	for range 5 {
		time.Sleep(time.Millisecond) // each sleep is a voluntary switch of some thread
	}
	sw1, err := ProcSwitches(pid)
	require.NoError(t, err)
	require.GreaterOrEqual(t, sw1-sw0, int64(5), "context switches grow with sleeps")

	_, err = ProcCPU(1 << 30)
	require.ErrorContains(t, err, "CPU time of pid")
	_, err = ProcSwitches(1 << 30)
	require.ErrorContains(t, err, "context switches of pid")
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

func TestStarved(t *testing.T) {
	require.Empty(t, Starved(0.5, 0.4, 0.1), "CPU to spare")
	require.Empty(t, Starved(0.89, 0.8, 0.19))
	require.Empty(t, Starved(0.98, 0.1, 0), "busy with the test's own processes: judged")
	require.Equal(t, "the machine was 95% busy (≥ 90%), 40% of it by processes outside the test (≥ 25%): they took the CPU", Starved(0.95, 0.4, 0.03))
	require.Equal(t, "the host stole 25% of the machine's CPU time (≥ 20%; 60% busy)", Starved(0.6, 0.1, 0.25))
	require.Contains(t, Starved(0.99, 0.9, 0.5), "the host stole 50%", "steal is named first: no process here is to blame")
}

// TreeCPU counts the children of a process: a child spinning for a while
// adds about that much CPU time to its parent's tree, not to the parent.
func TestTreeCPU(t *testing.T) {
	self := os.Getpid()
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }() // when a check fails first
	st, ok := readStat(cmd.Process.Pid)
	require.True(t, ok)
	require.Equal(t, self, st.ppid)
	tree0, err := TreeCPU(self)
	require.NoError(t, err)
	own0, err := ProcCPU(self)
	require.NoError(t, err)
	child0, err := ProcCPU(cmd.Process.Pid)
	require.NoError(t, err)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) { // polls the child's CPU time
		c, err := ProcCPU(cmd.Process.Pid)
		require.NoError(t, err)
		if c-child0 >= int64(200*time.Millisecond) {
			break
		}
		require.True(t, time.Now().Before(deadline), "the spinning child got no CPU for 10 s")
	}
	tree1, err := TreeCPU(self)
	require.NoError(t, err)
	own1, err := ProcCPU(self)
	require.NoError(t, err)
	require.GreaterOrEqual(t, tree1-tree0, own1-own0, "the tree includes the process itself")
	require.GreaterOrEqual(t, (tree1-own1)-(tree0-own0), int64(200*time.Millisecond), "the child's CPU time is in its parent's tree")

	// Once exited and waited for, the child's time stays in the tree.
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	tree2, err := TreeCPU(self)
	require.NoError(t, err)
	require.GreaterOrEqual(t, tree2, tree1-int64(20*time.Millisecond), "a waited-for child's CPU time stays in the tree (to the tick)")

	_, ok = readStat(1 << 30)
	require.False(t, ok)
	_, err = TreeCPU(1 << 30)
	require.ErrorContains(t, err, "CPU time of pid")
}
