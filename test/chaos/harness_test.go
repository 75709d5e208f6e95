package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

const waitFor = 60 * time.Second

var httpc = &http.Client{Timeout: 3 * time.Second}

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
	resp, err := httpc.Get("http://" + g.supAdmin + "/status")
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
    args: [-source, test, -encoder, x264enc, -width, "640", -height, "360", -fps, "%[11]d", -gop, "30", -h264-replay, "%[12]s",
           -socket, %[3]s, -admin, %[4]s]
    ready-socket: %[3]s
    admin: %[4]s
    restart: {backoff-min: 200ms, max-crashes: 1000}
  - name: recorder
    binary: %[2]s/framehub-recorder
    args: [-socket, %[3]s, -dir, %[5]s/recordings, -segment, 5s, -admin, %[6]s]
    admin: %[6]s
    restart: {backoff-min: 200ms, max-crashes: 1000}
  - name: streamer
    binary: %[2]s/framehub-streamer
    args: [-socket, %[3]s, -rtsp-addr, "%[7]s", -udp-rtp-addr, "127.0.0.1:%[10]d", -path, cam, -admin, %[8]s]
    admin: %[8]s
    restart: {backoff-min: 200ms, max-crashes: 1000}
  - name: snapshot
    binary: %[2]s/framehub-snapshot
    args: [-socket, %[3]s, -dir, %[5]s/snapshots, -admin, %[9]s]
    admin: %[9]s
    restart: {backoff-min: 200ms, max-crashes: 1000}
`, g.supAdmin, bin, g.sock, g.prodAdmin, dir, g.recAdmin, g.rtsp, g.strAdmin, g.snap, udp, nominalFPS, replayWindow.String())
	cfgPath := filepath.Join(dir, "framehub.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	g.sup = exec.Command(filepath.Join(bin, "framehub-supervisor"), "-config", cfgPath)
	// The supervisor dies with the test; its children die with it (PDEATHSIG).
	g.sup.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf, err := os.Create(filepath.Join(dir, "supervisor.log"))
	require.NoError(t, err)
	g.sup.Stdout, g.sup.Stderr = logf, logf
	require.NoError(t, g.sup.Start())
	t.Cleanup(func() {
		_ = g.sup.Process.Signal(syscall.SIGCONT)
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

type session struct {
	Name     string
	PID      int
	Budget   int
	InFlight int
}

// sessions returns the producer's sessions (nil, false on error).
func (g *group) sessions() ([]session, bool) {
	resp, err := httpc.Get("http://" + g.prodAdmin + "/consumers")
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	var ss []session
	if json.NewDecoder(resp.Body).Decode(&ss) != nil {
		return nil, false
	}
	return ss, true
}

func (g *group) consumersConnected() bool {
	ss, ok := g.sessions()
	return ok && len(ss) >= 3
}

// metrics fetches the producer's metrics.
func (g *group) metrics() (map[string]*dto, error) {
	resp, err := httpc.Get("http://" + g.prodAdmin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]*dto{}
	for name, f := range fams {
		d := &dto{}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			var v float64
			switch {
			case m.Counter != nil:
				v = m.Counter.GetValue()
			case m.Gauge != nil:
				v = m.Gauge.GetValue()
			case m.Untyped != nil:
				v = m.Untyped.GetValue()
			}
			d.samples = append(d.samples, sample{labels, v})
		}
		out[name] = d
	}
	return out, nil
}

type sample struct {
	labels map[string]string
	v      float64
}

type dto struct{ samples []sample }

// sum adds the samples whose labels include match.
func (d *dto) sum(match map[string]string) (float64, bool) {
	if d == nil {
		return 0, false
	}
	var s float64
	found := false
next:
	for _, x := range d.samples {
		for k, v := range match {
			if x.labels[k] != v {
				continue next
			}
		}
		s += x.v
		found = true
	}
	return s, found
}

func fdCount(pid int) int {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(es)
}

// rssKiB reads VmRSS of pid.
func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				n, _ := strconv.Atoi(f[1])
				return n
			}
		}
	}
	return -1
}

func files(dir, suffix string) []string {
	var fs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, suffix) {
			fs = append(fs, p)
		}
		return nil
	})
	return fs
}

// plays checks that an MP4 holds H.264 (gst-discoverer-1.0) and decodes.
func plays(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := exec.LookPath("gst-discoverer-1.0"); err == nil {
		out, err := exec.CommandContext(ctx, "gst-discoverer-1.0", path).CombinedOutput()
		if err != nil {
			return fmt.Errorf("gst-discoverer-1.0: %v: %s", err, out)
		}
		if !strings.Contains(string(out), "H.264") {
			return fmt.Errorf("gst-discoverer-1.0 reports no H.264: %s", out)
		}
	}
	out, err := exec.CommandContext(ctx, "gst-launch-1.0", "-q", "filesrc", "location="+path, "!", "qtdemux", "!",
		"h264parse", "!", "avdec_h264", "!", "fakesink").CombinedOutput()
	if err != nil {
		return fmt.Errorf("decode: %v: %s", err, out)
	}
	return nil
}

// poolSurfaces is the producer's allocated pool surfaces (free + in use), all streams.
func (g *group) poolSurfaces() int {
	ms, err := g.metrics()
	if err != nil {
		return 0
	}
	f, _ := ms["framehub_producer_pool_surfaces"].sum(map[string]string{"state": "free"})
	u, _ := ms["framehub_producer_pool_surfaces"].sum(map[string]string{"state": "in_use"})
	return int(f + u)
}

// warmUp waits until the producer's replay buffer is full (its memory no
// longer grows with it), then a little more.
func (g *group) warmUp(t *testing.T) {
	t.Helper()
	want := 0.9 * replayWindow.Seconds() * nominalFPS
	var n float64
	require.Eventually(t, func() bool {
		ms, err := g.metrics()
		if err != nil {
			return false
		}
		n, _ = ms["framehub_producer_replay_frames"].sum(map[string]string{"stream": "h264"})
		return n >= want
	}, replayWindow+30*time.Second, 200*time.Millisecond, "replay buffer fills: %v frames, want %v", n, want)
	time.Sleep(2 * time.Second)
}
