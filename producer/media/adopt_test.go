package media

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/internal/dmabuf"
	"github.com/framehub/framehub/internal/dmabuf/dmabuftest"
	fhgst "github.com/framehub/framehub/internal/gst"
	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/producertest"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/sdk"
)

// These tests feed the raw path buffers shaped like those of sources this
// machine lacks (a V4L2 camera exporting DMA-BUFs, a source ignoring the
// pool), through a run that has no GStreamer pipeline.

const testCaps = "video/x-raw,format=NV12,width=328,height=240,framerate=30/1"

func bareRun(t *testing.T) (*harness, *run) {
	h := newHarness(t, Config{Width: 328, Height: 240, Encoder: EncoderNone})
	r := &run{p: h.p}
	r.monoBase.Store(-1)
	layout, err := surface.NV12(328, 240, 0)
	require.NoError(t, err)
	r.setLayout(layout)
	t.Cleanup(func() {
		r.caps.Release()
		r.vi.Free()
	})
	return h, r
}

// TestAdoptDMABuf: a DMA-BUF buffer is shared as it is, its surface id is
// stable per dma-buf (even re-wrapped in a new GstMemory), and its
// GstBuffer stays referenced, so its pool cannot reuse it, until the last
// lease ends (seed 000). Then consumers are told to forget it. The
// consumer reads the source's pixels in place, its reads bracketed by
// DMA_BUF_IOCTL_SYNC: a memfd stands in for the camera's dma-buf, and
// dmabuftest.Fake for the kernel's sync (no exporter on this machine).
func TestAdoptDMABuf(t *testing.T) {
	h, r := bareRun(t)
	var cpu dmabuftest.Fake
	ctx, cancel := context.WithTimeout(dmabuf.NewContext(context.Background(), &cpu), waitTimeout)
	defer cancel()
	c := producertest.DialContext(t, ctx, h.srv.Addr(), sdk.Options{Stream: StreamRaw, MaxInFlight: 4})

	fd, err := unix.MemfdCreate("fake-dmabuf", unix.MFD_CLOEXEC)
	require.NoError(t, err)
	defer unix.Close(fd)
	const size = 328 * 240 * 3 / 2
	src := nv12Frame(328, 240) // what the camera wrote
	_, err = unix.Pwrite(fd, src, 0)
	require.NoError(t, err)

	publish := func() *fhgst.Buffer {
		b, err := fhgst.NewTestDMABufBuffer(fd, size, 0)
		require.NoError(t, err)
		s := fhgst.NewTestSample(b, testCaps)
		r.handleRaw(s)
		s.Unref()
		return b
	}
	b1 := publish()
	require.Equal(t, 2, b1.RefCount(), "the lease holds a reference")
	f1 := next(t, c)
	require.Equal(t, sdk.KindDMABuf, f1.Kind())
	require.GreaterOrEqual(t, f1.SurfaceID(), uint32(firstSurfaceID))
	require.Equal(t, []sdk.Plane{{Offset: 0, Stride: 328, Size: 328 * 240}, {Offset: 328 * 240, Stride: 328, Size: 328 * 120}}, f1.Planes())

	// The consumer reads the camera's bytes in place, inside a read
	// access on its own fd of the dma-buf.
	y, err := f1.Plane(0)
	require.NoError(t, err)
	uv, err := f1.Plane(1)
	require.NoError(t, err)
	require.Equal(t, src[:328*240], y)
	require.Equal(t, src[328*240:], uv)
	cfd := f1.FDs()[0]
	require.Equal(t, []dmabuftest.Call{{Op: "begin", FD: cfd, Flags: dmabuf.SyncRead}}, cpu.CallsOn(cfd))

	b2 := publish()
	f2 := next(t, c)
	require.Equal(t, f1.SurfaceID(), f2.SurfaceID(), "same dma-buf, same surface")
	st := h.p.Stats()
	require.Equal(t, uint64(2), st.AdoptedFrames)
	require.Equal(t, uint64(2), st.HeldBuffers)
	require.Zero(t, st.CopiedFrames)

	f1.Release()
	require.Equal(t, dmabuftest.Call{Op: "end", FD: cfd, Flags: dmabuf.SyncRead}, cpu.CallsOn(cfd)[1], "Release ends the read access")
	require.NoError(t, c.Flush())
	testutil.WaitUntil(t, waitTimeout, func() bool { return b1.RefCount() == 1 }, "lease 1 released its buffer")
	require.Equal(t, 2, b2.RefCount(), "lease 2 still holds its buffer")
	f2.Release()
	require.NoError(t, c.Flush())
	testutil.WaitUntil(t, waitTimeout, func() bool { return b2.RefCount() == 1 && h.p.Stats().HeldBuffers == 0 }, "lease 2 released")

	// The memories die with the last buffer: the surface is forgotten.
	b1.Unref()
	b2.Unref()
	require.Equal(t, []uint32{f1.SurfaceID()}, h.p.reg.takeDead())
	require.Len(t, cpu.CallsOn(cfd), 2, "f2, never read, was never synced")
	require.Empty(t, cpu.Violations())
}

// TestCopyFallback: a buffer with no fd is copied once into the copy pool,
// respecting both layouts' strides.
func TestCopyFallback(t *testing.T) {
	h, r := bareRun(t)
	c := h.dial(sdk.Options{Stream: StreamRaw, MaxInFlight: 4})
	const w, hgt = 328, 240
	src := make([]byte, w*hgt*3/2) // GStreamer's default NV12 layout: stride = width
	for row := 0; row < hgt; row++ {
		for x := 0; x < w; x++ {
			src[row*w+x] = byte(row + x)
		}
	}
	for row := 0; row < hgt/2; row++ {
		for x := 0; x < w; x++ {
			src[w*hgt+row*w+x] = byte(3*row + x)
		}
	}
	b := fhgst.NewTestSystemBuffer(src)
	defer b.Unref()
	s := fhgst.NewTestSample(b, testCaps)
	r.handleRaw(s)
	s.Unref()
	require.Equal(t, 1, b.RefCount(), "copied: no reference kept")

	f := next(t, c)
	defer f.Release()
	require.Equal(t, sdk.KindMemfd, f.Kind())
	require.Less(t, f.SurfaceID(), uint32(firstSurfaceID), "a copy pool surface")
	want, err := surface.NV12(w, hgt, 0)
	require.NoError(t, err)
	require.Equal(t, sdkPlanes(want.Planes), f.Planes())
	y, err := f.Plane(0)
	require.NoError(t, err)
	uv, err := f.Plane(1)
	require.NoError(t, err)
	stride := int(want.Planes[0].Stride)
	for row := 0; row < hgt; row++ {
		require.Equal(t, src[row*w:row*w+w], y[row*stride:row*stride+w], "Y row %d", row)
	}
	for row := 0; row < hgt/2; row++ {
		require.Equal(t, src[w*hgt+row*w:w*hgt+row*w+w], uv[row*stride:row*stride+w], "UV row %d", row)
	}
	st := h.p.Stats()
	require.Equal(t, uint64(1), st.CopiedFrames)
	require.Equal(t, uint64(1), st.RawFrames)
}

// nv12Frame returns a w×h NV12 frame in GStreamer's default layout (stride
// = width) whose bytes depend on their position.
func nv12Frame(w, h int) []byte {
	b := make([]byte, w*h*3/2)
	for i := range b {
		b[i] = byte(i*7 + i/w)
	}
	return b
}

// TestCapsChange: new caps reach consumers (Caps), the copy pool is resized
// and its old surfaces forgotten, and frames carry the new layout.
func TestCapsChange(t *testing.T) {
	h, r := bareRun(t)
	c := h.dial(sdk.Options{Stream: StreamRaw, MaxInFlight: 4})
	publish := func(w, ht int) []byte {
		src := nv12Frame(w, ht)
		b := fhgst.NewTestSystemBuffer(src)
		s := fhgst.NewTestSample(b, fmt.Sprintf("video/x-raw,format=NV12,width=%d,height=%d,framerate=15/1", w, ht))
		r.handleRaw(s)
		s.Unref()
		b.Unref()
		return src
	}
	publish(328, 240)
	f := next(t, c)
	first := f.SurfaceID()
	f.Release()
	require.NoError(t, c.Flush())
	testutil.WaitUntil(t, waitTimeout, func() bool { return h.srv.Stream(StreamRaw).Stats().Leases == 0 }, "release processed")

	src := publish(320, 200)
	f = next(t, c)
	defer f.Release()
	caps := c.Caps()
	require.Equal(t, [4]int{320, 200, 15, 1}, [4]int{caps.Width, caps.Height, caps.FPSNum, caps.FPSDen})
	want, err := surface.NV12(320, 200, 0)
	require.NoError(t, err)
	require.Equal(t, sdkPlanes(want.Planes), caps.Planes)
	require.Equal(t, sdkPlanes(want.Planes), f.Planes())
	require.Equal(t, first, f.SurfaceID(), "the slot is reused with new memory")
	require.Equal(t, want.Size, h.p.rawPool.Config().Size)
	y, err := f.Plane(0)
	require.NoError(t, err)
	require.Equal(t, src[199*320:200*320], y[199*int(want.Planes[0].Stride):199*int(want.Planes[0].Stride)+320])
}
