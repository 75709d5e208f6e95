// Package group tests the whole framehub group as an operator runs it: the
// built binaries under framehub-supervisor with a demo-like config (GStreamer
// test camera + x264enc, recorder, RTSP streamer, snapshot service).
package group

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/test/internal/grouptest"
)

func TestGroup(t *testing.T) {
	if _, err := exec.LookPath("gst-launch-1.0"); err != nil {
		t.Skip("gst-launch-1.0 not installed (make deps installs gstreamer1.0-tools)")
	}
	g := grouptest.Start(t, grouptest.Options{})

	// framehubctl status --json reports every process.
	// With the group's admin token file (grouptest gives the group dir/admin.token).
	ctl := exec.Command(filepath.Join(g.Bin, "framehubctl"), "status", "-json", "-addr", g.SupAdmin, "-interval", "500ms",
		"-token-file", filepath.Join(g.Dir, "admin.token"))
	out, err := ctl.Output()
	require.NoError(t, err)
	var rows []struct {
		Name  string  `json:"name"`
		State string  `json:"state"`
		FPS   float64 `json:"fps"`
	}
	require.NoError(t, json.Unmarshal(out, &rows), "%s", out)
	require.Len(t, rows, 4)
	for _, r := range rows {
		require.Equal(t, "ready", r.State, r.Name)
		if r.Name == "producer" {
			require.Greater(t, r.FPS, 20.0, "the producer's raw frame rate")
		}
	}

	// /metrics parses as Prometheus text with the lease and drop series.
	fams, err := g.Scrape(g.ProdAdmin)
	require.NoError(t, err)
	for _, name := range []string{"framehub_producer_consumer_leases", "framehub_producer_dropped_total", "framehub_producer_lease_hold_seconds"} {
		require.Contains(t, fams, name)
	}
	playRTSP(t, g)

	// kill -9 each consumer in turn: restarted within its backoff, the others never stop.
	for _, name := range []string{"recorder", "streamer", "snapshot"} {
		before := map[string]int{}
		for _, p := range g.Status() {
			before[p.Name] = p.PID
		}
		victim := g.Proc(name)
		require.NoError(t, syscall.Kill(victim.PID, syscall.SIGKILL))
		require.Eventually(t, func() bool {
			p := g.Proc(name)
			return p.State == "ready" && p.PID != victim.PID && p.Restarts == victim.Restarts+1
		}, 10*time.Second, 50*time.Millisecond, "%s restarted", name)
		for _, p := range g.Status() {
			if p.Name != name {
				require.Equal(t, before[p.Name], p.PID, "%s kept running while %s was killed", p.Name, name)
			}
		}
	}

	// kill -9 the producer: restarted; the consumers reconnect by themselves;
	// the RTSP stream plays again; recording continues in a new segment.
	require.Eventually(t, func() bool { return len(grouptest.Files(g.RecordDir, ".mp4")) > 0 }, grouptest.WaitFor, 100*time.Millisecond)
	prod := g.Proc("producer")
	consumerPIDs := map[string]int{}
	for _, p := range g.Status() {
		consumerPIDs[p.Name] = p.PID
	}
	require.NoError(t, syscall.Kill(prod.PID, syscall.SIGKILL))
	killed := time.Now()
	require.Eventually(t, func() bool {
		p := g.Proc("producer")
		return p.State == "ready" && p.PID != prod.PID
	}, 20*time.Second, 50*time.Millisecond, "producer restarted")
	require.Eventually(t, g.ConsumersConnected, 20*time.Second, 100*time.Millisecond, "consumers reconnected")
	t.Logf("producer killed → restarted and 3 consumers back in %v", time.Since(killed).Round(time.Millisecond))
	for _, name := range []string{"recorder", "streamer", "snapshot"} {
		require.Equal(t, consumerPIDs[name], g.Proc(name).PID, "%s reconnected without a restart", name)
	}
	playRTSP(t, g)
	require.Eventually(t, func() bool {
		for _, f := range grouptest.Files(g.RecordDir, ".mp4") {
			if fi, err := os.Stat(f); err == nil && fi.ModTime().After(killed) {
				return true
			}
		}
		return false
	}, 20*time.Second, 200*time.Millisecond, "recording continues after the producer restart")

	// SIGTERM stops everything within the grace period, no process left.
	pids := []int{}
	for _, p := range g.Status() {
		pids = append(pids, p.PID)
	}
	stopAt := time.Now()
	require.NoError(t, g.Sup.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- g.Sup.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "the supervisor exits 0 on SIGTERM")
	case <-time.After(20 * time.Second):
		t.Fatal("supervisor did not stop")
	}
	t.Logf("group stopped in %v", time.Since(stopAt).Round(time.Millisecond))
	for _, pid := range pids {
		require.ErrorIs(t, syscall.Kill(-pid, 0), syscall.ESRCH, "process group %d still has processes", pid)
	}
}

// playRTSP decodes 30 frames from the streamer with a real RTSP client.
func playRTSP(t *testing.T, g *grouptest.Group) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, g.PlayRTSP(ctx, 30))
}
