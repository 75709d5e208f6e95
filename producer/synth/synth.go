// Package synth renders synthetic NV12 frames, in pure Go, into shared
// surfaces, and stamps each frame (see package sdk/stamp) so consumers
// can prove which frame the pixels belong to.
//
// Three patterns are available:
//
//   - PatternMoving (the default, "moving"): eight 75% colour bars (BT.601
//     limited range: white, yellow, cyan, green, magenta, red, blue, black)
//     that scroll left by 4 pixels per frame, plus a white box (Y=235,
//     Cb=Cr=128) of about 1/8 of the frame size bouncing across the frame
//     below the stamp rows.
//   - PatternStatic ("static"): the same picture every frame, given by
//     StaticY and StaticUV, so that end-to-end tests can check any pixel.
//   - PatternStampOnly ("stamp-only"): only the stamp region is written; the
//     rest of the surface keeps whatever it held. For benchmarks of the
//     transport, where rendering a whole frame would dominate.
//
// Rendering copies precomputed rows, so its cost is that of writing the
// frame's bytes once (about 3 MB for 1080p).
package synth

import (
	"errors"
	"fmt"
	"math"

	"github.com/framehub/framehub/sdk/stamp"
)

// MaxDimension is the largest accepted frame width or height in pixels.
const MaxDimension = 16384

// Colour values used by PatternMoving.
const (
	boxY  = 235 // white box luma
	boxUV = 128 // white box chroma (Cb and Cr)
)

// Sentinel errors; errors returned by this package wrap one of them and name
// the offending values.
var (
	// ErrLayout reports an invalid Layout, or a surface too small for it.
	ErrLayout = errors.New("synth: invalid layout")
	// ErrPattern reports an unknown pattern.
	ErrPattern = errors.New("synth: unknown pattern")
)

// Layout describes where an NV12 frame lives inside a surface buffer. All
// values are in bytes except Width and Height (pixels).
//
// The Y plane is Height rows of Width bytes; row y starts at
// YOffset + y*YStride. The UV plane is Height/2 rows of Width bytes
// (Width/2 interleaved Cb, Cr pairs); row cy starts at UVOffset + cy*UVStride.
type Layout struct {
	// Width and Height are the frame size in pixels; both must be even,
	// Width at least stamp.MinWidth, Height at least stamp.Rows, and neither
	// above MaxDimension.
	Width, Height int
	// YOffset is the offset of the Y plane in the surface.
	YOffset int
	// YStride is the distance between Y rows; at least Width.
	YStride int
	// UVOffset is the offset of the interleaved CbCr plane in the surface.
	UVOffset int
	// UVStride is the distance between UV rows; at least Width.
	UVStride int
}

// planeEnd returns the offset one past the last byte of a plane, checking
// for overflow. rows >= 1.
func planeEnd(name string, off, stride, rows, width int) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: %s offset %d is negative", ErrLayout, name, off)
	}
	if stride < width {
		return 0, fmt.Errorf("%w: %s stride %d is below width %d", ErrLayout, name, stride, width)
	}
	if rows > 1 && stride > (math.MaxInt-off-width)/(rows-1) {
		return 0, fmt.Errorf("%w: %s plane at offset %d with stride %d and %d rows overflows", ErrLayout, name, off, stride, rows)
	}
	return off + (rows-1)*stride + width, nil
}

// ends validates l and returns the end offsets of its Y and UV planes.
func (l Layout) ends() (yEnd, uvEnd int, err error) {
	for _, d := range []struct {
		name     string
		v, least int
	}{{"width", l.Width, stamp.MinWidth}, {"height", l.Height, stamp.Rows}} {
		if d.v < d.least || d.v > MaxDimension || d.v%2 != 0 {
			return 0, 0, fmt.Errorf("%w: %s %d must be even and within [%d, %d]", ErrLayout, d.name, d.v, d.least, MaxDimension)
		}
	}
	if yEnd, err = planeEnd("Y", l.YOffset, l.YStride, l.Height, l.Width); err != nil {
		return 0, 0, err
	}
	if uvEnd, err = planeEnd("UV", l.UVOffset, l.UVStride, l.Height/2, l.Width); err != nil {
		return 0, 0, err
	}
	if yEnd > l.UVOffset && uvEnd > l.YOffset {
		return 0, 0, fmt.Errorf("%w: Y plane [%d, %d) overlaps UV plane [%d, %d)", ErrLayout, l.YOffset, yEnd, l.UVOffset, uvEnd)
	}
	return yEnd, uvEnd, nil
}

// Validate reports whether l describes a usable NV12 frame: even
// dimensions within limits, strides at least the width, non-negative
// offsets, and Y and UV planes that do not overlap (a plane spans from its
// offset to the last byte of its last row). The error wraps ErrLayout.
func (l Layout) Validate() error {
	_, _, err := l.ends()
	return err
}

// Size returns the smallest surface length that holds the frame: the end of
// whichever plane ends last. It returns 0 for an invalid layout.
func (l Layout) Size() int {
	yEnd, uvEnd, err := l.ends()
	if err != nil {
		return 0
	}
	return max(yEnd, uvEnd)
}

// Pattern selects what a Renderer draws. The zero value is PatternMoving.
type Pattern int

// The available patterns; see the package documentation.
const (
	// PatternMoving draws scrolling colour bars and a bouncing white box.
	PatternMoving Pattern = iota
	// PatternStatic draws the picture given by StaticY and StaticUV.
	PatternStatic
	// PatternStampOnly writes only the stamp region.
	PatternStampOnly
)

// validPatterns lists the names ParsePattern accepts, for error messages.
const validPatterns = `"moving", "static", "stamp-only"`

// String returns the pattern's name as accepted by ParsePattern, or
// "Pattern(n)" for an unknown value.
func (p Pattern) String() string {
	switch p {
	case PatternMoving:
		return "moving"
	case PatternStatic:
		return "static"
	case PatternStampOnly:
		return "stamp-only"
	}
	return fmt.Sprintf("Pattern(%d)", int(p))
}

// ParsePattern returns the pattern named s: "moving", "static" or
// "stamp-only". The error wraps ErrPattern and lists the valid names.
func ParsePattern(s string) (Pattern, error) {
	for _, p := range []Pattern{PatternMoving, PatternStatic, PatternStampOnly} {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w %q (valid: %s)", ErrPattern, s, validPatterns)
}

// StaticY returns the luma value of PatternStatic at pixel (x, y):
//
//	16 + (3*x + 5*y) mod 220
//
// (values 16..235; the modulo is non-negative). It holds for every pixel of
// the frame except the stamp region (rows 0..stamp.Rows-1, columns
// 0..min(Width, 256)-1), which carries the stamp instead. The pattern
// changes along both axes, so a wrong stride or offset is visible.
func StaticY(x, y int) uint8 {
	v := (3*x + 5*y) % 220
	if v < 0 {
		v += 220
	}
	return uint8(16 + v)
}

// StaticUV returns the chroma values of PatternStatic at chroma sample
// (cx, cy), i.e. UV plane row cy, bytes 2*cx (Cb) and 2*cx+1 (Cr), which
// covers pixels (2cx..2cx+1, 2cy..2cy+1):
//
//	Cb = 64 + (cx + 2*cy) mod 128
//	Cr = 64 + (2*cx + cy) mod 128
//
// (values 64..191; the modulo is non-negative). The stamp never touches the
// UV plane.
func StaticUV(cx, cy int) (cb, cr uint8) {
	b := (cx + 2*cy) % 128
	if b < 0 {
		b += 128
	}
	r := (2*cx + cy) % 128
	if r < 0 {
		r += 128
	}
	return uint8(64 + b), uint8(64 + r)
}

// bar holds the BT.601 limited-range values of one 75% colour bar.
type bar struct{ y, cb, cr uint8 }

// bars returns the eight 75% colour bars, left to right.
func bars() [8]bar {
	return [8]bar{
		{180, 128, 128}, // white
		{162, 44, 142},  // yellow
		{131, 156, 44},  // cyan
		{112, 72, 58},   // green
		{84, 184, 198},  // magenta
		{65, 100, 212},  // red
		{35, 212, 114},  // blue
		{16, 128, 128},  // black
	}
}

// Renderer draws frames of one layout and pattern. It is immutable after
// NewRenderer, so one Renderer may render into different surfaces from
// several goroutines at once.
type Renderer struct {
	l    Layout
	p    Pattern
	size int // l.Size()
	rw   int // stamp region width

	// PatternMoving: one period of the bars, twice (2*Width bytes), so that
	// a row shifted by s is ybars[s:s+Width]; same for the UV plane.
	ybars, uvbars []byte
	// PatternMoving: box fill rows (Width bytes) and geometry.
	boxYRow, boxUVRow []byte
	boxW, boxH        int
	boxXMax, boxYMax  int // box travel; boxW == 0 means no box

	// PatternStatic: the picture, rows packed Width bytes apart.
	sy, suv []byte
}

// NewRenderer validates l and p and precomputes what rendering needs: about
// 4*Width bytes for PatternMoving, 1.5*Width*Height bytes for PatternStatic
// and nothing for PatternStampOnly.
func NewRenderer(l Layout, p Pattern) (*Renderer, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	r := &Renderer{l: l, p: p, size: l.Size(), rw: stamp.RegionWidth(l.Width)}
	w, h := l.Width, l.Height
	switch p {
	case PatternMoving:
		bs := bars()
		r.ybars = make([]byte, 2*w)
		r.uvbars = make([]byte, 2*w)
		for x := range w {
			c := bs[x*len(bs)/w]
			r.ybars[x], r.ybars[x+w] = c.y, c.y
			if x%2 == 0 { // the chroma pair takes the colour of its left pixel
				r.uvbars[x], r.uvbars[x+w] = c.cb, c.cb
				r.uvbars[x+1], r.uvbars[x+1+w] = c.cr, c.cr
			}
		}
		r.boxW, r.boxH = (w/8)&^1, (h/8)&^1
		r.boxXMax, r.boxYMax = w-r.boxW, h-r.boxH-stamp.Rows
		if r.boxW < 2 || r.boxH < 2 || r.boxYMax < 0 {
			r.boxW, r.boxH = 0, 0
		} else {
			r.boxYRow = make([]byte, r.boxW)
			r.boxUVRow = make([]byte, r.boxW)
			for i := range r.boxW {
				r.boxYRow[i], r.boxUVRow[i] = boxY, boxUV
			}
		}
	case PatternStatic:
		r.sy = make([]byte, w*h)
		for y := range h {
			row := r.sy[y*w : (y+1)*w]
			for x := range row {
				row[x] = StaticY(x, y)
			}
		}
		r.suv = make([]byte, w*(h/2))
		for cy := range h / 2 {
			row := r.suv[cy*w : (cy+1)*w]
			for cx := range w / 2 {
				row[2*cx], row[2*cx+1] = StaticUV(cx, cy)
			}
		}
	case PatternStampOnly:
	default:
		return nil, fmt.Errorf("%w %d (valid: %s)", ErrPattern, int(p), validPatterns)
	}
	return r, nil
}

// Layout returns the layout r renders.
func (r *Renderer) Layout() Layout { return r.l }

// Pattern returns the pattern r renders.
func (r *Renderer) Pattern() Pattern { return r.p }

// Render draws frame seq, captured at monoNS, into the surface dst, which
// must be at least Layout().Size() bytes, and stamps it (stamp.Write into
// the Y plane). Bytes of dst outside the two planes (stride padding, gaps)
// are never written.
//
// For the moving and static patterns Render follows the stamp producer
// rules: it first invalidates the old stamp (stamp.Invalidate), then draws
// the picture (skipping the stamp region), and writes the new stamp last.
// PatternStampOnly writes the stamp region and nothing else.
func (r *Renderer) Render(dst []byte, seq uint64, monoNS int64) error {
	if len(dst) < r.size {
		return fmt.Errorf("%w: surface of %d bytes is smaller than the %d bytes the layout needs", ErrLayout, len(dst), r.size)
	}
	l := r.l
	y := dst[l.YOffset:]
	switch r.p {
	case PatternMoving, PatternStatic:
		if err := stamp.Invalidate(y, l.YStride, l.Width); err != nil {
			return fmt.Errorf("synth: invalidating stamp of frame %d: %w", seq, err)
		}
		if r.p == PatternMoving {
			r.drawMoving(dst, seq)
		} else {
			r.drawStatic(dst)
		}
	}
	if err := stamp.Write(y, l.YStride, l.Width, seq, monoNS); err != nil {
		return fmt.Errorf("synth: stamping frame %d: %w", seq, err)
	}
	return nil
}

// drawMoving draws frame seq of PatternMoving, except the stamp region.
func (r *Renderer) drawMoving(dst []byte, seq uint64) {
	l := r.l
	w := l.Width
	shift := int(seq%uint64(w)) * 4 % w // even, since w is even
	ysrc := r.ybars[shift : shift+w]
	for row := range l.Height {
		o := l.YOffset + row*l.YStride
		if row < stamp.Rows {
			copy(dst[o+r.rw:o+w], ysrc[r.rw:])
		} else {
			copy(dst[o:o+w], ysrc)
		}
	}
	uvsrc := r.uvbars[shift : shift+w]
	for row := range l.Height / 2 {
		o := l.UVOffset + row*l.UVStride
		copy(dst[o:o+w], uvsrc)
	}
	if r.boxW == 0 {
		return
	}
	bx := bounce(seq, 8, r.boxXMax)
	by := stamp.Rows + bounce(seq, 4, r.boxYMax)
	for row := by; row < by+r.boxH; row++ {
		o := l.YOffset + row*l.YStride + bx
		copy(dst[o:o+r.boxW], r.boxYRow)
	}
	for row := by / 2; row < (by+r.boxH)/2; row++ {
		o := l.UVOffset + row*l.UVStride + bx
		copy(dst[o:o+r.boxW], r.boxUVRow)
	}
}

// bounce returns the position at time seq of a point moving step (even)
// units per frame back and forth over [0, limit]. The result is even.
func bounce(seq uint64, step, limit int) int {
	if limit <= 0 {
		return 0
	}
	period := uint64(2 * limit)
	t := int(seq % period * uint64(step) % period)
	if t > limit {
		t = 2*limit - t
	}
	return t
}

// drawStatic copies the static picture, except the stamp region.
func (r *Renderer) drawStatic(dst []byte) {
	l := r.l
	w := l.Width
	for row := range l.Height {
		o := l.YOffset + row*l.YStride
		src := r.sy[row*w : (row+1)*w]
		if row < stamp.Rows {
			copy(dst[o+r.rw:o+w], src[r.rw:])
		} else {
			copy(dst[o:o+w], src)
		}
	}
	for row := range l.Height / 2 {
		o := l.UVOffset + row*l.UVStride
		copy(dst[o:o+w], r.suv[row*w:(row+1)*w])
	}
}
