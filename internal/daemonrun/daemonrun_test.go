package daemonrun

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFlagSetUsage(t *testing.T) {
	fs := newFlagSet("framehub-test", "Usage: framehub-test [flags]\n\nFlags:\n")
	fs.String("socket", "/run/x.sock", "the socket")
	var out bytes.Buffer
	fs.SetOutput(&out)
	fs.Usage()
	require.True(t, strings.HasPrefix(out.String(), "Usage: framehub-test [flags]\n\nFlags:\n  -socket string\n"), out.String())
}

func logger() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return newLogger(&b, slog.LevelDebug), &b
}

// program is a Program whose Run is run.
type program struct {
	run func(ctx context.Context, log *slog.Logger) error
}

func (p program) Load(*flag.FlagSet, []string) error              { return nil }
func (p program) Run(ctx context.Context, log *slog.Logger) error { return p.run(ctx, log) }

func TestRunMainEnds(t *testing.T) {
	log, logs := logger()
	code := runMain(log, "x", program{func(context.Context, *slog.Logger) error { return nil }})
	require.Equal(t, 0, code, "a daemon that ends by itself exits 0")
	require.Contains(t, logs.String(), "stopping x")

	log, logs = logger()
	code = runMain(log, "x", program{func(context.Context, *slog.Logger) error { return errors.New("disk on fire") }})
	require.Equal(t, 1, code)
	require.Contains(t, logs.String(), `msg="x failed" err="disk on fire"`)

	log, _ = logger()
	code = runMain(log, "x", program{func(context.Context, *slog.Logger) error {
		return BadConfig(errors.New("plugin p: no such file"))
	}})
	require.Equal(t, 2, code, "a setting found wrong at run time is a bad config")
}

func TestRunActors(t *testing.T) {
	log, logs := logger()
	var stopped atomic.Int32
	waiter := func(ctx context.Context) error {
		<-ctx.Done()
		stopped.Add(1)
		return nil
	}
	err := RunActors(context.Background(), log,
		Actor{Name: "source", Run: waiter},
		Actor{Name: "admin", Run: waiter},
		Actor{Name: "listener", Run: func(context.Context) error { return errors.New("port taken") }},
	)
	require.EqualError(t, err, "port taken", "the first actor to return stops the others")
	require.EqualValues(t, 2, stopped.Load(), "every other actor was stopped and waited for")
	require.Contains(t, logs.String(), "actor=source")

	// The context ends them all, without an error; its values reach them.
	type key struct{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	done := make(chan error, 1)
	go func() {
		done <- RunActors(ctx, log, Actor{Name: "a", Run: func(ctx context.Context) error {
			if ctx.Value(key{}) != "v" {
				return errors.New("the actor's context lost the parent's values")
			}
			<-ctx.Done()
			return nil
		}}, Actor{Name: "b", Run: waiter})
	}()
	cancel()
	require.NoError(t, <-done)

	// An actor that ends by itself ends the group, cleanly.
	require.NoError(t, RunActors(context.Background(), log, Actor{Name: "frames", Run: func(context.Context) error { return nil }},
		Actor{Name: "admin", Run: waiter}))
}

func TestRunMainSignal(t *testing.T) {
	// Our own registration keeps SIGUSR1 from killing the test process
	// before runMain's handler is installed.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGUSR1)
	defer signal.Stop(guard)

	log, logs := logger()
	done := make(chan int)
	go func() {
		done <- runMain(log, "x", program{func(ctx context.Context, _ *slog.Logger) error {
			<-ctx.Done()
			return ctx.Err()
		}}, syscall.SIGUSR1)
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
			t.Fatal("runMain did not stop on the signal")
		}
	}
}
