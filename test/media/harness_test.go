package media_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/media"
)

// waitTimeout bounds every wait: generous, for a noisy two-core machine.
const waitTimeout = 30 * time.Second

// TestMain runs the helper consumer (helperMain) when the test binary is
// re-executed as one (see spawn), the tests otherwise.
func TestMain(m *testing.M) {
	testutil.RunHelper(map[string]func() int{"consumer": helperMain})
	os.Exit(m.Run())
}

// testProducer is an in-process producer running a media pipeline.
type testProducer struct {
	srv  *producer.Server
	p    *media.Pipeline
	addr string
}

func startProducer(t *testing.T, cfg media.Config) *testProducer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger(t, slog.LevelError)
	}
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	addr := fmt.Sprintf("@framehub-e2e-%d-%s-%d", os.Getpid(), name, time.Now().UnixNano())
	srv, err := producer.New(producer.Config{Addr: addr, Logger: cfg.Logger, MaxHold: time.Minute})
	require.NoError(t, err)
	p, err := media.New(cfg, srv)
	if err != nil {
		srv.Close()
		require.NoError(t, err)
	}
	require.NoError(t, srv.Start())
	t.Cleanup(func() { // after the pipeline stopped (cleanups run last registered first)
		require.NoError(t, srv.Close())
		require.NoError(t, p.Close())
	})
	testutil.RunBackground(t, "pipeline Run", waitTimeout, p.Run)
	return &testProducer{srv: srv, p: p, addr: addr}
}

// child is a running helper consumer.
type child struct {
	t       *testing.T
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	reports chan report
	stderr  *testutil.LockedBuffer
	exited  chan struct{}
	last    report // the last report read from reports
}

// spawn starts a helper in mode with the FHM_* settings in env and waits
// for it to be subscribed.
func spawn(t *testing.T, p *testProducer, mode, stream string, env ...string) *child {
	t.Helper()
	env = append([]string{"FHM_SOCKET=" + p.addr, "FHM_MODE=" + mode, "FHM_STREAM=" + stream}, env...)
	cmd := testutil.HelperCommand("consumer", env...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	c := &child{t: t, cmd: cmd, stdin: stdin, reports: make(chan report, 1024), stderr: &testutil.LockedBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = c.stderr
	require.NoError(t, cmd.Start())
	go func() {
		defer close(c.reports)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var r report
			if json.Unmarshal(sc.Bytes(), &r) == nil && r.Event != "" {
				c.reports <- r
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(c.stop)
	r := c.wait(func(r report) bool { return r.Event == "ready" || r.Event == "done" }, "ready")
	require.Equal(t, "ready", r.Event, "helper failed: %s", r.Err)
	return c
}

// wait returns the first report satisfying ok, failing the test after
// waitTimeout or when the helper ends first.
func (c *child) wait(ok func(report) bool, what string) report {
	c.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	var last report
	for {
		select {
		case r, open := <-c.reports:
			if !open {
				c.t.Fatalf("helper exited before %s; last report %+v; stderr:\n%s", what, last, testutil.Tail(c.stderr.String(), 4000))
			}
			last, c.last = r, r
			if ok(r) {
				return r
			}
		case <-deadline.C:
			c.t.Fatalf("no %s from the helper within %v; last report %+v; stderr:\n%s", what, waitTimeout, last, testutil.Tail(c.stderr.String(), 4000))
		}
	}
}

// latest returns the newest report the helper has sent so far, without
// waiting: the reports queued are read and dropped.
func (c *child) latest() report {
	for {
		select {
		case r, open := <-c.reports:
			if !open {
				return c.last
			}
			c.last = r
		default:
			return c.last
		}
	}
}

// done waits for the helper's final report.
func (c *child) done() report {
	c.t.Helper()
	r := c.wait(func(r report) bool { return r.Event == "done" }, "final report")
	require.Empty(c.t, r.Err, "helper error; stderr:\n%s", testutil.Tail(c.stderr.String(), 4000))
	return r
}

// stop closes the helper's stdin, which ends it, and reaps it.
func (c *child) stop() {
	_ = c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(waitTimeout):
		_ = c.cmd.Process.Kill()
		<-c.exited
		c.t.Errorf("helper did not exit; stderr:\n%s", testutil.Tail(c.stderr.String(), 4000))
	}
}

// gstLaunch runs gst-launch-1.0 -v with a deadline and returns its output.
func gstLaunch(t *testing.T, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("gst-launch-1.0")
	if err != nil {
		t.Skipf("gst-launch-1.0 not installed (Debian package gstreamer1.0-tools): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, append([]string{"-v"}, args...)...).CombinedOutput()
	require.NoError(t, err, "gst-launch-1.0 %s:\n%s", strings.Join(args, " "), testutil.Tail(string(out), 4000))
	return string(out)
}
