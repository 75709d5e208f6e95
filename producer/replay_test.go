package producer_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/producertest"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/sdk"
)

// replayStream runs a producer whose only stream, "h264", keeps replay of
// frames the test publishes itself, from a pool of at most poolMax
// surfaces; it returns the stream and the producer's address.
func replayStream(t *testing.T, poolMax int, replay time.Duration) (*producer.Stream, string) {
	t.Helper()
	p := producertest.StartProducer(t, producertest.Options{Manual: true, PoolMax: poolMax, PoolName: "t",
		Config: producer.Config{Logger: testutil.Logger(t, slog.LevelError), MaxInFlight: 64},
		Stream: producer.StreamConfig{Name: "h264", Caps: ipc.Caps{Format: "H264"}, Replay: replay}})
	return p.Stream, p.Addr
}

// A consumer that comes back asks for every frame captured after the last
// one it made durable, and gets each exactly once, then the live stream.
func TestReplayFromCaptureTime(t *testing.T) {
	st, addr := replayStream(t, 256, 10*time.Second)
	base := clock.Mono()
	publish := func(i int) {
		s, err := st.Acquire()
		require.NoError(t, err)
		st.Publish(s, producer.FrameInfo{MonoNS: base + int64(i)*int64(time.Millisecond), Size: 16})
	}
	for i := 1; i <= 50; i++ {
		publish(i)
	}
	require.Equal(t, 50, st.Stats().ReplayFrames)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log := testutil.Logger(t, slog.LevelError)
	// The frame captured at base+20ms was durable: resume after it.
	c, err := sdk.Dial(ctx, addr, sdk.Options{Stream: "h264", MaxInFlight: 4, ReplayFrom: base + 20*int64(time.Millisecond), Logger: log})
	require.NoError(t, err)
	defer c.Close()

	var seqs []uint64
	replayed := 0
	for len(seqs) < 50 {
		f, err := c.Next(ctx)
		require.NoError(t, err)
		seqs = append(seqs, f.Seq())
		if f.Replay() {
			replayed++
		}
		f.Release()
		// Publish live frames while the consumer catches up.
		if n := len(seqs); n <= 20 {
			publish(50 + n)
		}
	}
	for i, s := range seqs {
		require.Equal(t, uint64(21+i), s, "every frame after the durable one, once, in order: %v", seqs)
	}
	require.GreaterOrEqual(t, replayed, 30, "the buffered frames come flagged replay")
	require.Positive(t, st.Stats().Replayed)
}

// Replay never costs the live stream a frame: when the pool runs out, the
// buffer gives way.
func TestReplayBufferYieldsToThePool(t *testing.T) {
	st, _ := replayStream(t, 8, time.Hour)
	for i := 0; i < 40; i++ {
		s, err := st.Acquire()
		require.NoError(t, err, "frame %d", i)
		st.Publish(s, producer.FrameInfo{Size: 16})
	}
	stats := st.Stats()
	require.Zero(t, stats.DroppedExhausted)
	require.Positive(t, stats.ReplayShed)
	require.LessOrEqual(t, stats.ReplayFrames, 8)
}
