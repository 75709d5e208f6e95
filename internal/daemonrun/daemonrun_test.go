package daemonrun

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCommand(t *testing.T) {
	c := New("framehub-test", "Usage: framehub-test [flags]\n\nFlags:\n")
	var out bytes.Buffer
	c.Flags.SetOutput(&out)
	c.Flags.Usage()
	require.True(t, strings.HasPrefix(out.String(), "Usage: framehub-test [flags]\n\nFlags:\n  -log-level value\n"), out.String())
	require.NoError(t, c.Flags.Parse([]string{"-log-level", "warn"}))
	require.Equal(t, slog.LevelWarn, c.level)
	require.False(t, c.Logger().Enabled(context.Background(), slog.LevelInfo))
}

func logger() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return newLogger(&b, slog.LevelDebug), &b
}

func TestRunEnds(t *testing.T) {
	log, logs := logger()
	code := runGroup(log, Daemon{Run: func(context.Context) error { return nil }, Stopping: "stopping x", Failed: "x failed"})
	require.Equal(t, 0, code, "a daemon that ends by itself exits 0")
	require.Contains(t, logs.String(), "stopping x")

	log, logs = logger()
	code = runGroup(log, Daemon{Run: func(context.Context) error { return errors.New("disk on fire") }, Stopping: "stopping x", Failed: "x failed"})
	require.Equal(t, 1, code)
	require.Contains(t, logs.String(), `msg="x failed" err="disk on fire"`)
}

func TestRunActorStopsDaemon(t *testing.T) {
	log, logs := logger()
	stop := make(chan struct{})
	code := runGroup(log, Daemon{
		Run: func(ctx context.Context) error {
			<-ctx.Done()
			return nil
		},
		Stopping: "stopping x",
		Failed:   "x failed",
		Actors: []Actor{
			{Execute: func() error { <-stop; return nil }, Interrupt: func(error) { close(stop) }},
			{Execute: func() error { return errors.New("port taken") }, Interrupt: func(error) {}},
		},
	})
	require.Equal(t, 1, code)
	require.Contains(t, logs.String(), "stopping x")
	require.Contains(t, logs.String(), `err="port taken"`)
}

func TestRunSignal(t *testing.T) {
	// Our own registration keeps SIGUSR1 from killing the test process
	// before runGroup's handler is installed.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGUSR1)
	defer signal.Stop(guard)

	log, logs := logger()
	done := make(chan int)
	go func() {
		done <- runGroup(log, Daemon{
			Run: func(ctx context.Context) error {
				<-ctx.Done()
				return ctx.Err()
			},
			Stopping: "stopping x",
			Failed:   "x failed",
		}, syscall.SIGUSR1)
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case code := <-done:
			require.Equal(t, 0, code, "a signal is a clean stop")
			require.Contains(t, logs.String(), "stopping x")
			require.NotContains(t, logs.String(), "x failed")
			return
		case <-tick.C:
			require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGUSR1))
		case <-deadline:
			t.Fatal("runGroup did not stop on the signal")
		}
	}
}
