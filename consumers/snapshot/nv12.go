package snapshot

import (
	"fmt"
	"image"
)

// NV12 is a read-only view of one NV12 frame: a full-resolution Y plane and a
// half-resolution plane of interleaved Cb, Cr pairs. The slices usually alias
// a frame's shared mapping, so a view is valid only while the frame's lease is.
type NV12 struct {
	Width, Height int
	Y             []byte
	YStride       int
	UV            []byte
	UVStride      int
}

// Validate checks that the planes hold Width×Height pixels.
func (p NV12) Validate() error {
	if p.Width < 2 || p.Height < 2 || p.Width%2 != 0 || p.Height%2 != 0 {
		return fmt.Errorf("snapshot: NV12 frame %dx%d: width and height must be even and ≥ 2", p.Width, p.Height)
	}
	if p.YStride < p.Width || p.UVStride < p.Width {
		return fmt.Errorf("snapshot: NV12 frame %dx%d: strides Y %d, UV %d below the width", p.Width, p.Height, p.YStride, p.UVStride)
	}
	if need := (p.Height-1)*p.YStride + p.Width; len(p.Y) < need {
		return fmt.Errorf("snapshot: NV12 frame %dx%d: Y plane of %d bytes, need %d", p.Width, p.Height, len(p.Y), need)
	}
	if need := (p.Height/2-1)*p.UVStride + p.Width; len(p.UV) < need {
		return fmt.Errorf("snapshot: NV12 frame %dx%d: UV plane of %d bytes, need %d", p.Width, p.Height, len(p.UV), need)
	}
	return nil
}

// ycbcr returns p as a 4:2:0 image of w×h pixels (w, h even, at most p's
// size). At full size the Y plane is aliased, not copied: only the chroma is
// de-interleaved, so the image is valid only while p is. Smaller sizes are
// box-filtered into fresh planes.
func (p NV12) ycbcr(w, h int) *image.YCbCr {
	img := &image.YCbCr{
		SubsampleRatio: image.YCbCrSubsampleRatio420,
		Rect:           image.Rect(0, 0, w, h),
		CStride:        w / 2,
		Cb:             make([]byte, w/2*(h/2)),
		Cr:             make([]byte, w/2*(h/2)),
	}
	if w == p.Width && h == p.Height {
		img.Y, img.YStride = p.Y, p.YStride
		deinterleave(img.Cb, img.Cr, w/2, h/2, p.UV, p.UVStride)
		return img
	}
	img.Y, img.YStride = make([]byte, w*h), w
	boxScale(img.Y, w, 1, w, h, p.Y, p.YStride, 1, p.Width, p.Height)
	boxScale(img.Cb, w/2, 1, w/2, h/2, p.UV, p.UVStride, 2, p.Width/2, p.Height/2)
	boxScale(img.Cr, w/2, 1, w/2, h/2, p.UV[1:], p.UVStride, 2, p.Width/2, p.Height/2)
	return img
}

// packedNV12 writes p scaled to w×h into dst as packed NV12 (strides equal to
// the width, UV right after Y) and returns the bytes written. dst must hold
// w*h*3/2 bytes.
func (p NV12) packedNV12(dst []byte, w, h int) []byte {
	dst = dst[:w*h*3/2]
	y, uv := dst[:w*h], dst[w*h:]
	if w == p.Width && h == p.Height {
		for r := range h {
			copy(y[r*w:(r+1)*w], p.Y[r*p.YStride:])
		}
		for r := range h / 2 {
			copy(uv[r*w:(r+1)*w], p.UV[r*p.UVStride:])
		}
		return dst
	}
	boxScale(y, w, 1, w, h, p.Y, p.YStride, 1, p.Width, p.Height)
	boxScale(uv, w, 2, w/2, h/2, p.UV, p.UVStride, 2, p.Width/2, p.Height/2)
	boxScale(uv[1:], w, 2, w/2, h/2, p.UV[1:], p.UVStride, 2, p.Width/2, p.Height/2)
	return dst
}

// deinterleave splits cw×ch interleaved CbCr pairs into two planes.
func deinterleave(cb, cr []byte, cw, ch int, uv []byte, stride int) {
	for r := range ch {
		src := uv[r*stride : r*stride+2*cw]
		db, dr := cb[r*cw:(r+1)*cw], cr[r*cw:(r+1)*cw]
		for i := range cw {
			db[i], dr[i] = src[2*i], src[2*i+1]
		}
	}
}

// BoxBounds returns the source range [lo, hi) that output sample i of n
// averages when a dimension of size src is box-filtered down to n ≤ src
// samples. Every source sample belongs to exactly one box.
func BoxBounds(i, n, src int) (lo, hi int) {
	return i * src / n, (i + 1) * src / n
}

// boxScale box-filters an sw×sh plane of samples step bytes apart (1 for a
// plain plane, 2 for one component of interleaved chroma) down to dw×dh
// samples dstStep bytes apart. dw ≤ sw and dh ≤ sh, so every box holds at
// least one sample. It is the simplest filter without aliasing artefacts
// worth the name, and costs one add per source sample.
func boxScale(dst []byte, dstStride, dstStep, dw, dh int, src []byte, srcStride, step, sw, sh int) {
	xs := make([]int, dw+1)
	for i := range xs {
		xs[i] = i * sw / dw
	}
	acc := make([]uint32, sw)
	for dy := range dh {
		y0, y1 := BoxBounds(dy, dh, sh)
		clear(acc)
		for sy := y0; sy < y1; sy++ {
			row := src[sy*srcStride:]
			if step == 1 {
				row = row[:len(acc)] // one bounds check per row, not per sample
				for sx, v := range row {
					acc[sx] += uint32(v)
				}
				continue
			}
			row = row[:step*(len(acc)-1)+1]
			for sx := range acc {
				acc[sx] += uint32(row[sx*step])
			}
		}
		out := dst[dy*dstStride:]
		rows := uint32(y1 - y0)
		for dx := range dw {
			var sum uint32
			for _, v := range acc[xs[dx]:xs[dx+1]] {
				sum += v
			}
			n := rows * uint32(xs[dx+1]-xs[dx])
			out[dx*dstStep] = uint8((sum + n/2) / n)
		}
	}
}
