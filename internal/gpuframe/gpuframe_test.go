package gpuframe_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/cuda"
	"github.com/framehub/framehub/internal/cuda/standin"
	"github.com/framehub/framehub/internal/gpuframe"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/sdk/stamp"
)

type fixture struct {
	ctx  *cuda.Context
	k    *gpuframe.Kernels
	ptr  cuda.DevPtr
	size int
}

// setup loads the stand-in and maps one read-write surface for l.
func setup(t *testing.T, size int) *fixture {
	t.Helper()
	ctx := standin.Context(t)
	g, err := ctx.Granularity()
	require.NoError(t, err)
	size = (size + g - 1) / g * g
	h, err := ctx.Create(size)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, ctx.Release(h)) })
	ptr, err := ctx.Map(h, size, cuda.ReadWrite)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, ctx.Unmap(ptr, size)) })
	k, err := gpuframe.Load(ctx, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, k.Close()) })
	return &fixture{ctx: ctx, k: k, ptr: ptr, size: size}
}

func layoutOf(t *testing.T, w, h int) (surface.Layout, gpuframe.Layout) {
	l, err := surface.NV12(w, h, 0)
	require.NoError(t, err)
	return l, gpuframe.Layout{
		Width: w, Height: h, YOffset: int(l.Planes[0].Offset), YStride: int(l.Planes[0].Stride),
		UVOffset: int(l.Planes[1].Offset), UVStride: int(l.Planes[1].Stride),
	}
}

// TestStampMatchesGo: the kernels' stamp (kernels.h, run by the stand-in)
// is sdk/stamp's format byte for byte, the picture is kernels.h's
// formula everywhere, and nothing outside the planes is written. Widths
// below and above the stamp's 256-byte region, and one not a multiple of 4.
func TestStampMatchesGo(t *testing.T) {
	for _, sz := range [][2]int{{64, 8}, {322, 180}, {640, 360}} {
		w, h := sz[0], sz[1]
		l, gl := layoutOf(t, w, h)
		f := setup(t, l.Size)
		poison := bytes.Repeat([]byte{0xA5}, f.size)
		require.NoError(t, f.ctx.CopyToDevice(f.ptr, poison))
		r, err := f.k.NewRenderer()
		require.NoError(t, err)
		const seq, mono = 1234567, 987654321012345
		require.NoError(t, r.Render(f.ptr, f.size, gl, seq, mono))
		require.NoError(t, r.Close())

		host := make([]byte, f.size)
		require.NoError(t, f.ctx.CopyToHost(host, f.ptr))
		y := l.Plane(host, 0)
		info, err := stamp.Verify(y, gl.YStride, w, seq)
		require.NoError(t, err, "%dx%d", w, h)
		require.Equal(t, stamp.Info{Seq: seq, MonoNS: mono}, info)

		// Go's own stamp of the same frame, over the GPU's picture: equal.
		want := bytes.Clone(host)
		require.NoError(t, stamp.Write(l.Plane(want, 0), gl.YStride, w, seq, mono))
		require.Equal(t, want, host, "%dx%d: the kernels' stamp differs from sdk/stamp's", w, h)

		rw := stamp.RegionWidth(w)
		uv := l.Plane(host, 1)
		for row := range h {
			for x := range w {
				if row < stamp.Rows && x < rw {
					continue
				}
				require.Equal(t, byte(x+3*row+5*seq), y[row*gl.YStride+x], "Y(%d,%d)", x, row)
			}
		}
		for row := range h / 2 {
			for x := range w {
				require.Equal(t, byte(2*x+row+7*seq), uv[row*gl.UVStride+x], "UV(%d,%d)", x, row)
			}
		}
		for i := gl.UVOffset + gl.UVStride*(h/2); i < f.size; i++ {
			require.Equal(t, byte(0xA5), host[i], "byte %d after the UV plane written", i)
		}
		if gl.YStride > w {
			require.Equal(t, byte(0xA5), host[w], "stride padding written")
		}
	}
}

// TestVerify: the verify kernels accept the frame, and name what is wrong
// with a corrupted picture, a corrupted stamp, a reused surface and a blank
// one.
func TestVerify(t *testing.T) {
	l, gl := layoutOf(t, 320, 240)
	f := setup(t, l.Size)
	r, err := f.k.NewRenderer()
	require.NoError(t, err)
	defer r.Close()
	v, err := f.k.NewVerifier()
	require.NoError(t, err)
	defer v.Close()

	require.NoError(t, r.Render(f.ptr, f.size, gl, 42, 7))
	res, err := v.Verify(f.ptr, f.size, gl, 42)
	require.NoError(t, err)
	require.NoError(t, res.Err(42))
	require.Equal(t, gpuframe.Result{Status: gpuframe.StatusOK, Seq: 42, Mono: 7, FirstBad: 0xffffffff}, res)

	require.ErrorIs(t, res.Err(43), stamp.ErrSeq, "a surface holding another frame")

	require.NoError(t, f.ctx.CopyToDevice(f.ptr+cuda.DevPtr(gl.UVOffset+5*gl.UVStride+7), []byte{0}))
	require.NoError(t, f.ctx.CopyToDevice(f.ptr+cuda.DevPtr(100*gl.YStride+9), []byte{1, 2}))
	res, err = v.Verify(f.ptr, f.size, gl, 42)
	require.NoError(t, err)
	require.ErrorIs(t, res.Err(42), gpuframe.ErrPixels)
	require.EqualValues(t, 3, res.Mismatches)

	require.NoError(t, f.ctx.CopyToDevice(f.ptr+cuda.DevPtr(3*gl.YStride+9), []byte{0xff}))
	res, err = v.Verify(f.ptr, f.size, gl, 42)
	require.NoError(t, err)
	require.ErrorIs(t, res.Err(42), stamp.ErrChecksum)

	require.NoError(t, f.ctx.CopyToDevice(f.ptr, make([]byte, 32)))
	res, err = v.Verify(f.ptr, f.size, gl, 42)
	require.NoError(t, err)
	require.ErrorIs(t, res.Err(42), stamp.ErrNoStamp)

	_, err = v.Verify(f.ptr, f.size, gpuframe.Layout{Width: 320, Height: 240, YStride: 320, UVOffset: f.size, UVStride: 320}, 1)
	require.ErrorContains(t, err, "exceeds a surface")
	require.False(t, errors.Is(err, stamp.ErrNoStamp))
}
