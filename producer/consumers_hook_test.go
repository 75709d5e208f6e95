package producer_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/producertest"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/sdk"
)

// TestOnConsumers: the stream tells its source each change of the number
// of subscribed consumers, for subscriptions, departures and evictions.
func TestOnConsumers(t *testing.T) {
	var mu sync.Mutex
	var seen []int
	last := func() int {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return -1
		}
		return seen[len(seen)-1]
	}
	log := testutil.Logger(t, slog.LevelError)
	p := producertest.StartProducer(t, producertest.Options{Manual: true, PoolMax: 16, PoolName: "t",
		Config: producer.Config{Logger: log},
		Stream: producer.StreamConfig{OnConsumers: func(n int) {
			mu.Lock()
			seen = append(seen, n)
			mu.Unlock()
		}}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func(hold time.Duration) *sdk.Client {
		c, err := sdk.Dial(ctx, p.Addr, sdk.Options{Logger: log, MaxInFlight: 2, MaxHold: hold})
		require.NoError(t, err)
		return c
	}
	a := dial(0)
	testutil.WaitUntil(t, 10*time.Second, func() bool { return last() == 1 }, "told of the first consumer")
	b := dial(50 * time.Millisecond)
	testutil.WaitUntil(t, 10*time.Second, func() bool { return last() == 2 }, "told of the second")
	require.NoError(t, a.Close())
	testutil.WaitUntil(t, 10*time.Second, func() bool { return last() == 1 }, "told of the departure")

	// b holds a frame past its max_hold: evicted by the core, not by its own close.
	s, err := p.Stream.Acquire()
	require.NoError(t, err)
	p.Stream.Publish(s, producer.FrameInfo{})
	f, err := b.Next(ctx)
	require.NoError(t, err)
	testutil.WaitUntil(t, 10*time.Second, func() bool { return last() == 0 }, "told of the eviction")
	f.Release()
	b.Close()
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []int{1, 2, 1, 0}, seen, "each change once, in order here (one goroutine at a time changed it)")
}
