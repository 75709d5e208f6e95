// Package group tests the whole framehub group as an operator runs it: the
// built binaries under framehub-supervisor with a demo-like config (GStreamer
// test camera + x264enc, recorder, RTSP streamer, snapshot service).
package group

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

const waitFor = 60 * time.Second

// freePort returns a TCP port nobody listens on now.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func build(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-o", bin+"/", "./cmd/...")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

type group struct {
	t                                             *testing.T
	bin, dir, sock                                string
	supAdmin, prodAdmin, recAdmin, strAdmin, snap string
	rtsp                                          string
	sup                                           *exec.Cmd
}

type proc struct {
	Name     string `json:"name"`
	PID      int    `json:"pid"`
	State    string `json:"state"`
	Restarts int    `json:"restarts"`
}

func (g *group) status() []proc {
	resp, err := http.Get("http://" + g.supAdmin + "/status")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st struct {
		Processes []proc `json:"processes"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	return st.Processes
}

func (g *group) proc(name string) proc {
	for _, p := range g.status() {
		if p.Name == name {
			return p
		}
	}
	return proc{}
}

func (g *group) allReady() bool {
	ps := g.status()
	if len(ps) != 4 {
		return false
	}
	for _, p := range ps {
		if p.State != "ready" {
			return false
		}
	}
	return true
}

func startGroup(t *testing.T) *group {
	bin := build(t)
	dir := t.TempDir()
	g := &group{t: t, bin: bin, dir: dir, sock: filepath.Join(dir, "framehub.sock")}
	port := func() string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }
	g.supAdmin, g.prodAdmin, g.recAdmin, g.strAdmin, g.snap = port(), port(), port(), port(), port()
	g.rtsp = port()
	udp := freePort(t) &^ 1
	cfg := fmt.Sprintf(`admin: %[1]s
grace: 3s
processes:
  - name: producer
    binary: %[2]s/framehub-producer
    args: [-source, test, -encoder, x264enc, -width, "640", -height, "360", -fps, "30", -gop, "30",
           -socket, %[3]s, -admin, %[4]s]
    ready-socket: %[3]s
    admin: %[4]s
    restart: {backoff-min: 200ms}
  - name: recorder
    binary: %[2]s/framehub-recorder
    args: [-socket, %[3]s, -dir, %[5]s/recordings, -segment, 2s, -admin, %[6]s]
    admin: %[6]s
    restart: {backoff-min: 200ms}
  - name: streamer
    binary: %[2]s/framehub-streamer
    args: [-socket, %[3]s, -rtsp-addr, "%[7]s", -udp-rtp-addr, "127.0.0.1:%[10]d", -path, cam, -admin, %[8]s]
    admin: %[8]s
    restart: {backoff-min: 200ms}
  - name: snapshot
    binary: %[2]s/framehub-snapshot
    args: [-socket, %[3]s, -dir, %[5]s/snapshots, -admin, %[9]s]
    admin: %[9]s
    restart: {backoff-min: 200ms}
`, g.supAdmin, bin, g.sock, g.prodAdmin, dir, g.recAdmin, g.rtsp, g.strAdmin, g.snap, udp)
	cfgPath := filepath.Join(dir, "framehub.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	g.sup = exec.Command(filepath.Join(bin, "framehub-supervisor"), "-config", cfgPath)
	logf, err := os.Create(filepath.Join(dir, "supervisor.log"))
	require.NoError(t, err)
	g.sup.Stdout, g.sup.Stderr = logf, logf
	require.NoError(t, g.sup.Start())
	t.Cleanup(func() {
		_ = g.sup.Process.Kill()
		_ = g.sup.Wait()
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "supervisor.log"))
			lines := strings.Split(string(b), "\n")
			t.Logf("supervisor log (last 80 lines):\n%s", strings.Join(lines[max(0, len(lines)-80):], "\n"))
		}
	})
	require.Eventually(t, g.allReady, waitFor, 100*time.Millisecond, "all processes ready: %+v", g.status())
	return g
}

// consumersOfProducer lists the names of the producer's sessions.
func (g *group) consumersOfProducer() []string {
	resp, err := http.Get("http://" + g.prodAdmin + "/consumers")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var ss []struct{ Name string }
	if json.NewDecoder(resp.Body).Decode(&ss) != nil {
		return nil
	}
	var names []string
	for _, s := range ss {
		names = append(names, s.Name)
	}
	return names
}

// playRTSP decodes n frames from the streamer with a real RTSP client.
func (g *group) playRTSP(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "gst-launch-1.0", "-q", "rtspsrc", "location=rtsp://"+g.rtsp+"/cam", "protocols=tcp",
		"!", "rtph264depay", "!", "h264parse", "!", "avdec_h264", "!", "fakesink", fmt.Sprintf("num-buffers=%d", n))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "RTSP client: %s", out)
}

func mp4s(dir string) []string {
	var files []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".mp4") {
			files = append(files, p)
		}
		return nil
	})
	return files
}

func TestGroup(t *testing.T) {
	if _, err := exec.LookPath("gst-launch-1.0"); err != nil {
		t.Skip("gst-launch-1.0 not installed (make deps installs gstreamer1.0-tools)")
	}
	g := startGroup(t)

	// framehubctl status --json reports every process.
	out, err := exec.Command(filepath.Join(g.bin, "framehubctl"), "status", "-json", "-addr", g.supAdmin, "-interval", "500ms").Output()
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
	resp, err := http.Get("http://" + g.prodAdmin + "/metrics")
	require.NoError(t, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	for _, name := range []string{"framehub_producer_consumer_leases", "framehub_producer_dropped_total", "framehub_producer_lease_hold_seconds"} {
		require.Contains(t, fams, name)
	}
	g.playRTSP(t, 30)

	// kill -9 each consumer in turn: restarted within its backoff, the others never stop.
	for _, name := range []string{"recorder", "streamer", "snapshot"} {
		before := map[string]int{}
		for _, p := range g.status() {
			before[p.Name] = p.PID
		}
		victim := g.proc(name)
		require.NoError(t, syscall.Kill(victim.PID, syscall.SIGKILL))
		require.Eventually(t, func() bool {
			p := g.proc(name)
			return p.State == "ready" && p.PID != victim.PID && p.Restarts == victim.Restarts+1
		}, 10*time.Second, 50*time.Millisecond, "%s restarted", name)
		for _, p := range g.status() {
			if p.Name != name {
				require.Equal(t, before[p.Name], p.PID, "%s kept running while %s was killed", p.Name, name)
			}
		}
	}

	// kill -9 the producer: restarted; the consumers reconnect by themselves;
	// the RTSP stream plays again; recording continues in a new segment.
	require.Eventually(t, func() bool { return len(mp4s(filepath.Join(g.dir, "recordings"))) > 0 }, waitFor, 100*time.Millisecond)
	prod := g.proc("producer")
	consumerPIDs := map[string]int{}
	for _, p := range g.status() {
		consumerPIDs[p.Name] = p.PID
	}
	require.NoError(t, syscall.Kill(prod.PID, syscall.SIGKILL))
	killed := time.Now()
	require.Eventually(t, func() bool {
		p := g.proc("producer")
		return p.State == "ready" && p.PID != prod.PID
	}, 20*time.Second, 50*time.Millisecond, "producer restarted")
	require.Eventually(t, func() bool { return len(g.consumersOfProducer()) >= 3 }, 20*time.Second, 100*time.Millisecond,
		"consumers reconnected: %v", g.consumersOfProducer())
	t.Logf("producer killed → restarted and 3 consumers back in %v", time.Since(killed).Round(time.Millisecond))
	for _, name := range []string{"recorder", "streamer", "snapshot"} {
		require.Equal(t, consumerPIDs[name], g.proc(name).PID, "%s reconnected without a restart", name)
	}
	g.playRTSP(t, 30)
	require.Eventually(t, func() bool {
		for _, f := range mp4s(filepath.Join(g.dir, "recordings")) {
			if fi, err := os.Stat(f); err == nil && fi.ModTime().After(killed) {
				return true
			}
		}
		return false
	}, 20*time.Second, 200*time.Millisecond, "recording continues after the producer restart")

	// SIGTERM stops everything within the grace period, no process left.
	pids := []int{}
	for _, p := range g.status() {
		pids = append(pids, p.PID)
	}
	stopAt := time.Now()
	require.NoError(t, g.sup.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- g.sup.Wait() }()
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
