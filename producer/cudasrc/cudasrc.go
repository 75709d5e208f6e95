// Package cudasrc is a GPU test source: it renders stamped NV12 frames with
// CUDA kernels (internal/gpuframe) straight into a raw stream's surfaces,
// which live on the GPU (producer/surface/cudamem). No pixel is ever in host
// memory, on the producer's side or, with sdk/cuda, on the consumers'.
//
// Each frame is drawn on the source's own CUDA stream and the stream is
// synchronised before the frame is published: when consumers receive the
// Frame message the GPU has finished writing it (package sdk/cuda's
// documentation says what consumers must do in turn).
//
// Frames are paced and published by producer.Synthetic (its Draw hook), so
// the stream's leases, budgets, drops at the source and replay behave as for
// the CPU synthetic source.
package cudasrc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/framehub/framehub/internal/cuda"
	"github.com/framehub/framehub/internal/gpuframe"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/producer/surface/cudamem"
)

// Config configures a Source.
type Config struct {
	// Context is the GPU to render on. Required; the Source does not own it:
	// close it after the Source.
	Context *cuda.Context
	// Width and Height of the frames, in pixels. They default to 1920×1080;
	// both must be even, Width at least 64.
	Width, Height int
	// FPS paces the frames; 0 renders as fast as surfaces are free (the
	// source then waits for a surface instead of dropping).
	FPS float64
	// Frames stops the source after this many frames; 0 runs until the
	// context given to Run is done.
	Frames uint64
	// Export is what consumers receive: ipc.KindCUDA (default) or
	// ipc.KindDMABuf (see producer/surface/cudamem).
	Export ipc.Kind
	// PoolMin surfaces are allocated up front (default 4); the pool grows to
	// PoolMax (default 12).
	PoolMin, PoolMax int
	// Kernels is a PTX or cubin image to load instead of the embedded PTX
	// (a kernel rebuilt with nvcc on the GPU machine); nil for the embedded.
	Kernels []byte
}

// Source renders frames on a GPU into its pool's surfaces. Create it with
// New, attach a stream made from StreamConfig, Run it, and Close it after the
// producer's server is closed.
type Source struct {
	cfg      Config
	layout   surface.Layout
	glayout  gpuframe.Layout
	pool     *surface.Pool
	kernels  *gpuframe.Kernels
	renderer *gpuframe.Renderer

	frames, renderNanos, maxRenderNanos atomic.Int64
}

// Stats are a source's counters.
type Stats struct {
	Frames int64 // frames rendered
	// Render is the total wall time of rendering them, launch to the end of
	// the stream synchronisation; MaxRender the longest.
	Render, MaxRender time.Duration
}

// Stats returns the source's counters.
func (s *Source) Stats() Stats {
	return Stats{Frames: s.frames.Load(), Render: time.Duration(s.renderNanos.Load()), MaxRender: time.Duration(s.maxRenderNanos.Load())}
}

// New allocates the pool (PoolMin surfaces on the GPU) and loads the
// kernels. On error nothing stays allocated.
func New(cfg Config) (_ *Source, err error) {
	if cfg.Context == nil {
		return nil, errors.New("cudasrc: Config.Context is required")
	}
	if cfg.Width == 0 && cfg.Height == 0 {
		cfg.Width, cfg.Height = 1920, 1080
	}
	if cfg.PoolMin == 0 {
		cfg.PoolMin = 4
	}
	if cfg.PoolMax == 0 {
		cfg.PoolMax = 12
	}
	if cfg.FPS < 0 || math.IsNaN(cfg.FPS) || math.IsInf(cfg.FPS, 0) {
		return nil, fmt.Errorf("cudasrc: invalid FPS %v", cfg.FPS)
	}
	l, err := surface.NV12(cfg.Width, cfg.Height, 0)
	if err != nil {
		return nil, fmt.Errorf("cudasrc: %w", err)
	}
	s := &Source{cfg: cfg, layout: l, glayout: gpuframe.Layout{
		Width: l.Width, Height: l.Height,
		YOffset: int(l.Planes[0].Offset), YStride: int(l.Planes[0].Stride),
		UVOffset: int(l.Planes[1].Offset), UVStride: int(l.Planes[1].Stride),
	}}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
		}
	}()
	alloc, err := cudamem.NewAllocator(cudamem.Config{Context: cfg.Context, Export: cfg.Export})
	if err != nil {
		return nil, fmt.Errorf("cudasrc: %w", err)
	}
	if s.pool, err = surface.NewPool(surface.PoolConfig{Allocator: alloc, Size: l.Size, Min: cfg.PoolMin, Max: cfg.PoolMax}); err != nil {
		return nil, fmt.Errorf("cudasrc: %w", err)
	}
	if s.kernels, err = gpuframe.Load(cfg.Context, cfg.Kernels); err != nil {
		return nil, fmt.Errorf("cudasrc: %w", err)
	}
	if s.renderer, err = s.kernels.NewRenderer(); err != nil {
		return nil, fmt.Errorf("cudasrc: %w", err)
	}
	return s, nil
}

// Layout is the frames' layout inside a surface.
func (s *Source) Layout() surface.Layout { return s.layout }

// Pool is the source's pool; the stream does not own it.
func (s *Source) Pool() *surface.Pool { return s.pool }

// StreamConfig returns the config of a raw stream named name fed by this
// source (caps from the layout and FPS, the source's pool).
func (s *Source) StreamConfig(name string) producer.StreamConfig {
	fpsN, fpsD := uint32(0), uint32(1)
	if s.cfg.FPS > 0 {
		fpsN, fpsD = uint32(math.Round(s.cfg.FPS*1000)), 1000
	}
	return producer.StreamConfig{Name: name, Caps: producer.RawCaps(s.layout, fpsN, fpsD), Pool: s.pool}
}

// Run renders and publishes frames into st (a stream made from
// StreamConfig) until ctx is done or Config.Frames were produced.
func (s *Source) Run(ctx context.Context, st *producer.Stream) error {
	syn := &producer.Synthetic{Stream: st, Draw: s.draw, FPS: s.cfg.FPS, Frames: s.cfg.Frames}
	return syn.Run(ctx)
}

// draw renders frame seq into surf and waits for the GPU to finish it.
func (s *Source) draw(surf *surface.Surface, seq uint64, monoNS int64) error {
	t0 := time.Now()
	if err := s.renderer.Render(cuda.DevPtr(surf.Mem.DevicePtr()), surf.Mem.Size(), s.glayout, seq, monoNS); err != nil {
		return err
	}
	d := int64(time.Since(t0))
	s.frames.Add(1)
	s.renderNanos.Add(d)
	if d > s.maxRenderNanos.Load() {
		s.maxRenderNanos.Store(d) // one drawing goroutine: no lost update
	}
	return nil
}

// Close frees the renderer, the kernels and the pool's free surfaces (the
// pool frees the others when they are put back: close the server first, so
// that every lease has ended). It is idempotent.
func (s *Source) Close() error {
	var errs []error
	if s.renderer != nil {
		errs = append(errs, s.renderer.Close())
		s.renderer = nil
	}
	if s.kernels != nil {
		errs = append(errs, s.kernels.Close())
		s.kernels = nil
	}
	if s.pool != nil {
		errs = append(errs, s.pool.Close())
		s.pool = nil
	}
	return errors.Join(errs...)
}
