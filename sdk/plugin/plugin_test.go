package plugin_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/producertest"
	"github.com/framehub/framehub/sdk"
	"github.com/framehub/framehub/sdk/plugin"
)

const waitTimeout = 20 * time.Second

// startProducer runs an in-process producer of a 128x96 synthetic raw
// stream at 100 fps, stopped at cleanup, and returns its address.
func startProducer(t *testing.T) string {
	t.Helper()
	return producertest.StartProducer(t, producertest.Options{Width: 128, Height: 96, FPS: 100, PoolMin: 2, PoolMax: 8,
		PoolName: "plugin-unit", WaitTimeout: waitTimeout}).Addr
}

// fake is a consumer whose behaviour the tests choose.
type fake struct {
	configureErr error
	runErr       error // returned by Run after the first frame, if set
	cfg          plugin.Config
	frames       atomic.Uint64
}

func (f *fake) Configure(cfg plugin.Config) error { f.cfg = cfg; return f.configureErr }

func (f *fake) Run(ctx context.Context, c *sdk.Client) error {
	for {
		fr, err := c.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		fr.Release()
		f.frames.Add(1)
		if f.runErr != nil {
			return f.runErr
		}
	}
}

func (f *fake) Metrics() map[string]float64 {
	return map[string]float64{"frames": float64(f.frames.Load())}
}

// remote serves impl over an in-process go-plugin RPC connection.
func remote(t *testing.T, impl plugin.Consumer) *plugin.Remote {
	t.Helper()
	log := testutil.Logger(t, slog.LevelError)
	client, _ := goplugin.TestPluginRPCConn(t, map[string]goplugin.Plugin{plugin.Name: &plugin.ConsumerPlugin{Impl: impl, Logger: log}}, nil)
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(plugin.Name)
	require.NoError(t, err)
	r, ok := raw.(*plugin.Remote)
	require.True(t, ok, "dispensed %T", raw)
	t.Cleanup(func() { // before client.Close: ends a consumer the test did not stop
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_ = r.Stop(ctx, time.Second)
	})
	return r
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestStartHealthStop(t *testing.T) {
	addr := startProducer(t)
	f := &fake{}
	r := remote(t, f)
	ctx := ctxT(t)

	h, err := r.Health(ctx)
	require.NoError(t, err)
	require.False(t, h.Running, "not started yet")

	reply, err := r.Start(ctx, plugin.StartArgs{Name: "fake", Socket: addr, Stream: "raw", MaxInFlight: 3,
		MaxHold: 700 * time.Millisecond, Params: map[string]string{"k": "v"}})
	require.NoError(t, err)
	require.NotZero(t, reply.Session)
	require.Equal(t, 3, reply.MaxInFlight)
	require.Equal(t, 700*time.Millisecond, reply.MaxHold)
	require.Equal(t, "fake", f.cfg.Name)
	require.Equal(t, "v", f.cfg.Params["k"])
	require.NotNil(t, f.cfg.Logger)

	_, err = r.Start(ctx, plugin.StartArgs{Name: "fake", Socket: addr})
	require.ErrorContains(t, err, "already started")

	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for {
		h, err = r.Health(ctx)
		require.NoError(t, err)
		if h.Stats.Received >= 10 || ctx.Err() != nil {
			break
		}
		<-poll.C
	}
	require.True(t, h.Running)
	require.GreaterOrEqual(t, h.Stats.Received, uint64(10))
	require.GreaterOrEqual(t, h.Metrics["frames"], 10.0)
	require.Positive(t, h.Uptime)

	waited := make(chan error, 1)
	go func() {
		res, err := r.Wait(ctx)
		if err == nil && res.Err != "" {
			err = errors.New(res.Err)
		}
		waited <- err
	}()
	require.NoError(t, r.Stop(ctx, 5*time.Second))
	select {
	case err := <-waited:
		require.NoError(t, err, "Run returned nil after its context was cancelled")
	case <-ctx.Done():
		t.Fatal("Wait did not return after Stop")
	}
	h, err = r.Health(ctx)
	require.NoError(t, err)
	require.False(t, h.Running)
	require.NoError(t, r.Stop(ctx, time.Second), "Stop is idempotent")
}

func TestStartFailures(t *testing.T) {
	addr := startProducer(t)
	ctx := ctxT(t)

	r := remote(t, &fake{configureErr: errors.New("threshold must be positive")})
	_, err := r.Start(ctx, plugin.StartArgs{Name: "bad", Socket: addr})
	require.ErrorContains(t, err, `plugin "bad": configure: threshold must be positive`)

	missing := filepath.Join(t.TempDir(), "none.sock")
	r = remote(t, &fake{})
	_, err = r.Start(ctx, plugin.StartArgs{Name: "lost", Socket: missing, Stream: "raw", DialTimeout: 2 * time.Second})
	require.ErrorContains(t, err, missing)

	r = remote(t, &fake{})
	_, err = r.Start(ctx, plugin.StartArgs{Name: "nostream", Socket: addr, Stream: "depth"})
	require.ErrorContains(t, err, `subscribe to stream "depth"`)
}

func TestRunErrorEndsWait(t *testing.T) {
	addr := startProducer(t)
	ctx := ctxT(t)
	r := remote(t, &fake{runErr: errors.New("model file corrupt")})
	_, err := r.Start(ctx, plugin.StartArgs{Name: "quitter", Socket: addr})
	require.NoError(t, err)
	res, err := r.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, "model file corrupt", res.Err)
	h, err := r.Health(ctx)
	require.NoError(t, err)
	require.False(t, h.Running)
	require.Equal(t, "model file corrupt", h.Err)
}
