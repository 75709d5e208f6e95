// Package grouptest runs the whole framehub group as an operator does: the
// built binaries under framehub-supervisor with a demo-like configuration
// (GStreamer test camera + x264enc, recorder, RTSP streamer, snapshot
// service) with its admin APIs on Unix sockets and the streamer on ports it
// picks, and reads what the group reports about
// itself (the supervisor's /status, the producer's /consumers, every
// daemon's /metrics). test/group and test/chaos share it.
package grouptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	fhadmin "github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/testutil"
)

// WaitFor bounds how long the group may take to come up.
const WaitFor = 60 * time.Second

// Consumers returns the names of the group's consumer processes.
func Consumers() []string { return []string{"recorder", "streamer", "snapshot"} }

// Build builds every command of the module into a temporary directory and
// returns it, with the race detector when the test binary has it (see
// testutil.GoBuild).
func Build(t testing.TB) string {
	t.Helper()
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // the first cgo build of go-gst is slow
	defer cancel()
	require.NoError(t, testutil.GoBuild(ctx, bin, nil, "github.com/framehub/framehub/cmd/..."))
	return bin
}

// Options shape the group's configuration. The zero value is the demo's
// group at 640×360, 30 fps, a GOP of 30 and 2 s segments.
type Options struct {
	FPS     int           // default 30
	Replay  time.Duration // the producer's -h264-replay; 0: its default (30 s)
	Segment string        // the recorder's -segment; default "2s"
	// RecordDir is the recorder's -dir; default Dir/recordings.
	RecordDir string
	// RecorderArgs are appended to the recorder's arguments (e.g. -keep-bytes).
	RecorderArgs []string
	// MaxCrashes is every process's restart.max-crashes; 0: the supervisor's default.
	MaxCrashes int
}

// Group is a running supervised group. Start stops it when the test ends.
type Group struct {
	Bin, Dir, Sock, RecordDir string
	TokenFile                 string // the group's admin token: every daemon keeps it there, get sends it
	// The admin APIs, Unix sockets in Dir ("unix:/path"): no TCP port to
	// find free and lose to another process before the daemon binds it.
	// The streamer's admin API takes host:port only: it listens on a port
	// it picks, which the tests do not need.
	SupAdmin, ProdAdmin, RecAdmin, SnapAdmin string
	Sup                                      *exec.Cmd
	FPS                                      int
}

// Proc is one process as the supervisor's /status reports it.
type Proc struct {
	Name     string `json:"name"`
	PID      int    `json:"pid"`
	State    string `json:"state"`
	Restarts int    `json:"restarts"`
}

// Start builds the binaries, writes the supervisor's configuration and
// starts the supervisor, and waits until every process is ready. The
// supervisor dies with the test process (PDEATHSIG) and is killed by the
// test's cleanup; its children die with it. Its log, every child's stderr
// included, is checked for race detector reports then.
//
// The admin APIs listen on Unix sockets and the streamer on ports it picks
// itself (RTSPURL reads them from its log): nothing depends on a port
// found free before the process that binds it starts.
func Start(t testing.TB, o Options) *Group {
	t.Helper()
	bin := Build(t)
	dir := testutil.ShortDir(t) // Unix socket paths must fit in 108 bytes
	if o.FPS == 0 {
		o.FPS = 30
	}
	if o.Segment == "" {
		o.Segment = "2s"
	}
	g := &Group{Bin: bin, Dir: dir, Sock: filepath.Join(dir, "framehub.sock"), RecordDir: o.RecordDir, FPS: o.FPS}
	if g.RecordDir == "" {
		g.RecordDir = filepath.Join(dir, "recordings")
	}
	admin := func(name string) string { return "unix:" + filepath.Join(dir, name+".admin") }
	g.SupAdmin, g.ProdAdmin, g.RecAdmin, g.SnapAdmin = admin("sup"), admin("prod"), admin("rec"), admin("snap")
	restart := "{backoff-min: 200ms}"
	if o.MaxCrashes > 0 {
		// Repeated kills (chaos) are not a crash loop: a bounded back-off
		// keeps the supervisor's wait from growing to its 30 s default,
		// which a test of recovery would read as a process not coming back.
		restart = fmt.Sprintf("{backoff-min: 200ms, backoff-max: 2s, max-crashes: %d}", o.MaxCrashes)
	}
	prodArgs := []string{"-source", "test", "-encoder", "x264enc", "-width", "640", "-height", "360",
		"-fps", strconv.Itoa(o.FPS), "-gop", strconv.Itoa(o.FPS), "-socket", g.Sock, "-admin", g.ProdAdmin}
	if o.Replay > 0 {
		prodArgs = append(prodArgs, "-h264-replay", o.Replay.String())
	}
	recArgs := append([]string{"-socket", g.Sock, "-dir", g.RecordDir, "-segment", o.Segment, "-admin", g.RecAdmin}, o.RecorderArgs...)
	strArgs := []string{"-socket", g.Sock, "-rtsp-addr", "127.0.0.1:0", "-udp-rtp-addr", "127.0.0.1:0", "-path", "cam", "-admin", "127.0.0.1:0"}
	snapArgs := []string{"-socket", g.Sock, "-dir", filepath.Join(dir, "snapshots"), "-admin", g.SnapAdmin}
	cfg := fmt.Sprintf(`admin: %s
grace: 3s
processes:
  - name: producer
    binary: %s/framehub-producer
    args: %s
    ready-socket: %s
    admin: %s
    restart: %s
`, g.SupAdmin, bin, yamlList(prodArgs), g.Sock, g.ProdAdmin, restart)
	for _, c := range []struct {
		name, admin string
		args        []string
	}{{"recorder", g.RecAdmin, recArgs}, {"streamer", "", strArgs}, {"snapshot", g.SnapAdmin, snapArgs}} {
		cfg += fmt.Sprintf(`  - name: %s
    binary: %s/framehub-%s
    args: %s
    restart: %s
`, c.name, bin, c.name, yamlList(c.args), restart)
		if c.admin != "" {
			cfg += fmt.Sprintf("    admin: %s\n", c.admin)
		}
	}
	cfgPath := filepath.Join(dir, "framehub.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	g.Sup = exec.Command(filepath.Join(bin, "framehub-supervisor"), "-config", cfgPath)
	g.Sup.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Every daemon of the group (children inherit it) keeps its admin token
	// there; get sends it.
	g.TokenFile = filepath.Join(dir, "admin.token")
	g.Sup.Env = append(os.Environ(), fhadmin.TokenFileEnv+"="+g.TokenFile)
	logf, err := os.Create(g.LogPath())
	require.NoError(t, err)
	g.Sup.Stdout, g.Sup.Stderr = logf, logf
	require.NoError(t, g.Sup.Start())
	t.Cleanup(func() {
		_ = g.Sup.Process.Signal(syscall.SIGCONT) // a test may have frozen it
		_ = g.Sup.Process.Kill()
		_ = g.Sup.Wait()
		_ = logf.Close()
		b, _ := os.ReadFile(g.LogPath())
		testutil.CheckNoRace(t, "the group (supervisor log)", string(b))
		if t.Failed() {
			lines := strings.Split(string(b), "\n")
			t.Logf("supervisor log (last 80 lines):\n%s", strings.Join(lines[max(0, len(lines)-80):], "\n"))
		}
	})
	require.Eventually(t, g.AllReady, WaitFor, 100*time.Millisecond, "all processes ready: %+v", g.Status())
	return g
}

// yamlList quotes args as a YAML flow sequence.
func yamlList(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = strconv.Quote(a)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// LogPath is the supervisor's log: its own lines and every child's, each
// prefixed with the child's name ("recorder | ...").
func (g *Group) LogPath() string { return filepath.Join(g.Dir, "supervisor.log") }

// get GETs path from the admin API at addr ("unix:/path"), with a 3 s
// deadline and the group's admin token.
func (g *Group) get(addr, path string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	tok, _ := fhadmin.ReadToken(g.TokenFile) // "" before the first daemon wrote it
	return testutil.HTTPDoToken(ctx, addr, http.MethodGet, path, nil, tok)
}

func (g *Group) getJSON(addr, path string, v any) bool {
	code, body, err := g.get(addr, path)
	return err == nil && code == http.StatusOK && json.Unmarshal(body, v) == nil
}

// Status is the supervisor's view of its processes (nil when unreachable).
func (g *Group) Status() []Proc {
	var st struct {
		Processes []Proc `json:"processes"`
	}
	if !g.getJSON(g.SupAdmin, "/status", &st) {
		return nil
	}
	return st.Processes
}

// Proc returns the process called name (zero when unknown).
func (g *Group) Proc(name string) Proc {
	for _, p := range g.Status() {
		if p.Name == name {
			return p
		}
	}
	return Proc{}
}

// AllReady reports whether the 4 processes are ready.
func (g *Group) AllReady() bool {
	ps := g.Status()
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

// Session is one consumer session as the producer's /consumers reports it.
type Session struct {
	Name     string `json:"name"`
	PID      int    `json:"pid"`
	Budget   int    `json:"budget"`
	InFlight int    `json:"in_flight"`
}

// Sessions returns the producer's sessions (false when unreachable).
func (g *Group) Sessions() ([]Session, bool) {
	var ss []Session
	ok := g.getJSON(g.ProdAdmin, "/consumers", &ss)
	return ss, ok
}

// ConsumersConnected reports whether the producer has at least the group's
// 3 consumers.
func (g *Group) ConsumersConnected() bool {
	ss, ok := g.Sessions()
	return ok && len(ss) >= len(Consumers())
}

// Metrics are the samples of one /metrics scrape, by family name.
type Metrics map[string][]Sample

// Sample is one sample of a metric family.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Sum adds the samples of family name whose labels include match; false
// when there is none.
func (m Metrics) Sum(name string, match map[string]string) (float64, bool) {
	var s float64
	found := false
next:
	for _, x := range m[name] {
		for k, v := range match {
			if x.Labels[k] != v {
				continue next
			}
		}
		s += x.Value
		found = true
	}
	return s, found
}

// Scrape reads the Prometheus text at /metrics of addr, one of the group's
// admin addresses.
func (g *Group) Scrape(addr string) (Metrics, error) {
	code, body, err := g.get(addr, "/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("%s/metrics: status %d: %s", addr, code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse %s/metrics: %w", addr, err)
	}
	out := Metrics{}
	for name, f := range fams {
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
			case m.Histogram != nil:
				v = float64(m.Histogram.GetSampleCount())
			}
			out[name] = append(out[name], Sample{labels, v})
		}
	}
	return out, nil
}

// streamerServing matches the streamer's log line saying where it serves,
// as the supervisor's log holds it.
var streamerServing = regexp.MustCompile(`streamer \| .*msg="streamer serving" url=(rtsp://\S+)`)

// RTSPURL returns the URL the streamer serves, from the last line of the
// supervisor's log in which it said so: it picks its port each time it
// starts. "" when it has not said so yet.
func (g *Group) RTSPURL() string {
	b, err := os.ReadFile(g.LogPath())
	if err != nil {
		return ""
	}
	m := streamerServing.FindAllSubmatch(b, -1)
	if len(m) == 0 {
		return ""
	}
	return string(m[len(m)-1][1])
}

// PlayRTSP decodes n frames of the streamer's stream with a real RTSP client
// (gst-launch-1.0 rtspsrc over TCP) within ctx.
func (g *Group) PlayRTSP(ctx context.Context, n int) error {
	u := g.RTSPURL()
	if u == "" {
		return fmt.Errorf("RTSP client: the streamer has not logged its URL in %s", g.LogPath())
	}
	out, err := exec.CommandContext(ctx, "gst-launch-1.0", "-q", "rtspsrc", "location="+u, "protocols=tcp", "latency=0",
		"!", "rtph264depay", "!", "h264parse", "!", "avdec_h264", "!", "fakesink", fmt.Sprintf("num-buffers=%d", n)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("RTSP client: %w: %s", err, out)
	}
	return nil
}

// Files lists the files under dir whose name ends in suffix.
func Files(dir, suffix string) []string {
	var fs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, suffix) {
			fs = append(fs, p)
		}
		return nil
	})
	return fs
}

// Plays checks that an MP4 holds H.264 (gst-discoverer-1.0) and decodes
// from end to end. The tools run at a low priority (nice 10) so that
// checking recordings while the group runs does not slow its camera.
func Plays(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := exec.LookPath("gst-discoverer-1.0"); err == nil {
		out, err := exec.CommandContext(ctx, "nice", "-n", "10", "gst-discoverer-1.0", path).CombinedOutput()
		if err != nil {
			return fmt.Errorf("gst-discoverer-1.0: %w: %s", err, out)
		}
		if !strings.Contains(string(out), "H.264") {
			return fmt.Errorf("gst-discoverer-1.0 reports no H.264: %s", out)
		}
	}
	out, err := exec.CommandContext(ctx, "nice", "-n", "10", "gst-launch-1.0", "-q", "filesrc", "location="+path, "!", "qtdemux", "!",
		"h264parse", "!", "avdec_h264", "!", "fakesink").CombinedOutput()
	if err != nil {
		return fmt.Errorf("decode: %w: %s", err, out)
	}
	return nil
}
