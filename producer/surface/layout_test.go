package surface

import (
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/ipc"
)

func TestNV12(t *testing.T) {
	tests := []struct {
		w, h, align int
		stride      uint32
		uvOffset    uint32
		size        int // with 4096-byte pages
	}{
		{1920, 1080, 64, 1920, 2076672, 3117056},  // Y 2073600 → UV at 507 pages, UV 1036800
		{1920, 1080, 0, 1920, 2076672, 3117056},   // default align 64
		{1920, 1080, 256, 2048, 2211840, 3317760}, // Y 2211840 is page aligned
		{1280, 720, 64, 1280, 921600, 1384448},    // Y 921600 = 225 pages; end 1382400
		{640, 480, 64, 640, 307200, 462848},       // end 460800
		{1366, 768, 64, 1408, 1081344, 1622016},   // stride rounded up; end 1622016
		{2, 2, 1, 2, 4096, 8192},                  // tiny
		{16384, 16384, 64, 16384, 268435456, 402653184},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%dx%d/%d", tc.w, tc.h, tc.align), func(t *testing.T) {
			l, err := NV12(tc.w, tc.h, tc.align)
			require.NoError(t, err)
			require.Equal(t, "NV12", l.Format)
			require.Equal(t, tc.w, l.Width)
			require.Equal(t, tc.h, l.Height)
			require.Equal(t, []ipc.Plane{
				{Offset: 0, Stride: tc.stride, Size: tc.stride * uint32(tc.h)},
				{Offset: tc.uvOffset, Stride: tc.stride, Size: tc.stride * uint32(tc.h) / 2},
			}, l.Planes)
			require.Zero(t, l.Planes[1].Offset%PlaneAlign)
			require.GreaterOrEqual(t, l.Planes[1].Offset, l.Planes[0].Size)
			require.GreaterOrEqual(t, l.Size, int(l.Planes[1].Offset+l.Planes[1].Size))
			if os.Getpagesize() == 4096 {
				require.Equal(t, tc.size, l.Size)
			}
		})
	}
}

func TestNV12Invalid(t *testing.T) {
	tests := []struct {
		w, h, align int
		want        string
	}{
		{1921, 1080, 64, "even"},
		{1920, 1081, 64, "even"},
		{0, 1080, 64, "[2, 16384]"},
		{1920, 0, 64, "[2, 16384]"},
		{-2, 2, 64, "[2, 16384]"},
		{16386, 2, 64, "[2, 16384]"},
		{2, 1 << 20, 64, "[2, 16384]"},
		{1920, 1080, 48, "power of two"},
		{1920, 1080, -64, "power of two"},
		{1920, 1080, 8192, "power of two"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%dx%d/%d", tc.w, tc.h, tc.align), func(t *testing.T) {
			_, err := NV12(tc.w, tc.h, tc.align)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, fmt.Sprintf("%dx%d", tc.w, tc.h))
		})
	}
}

func TestLayoutPlane(t *testing.T) {
	l, err := NV12(1280, 720, 64)
	require.NoError(t, err)
	data := make([]byte, l.Size)
	y := l.Plane(data, 0)
	uv := l.Plane(data, 1)
	require.Len(t, y, 1280*720)
	require.Len(t, uv, 1280*360)
	require.Equal(t, len(y), cap(y), "capacity must stop at the plane end")
	require.Equal(t, len(uv), cap(uv))
	y[0], uv[0] = 1, 2
	require.Equal(t, byte(1), data[0])
	require.Equal(t, byte(2), data[l.Planes[1].Offset])
	require.Panics(t, func() { l.Plane(data, 2) })
	require.Panics(t, func() { l.Plane(data[:100], 1) })
}
