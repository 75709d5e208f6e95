package sdk_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/sdk"
)

// Persist dials until the producer is there, resubscribes after a
// subscription ends, backs off between tries, warns once per outage and
// returns when its context ends.
func TestPersist(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "p.sock")
	var logs testutil.LockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var dials, subs atomic.Int32
	var dialAt []time.Time
	failedTwice, ready := make(chan struct{}), make(chan struct{})
	dial := func(ctx context.Context) (*sdk.Client, error) {
		dialAt = append(dialAt, time.Now())
		if dials.Add(1) == 3 {
			close(failedTwice) // the first two found no producer
			<-ready
		}
		return sdk.Dial(ctx, addr, sdk.Options{Stream: "raw", Reconnect: true, Logger: quietLogger(t, nil)})
	}
	errEnough := errors.New("enough of this subscription")
	frames := 0
	consume := func(ctx context.Context, c *sdk.Client) error {
		n := subs.Add(1)
		return c.Consume(ctx, func(f *sdk.Frame) error {
			f.Release()
			frames++
			switch {
			case n == 1 && frames == 3:
				return errEnough
			case n == 2:
				cancel()
			}
			return nil
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sdk.Persist(ctx, log, 150*time.Millisecond, dial, consume, "socket", addr, "stream", "raw")
	}()
	<-failedTwice
	startProducer(t, addr, 100, producer.Config{})
	close(ready)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Persist did not return after its context ended")
	}
	require.ErrorIs(t, ctx.Err(), context.Canceled, "ended by the second subscription, not the timeout")
	require.EqualValues(t, 2, subs.Load(), "subscribed again after the first subscription ended")
	require.EqualValues(t, 4, dials.Load(), "two failed dials while no producer, then two that worked")

	out := logs.String()
	warns := strings.Count(out, "level=WARN msg=\"producer subscription failed; retrying\"")
	require.Equal(t, 2, warns, "one warning for the outage before the producer came, one when the subscription ended:\n%s", out)
	require.Contains(t, out, "level=DEBUG msg=\"producer subscription failed; retrying\"", "retries within an outage at debug")
	require.Contains(t, out, "stream=raw")
	require.Contains(t, out, "err=\"enough of this subscription\"")
	// The back-off doubles from 100 ms: the second failed dial waited 100
	// ms, the third 150 (maxWait).
	require.GreaterOrEqual(t, dialAt[1].Sub(dialAt[0]), 100*time.Millisecond)
	require.GreaterOrEqual(t, dialAt[2].Sub(dialAt[1]), 150*time.Millisecond)
}
