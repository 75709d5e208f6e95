// Package gpuframe renders framehub's test frames on a GPU and verifies them
// there: the kernels of kernels.h, compiled to kernels.ptx (embedded) and
// launched through package internal/cuda.
//
// A rendered frame is NV12 with a picture that changes in every byte from
// one frame to the next (see kernels.h) and the frame stamp of package
// sdk/stamp (format 1) in its Y plane's top rows, carrying the frame's
// sequence number and capture time under a CRC-32C. Verifying on the GPU
// checks the stamp and every picture byte against the sequence number the
// frame's metadata names, and copies only a 32-byte result to the host: the
// consumer proves it got the right pixels without copying them.
//
// The same kernels.h is compiled for the CPU into the stand-in libcuda of
// the tests (internal/cuda/standin), and TestStampMatchesGo checks its
// stamp byte for byte against sdk/stamp; bench/gpu/probe.c checks the
// PTX's output against that C code on a real GPU.
package gpuframe

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/framehub/framehub/internal/cuda"
	"github.com/framehub/framehub/sdk/stamp"
)

// ptx is kernels.ptx, generated from kernels.cu by nvcc (see kernels.cu).
//
//go:embed kernels.ptx
var ptx []byte

// header is kernels.h, for the stand-in library's build.
//
//go:embed kernels.h
var header []byte

// PTX returns a copy of the embedded PTX module.
func PTX() []byte { return append([]byte(nil), ptx...) }

// Header returns a copy of kernels.h, the kernels' C source.
func Header() []byte { return append([]byte(nil), header...) }

// Kernel names, as kernels.cu exports them.
const (
	kernRenderPicture = "fh_render_picture"
	kernRenderStamp   = "fh_render_stamp"
	kernVerifyStamp   = "fh_verify_stamp"
	kernVerifyPicture = "fh_verify_picture"
)

// nParams is FH_NPARAMS: the kernels' parameters are fh_args' fields.
const nParams = 10

// blockSize is the threads per block of the picture kernels.
const blockSize = 256

// Layout says where an NV12 frame lies in a surface: offsets and strides in
// bytes, Width and Height in pixels.
type Layout struct {
	Width, Height      int
	YOffset, YStride   int
	UVOffset, UVStride int
}

// check validates l against a surface of size bytes.
func (l Layout) check(size int) error {
	switch {
	case l.Width < stamp.MinWidth || l.Width%2 != 0 || l.Height < stamp.Rows || l.Height%2 != 0:
		return fmt.Errorf("gpuframe: %dx%d: width must be even and >= %d, height even and >= %d", l.Width, l.Height, stamp.MinWidth, stamp.Rows)
	case l.YStride < l.Width || l.UVStride < l.Width:
		return fmt.Errorf("gpuframe: strides %d/%d below width %d", l.YStride, l.UVStride, l.Width)
	case l.YOffset < 0 || l.UVOffset < 0:
		return fmt.Errorf("gpuframe: negative plane offset %d/%d", l.YOffset, l.UVOffset)
	case l.YOffset+l.YStride*l.Height > size || l.UVOffset+l.UVStride*(l.Height/2) > size:
		return fmt.Errorf("gpuframe: %dx%d layout (Y %d+%d×%d, UV %d+%d×%d) exceeds a surface of %d bytes",
			l.Width, l.Height, l.YOffset, l.YStride, l.Height, l.UVOffset, l.UVStride, l.Height/2, size)
	case l.YOffset+l.YStride*l.Height > 1<<32 || l.UVOffset > 1<<32:
		return fmt.Errorf("gpuframe: layout beyond 4 GiB")
	}
	return nil
}

// threads is fh_picture_threads: one per 4 bytes of every row.
func (l Layout) threads() int { return (l.Width + 3) / 4 * (l.Height + l.Height/2) }

// grid returns the picture kernels' launch size.
func (l Layout) grid() (cuda.Dim3, cuda.Dim3) {
	n := l.threads()
	return cuda.Dim3{X: uint32((n + blockSize - 1) / blockSize)}, cuda.Dim3{X: blockSize}
}

// setParams fills p with fh_args' fields in order.
func setParams(p *cuda.Params, base cuda.DevPtr, l Layout, seq uint64, mono int64, result cuda.DevPtr) {
	for i, v := range [nParams]uint64{
		uint64(base), uint64(l.Width), uint64(l.Height), uint64(l.YOffset), uint64(l.YStride),
		uint64(l.UVOffset), uint64(l.UVStride), seq, uint64(mono), uint64(result),
	} {
		p.Set(i, v)
	}
}

// Kernels is the loaded module. Close it after every Renderer and Verifier
// made from it.
type Kernels struct {
	ctx                         *cuda.Context
	mod                         cuda.Module
	render, stamp, vstamp, vpic cuda.Function
}

// Load loads image (nil: the embedded PTX) into ctx and looks up its
// kernels.
func Load(ctx *cuda.Context, image []byte) (*Kernels, error) {
	if image == nil {
		image = ptx
	}
	mod, err := ctx.LoadModule(image)
	if err != nil {
		return nil, fmt.Errorf("gpuframe: load kernels: %w", err)
	}
	k := &Kernels{ctx: ctx, mod: mod}
	for _, f := range []struct {
		name string
		dst  *cuda.Function
	}{{kernRenderPicture, &k.render}, {kernRenderStamp, &k.stamp}, {kernVerifyStamp, &k.vstamp}, {kernVerifyPicture, &k.vpic}} {
		if *f.dst, err = ctx.Function(mod, f.name); err != nil {
			_ = ctx.UnloadModule(mod)
			return nil, fmt.Errorf("gpuframe: %w", err)
		}
	}
	return k, nil
}

// Close unloads the module.
func (k *Kernels) Close() error { return k.ctx.UnloadModule(k.mod) }

// Renderer renders frames on a stream of its own. It is not safe for
// concurrent use.
type Renderer struct {
	k      *Kernels
	stream cuda.Stream
	params *cuda.Params
}

// NewRenderer creates a renderer. The caller must Close it.
func (k *Kernels) NewRenderer() (*Renderer, error) {
	s, err := k.ctx.NewStream()
	if err != nil {
		return nil, fmt.Errorf("gpuframe: renderer: %w", err)
	}
	return &Renderer{k: k, stream: s, params: cuda.NewParams(nParams)}, nil
}

// Render draws frame seq, stamped with seq and mono, into the surface of
// size bytes at base, and waits until the GPU has finished writing it
// (cuStreamSynchronize): when Render returns, the frame may be published,
// and another process that reads it afterwards sees every byte.
func (r *Renderer) Render(base cuda.DevPtr, size int, l Layout, seq uint64, mono int64) error {
	if err := l.check(size); err != nil {
		return err
	}
	setParams(r.params, base, l, seq, mono, 0)
	grid, block := l.grid()
	ctx := r.k.ctx
	if err := ctx.Launch(r.k.render, grid, block, r.stream, r.params); err != nil {
		return fmt.Errorf("gpuframe: render frame %d: %w", seq, err)
	}
	if err := ctx.Launch(r.k.stamp, cuda.Dim3{X: 1}, cuda.Dim3{X: 1}, r.stream, r.params); err != nil {
		return fmt.Errorf("gpuframe: stamp frame %d: %w", seq, err)
	}
	if err := ctx.Synchronize(r.stream); err != nil {
		return fmt.Errorf("gpuframe: render frame %d: %w", seq, err)
	}
	return nil
}

// Close destroys the renderer's stream.
func (r *Renderer) Close() error { return r.k.ctx.DestroyStream(r.stream) }

// Status is the stamp check's outcome (FH_OK, FH_NO_STAMP,
// FH_BAD_CHECKSUM in kernels.h).
type Status uint32

// Status values.
const (
	StatusOK          Status = 0
	StatusNoStamp     Status = 1
	StatusBadChecksum Status = 2
)

// ErrPixels reports picture bytes that differ from the frame's.
var ErrPixels = errors.New("gpuframe: picture differs from the frame's")

// Result is what the verify kernels found (fh_result).
type Result struct {
	Status     Status
	Mismatches uint32 // picture bytes that differ from frame seq's
	Seq        uint64 // the stamp's sequence number (StatusOK)
	Mono       int64  // the stamp's capture time (StatusOK)
	FirstBad   uint32 // lowest thread index that found a mismatch
}

// Err is nil when the frame is frame wantSeq, intact. Otherwise it wraps
// stamp.ErrNoStamp, stamp.ErrChecksum, stamp.ErrSeq or ErrPixels.
func (r Result) Err(wantSeq uint64) error {
	switch {
	case r.Status == StatusNoStamp:
		return fmt.Errorf("gpuframe: frame %d: %w", wantSeq, stamp.ErrNoStamp)
	case r.Status == StatusBadChecksum:
		return fmt.Errorf("gpuframe: frame %d: %w", wantSeq, stamp.ErrChecksum)
	case r.Status != StatusOK:
		return fmt.Errorf("gpuframe: frame %d: unknown status %d", wantSeq, r.Status)
	case r.Seq != wantSeq:
		return fmt.Errorf("gpuframe: frame %d holds the stamp of frame %d: %w", wantSeq, r.Seq, stamp.ErrSeq)
	case r.Mismatches != 0:
		return fmt.Errorf("gpuframe: frame %d: %d bytes differ, the first near thread %d: %w", wantSeq, r.Mismatches, r.FirstBad, ErrPixels)
	}
	return nil
}

// resultSize is sizeof(fh_result).
const resultSize = 32

// Verifier checks frames on a stream of its own, with a 32-byte result
// buffer in device memory. It is not safe for concurrent use.
type Verifier struct {
	k      *Kernels
	stream cuda.Stream
	result cuda.DevPtr
	params *cuda.Params
	host   []byte
}

// NewVerifier creates a verifier. The caller must Close it.
func (k *Kernels) NewVerifier() (*Verifier, error) {
	s, err := k.ctx.NewStream()
	if err != nil {
		return nil, fmt.Errorf("gpuframe: verifier: %w", err)
	}
	res, err := k.ctx.Alloc(resultSize)
	if err != nil {
		_ = k.ctx.DestroyStream(s)
		return nil, fmt.Errorf("gpuframe: verifier: %w", err)
	}
	return &Verifier{k: k, stream: s, result: res, params: cuda.NewParams(nParams), host: make([]byte, resultSize)}, nil
}

// Verify checks the frame in the size-byte surface at base against frame
// seq on the GPU, waits for the check and copies its 32-byte result to the
// host. The surface may be mapped read-only.
func (v *Verifier) Verify(base cuda.DevPtr, size int, l Layout, seq uint64) (Result, error) {
	if err := l.check(size); err != nil {
		return Result{}, err
	}
	setParams(v.params, base, l, seq, 0, v.result)
	grid, block := l.grid()
	ctx := v.k.ctx
	if err := ctx.Launch(v.k.vstamp, cuda.Dim3{X: 1}, cuda.Dim3{X: 1}, v.stream, v.params); err != nil {
		return Result{}, fmt.Errorf("gpuframe: verify frame %d: %w", seq, err)
	}
	if err := ctx.Launch(v.k.vpic, grid, block, v.stream, v.params); err != nil {
		return Result{}, fmt.Errorf("gpuframe: verify frame %d: %w", seq, err)
	}
	if err := ctx.Synchronize(v.stream); err != nil {
		return Result{}, fmt.Errorf("gpuframe: verify frame %d: %w", seq, err)
	}
	if err := ctx.CopyToHost(v.host, v.result); err != nil {
		return Result{}, fmt.Errorf("gpuframe: verify frame %d: %w", seq, err)
	}
	le := binary.LittleEndian
	b := v.host
	return Result{
		Status: Status(le.Uint32(b[0:])), Mismatches: le.Uint32(b[4:]), Seq: le.Uint64(b[8:]),
		Mono: int64(le.Uint64(b[16:])), FirstBad: le.Uint32(b[24:]),
	}, nil
}

// Close frees the verifier's result buffer and stream.
func (v *Verifier) Close() error {
	return errors.Join(v.k.ctx.Free(v.result), v.k.ctx.DestroyStream(v.stream))
}
