package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/framehub/framehub/internal/cuda"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/cudasrc"
)

// runGPU serves the GPU test source on the first GPU: stream "raw" only,
// cuda surfaces (or DMA-BUF exports of them with -allocator cuda-dmabuf).
func runGPU(ctx context.Context, o Options, srv *producer.Server, log *slog.Logger) (err error) {
	export := ipc.KindCUDA
	switch o.Allocator {
	case "cuda", "memfd": // memfd is the flag's default, meaningless for GPU memory
	case "cuda-dmabuf":
		export = ipc.KindDMABuf
	default:
		return fmt.Errorf("-allocator %q: -source gpu takes cuda or cuda-dmabuf", o.Allocator)
	}
	d, err := cuda.Load(cuda.Options{})
	if err != nil {
		return fmt.Errorf("-source gpu: %w", err)
	}
	dev, err := d.Device(0)
	if err != nil {
		return fmt.Errorf("-source gpu: %w", err)
	}
	// The source waits for each frame's kernels: sleep, do not spin a core.
	if err := d.SetSched(dev, cuda.SchedBlocking); err != nil {
		return fmt.Errorf("-source gpu: %w", err)
	}
	cctx, err := d.Retain(dev)
	if err != nil {
		return fmt.Errorf("-source gpu: %w", err)
	}
	defer func() { err = errors.Join(err, cctx.Close()) }()
	src, err := cudasrc.New(cudasrc.Config{
		Context: cctx, Width: o.Width, Height: o.Height, FPS: o.FPS, Frames: o.Frames, Export: export,
		PoolMin: o.PoolMin, PoolMax: o.PoolMax,
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, src.Close()) }()
	st, err := srv.AddStream(src.StreamConfig("raw"))
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	// The server closes before the source: every lease ends, and the pool
	// frees its GPU memory.
	defer srv.Close()
	log.Info("gpu source", "device", dev.Name, "uuid", dev.UUID.String(), "width", o.Width, "height", o.Height,
		"fps", o.FPS, "export", export.String(), "surface_bytes", src.Layout().Size, "pool_max", o.PoolMax)
	err = src.Run(ctx, st)
	s := st.Stats()
	log.Info("source stopped", "published", s.Published, "delivered", s.Delivered, "skipped_budget", s.SkippedBudget,
		"dropped_exhausted", s.DroppedExhausted, "evictions", s.Evictions)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
