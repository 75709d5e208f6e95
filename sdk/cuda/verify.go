package cuda

import (
	"errors"
	"fmt"

	icuda "github.com/framehub/framehub/internal/cuda"
	"github.com/framehub/framehub/internal/gpuframe"
)

// ErrPixels is wrapped by StampVerifier.Verify's error when a frame's
// stamp is right but its picture differs from the test pattern of that
// frame.
var ErrPixels = errors.New("sdk/cuda: picture differs from the test pattern")

// StampVerifier checks frames of framehub's GPU test source (the
// producer's -source gpu) on the GPU: their stamp (package sdk/stamp's
// format) and every byte of their test pattern, in two kernels, copying
// only a 32-byte result to the host. Pixels never leave the GPU. It is for
// tests, benchmarks and examples that need to prove a frame is the one its
// metadata names: a camera's frames carry no stamp.
//
// A StampVerifier runs in the importer's context for its GPU and is not
// safe for concurrent use. Close it before the Importer.
type StampVerifier struct {
	ctx    *icuda.Context
	k      *gpuframe.Kernels
	v      *gpuframe.Verifier
	device string
}

// NewStampVerifier loads the verification kernels on the GPU that holds
// frame d (a Frame that Map returned).
func (im *Importer) NewStampVerifier(d Frame) (*StampVerifier, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.closed {
		return nil, errors.New("sdk/cuda: importer closed")
	}
	ctx, err := im.contextLocked(icuda.UUID(d.UUID))
	if err != nil {
		return nil, err
	}
	k, err := gpuframe.Load(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sdk/cuda: %w", err)
	}
	v, err := k.NewVerifier()
	if err != nil {
		return nil, fmt.Errorf("sdk/cuda: %w", errors.Join(err, k.Close()))
	}
	dev := ctx.Device()
	return &StampVerifier{ctx: ctx, k: k, v: v, device: dev.Name + " " + dev.UUID.String()}, nil
}

// Device names the GPU the verifier runs on: its name and UUID.
func (sv *StampVerifier) Device() string { return sv.device }

// Verify checks that the raw NV12 frame d, of the stream's width and
// height, is frame seq of the test source, intact; it returns when the
// GPU has finished (the frame may be released then). The error wraps
// stamp.ErrNoStamp (no stamp: not a test source), stamp.ErrChecksum
// (torn or overwritten), stamp.ErrSeq (another frame's) or ErrPixels.
func (sv *StampVerifier) Verify(d Frame, width, height int, seq uint64) error {
	if len(d.Planes) != 2 {
		return fmt.Errorf("sdk/cuda: frame %d has %d planes, want NV12's 2", seq, len(d.Planes))
	}
	l := gpuframe.Layout{
		Width: width, Height: height,
		YOffset: int(d.Planes[0].Ptr - d.Ptr), YStride: d.Planes[0].Pitch,
		UVOffset: int(d.Planes[1].Ptr - d.Ptr), UVStride: d.Planes[1].Pitch,
	}
	r, err := sv.v.Verify(icuda.DevPtr(d.Ptr), d.Size, l, seq)
	if err != nil {
		return fmt.Errorf("sdk/cuda: %w", err)
	}
	if err := r.Err(seq); errors.Is(err, gpuframe.ErrPixels) {
		return fmt.Errorf("sdk/cuda: frame %d: %d bytes differ, the first near thread %d: %w", seq, r.Mismatches, r.FirstBad, ErrPixels)
	} else if err != nil {
		return fmt.Errorf("sdk/cuda: %w", err)
	}
	return nil
}

// Close frees the verifier's kernels and buffers.
func (sv *StampVerifier) Close() error {
	return errors.Join(sv.v.Close(), sv.k.Close())
}
