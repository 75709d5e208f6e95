package plugin_test

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/producer/synth"
	"github.com/framehub/framehub/sdk/plugin"
	"github.com/framehub/framehub/sdk/plugin/host"
)

// metric returns a plugin's metric from its last health report.
func metric(s host.Status, name string) float64 { return s.Health.Metrics[name] }

// The motion plugin, launched by the host, scores the moving pattern above
// zero (and logs motion events) and the static one exactly zero. The stamp
// rows (0..7 of the Y plane) change with every frame even in the static
// pattern; the plugin skips them (skip_rows=8, its default).
func TestMotionPluginScoresMovingAndStaticPatterns(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pattern synth.Pattern
	}{{"moving", synth.PatternMoving}, {"static", synth.PatternStatic}} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProducer(t, producerOpts{Pattern: tc.pattern, FPS: 60})
			th := startHost(t, p, host.Config{Plugins: []host.PluginConfig{{
				Name: "motion", Path: built.motion, MaxInFlight: 2, MaxHold: time.Second,
				Params: map[string]string{"threshold": "1", "step": "4"},
			}}})
			st := th.waitStatus(t, "motion", "60 scored frames", func(s host.Status) bool { return metric(s, "scored") >= 60 })
			t.Logf("%s: pid %d, %v frames scored, score %.3f, peak %.3f, events %v; SDK: received %d, dropped %d",
				tc.name, st.PID, metric(st, "scored"), metric(st, "score"), metric(st, "score_peak"), metric(st, "events"),
				st.Health.Stats.Received, st.Health.Stats.Dropped)
			events := th.logs.lines("plugin=motion", `msg="motion started"`)
			if tc.pattern == synth.PatternMoving {
				require.Greater(t, metric(st, "score_peak"), 0.0)
				require.Greater(t, metric(st, "score"), 0.0, "the pattern moves in every frame")
				require.GreaterOrEqual(t, metric(st, "events"), 1.0)
				require.NotEmpty(t, events, "the host re-logs the plugin's motion events under its name")
			} else {
				require.Zero(t, metric(st, "score_peak"), "a static picture has no motion below the stamp rows")
				require.Zero(t, metric(st, "events"))
				require.Empty(t, events)
			}
		})
	}
}

// Frames reach a plugin over the producer's socket, never over go-plugin's
// RPC: the RPC types have no field that could carry pixels, the producer
// has a session of the plugin's own pid that delivered at least the frames
// the plugin counted, and the plugin process has the producer's memfd
// surfaces mapped, read-only. Stopping the host ends the session.
func TestFramesArriveOnTheProducerSocketNotTheRPC(t *testing.T) {
	for _, typ := range []any{plugin.StartArgs{}, plugin.StartReply{}, plugin.HealthReply{}, plugin.RunResult{}, plugin.StopArgs{}, plugin.Empty{}} {
		requireNoBulkData(t, reflect.TypeOf(typ), reflect.TypeOf(typ).Name())
	}

	p := startProducer(t, producerOpts{FPS: 60})
	t.Setenv("TESTPLUGIN_MARK", "7") // the host's environment; the plugin's configured Env wins
	th := startHost(t, p, host.Config{Plugins: []host.PluginConfig{{
		Name: "counter", Path: built.test, MaxInFlight: 2, Env: []string{"TESTPLUGIN_MARK=42"},
	}}})
	st := th.waitStatus(t, "counter", "50 frames in the plugin", func(s host.Status) bool { return metric(s, "frames") >= 50 })
	require.Zero(t, metric(st, "mismatches"), "the plugin verified every stamp")
	require.Equal(t, 42.0, metric(st, "env_mark"), "PluginConfig.Env overrides the host's environment")
	pid := st.PID
	require.NotZero(t, pid)
	require.NotEqual(t, os.Getpid(), pid)

	sess, ok := p.sessionOf(pid)
	require.True(t, ok, "the producer has a session of the plugin's pid %d: %+v", pid, p.Srv.Sessions())
	require.Equal(t, "counter", sess.Name)
	require.Equal(t, st.Session, sess.ID)
	require.GreaterOrEqual(t, sess.Delivered, uint64(metric(st, "frames")), "the producer delivered what the plugin counted")
	t.Logf("plugin pid %d: producer session %d delivered %d, released %d; the plugin counted %v frames",
		pid, sess.ID, sess.Delivered, sess.Released, metric(st, "frames"))

	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	require.NoError(t, err)
	var mapped []string
	for _, l := range strings.Split(string(maps), "\n") {
		if strings.Contains(l, "memfd:"+poolName) {
			mapped = append(mapped, l)
			perms := strings.Fields(l)[1]
			require.Equal(t, "r--s", perms, "a surface mapping in the plugin must be read-only and shared: %s", l)
		}
	}
	require.NotEmpty(t, mapped, "the plugin process maps the producer's surfaces itself")
	t.Logf("plugin maps %d surfaces of the producer, e.g. %s", len(mapped), mapped[0])

	th.stop()
	st = th.status(t, "counter")
	require.Equal(t, host.StateStopped, st.State)
	require.Equal(t, "exit status 0", st.LastExit, "a stopped plugin exits cleanly")
	require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "the plugin process is gone")
	testutil.WaitUntil(t, waitTimeout, func() bool { _, ok := p.sessionOf(pid); return !ok }, "the plugin's session to end")
	require.NotEmpty(t, th.logs.lines("plugin=counter", `msg="stopping plugin"`))
}

// requireNoBulkData fails if type typ (of an RPC message) has a field that
// could carry frame data: a slice, an array, a pointer, a channel, a func
// or an interface. Maps of strings to strings or numbers are allowed.
func requireNoBulkData(t *testing.T, typ reflect.Type, path string) {
	t.Helper()
	switch typ.Kind() {
	case reflect.Struct:
		for i := range typ.NumField() {
			f := typ.Field(i)
			requireNoBulkData(t, f.Type, path+"."+f.Name)
		}
	case reflect.Map:
		require.Equal(t, reflect.String, typ.Key().Kind(), "%s: map key", path)
		switch typ.Elem().Kind() {
		case reflect.String, reflect.Float64:
		default:
			t.Fatalf("%s: map of %v could carry frame data", path, typ.Elem())
		}
	case reflect.Bool, reflect.Int, reflect.Int64, reflect.Uint64, reflect.Float64, reflect.String:
	default:
		t.Fatalf("RPC field %s of kind %v could carry frame data", path, typ.Kind())
	}
}

// A plugin that panics is restarted with growing backoff; its crash is
// re-logged under its name, and another consumer keeps receiving.
func TestPanickingPluginIsRestarted(t *testing.T) {
	p := startProducer(t, producerOpts{FPS: 60})
	good := startGoodConsumer(t, p)
	th := startHost(t, p, host.Config{Plugins: []host.PluginConfig{{
		Name: "panicker", Path: built.test, Params: map[string]string{"mode": "panic", "after": "5"},
	}}})
	pids := map[int]bool{}
	st := th.waitStatus(t, "panicker", "4 launches", func(s host.Status) bool {
		if s.PID != 0 {
			pids[s.PID] = true
		}
		return s.Starts >= 4
	})
	t.Logf("launches %d, distinct pids seen %d, last exit %q, last error %q", st.Starts, len(pids), st.LastExit, st.LastError)
	require.GreaterOrEqual(t, len(pids), 2, "each restart is a new process")
	testutil.WaitUntil(t, waitTimeout, func() bool {
		return len(th.logs.lines("plugin=panicker", "level=ERROR", "panicking on purpose")) > 0 &&
			len(th.logs.lines("plugin=panicker", "exit status 2")) > 0
	}, "the crash to be logged")
	// Exponential backoff, read from the host's own restart log lines.
	testutil.WaitUntil(t, waitTimeout, func() bool { return len(th.logs.lines("plugin=panicker", "restarting")) >= 3 }, "three restarts logged")
	restarts := th.logs.lines("plugin=panicker", "restarting")
	for i, want := range []string{"restart_in=100ms", "restart_in=200ms", "restart_in=400ms"} {
		require.Contains(t, restarts[i], want, "restart %d", i+1)
	}
	frames := good.Frames.Load()
	testutil.WaitUntil(t, waitTimeout, func() bool { return good.Frames.Load() >= frames+30 }, "the good consumer to receive 30 more frames")
	good.Check(t)
}

// A plugin that stops releasing frames is evicted at its deadline (300 ms),
// again and again as the SDK reconnects it, while another consumer keeps
// the producer's full frame rate.
func TestLeakingPluginIsEvictedOthersKeepTheirRate(t *testing.T) {
	p := startProducer(t, producerOpts{FPS: 100})
	good := startGoodConsumer(t, p)
	th := startHost(t, p, host.Config{Plugins: []host.PluginConfig{{
		Name: "leaker", Path: built.test, MaxInFlight: 4, MaxHold: 300 * time.Millisecond,
		Params: map[string]string{"mode": "leak"},
	}}})
	th.waitStatus(t, "leaker", "the leaker to run", func(s host.Status) bool { return s.State == host.StateRunning })
	ev0 := p.Stream.Stats().Evictions
	w := good.measure(t, p)
	testutil.WaitUntil(t, waitTimeout, func() bool {
		return p.Stream.Stats().Evictions >= ev0+3 && time.Since(w.t0) >= 2*time.Second
	}, "3 evictions and 2 s")
	m := w.end()
	evictions := p.Stream.Stats().Evictions - ev0
	st := th.waitStatus(t, "leaker", "the plugin to report its evictions", func(s host.Status) bool { return s.Health.Stats.Evictions >= 1 })
	t.Logf("leaker evicted %d times (plugin SDK counts %d, holds %d frames); good consumer %.1f fps of %.1f published (%.1f%%), %d skipped",
		evictions, st.Health.Stats.Evictions, st.Health.Stats.Unreleased, m.got, m.published, 100*m.ratio, m.dropped)
	good.Check(t)
	requireOthersKeepTheirRate(t, p, m)
}

// A plugin that hangs (here: SIGSTOP, so not even its RPC answers) fails
// its health check, is killed and restarted as a new process.
func TestHungPluginIsKilledAndRestarted(t *testing.T) {
	p := startProducer(t, producerOpts{FPS: 60})
	good := startGoodConsumer(t, p)
	th := startHost(t, p, host.Config{
		HealthInterval: 100 * time.Millisecond, HealthTimeout: 500 * time.Millisecond,
		Plugins: []host.PluginConfig{{Name: "sleeper", Path: built.test, MaxHold: 300 * time.Millisecond}},
	})
	st := th.waitStatus(t, "sleeper", "frames in the plugin", func(s host.Status) bool { return metric(s, "frames") >= 10 })
	old := st.PID
	require.NoError(t, syscall.Kill(old, syscall.SIGSTOP))
	t0 := time.Now()
	st = th.waitStatus(t, "sleeper", "a new plugin process receiving frames", func(s host.Status) bool {
		return s.PID != old && s.State == host.StateRunning && metric(s, "frames") >= 10
	})
	t.Logf("stopped pid %d; new pid %d receiving after %v; last exit %q", old, st.PID, time.Since(t0).Round(time.Millisecond), st.LastExit)
	require.Contains(t, st.LastError, "health check failed")
	require.Equal(t, "signal: killed", st.LastExit)
	_, ok := p.sessionOf(old)
	require.False(t, ok, "the hung plugin's session is gone")
	good.Check(t)
}

// A plugin cannot write to shared surfaces: every way of writing fails
// (EACCES / EPERM / a fault), and the frame's stamp is intact.
func TestPluginCannotWriteSurfaces(t *testing.T) {
	p := startProducer(t, producerOpts{FPS: 60})
	good := startGoodConsumer(t, p)
	th := startHost(t, p, host.Config{Plugins: []host.PluginConfig{{Name: "prober", Path: built.test, Params: map[string]string{"mode": "probe"}}}})
	st := th.waitStatus(t, "prober", "the probe's results", func(s host.Status) bool { return metric(s, "probe_done") == 1 })
	res := map[string]float64{}
	for k, v := range st.Health.Metrics {
		if strings.HasPrefix(k, "probe_") {
			res[k] = v
		}
	}
	t.Logf("probe results: %v", res)
	require.Equal(t, float64(syscall.O_RDONLY), res["probe_acc_mode"], "surfaces arrive as O_RDONLY fds")
	// Each way fails, with the errno docs/SDK.md names.
	for k, want := range map[string]syscall.Errno{
		"probe_mmap_rw_errno": syscall.EACCES, "probe_mprotect_errno": syscall.EACCES,
		"probe_ftruncate_errno": syscall.EINVAL, "probe_pwrite_errno": syscall.EBADF,
		"probe_reopen_mmap_rw_errno": syscall.EPERM, "probe_reopen_pwrite_errno": syscall.EPERM,
	} {
		require.Equal(t, float64(want), res[k], "%s: the write attempt must fail with %v (%d), got %v", k, want, int(want), res[k])
	}
	require.Equal(t, 1.0, res["probe_direct_write_faulted"], "writing through the SDK's mapping faults")
	require.Equal(t, 1.0, res["probe_stamp_intact"])
	th.waitStatus(t, "prober", "more frames", func(s host.Status) bool { return metric(s, "frames") >= 20 })
	require.Zero(t, metric(th.status(t, "prober"), "mismatches"))
	good.Check(t)
}

// A plugin that floods its socket with packets throttles only itself: the
// producer reads at most 64 packets of a consumer per frame it publishes
// (or per 50 ms without frames), so the flooder's sends block on its own
// full socket; the others keep the producer's rate. Whether the flooder is
// also evicted depends on how long its releases wait behind its own
// packets: that is logged, not required.
func TestFloodingPluginCostsOnlyItself(t *testing.T) {
	p := startProducer(t, producerOpts{FPS: 100})
	good := startGoodConsumer(t, p)
	th := startHost(t, p, host.Config{Plugins: []host.PluginConfig{{
		Name: "flooder", Path: built.test, MaxHold: 300 * time.Millisecond, Params: map[string]string{"mode": "flood"},
	}}})
	th.waitStatus(t, "flooder", "flooding", func(s host.Status) bool { return metric(s, "flood_sent") >= 1000 })
	w := good.measure(t, p)
	start := th.status(t, "flooder")
	testutil.WaitUntil(t, waitTimeout, func() bool { return time.Since(w.t0) >= 2*time.Second }, "2 s of flooding")
	end := th.status(t, "flooder")
	m := w.end()
	// The flooder's count comes with its health reports, each at most one
	// health interval (100 ms) plus an RPC older than the status read: the
	// packets counted were sent within the window plus 0.5 s.
	span := time.Since(w.t0) + 500*time.Millisecond
	sent := metric(end, "flood_sent") - metric(start, "flood_sent")
	t.Logf("flooder sent %.0f packets in the window (%.0f/s); its frames %v, evictions %d, starts %d; good consumer %.1f fps of %.1f published (%.1f%%), %d skipped",
		sent, sent/time.Since(w.t0).Seconds(), metric(end, "frames"), end.Health.Stats.Evictions, end.Starts,
		m.got, m.published, 100*m.ratio, m.dropped)
	// The flood cost the flooder its session: the producer closed it with
	// Bye rate_limit after its allowance of control messages (100 at once),
	// and the plugin's SDK waits before it reconnects.
	st := p.Stream.Stats()
	t.Logf("producer: %d sessions closed for rate_limit over %v", st.RateLimited, span.Round(time.Millisecond))
	require.Positive(t, st.RateLimited, "the flooder's session is closed")
	require.Equal(t, 1, end.Starts, "the flooder's process is not restarted: its SDK reconnects after a pause")
	good.Check(t)
	requireOthersKeepTheirRate(t, p, m)
}

// A binary that is not a plugin fails its launch; the host logs why and
// keeps retrying with backoff instead of failing.
func TestNotAPluginFailsToLaunch(t *testing.T) {
	p := startProducer(t, producerOpts{FPS: 30})
	th := startHost(t, p, host.Config{Plugins: []host.PluginConfig{{Name: "bogus", Path: "/bin/true"}}})
	st := th.waitStatus(t, "bogus", "two failed launches", func(s host.Status) bool { return s.Starts >= 2 && s.LastError != "" })
	t.Logf("last error: %s", st.LastError)
	require.Contains(t, st.LastError, "launch /bin/true")
	require.NotEqual(t, host.StateRunning, st.State)

	_, err := host.New(host.Config{Socket: p.Addr, Plugins: []host.PluginConfig{{Name: "x", Path: "/nonexistent/plugin"}}})
	require.ErrorContains(t, err, "/nonexistent/plugin")
	_, err = host.New(host.Config{Socket: p.Addr, Plugins: []host.PluginConfig{{Name: "x", Path: "/bin/true"}, {Name: "x", Path: "/bin/true"}}})
	require.ErrorContains(t, err, `"x" used twice`)
}
