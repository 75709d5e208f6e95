//go:build jetson

package gst_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	fhgst "github.com/framehub/framehub/internal/gst"
)

// TestDescribeNVMM (build tag jetson): a memory:NVMM buffer is adopted as
// its NvBufSurface's DMA-BUF, with the planes NvBufSurface gives; batched
// and block-linear surfaces are not. The memory here imitates NVIDIA's
// layout (nvmm_layout.h); real NVMM buffers have not been tried.
func TestDescribeNVMM(t *testing.T) {
	fhgst.Init()
	fd, err := unix.MemfdCreate("fake-nvmm-dmabuf", unix.MFD_CLOEXEC)
	require.NoError(t, err)
	defer unix.Close(fd)
	const w, h, pitch, uvOff = 1280, 720, 1536, 1 << 20
	const size = 2 << 20
	require.NoError(t, unix.Ftruncate(fd, size))
	var st unix.Stat_t
	require.NoError(t, unix.Fstat(fd, &st))

	caps := "video/x-raw(memory:NVMM),format=NV12,width=1280,height=720"
	b := fhgst.NewTestNVMMBuffer(fd, size, w, h, pitch, uvOff, 0, 1)
	s := fhgst.NewTestSample(b, caps)
	vi := s.VideoInfo()
	d := s.Describe(vi, nil)
	require.Equal(t, fhgst.KindDMABuf, d.Kind)
	require.Equal(t, 1, d.NMems)
	require.Equal(t, fd, d.Mems[0].FD)
	require.Equal(t, uint64(st.Ino), d.Mems[0].Ino)
	require.Equal(t, uint64(0), d.Mems[0].Offset)
	require.Equal(t, uint64(size), d.Mems[0].Size)
	require.Equal(t, 2, d.NPlanes)
	require.Equal(t, fhgst.Plane{Mem: 0, Offset: 0, Stride: pitch, Size: pitch * h}, d.Planes[0])
	require.Equal(t, fhgst.Plane{Mem: 0, Offset: uvOff, Stride: pitch, Size: pitch * h / 2}, d.Planes[1])
	vi.Free()
	s.Unref()
	b.Unref()

	for _, c := range []struct {
		name          string
		layout, batch int
	}{{"block-linear", 1, 1}, {"batch of 2", 0, 2}} {
		b := fhgst.NewTestNVMMBuffer(fd, size, w, h, pitch, uvOff, c.layout, c.batch)
		s := fhgst.NewTestSample(b, caps)
		vi := s.VideoInfo()
		require.Equal(t, fhgst.KindNone, s.Describe(vi, nil).Kind, c.name)
		vi.Free()
		s.Unref()
		b.Unref()
	}
}
