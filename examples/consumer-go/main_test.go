package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/producer/synth"
)

// TestMain runs main when FH_CONSUMER_GO=1: the test binary is then
// consumer-go with the command line it got.
func TestMain(m *testing.M) {
	if os.Getenv("FH_CONSUMER_GO") == "1" {
		os.Args = append([]string{"consumer-go"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serve runs an in-process producer of one raw stream at 60 fps: the
// synthetic source (stamped) or blank frames (not stamped).
func serve(t *testing.T, stamped bool) string {
	t.Helper()
	addr := filepath.Join(t.TempDir(), "p.sock")
	layout, err := surface.NV12(320, 240, 64)
	require.NoError(t, err)
	pool, err := surface.NewPool(surface.PoolConfig{Allocator: surface.NewMemfd("consumer-go-test"), Size: layout.Size, Min: 2, Max: 16})
	require.NoError(t, err)
	srv, err := producer.New(producer.Config{Addr: addr, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	st, err := srv.AddStream(producer.StreamConfig{Name: "raw", Caps: producer.RawCaps(layout, 60, 1), Pool: pool})
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if stamped {
			r, err := synth.NewRenderer(producer.SynthLayout(layout), synth.PatternMoving)
			if err == nil {
				_ = (&producer.Synthetic{Stream: st, Renderer: r, FPS: 60}).Run(ctx)
			}
			return
		}
		tick := time.NewTicker(time.Second / 60)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if s, err := st.Acquire(); err == nil {
				st.Publish(s, producer.FrameInfo{}) // zeroed memory: no stamp
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = srv.Close()
		_ = pool.Close()
	})
	return addr
}

// run runs consumer-go on addr for 60 frames and returns its JSON summary
// and its log.
func run(t *testing.T, addr string) (Summary, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-socket", addr, "-frames", "60", "-json", "-duration", "20s")
	cmd.Env = append(os.Environ(), "FH_CONSUMER_GO=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "consumer-go: %s", stderr.String())
	var sum Summary
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &sum), stdout.String())
	return sum, stderr.String()
}

// The synthetic source's frames are verified; an unstamped stream (a
// camera, GStreamer's test source) is said once to carry no stamp, not 30
// errors a second.
func TestStampedOrNot(t *testing.T) {
	sum, log := run(t, serve(t, true))
	require.True(t, sum.Stamped)
	require.Equal(t, uint64(60), sum.Frames)
	require.Zero(t, sum.Mismatches)
	require.NotContains(t, log, "no stamp")

	sum, log = run(t, serve(t, false))
	require.False(t, sum.Stamped)
	require.Equal(t, uint64(60), sum.Frames)
	require.Zero(t, sum.Mismatches)
	require.Equal(t, 1, strings.Count(log, "the stream carries no stamp"), log)
	require.NotContains(t, log, "stamp mismatch")
}
