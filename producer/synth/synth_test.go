package synth

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/framehub/framehub/sdk/stamp"
	"github.com/stretchr/testify/require"
)

// nv12 returns the layout of a w x h NV12 frame with the given strides and
// the UV plane starting at the first multiple of align after the Y plane.
func nv12(w, h, yStride, uvStride, align int) Layout {
	uvOff := (yStride*h + align - 1) / align * align
	return Layout{Width: w, Height: h, YOffset: 0, YStride: yStride, UVOffset: uvOff, UVStride: uvStride}
}

// layout1080p is NV12 1920x1080, stride 1920, UV plane aligned to 4096.
var layout1080p = nv12(1920, 1080, 1920, 1920, 4096)

// surface returns a buffer for l with size+extra bytes, filled with fill.
func surface(l Layout, extra int, fill byte) []byte {
	return bytes.Repeat([]byte{fill}, l.Size()+extra)
}

// inStamp reports whether byte (x, row) of the Y plane is in the stamp region.
func inStamp(l Layout, x, row int) bool {
	return row < stamp.Rows && x < stamp.RegionWidth(l.Width)
}

// picture returns a copy of the frame's Y and UV planes with the stamp
// region zeroed, for comparisons that ignore the stamp.
func picture(l Layout, dst []byte) []byte {
	var out []byte
	for row := range l.Height {
		o := l.YOffset + row*l.YStride
		line := append([]byte{}, dst[o:o+l.Width]...)
		if row < stamp.Rows {
			clear(line[:stamp.RegionWidth(l.Width)])
		}
		out = append(out, line...)
	}
	for row := range l.Height / 2 {
		o := l.UVOffset + row*l.UVStride
		out = append(out, dst[o:o+l.Width]...)
	}
	return out
}

// requireUntouchedOutside checks that dst bytes outside both planes kept fill.
func requireUntouchedOutside(t *testing.T, l Layout, dst []byte, fill byte) {
	t.Helper()
	inside := make([]bool, len(dst))
	for row := range l.Height {
		o := l.YOffset + row*l.YStride
		for i := o; i < o+l.Width; i++ {
			inside[i] = true
		}
	}
	for row := range l.Height / 2 {
		o := l.UVOffset + row*l.UVStride
		for i := o; i < o+l.Width; i++ {
			inside[i] = true
		}
	}
	for i, b := range dst {
		if !inside[i] && b != fill {
			require.Failf(t, "byte outside the planes written", "offset %d = 0x%02x", i, b)
		}
	}
}

func TestLayout(t *testing.T) {
	require.Equal(t, 2076672+540*1920, layout1080p.Size())
	require.NoError(t, layout1080p.Validate())

	// UV before Y, padded strides: fine.
	l := Layout{Width: 64, Height: 8, UVOffset: 0, UVStride: 128, YOffset: 4 * 128, YStride: 100}
	require.NoError(t, l.Validate())
	require.Equal(t, 4*128+7*100+64, l.Size())

	bad := []struct {
		name string
		l    Layout
		msg  string
	}{
		{"zero", Layout{}, "width 0"},
		{"odd-width", nv12(1921, 1080, 1922, 1922, 1), "width 1921 must be even"},
		{"odd-height", nv12(1920, 1081, 1920, 1920, 1), "height 1081 must be even"},
		{"narrow", nv12(62, 8, 64, 64, 1), "width 62"},
		{"short", nv12(64, 6, 64, 64, 1), "height 6"},
		{"huge", nv12(MaxDimension+2, 8, MaxDimension+2, MaxDimension+2, 1), "width 16386"},
		{"y-stride", func() Layout { l := layout1080p; l.YStride = 1919; return l }(), "Y stride 1919 is below width 1920"},
		{"uv-stride", func() Layout { l := layout1080p; l.UVStride = 1000; return l }(), "UV stride 1000 is below width 1920"},
		{"neg-y", func() Layout { l := layout1080p; l.YOffset = -1; return l }(), "Y offset -1 is negative"},
		{"neg-uv", func() Layout { l := layout1080p; l.UVOffset = -4096; return l }(), "UV offset -4096 is negative"},
		{"overlap", func() Layout { l := layout1080p; l.UVOffset = 1920*1080 - 1; return l }(), "overlaps"},
		{"same", func() Layout { l := layout1080p; l.UVOffset = 0; return l }(), "overlaps"},
		{"uv-before-overlap", Layout{Width: 64, Height: 8, UVOffset: 0, UVStride: 64, YOffset: 3*64 + 63, YStride: 64}, "overlaps"},
		{"overflow", func() Layout { l := layout1080p; l.YStride = math.MaxInt / 2; return l }(), "overflows"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.l.Validate()
			require.ErrorIs(t, err, ErrLayout)
			require.ErrorContains(t, err, tt.msg)
			require.Zero(t, tt.l.Size())
			for _, p := range []Pattern{PatternMoving, PatternStatic, PatternStampOnly} {
				r, err := NewRenderer(tt.l, p)
				require.ErrorIs(t, err, ErrLayout)
				require.Nil(t, r)
			}
		})
	}
}

func TestPatternNames(t *testing.T) {
	for _, tt := range []struct {
		p    Pattern
		name string
	}{{PatternMoving, "moving"}, {PatternStatic, "static"}, {PatternStampOnly, "stamp-only"}} {
		require.Equal(t, tt.name, tt.p.String())
		p, err := ParsePattern(tt.name)
		require.NoError(t, err)
		require.Equal(t, tt.p, p)
	}
	require.Equal(t, PatternMoving, Pattern(0))
	require.Equal(t, "Pattern(7)", Pattern(7).String())
	for _, s := range []string{"", "Moving", "stamp_only", "bars"} {
		_, err := ParsePattern(s)
		require.ErrorIs(t, err, ErrPattern)
		require.ErrorContains(t, err, fmt.Sprintf("%q", s))
		require.ErrorContains(t, err, `"moving", "static", "stamp-only"`)
	}
	_, err := NewRenderer(layout1080p, Pattern(3))
	require.ErrorIs(t, err, ErrPattern)
	require.ErrorContains(t, err, "3")
}

// layouts used by the rendering tests.
var renderLayouts = []struct {
	name string
	l    Layout
}{
	{"1080p", layout1080p},
	{"padded", Layout{Width: 640, Height: 480, YOffset: 64, YStride: 704, UVOffset: 64 + 704*480 + 100, UVStride: 768}},
	{"uv-first", Layout{Width: 96, Height: 16, UVOffset: 0, UVStride: 96, YOffset: 8 * 96, YStride: 96}},
	{"tiny", Layout{Width: 64, Height: 8, YStride: 64, UVOffset: 512, UVStride: 64}},
}

func TestRenderStamps(t *testing.T) {
	for _, tl := range renderLayouts {
		for _, p := range []Pattern{PatternMoving, PatternStatic, PatternStampOnly} {
			t.Run(tl.name+"/"+p.String(), func(t *testing.T) {
				r, err := NewRenderer(tl.l, p)
				require.NoError(t, err)
				require.Equal(t, tl.l, r.Layout())
				require.Equal(t, p, r.Pattern())
				const extra = 333
				dst := surface(tl.l, extra, 0xAA)
				for _, seq := range []uint64{0, 1, 2, 1000, math.MaxUint64} {
					require.NoError(t, r.Render(dst, seq, int64(seq)*33_333_333))
					info, err := stamp.Verify(dst[tl.l.YOffset:], tl.l.YStride, tl.l.Width, seq)
					require.NoError(t, err)
					require.Equal(t, stamp.Info{Seq: seq, MonoNS: int64(seq) * 33_333_333}, info)
					requireUntouchedOutside(t, tl.l, dst, 0xAA)
				}
				err = r.Render(dst[:tl.l.Size()-1], 1, 1)
				require.ErrorIs(t, err, ErrLayout)
				require.ErrorContains(t, err, fmt.Sprintf("%d bytes", tl.l.Size()))
			})
		}
	}
}

func TestMoving(t *testing.T) {
	for _, tl := range renderLayouts {
		t.Run(tl.name, func(t *testing.T) {
			l := tl.l
			r, err := NewRenderer(l, PatternMoving)
			require.NoError(t, err)
			a, b := surface(l, 0, 0), surface(l, 0, 0)
			require.NoError(t, r.Render(a, 1, 0))
			require.NoError(t, r.Render(b, 2, 0))
			pa, pb := picture(l, a), picture(l, b)
			require.NotEqual(t, pa, pb, "seq 1 and 2 render the same picture")

			// Rendering is a pure function of seq: re-rendering seq 1 over
			// frame 2 gives frame 1 again (no leftovers, e.g. of the box).
			require.NoError(t, r.Render(b, 1, 0))
			require.Equal(t, pa, picture(l, b))

			// Scrolling: away from the box, pixel x of frame 2 is pixel x+4 of
			// frame 1. Check the last row (below the box at seq 1 and 2 for
			// frames tall enough to have one) and the last UV row.
			w := l.Width
			r1, r2 := surface(l, 0, 0), surface(l, 0, 0)
			require.NoError(t, r.Render(r1, 1, 0))
			require.NoError(t, r.Render(r2, 2, 0))
			if l.Height > stamp.Rows {
				last := l.YOffset + (l.Height-1)*l.YStride
				for x := range w {
					require.Equal(t, r1[last+(x+4)%w], r2[last+x], "x=%d", x)
				}
			}
			lastUV := l.UVOffset + (l.Height/2-1)*l.UVStride
			for x := range w {
				require.Equal(t, r1[lastUV+(x+4)%w], r2[lastUV+x], "uv x=%d", x)
			}
		})
	}
}

func TestMovingBox(t *testing.T) {
	l := layout1080p
	r, err := NewRenderer(l, PatternMoving)
	require.NoError(t, err)
	dst := surface(l, 0, 0)
	for _, seq := range []uint64{0, 1, 2, 3, 100, 239, 240, 241, 1 << 40, math.MaxUint64} {
		require.NoError(t, r.Render(dst, seq, 0))
		bx, by := bounce(seq, 8, r.boxXMax), stamp.Rows+bounce(seq, 4, r.boxYMax)
		require.Zero(t, bx%2)
		require.Zero(t, by%2)
		require.LessOrEqual(t, bx+r.boxW, l.Width)
		require.LessOrEqual(t, by+r.boxH, l.Height)
		// Box corners are white, the pixels just outside are bars (no bar
		// is as bright as 235).
		y := func(x, row int) byte { return dst[l.YOffset+row*l.YStride+x] }
		uv := func(x, row int) byte { return dst[l.UVOffset+row/2*l.UVStride+x] }
		for _, p := range [][2]int{{bx, by}, {bx + r.boxW - 1, by}, {bx, by + r.boxH - 1}, {bx + r.boxW - 1, by + r.boxH - 1}} {
			require.Equal(t, byte(boxY), y(p[0], p[1]), "seq %d box at (%d,%d)", seq, bx, by)
			require.Equal(t, byte(boxUV), uv(p[0]&^1, p[1]))
			require.Equal(t, byte(boxUV), uv(p[0]|1, p[1]))
		}
		if by+r.boxH < l.Height {
			require.NotEqual(t, byte(boxY), y(bx, by+r.boxH))
		}
		if bx > 0 {
			require.NotEqual(t, byte(boxY), y(bx-1, by))
		}
	}
}

func TestStatic(t *testing.T) {
	for _, tl := range renderLayouts {
		t.Run(tl.name, func(t *testing.T) {
			l := tl.l
			r, err := NewRenderer(l, PatternStatic)
			require.NoError(t, err)
			a, b := surface(l, 0, 0x11), surface(l, 0, 0x22)
			require.NoError(t, r.Render(a, 1, 10))
			require.NoError(t, r.Render(b, 2, 20))
			require.Equal(t, picture(l, a), picture(l, b))
			for row := range l.Height {
				for x := range l.Width {
					if got, want := b[l.YOffset+row*l.YStride+x], StaticY(x, row); got != want && !inStamp(l, x, row) {
						require.Failf(t, "wrong luma", "Y(%d,%d) = %d, want %d", x, row, got, want)
					}
				}
			}
			for cy := range l.Height / 2 {
				for cx := range l.Width / 2 {
					cb, cr := StaticUV(cx, cy)
					o := l.UVOffset + cy*l.UVStride + 2*cx
					if b[o] != cb || b[o+1] != cr {
						require.Failf(t, "wrong chroma", "CbCr(%d,%d) = %d,%d, want %d,%d", cx, cy, b[o], b[o+1], cb, cr)
					}
				}
			}
		})
	}
}

func TestStaticFormulas(t *testing.T) {
	for _, tt := range []struct {
		x, y int
		want uint8
	}{{0, 0, 16}, {1, 0, 19}, {0, 1, 21}, {73, 1, 16 + 224%220}, {100, 200, 16 + 1300%220}, {-1, 0, 16 + 217}} {
		require.Equal(t, tt.want, StaticY(tt.x, tt.y), "StaticY(%d,%d)", tt.x, tt.y)
	}
	for _, tt := range []struct {
		cx, cy int
		cb, cr uint8
	}{{0, 0, 64, 64}, {1, 0, 65, 66}, {0, 1, 66, 65}, {127, 0, 191, 64 + 254%128}, {-1, 0, 64 + 127, 64 + 126}} {
		cb, cr := StaticUV(tt.cx, tt.cy)
		require.Equal(t, tt.cb, cb, "Cb(%d,%d)", tt.cx, tt.cy)
		require.Equal(t, tt.cr, cr, "Cr(%d,%d)", tt.cx, tt.cy)
	}
}

func TestStampOnly(t *testing.T) {
	for _, tl := range renderLayouts {
		t.Run(tl.name, func(t *testing.T) {
			l := tl.l
			r, err := NewRenderer(l, PatternStampOnly)
			require.NoError(t, err)
			dst := surface(l, 100, 0xAA)
			for seq := range uint64(3) {
				require.NoError(t, r.Render(dst, seq, 0))
				_, err := stamp.Verify(dst[l.YOffset:], l.YStride, l.Width, seq)
				require.NoError(t, err)
				for i, v := range dst {
					if v == 0xAA {
						continue
					}
					if rel := i - l.YOffset; rel < 0 || !inStamp(l, rel%l.YStride, rel/l.YStride) {
						require.Failf(t, "byte outside the stamp region written", "offset %d = 0x%02x", i, v)
					}
				}
			}
		})
	}
}

// TestDrawSkipsStampRegion checks the producer ordering Render relies on:
// after stamp.Invalidate, drawing the picture never touches the stamp
// region, so the old stamp stays invalid until the new one is written last.
func TestDrawSkipsStampRegion(t *testing.T) {
	for _, tl := range renderLayouts {
		l := tl.l
		for _, p := range []Pattern{PatternMoving, PatternStatic} {
			t.Run(tl.name+"/"+p.String(), func(t *testing.T) {
				r, err := NewRenderer(l, p)
				require.NoError(t, err)
				dst := surface(l, 0, 0)
				require.NoError(t, r.Render(dst, 5, 0))
				y := dst[l.YOffset:]
				require.NoError(t, stamp.Invalidate(y, l.YStride, l.Width))
				region := func() []byte {
					var out []byte
					for row := range stamp.Rows {
						out = append(out, y[row*l.YStride:row*l.YStride+stamp.RegionWidth(l.Width)]...)
					}
					return out
				}
				before := region()
				if p == PatternMoving {
					r.drawMoving(dst, 6)
				} else {
					r.drawStatic(dst)
				}
				require.Equal(t, before, region())
				_, err = stamp.Read(y, l.YStride, l.Width)
				require.ErrorIs(t, err, stamp.ErrNoStamp)
			})
		}
	}
}

func TestRenderReplacesStamp(t *testing.T) {
	l := layout1080p
	for _, p := range []Pattern{PatternMoving, PatternStatic, PatternStampOnly} {
		r, err := NewRenderer(l, p)
		require.NoError(t, err)
		dst := surface(l, 0, 0)
		require.NoError(t, r.Render(dst, 5, 0))
		require.NoError(t, r.Render(dst, 6, 0))
		_, err = stamp.Verify(dst[l.YOffset:], l.YStride, l.Width, 5)
		require.ErrorIs(t, err, stamp.ErrSeq, p.String())
	}
}

func TestConcurrentRender(t *testing.T) {
	l := Layout{Width: 320, Height: 240, YStride: 320, UVOffset: 320 * 240, UVStride: 320}
	r, err := NewRenderer(l, PatternMoving)
	require.NoError(t, err)
	want := surface(l, 0, 0)
	require.NoError(t, r.Render(want, 7, 7))
	done := make(chan []byte)
	for range 4 {
		go func() {
			dst := surface(l, 0, 0)
			for range 20 {
				if err := r.Render(dst, 7, 7); err != nil {
					panic(err)
				}
			}
			done <- dst
		}()
	}
	for range 4 {
		require.Equal(t, want, <-done)
	}
}

func BenchmarkRender1080p(b *testing.B) {
	for _, p := range []Pattern{PatternMoving, PatternStatic, PatternStampOnly} {
		b.Run(p.String(), func(b *testing.B) {
			r, err := NewRenderer(layout1080p, p)
			if err != nil {
				b.Fatal(err)
			}
			dst := surface(layout1080p, 0, 0)
			b.SetBytes(int64(layout1080p.Width * layout1080p.Height * 3 / 2))
			seq := uint64(0)
			for b.Loop() {
				seq++
				if err := r.Render(dst, seq, int64(seq)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	l := layout1080p
	r, err := NewRenderer(l, PatternStampOnly)
	if err != nil {
		b.Fatal(err)
	}
	dst := surface(l, 0, 0)
	if err := r.Render(dst, 42, 0); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := stamp.Verify(dst[l.YOffset:], l.YStride, l.Width, 42); err != nil {
			b.Fatal(err)
		}
	}
}
