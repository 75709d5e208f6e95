package gstelem_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
)

// waitTimeout bounds every wait for something that should happen soon: a
// producer's socket, a pipeline's frames, an exit. Generous: two shared
// cores, x264, and race-detector builds of the producer.
const waitTimeout = 30 * time.Second

// The directories TestMain prepared: the plugins (GST_PLUGIN_PATH), the
// binaries, and GStreamer's registry for this run.
var (
	pluginPath string
	binDir     string
	registry   string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "framehub-gstelem-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := prepare(dir); err != nil {
		fmt.Fprintln(os.Stderr, "gstelem:", err)
		return 1
	}
	return m.Run()
}

// prepare builds the plugins (unless $FRAMEHUB_GST_PLUGINS has them), the
// fhcheck tracer and the binaries the tests run.
func prepare(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	plugins := os.Getenv("FRAMEHUB_GST_PLUGINS")
	if plugins == "" {
		plugins = filepath.Join(dir, "plugins")
		cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "build-gst.sh"), plugins)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("scripts/build-gst.sh: %w\n%s", err, out)
		}
	}
	for _, lib := range []string{"libgstframehubsrc.so", "libgstframehubsink.so"} {
		if _, err := os.Stat(filepath.Join(plugins, lib)); err != nil {
			return fmt.Errorf("FRAMEHUB_GST_PLUGINS=%s lacks %s (make gst builds it): %w", plugins, lib, err)
		}
	}
	tracer := filepath.Join(dir, "tracer")
	if err := os.MkdirAll(tracer, 0o755); err != nil {
		return err
	}
	mods := []string{"gstreamer-1.0", "gstreamer-video-1.0", "gstreamer-allocators-1.0"}
	flags, err := exec.CommandContext(ctx, "pkg-config", append([]string{"--cflags", "--libs"}, mods...)...).Output()
	if err != nil {
		return fmt.Errorf("pkg-config %s: %w", strings.Join(mods, " "), err)
	}
	args := append([]string{"-std=gnu99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-fPIC", "-shared",
		"-o", filepath.Join(tracer, "libgstfhcheck.so"), filepath.Join(filepath.Dir(file), "testdata", "fhcheck.c")}, strings.Fields(string(flags))...)
	if out, err := exec.CommandContext(ctx, "gcc", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("gcc fhcheck.c: %w\n%s", err, out)
	}
	binDir = filepath.Join(dir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	if err := testutil.GoBuild(ctx, binDir, nil, "github.com/framehub/framehub/cmd/framehub-producer",
		"github.com/framehub/framehub/examples/consumer-go"); err != nil {
		return err
	}
	pluginPath = plugins + string(os.PathListSeparator) + tracer
	registry = filepath.Join(dir, "registry.bin")
	return nil
}

// gstEnv is the environment of a GStreamer process of the tests: the
// plugins, a registry of this run's own, and, with trace, the fhcheck
// tracer writing to that file.
func gstEnv(trace string) []string {
	env := append(os.Environ(), "GST_PLUGIN_PATH="+pluginPath, "GST_REGISTRY="+registry)
	if trace != "" {
		env = append(env, "GST_TRACERS=fhcheck(file="+trace+")")
	}
	return env
}

// startProducer runs framehub-producer with args on socket sock and waits
// until it listens. It is killed at cleanup if still running.
func startProducer(t *testing.T, sock string, args ...string) *testutil.Daemon {
	t.Helper()
	argv := append([]string{"-socket", sock, "-admin", "", "-log-level", "info"}, args...)
	cmd := exec.Command(filepath.Join(binDir, "framehub-producer"), argv...)
	return testutil.StartDaemon(t, "framehub-producer", cmd, waitTimeout, func(l string) bool {
		return strings.Contains(l, "listening")
	})
}

// memfdInodes returns the inodes of the memfds named name that process pid
// holds: a producer's surfaces.
func memfdInodes(t *testing.T, pid int, name string) map[uint64]bool {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	inos := map[uint64]bool{}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		link, err := os.Readlink(p)
		if err != nil || !strings.HasPrefix(link, "/memfd:"+name+" ") {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil {
			inos[st.Ino] = true
		}
	}
	return inos
}

// pipeline is a gst-launch-1.0 process.
type pipeline struct {
	t     *testing.T
	cmd   *exec.Cmd
	out   testutil.LockedBuffer // stdout and stderr
	trace string                // fhcheck's file, "" without the tracer
	done  chan struct{}
	err   error
}

// launch starts gst-launch-1.0 -e with the pipeline desc (split on
// spaces; no element property of the tests holds one), the fhcheck tracer
// writing to a new file unless trace is false, and env added. It is killed
// at cleanup if still running.
func launch(t *testing.T, desc string, trace bool, env ...string) *pipeline {
	t.Helper()
	p := &pipeline{t: t, done: make(chan struct{})}
	if trace {
		p.trace = filepath.Join(t.TempDir(), "trace.jsonl")
	}
	cmd := exec.Command("gst-launch-1.0", append([]string{"-e"}, strings.Fields(desc)...)...)
	cmd.Env = append(gstEnv(p.trace), env...)
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	require.NoError(t, testutil.StartOrphanless(cmd))
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("gst-launch-1.0 %s:\n%s", desc, testutil.Tail(p.out.String(), 6000))
		}
	})
	return p
}

// wait waits for the pipeline to exit and returns its exit error.
func (p *pipeline) wait() error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(waitTimeout):
		p.t.Fatalf("gst-launch-1.0 did not exit within %v:\n%s", waitTimeout, testutil.Tail(p.out.String(), 4000))
		return nil
	}
}

// stop interrupts the pipeline (SIGINT: gst-launch -e sends EOS, so the
// elements stop as at a normal end) and requires a clean exit.
func (p *pipeline) stop() {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGINT))
	require.NoError(p.t, p.wait(), "gst-launch-1.0 exit status after SIGINT")
}

// buffer is one line of fhcheck's for a buffer a sink received.
type buffer struct {
	Sink    string `json:"sink"`
	TS      int64  `json:"ts"` // ns, GStreamer's monotonic clock
	Seq     uint64 `json:"seq"`
	Discont bool   `json:"discont"`
	Caps    string `json:"caps"`
	Mems    []struct {
		FD     bool   `json:"fd"`
		DMABuf bool   `json:"dmabuf"`
		Ino    uint64 `json:"ino"`
		MapIno uint64 `json:"map_ino"`
	} `json:"mems"`
	Stamp string `json:"stamp"`
	Held  int64  `json:"held"`
	PTS   int64  `json:"pts"` // ns, -1 when unknown
	RT    int64  `json:"rt"`  // the pipeline's running time as the sink got the buffer, ns
}

// traced returns the buffers fhcheck recorded at sink so far, and the
// stats lines by element name.
func (p *pipeline) traced(sink string) ([]buffer, map[string]map[string]any) {
	p.t.Helper()
	data, err := os.ReadFile(p.trace)
	if os.IsNotExist(err) {
		return nil, nil
	}
	require.NoError(p.t, err)
	var bufs []buffer
	stats := map[string]map[string]any{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasSuffix(line, []byte("}")) {
			continue // being written
		}
		var s map[string]any
		require.NoError(p.t, json.Unmarshal(line, &s), "fhcheck line %s", line)
		if name, ok := s["stats"].(string); ok {
			stats[name] = s
			continue
		}
		var b buffer
		require.NoError(p.t, json.Unmarshal(line, &b))
		if b.Sink == sink {
			bufs = append(bufs, b)
		}
	}
	return bufs, stats
}

// waitBuffers waits until sink received at least n buffers and returns
// them.
func (p *pipeline) waitBuffers(sink string, n int) []buffer {
	p.t.Helper()
	var bufs []buffer
	testutil.WaitUntil(p.t, waitTimeout, func() bool {
		bufs, _ = p.traced(sink)
		select {
		case <-p.done:
			return true
		default:
		}
		return len(bufs) >= n
	}, "%d buffers at %s", n, sink)
	require.GreaterOrEqual(p.t, len(bufs), n, "buffers at %s before gst-launch-1.0 exited (%s):\n%s", sink, p.status(), testutil.Tail(p.out.String(), 3000))
	return bufs
}

// status says how the pipeline exited, or that it runs.
func (p *pipeline) status() string {
	select {
	case <-p.done:
		return fmt.Sprint(p.err)
	default:
		return "running"
	}
}

// stat returns a numeric field of an element's stats line.
func stat(t *testing.T, stats map[string]map[string]any, element, field string) float64 {
	t.Helper()
	s, ok := stats[element]
	require.True(t, ok, "no stats of %s recorded (it did not reach PAUSED→READY)", element)
	v, ok := s[field].(float64)
	require.True(t, ok, "stats of %s have no numeric %q: %v", element, field, s)
	return v
}

// rate is the frames per second of bufs, from their first to their last.
func rate(bufs []buffer) float64 {
	if len(bufs) < 2 {
		return 0
	}
	return float64(len(bufs)-1) / (float64(bufs[len(bufs)-1].TS-bufs[0].TS) / 1e9)
}

// waitSocket waits until a producer (a framehubsink) listens at path.
func waitSocket(t *testing.T, p *pipeline, path string) {
	t.Helper()
	testutil.WaitUntil(t, waitTimeout, func() bool {
		select {
		case <-p.done:
			t.Fatalf("gst-launch-1.0 exited (%v) before its socket appeared:\n%s", p.status(), testutil.Tail(p.out.String(), 3000))
		default:
		}
		fi, err := os.Stat(path)
		return err == nil && fi.Mode()&os.ModeSocket != 0
	}, "framehubsink's socket %s", path)
}
