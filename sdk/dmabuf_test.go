package sdk_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/fdpass"
	"github.com/framehub/framehub/internal/dmabuf"
	"github.com/framehub/framehub/internal/dmabuf/dmabuftest"
	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/sdk"
)

// dmabufPeer is a producer, as far as one SDK client can tell: the other
// end of a socketpair speaking the wire protocol, which announces a memfd
// as a DMA-BUF surface (no machine the tests run on exports a dma-buf).
type dmabufPeer struct {
	t     *testing.T
	conn  *fdpass.Conn
	codec *ipc.Codec
	fd    int // the surface's memfd, filled with pattern
	seq   uint64
}

const (
	peerW, peerH = 64, 32
	peerSize     = 4096 // Y 64×32, then UV 64×16, in one page
)

// pattern is what the surface holds at byte i.
func pattern(i int) byte { return byte(i*13 + i/peerW) }

// dialDMABuf connects an SDK client to a new dmabufPeer, through Dial's
// context carrying cpu (nil: none, the SDK's own), and performs the
// handshake and the surface's Announce.
func dialDMABuf(t *testing.T, cpu dmabuf.CPU) (*sdk.Client, *dmabufPeer) {
	t.Helper()
	a, b, err := fdpass.Pair()
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	fd, err := unix.MemfdCreate("fake-dmabuf", unix.MFD_CLOEXEC)
	require.NoError(t, err)
	t.Cleanup(func() { _ = unix.Close(fd) })
	buf := make([]byte, peerSize)
	for i := range buf {
		buf[i] = pattern(i)
	}
	_, err = unix.Pwrite(fd, buf, 0)
	require.NoError(t, err)
	p := &dmabufPeer{t: t, conn: b, codec: ipc.NewCodec(), fd: fd}

	planes := []ipc.Plane{{Offset: 0, Stride: peerW, Size: peerW * peerH}, {Offset: peerW * peerH, Stride: peerW, Size: peerW * peerH / 2}}
	welcomed := make(chan error, 1)
	go func() { // the producer's side of the handshake
		rb := make([]byte, ipc.MaxMessageSize)
		n, _, err := b.Recv(rb)
		if err == nil {
			_, err = p.codec.Decode(rb[:n])
		}
		if err == nil {
			err = p.send(&ipc.Welcome{Major: 1, Session: 1, Stream: "raw", MaxInFlight: 4, MaxHoldMS: 2000, Policy: ipc.PolicyQueue,
				Caps: ipc.Caps{Format: "NV12", Width: peerW, Height: peerH, FPSNum: 30, FPSDen: 1, Planes: planes},
				Pool: ipc.Pool{Max: 1, SurfaceSize: peerSize, Kind: ipc.KindDMABuf}}, nil)
		}
		welcomed <- err
	}()
	ctx := context.Background()
	if cpu != nil {
		ctx = dmabuf.NewContext(ctx, cpu)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, "socketpair", sdk.Options{Conn: a, MaxInFlight: 4, Logger: testutil.Logger(t, slog.LevelError)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, <-welcomed)
	require.NoError(t, p.send(&ipc.Announce{Surfaces: []ipc.Surface{{ID: 1, Gen: 1, Size: peerSize, Kind: ipc.KindDMABuf, NFDs: 1}}}, []int{fd}))
	return c, p
}

func (p *dmabufPeer) send(m ipc.Message, fds []int) error {
	b, err := p.codec.Encode(m)
	if err != nil {
		return err
	}
	return p.conn.Send(b, fds)
}

// frame sends the next frame, on the surface, and returns the client's.
func (p *dmabufPeer) frame(c *sdk.Client) *sdk.Frame {
	p.t.Helper()
	p.seq++
	require.NoError(p.t, p.send(&ipc.Frame{Lease: p.seq, Surface: 1, Gen: 1, Seq: p.seq, Size: peerSize, PTS: -1, DTS: -1, Dur: -1,
		Planes: []ipc.Plane{{Offset: 0, Stride: peerW, Size: peerW * peerH}, {Offset: peerW * peerH, Stride: peerW, Size: peerW * peerH / 2}}}, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := c.Next(ctx)
	require.NoError(p.t, err)
	return f
}

// The SDK's DMA-BUF branch (docs/SDK.md: "DMA-BUF surfaces are bracketed
// with DMA_BUF_IOCTL_SYNC, start on first access, end at Release"): a
// DMA-BUF surface is mapped read-only once, each frame's first access
// begins a read access on the fd of the plane read, Release ends it, and
// a frame never read is never synced.
func TestDMABufFramesAreSynced(t *testing.T) {
	var cpu dmabuftest.Fake
	c, p := dialDMABuf(t, &cpu)

	f := p.frame(c)
	require.Equal(t, sdk.KindDMABuf, f.Kind())
	fd := f.FDs()[0]
	require.Empty(t, cpu.Calls(), "nothing is mapped or synced before the data is asked for")
	y, err := f.Plane(0)
	require.NoError(t, err)
	uv, err := f.Plane(1)
	require.NoError(t, err)
	data, err := f.Data()
	require.NoError(t, err)
	for i := range data {
		require.Equal(t, pattern(i), data[i], "byte %d", i)
	}
	require.Equal(t, data[:len(y)], y)
	require.Equal(t, data[len(y):len(y)+len(uv)], uv)
	require.Equal(t, []dmabuftest.Call{
		{Op: "map", FD: fd, Size: peerSize, Prot: unix.PROT_READ},
		{Op: "begin", FD: fd, Flags: dmabuf.SyncRead},
	}, cpu.Calls(), "mapped read-only and synced once for the three accesses")
	f.Release()
	f.Release() // idempotent: no second end
	require.Equal(t, []dmabuftest.Call{{Op: "begin", FD: fd, Flags: dmabuf.SyncRead}, {Op: "end", FD: fd, Flags: dmabuf.SyncRead}}, cpu.CallsOn(fd))
	require.Empty(t, cpu.Open())

	// Later frames in the surface reuse the mapping; each one read is
	// synced again; one never read is not.
	f = p.frame(c)
	_, err = f.Plane(1)
	require.NoError(t, err)
	f.Release()
	p.frame(c).Release()
	require.Len(t, cpu.CallsOn(fd), 4)
	maps := 0
	for _, call := range cpu.Calls() {
		if call.Op == "map" {
			maps++
		}
	}
	require.Equal(t, 1, maps, "mapped once per surface")

	// Close unmaps the surface.
	require.NoError(t, c.Close())
	require.Equal(t, dmabuftest.Call{Op: "unmap", FD: -1, Size: peerSize}, cpu.Calls()[len(cpu.Calls())-1])
	require.Empty(t, cpu.Violations())
	require.Empty(t, cpu.Open())
}

// A sync the driver refuses fails the access with its error, and leaves
// nothing to end at Release.
func TestDMABufSyncFailure(t *testing.T) {
	cpu := dmabuftest.Fake{FailBegin: unix.EIO}
	c, p := dialDMABuf(t, &cpu)
	f := p.frame(c)
	_, err := f.Plane(0)
	require.ErrorIs(t, err, unix.EIO)
	require.ErrorContains(t, err, "sdk: frame 1: ")
	f.Release()
	require.Equal(t, []dmabuftest.Call{{Op: "begin", FD: f.FDs()[0], Flags: dmabuf.SyncRead}}, cpu.CallsOn(f.FDs()[0]), "no end for an access that never began")
	require.Empty(t, cpu.Violations())
}

// Without a substitute in Dial's context, the SDK issues the real ioctl:
// on a memfd posing as a dma-buf the kernel answers ENOTTY, which is what
// the access returns.
func TestDMABufRealIoctl(t *testing.T) {
	c, p := dialDMABuf(t, nil)
	f := p.frame(c)
	_, err := f.Data()
	require.ErrorIs(t, err, unix.ENOTTY)
	require.ErrorContains(t, err, "ioctl DMA_BUF_IOCTL_SYNC")
	f.Release()
}
