package media

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/producertest"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/sdk"
)

// waitTimeout bounds every wait of these tests: generous, because the
// machine running them may be two noisy cores.
const waitTimeout = 20 * time.Second

// uniqueAddr is an abstract socket name no other test (or test process)
// uses.
func uniqueAddr(t *testing.T) string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return fmt.Sprintf("@framehub-media-%d-%s-%d", os.Getpid(), name, time.Now().UnixNano())
}

// harness is an in-process producer with a media pipeline.
type harness struct {
	t      *testing.T
	srv    *producer.Server
	p      *Pipeline
	cancel context.CancelFunc
	done   chan error
}

// newHarness creates the server and the pipeline and starts the server;
// run starts the pipeline. Everything stops at the end of the test.
func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger(t, slog.LevelError)
	}
	srv, err := producer.New(producer.Config{Addr: uniqueAddr(t), Logger: cfg.Logger})
	require.NoError(t, err)
	p, err := New(cfg, srv)
	if err != nil {
		srv.Close()
		require.NoError(t, err)
	}
	require.NoError(t, srv.Start())
	h := &harness{t: t, srv: srv, p: p}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.p.Run(ctx) }()
}

func (h *harness) stop() {
	if h.cancel != nil {
		h.cancel()
		select {
		case err := <-h.done:
			require.NoError(h.t, err)
		case <-time.After(waitTimeout):
			h.t.Error("Run did not return")
		}
		h.cancel = nil
	}
	require.NoError(h.t, h.srv.Close())
	require.NoError(h.t, h.p.Close())
}

func (h *harness) dial(opts sdk.Options) *sdk.Client {
	h.t.Helper()
	return producertest.Dial(h.t, h.srv.Addr(), opts, waitTimeout)
}

func next(t *testing.T, c *sdk.Client) *sdk.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	f, err := c.Next(ctx)
	require.NoError(t, err)
	return f
}

// sdkPlanes is the producer's plane layout as the SDK gives it to a
// consumer.
func sdkPlanes(ps []ipc.Plane) []sdk.Plane {
	out := make([]sdk.Plane, len(ps))
	for i, p := range ps {
		out[i] = sdk.Plane{Offset: int(p.Offset), Stride: int(p.Stride), Size: int(p.Size), FD: int(p.FD)}
	}
	return out
}
