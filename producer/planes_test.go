package producer_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/fdpass"
	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/producertest"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
)

// A frame whose planes are those of the caps the consumer was last told
// goes without them (PROTOCOL.md §6: they default to the caps'); a frame of
// another layout, or of the old layout after a Caps, carries its own.
func TestFramePlanesDefaultToCaps(t *testing.T) {
	p := producertest.StartProducer(t, producertest.Options{Manual: true, Width: 320, Height: 240, FPS: 30,
		PoolMax: 8, PoolName: "t", Config: producer.Config{Logger: testutil.Logger(t, slog.LevelWarn)}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := fdpass.Dial(ctx, p.Addr)
	require.NoError(t, err)
	defer conn.Close()
	codec := ipc.NewCodec()
	b, err := codec.Encode(&ipc.Hello{Major: ipc.VersionMajor, Minor: ipc.VersionMinor, Name: "planes", Stream: "raw", MaxInFlight: 8})
	require.NoError(t, err)
	require.NoError(t, conn.Send(b, nil))
	buf := make([]byte, ipc.MaxMessageSize)
	// next returns the next message of type T, skipping the others.
	next := func(want ipc.Type) ipc.Message {
		t.Helper()
		for {
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
			n, fds, err := conn.Recv(buf)
			require.NoError(t, err)
			fdpass.CloseFDs(fds)
			m, err := codec.Decode(buf[:n])
			require.NoError(t, err)
			if m.Type() == want {
				return m
			}
		}
	}
	w := next(ipc.TypeWelcome).(*ipc.Welcome)
	require.Len(t, w.Caps.Planes, 2)
	publish := func(planes []ipc.Plane) *ipc.Frame {
		t.Helper()
		s, err := p.Stream.Acquire()
		require.NoError(t, err)
		p.Stream.Publish(s, producer.FrameInfo{Planes: planes})
		f := next(ipc.TypeFrame).(*ipc.Frame)
		b, err := codec.Encode(&ipc.Release{Leases: []uint64{f.Lease}})
		require.NoError(t, err)
		require.NoError(t, conn.Send(b, nil))
		return f
	}

	require.Empty(t, publish(w.Caps.Planes).Planes, "the caps' layout goes without planes")
	other := append([]ipc.Plane(nil), w.Caps.Planes...)
	other[1].Offset += 64
	require.Equal(t, other, publish(other).Planes, "another layout is sent")

	l2, err := surface.NV12(320, 240, 256)
	require.NoError(t, err)
	caps := producer.RawCaps(l2, 30, 1)
	require.NotEqual(t, w.Caps.Planes, caps.Planes)
	p.Stream.SetCaps(caps, nil)
	require.Equal(t, caps.Planes, next(ipc.TypeCaps).(*ipc.Caps).Planes)
	require.Equal(t, w.Caps.Planes, publish(w.Caps.Planes).Planes, "after a Caps, the old layout is sent")
	require.Empty(t, publish(caps.Planes).Planes, "the new caps' layout goes without planes")
}
