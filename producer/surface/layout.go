package surface

import (
	"fmt"
	"os"

	"github.com/framehub/framehub/ipc"
)

// Layout limits.
const (
	// MinDimension and MaxDimension bound a frame's width and height.
	MinDimension = 2
	MaxDimension = 16384
	// DefaultAlign is the row alignment NV12 uses when align is 0.
	DefaultAlign = 64
	// MaxAlign is the largest row alignment NV12 accepts.
	MaxAlign = 4096
	// PlaneAlign is the alignment of every plane offset after the first:
	// 4096 bytes, a page on most machines, which hardware (V4L2 M2M, VA-API,
	// NVMM importers) accepts for plane offsets.
	PlaneAlign = 4096
)

// Layout is the layout of a raw video frame inside a surface.
type Layout struct {
	Format        string      // "NV12"
	Width, Height int         // pixels
	Planes        []ipc.Plane // planes, all in fd 0
	Size          int         // total bytes, rounded up to the page size
}

// NV12 returns the layout of a width×height NV12 frame in one surface:
//
//   - Y plane: offset 0, stride = width rounded up to align, size =
//     stride × height;
//   - UV plane (interleaved Cb/Cr, half height): offset = Y size rounded up
//     to PlaneAlign (4096, hardware friendly), same stride, size = stride ×
//     ceil(height/2);
//   - Size = end of the UV plane rounded up to the page size.
//
// align must be a power of two up to MaxAlign; 0 means DefaultAlign (64).
// width and height must be even and in [MinDimension, MaxDimension].
func NV12(width, height, align int) (Layout, error) {
	if align == 0 {
		align = DefaultAlign
	}
	if align < 0 || align > MaxAlign || align&(align-1) != 0 {
		return Layout{}, fmt.Errorf("surface: NV12 %dx%d: align %d is not a power of two in [1, %d]", width, height, align, MaxAlign)
	}
	if width < MinDimension || width > MaxDimension || height < MinDimension || height > MaxDimension {
		return Layout{}, fmt.Errorf("surface: NV12 %dx%d: width and height must be in [%d, %d]", width, height, MinDimension, MaxDimension)
	}
	if width%2 != 0 || height%2 != 0 {
		return Layout{}, fmt.Errorf("surface: NV12 %dx%d: width and height must be even (4:2:0 chroma)", width, height)
	}
	stride := alignUp(width, align)
	ySize := stride * height
	uvOffset := alignUp(ySize, PlaneAlign)
	uvSize := stride * ((height + 1) / 2)
	size := alignUp(uvOffset+uvSize, os.Getpagesize())
	// Largest case: 16384×16384 → about 403 MiB, fits uint32 offsets.
	return Layout{
		Format: "NV12",
		Width:  width,
		Height: height,
		Planes: []ipc.Plane{
			{Offset: 0, Stride: uint32(stride), Size: uint32(ySize)},
			{Offset: uint32(uvOffset), Stride: uint32(stride), Size: uint32(uvSize)},
		},
		Size: size,
	}, nil
}

// Plane returns plane i of a frame with this layout inside data (a surface's
// bytes): data[Offset:Offset+Size], with its capacity limited to its length
// so appends cannot run into the next plane. It panics if i is out of range
// or data is shorter than the plane's end, like slicing does.
func (l Layout) Plane(data []byte, i int) []byte {
	p := l.Planes[i]
	off, end := int(p.Offset), int(p.Offset)+int(p.Size)
	if end > len(data) {
		panic(fmt.Sprintf("surface: %s plane %d [%d:%d] beyond data of %d bytes", l.Format, i, off, end, len(data)))
	}
	return data[off:end:end]
}

// alignUp rounds n up to a multiple of a (a power of two).
func alignUp(n, a int) int {
	return (n + a - 1) &^ (a - 1)
}
