package snapshot

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// testFrame returns a w×h NV12 frame with padded strides whose samples are
// a function of their position, and the padding 0xEE (never averaged in).
func testFrame(w, h, pad int) NV12 {
	ys, uvs := w+pad, w+pad
	y := make([]byte, ys*h)
	uv := make([]byte, uvs*h/2)
	for i := range y {
		y[i] = 0xEE
	}
	for i := range uv {
		uv[i] = 0xEE
	}
	for r := range h {
		for c := range w {
			y[r*ys+c] = byte((3*c + 5*r) % 251)
		}
	}
	for r := range h / 2 {
		for c := range w / 2 {
			uv[r*uvs+2*c] = byte((c + 2*r) % 253)
			uv[r*uvs+2*c+1] = byte((2*c + r) % 241)
		}
	}
	return NV12{Width: w, Height: h, Y: y, YStride: ys, UV: uv, UVStride: uvs}
}

// boxAvg is the reference box filter: the rounded mean of the source
// samples of output sample (dx, dy).
func boxAvg(at func(x, y int) byte, dx, dy, dw, dh, sw, sh int) byte {
	x0, x1 := BoxBounds(dx, dw, sw)
	y0, y1 := BoxBounds(dy, dh, sh)
	sum, n := 0, 0
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			sum += int(at(x, y))
			n++
		}
	}
	return byte((sum + n/2) / n)
}

func TestYCbCrFullSizeAliasesY(t *testing.T) {
	p := testFrame(64, 32, 16)
	require.NoError(t, p.Validate())
	img := p.ycbcr(64, 32)
	require.Equal(t, &p.Y[0], &img.Y[0], "the Y plane must be the frame's memory, not a copy")
	for cy := range 16 {
		for cx := range 32 {
			require.Equal(t, p.UV[cy*p.UVStride+2*cx], img.Cb[img.COffset(2*cx, 2*cy)])
			require.Equal(t, p.UV[cy*p.UVStride+2*cx+1], img.Cr[img.COffset(2*cx, 2*cy)])
		}
	}
}

func TestBoxScale(t *testing.T) {
	for _, sz := range [][2]int{{64, 32}, {32, 16}, {22, 10}, {2, 2}, {60, 30}} {
		p := testFrame(64, 32, 6)
		dw, dh := sz[0], sz[1]
		img := p.ycbcr(dw, dh)
		packed := p.packedNV12(make([]byte, dw*dh*3/2), dw, dh)
		yAt := func(x, y int) byte { return p.Y[y*p.YStride+x] }
		cbAt := func(x, y int) byte { return p.UV[y*p.UVStride+2*x] }
		crAt := func(x, y int) byte { return p.UV[y*p.UVStride+2*x+1] }
		for dy := range dh {
			for dx := range dw {
				want := boxAvg(yAt, dx, dy, dw, dh, 64, 32)
				require.Equal(t, want, img.Y[dy*img.YStride+dx], "Y (%d,%d) at %dx%d", dx, dy, dw, dh)
				require.Equal(t, want, packed[dy*dw+dx], "packed Y (%d,%d) at %dx%d", dx, dy, dw, dh)
			}
		}
		for dy := range dh / 2 {
			for dx := range dw / 2 {
				wb := boxAvg(cbAt, dx, dy, dw/2, dh/2, 32, 16)
				wr := boxAvg(crAt, dx, dy, dw/2, dh/2, 32, 16)
				require.Equal(t, wb, img.Cb[dy*img.CStride+dx], "Cb (%d,%d) at %dx%d", dx, dy, dw, dh)
				require.Equal(t, wr, img.Cr[dy*img.CStride+dx], "Cr (%d,%d) at %dx%d", dx, dy, dw, dh)
				require.Equal(t, wb, packed[dw*dh+dy*dw+2*dx], "packed Cb (%d,%d) at %dx%d", dx, dy, dw, dh)
				require.Equal(t, wr, packed[dw*dh+dy*dw+2*dx+1], "packed Cr (%d,%d) at %dx%d", dx, dy, dw, dh)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	p := testFrame(64, 32, 0)
	require.NoError(t, p.Validate())
	q := p
	q.Y = q.Y[:len(q.Y)-1]
	require.ErrorContains(t, q.Validate(), "Y plane")
	q = p
	q.Width = 63
	require.ErrorContains(t, q.Validate(), "even")
	q = p
	q.UVStride = 10
	require.ErrorContains(t, q.Validate(), "strides")
}

func BenchmarkScale1080To360(b *testing.B) {
	p := testFrame(1920, 1080, 0)
	dst := make([]byte, 640*360*3/2)
	for b.Loop() {
		p.packedNV12(dst, 640, 360)
	}
}

func BenchmarkDeinterleave1080(b *testing.B) {
	p := testFrame(1920, 1080, 0)
	for b.Loop() {
		p.ycbcr(1920, 1080)
	}
}
