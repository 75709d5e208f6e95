package producer_test

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/fdpass"
	"github.com/framehub/framehub/internal/ring"
	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/producertest"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/sdk"
)

// A queue-policy SDK consumer gets a release ring and releases through it:
// with a budget of 1, every frame after the first needs the release of the
// one before, read from the ring.
func TestReleaseRing(t *testing.T) {
	p := producertest.StartProducer(t, producertest.Options{Manual: true, PoolMax: 8,
		Config: producer.Config{Logger: testutil.Logger(t, slog.LevelWarn)}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, p.Addr, sdk.Options{MaxInFlight: 1, Logger: testutil.Logger(t, slog.LevelWarn)})
	require.NoError(t, err)
	defer c.Close()
	require.True(t, c.Subscription().ReleaseRing, "a queue consumer is granted a ring")
	for i := range 100 {
		s, err := p.Stream.Acquire()
		require.NoError(t, err, "frame %d", i)
		p.Stream.Publish(s, producer.FrameInfo{})
		f, err := c.Next(ctx)
		require.NoError(t, err, "frame %d", i)
		require.Zero(t, f.Dropped(), "frame %d: the release of the one before was read", i)
		f.Release()
	}
	st := p.Stream.Stats()
	require.EqualValues(t, 100, st.Delivered)
	require.GreaterOrEqual(t, st.Released, uint64(99))
	require.Zero(t, st.SkippedBudget)

	// Not asked for, not given; and never to a latest-policy consumer.
	for _, o := range []sdk.Options{{NoReleaseRing: true}, {Policy: sdk.PolicyLatest}} {
		o.Logger = testutil.Logger(t, slog.LevelWarn)
		c2, err := sdk.Dial(ctx, p.Addr, o)
		require.NoError(t, err)
		require.False(t, c2.Subscription().ReleaseRing, "%+v", o)
		require.NoError(t, c2.Close())
	}
}

// A source that waits for surfaces (AcquireWait, the IPC-bound mode) is
// woken by consumers with a ring: while it waits they release with
// messages. The pool (2 surfaces) is smaller than the capacity admission
// went by, so the consumer's budget of 2 (one frame in its hands, one in
// its socket) empties it and the source must wait for every release.
func TestReleaseRingWakesAWaitingSource(t *testing.T) {
	p := producertest.StartProducer(t, producertest.Options{Manual: true, PoolMin: 2, PoolMax: 2,
		Stream: producer.StreamConfig{Capacity: 6, Reserve: 1},
		Config: producer.Config{Logger: testutil.Logger(t, slog.LevelWarn)}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, p.Addr, sdk.Options{MaxInFlight: 2, Logger: testutil.Logger(t, slog.LevelWarn)})
	require.NoError(t, err)
	defer c.Close()
	require.True(t, c.Subscription().ReleaseRing)
	require.Equal(t, 2, c.Subscription().MaxInFlight)
	const frames = 300
	done := make(chan error, 1)
	go func() {
		for range frames {
			f, err := c.Next(ctx)
			if err != nil {
				done <- err
				return
			}
			f.Release()
		}
		done <- nil
	}()
	for i := range frames {
		s, err := p.Stream.AcquireWait(ctx)
		require.NoError(t, err, "frame %d", i)
		p.Stream.Publish(s, producer.FrameInfo{})
	}
	require.NoError(t, <-done, "every frame arrives: the source waited instead of skipping")
	require.Zero(t, p.Stream.Stats().SkippedBudget)
	st := c.Stats()
	t.Logf("consumer: %d released, %d of them through the ring", st.Released, st.RingWrites)
	require.Less(t, st.RingWrites, st.Released, "while the source waited, releases went in messages, which wake it")
}

// rawRing subscribes a raw client that asks for a ring, and maps it (the
// ring, and the raw bytes of the same memory).
func rawRing(t *testing.T, addr string) (*fdpass.Conn, *ring.Ring, []byte, *ipc.Codec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := fdpass.Dial(ctx, addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	codec := ipc.NewCodec()
	b, err := codec.Encode(&ipc.Hello{Major: ipc.VersionMajor, Minor: ipc.VersionMinor, Name: "ring-rogue", Stream: "raw",
		MaxInFlight: 2, Flags: ipc.HelloReleaseRing})
	require.NoError(t, err)
	require.NoError(t, conn.Send(b, nil))
	buf := make([]byte, ipc.MaxMessageSize)
	for {
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		n, fds, err := conn.Recv(buf)
		require.NoError(t, err)
		m, err := codec.Decode(buf[:n])
		require.NoError(t, err)
		if r, ok := m.(*ipc.Ring); ok {
			require.Len(t, fds, 1)
			rg, err := ring.Map(fds[0], r.Size)
			require.NoError(t, err)
			t.Cleanup(rg.Close)
			raw, err := unix.Mmap(fds[0], 0, int(r.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			fdpass.CloseFDs(fds)
			require.NoError(t, err)
			t.Cleanup(func() { _ = unix.Munmap(raw) })
			return conn, rg, raw, codec
		}
		fdpass.CloseFDs(fds)
		if w, ok := m.(*ipc.Welcome); ok {
			require.NotZero(t, w.Flags&ipc.HelloReleaseRing)
		}
	}
}

// expectBye reads until a Bye and returns it.
func expectBye(t *testing.T, conn *fdpass.Conn, codec *ipc.Codec) *ipc.Bye {
	t.Helper()
	buf := make([]byte, ipc.MaxMessageSize)
	resetSeen := false
	for {
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		n, fds, err := conn.Recv(buf)
		fdpass.CloseFDs(fds)
		if errors.Is(err, syscall.ECONNRESET) && !resetSeen {
			resetSeen = true
			continue
		}
		require.NotErrorIs(t, err, os.ErrDeadlineExceeded, "no Bye")
		require.NoError(t, err)
		m, err := codec.Decode(buf[:n])
		require.NoError(t, err)
		if b, ok := m.(*ipc.Bye); ok {
			return b
		}
	}
}

// What a consumer writes into its ring is checked like a Release: an id it
// does not hold ends its session with Bye 8, a broken head with Bye 5.
func TestReleaseRingFromARogue(t *testing.T) {
	p := producertest.StartProducer(t, producertest.Options{Manual: true, PoolMax: 8,
		Config: producer.Config{Logger: testutil.Logger(t, slog.LevelError)}})
	publish := func() {
		s, err := p.Stream.Acquire()
		require.NoError(t, err)
		p.Stream.Publish(s, producer.FrameInfo{})
	}

	conn, rg, _, codec := rawRing(t, p.Addr)
	require.True(t, rg.Push(987654321))
	publish() // the service before it reads the ring
	b := expectBye(t, conn, codec)
	require.Equal(t, ipc.CodeBadRelease, b.Code, b.Reason)
	require.Contains(t, b.Reason, "987654321")

	conn, _, raw, codec := rawRing(t, p.Addr)
	binary.LittleEndian.PutUint64(raw[ring.HeadOffset:], ring.Entries+5) // far past what the ring holds
	publish()
	b = expectBye(t, conn, codec)
	require.Equal(t, ipc.CodeProtocol, b.Code, b.Reason)
	require.Contains(t, b.Reason, "release ring")
	require.Eventually(t, func() bool { return p.Stream.Consumers() == 0 }, 10*time.Second, 5*time.Millisecond)
}
