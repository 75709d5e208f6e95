package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/framehub/framehub/internal/cuda"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/cudasrc"
)

// gpuProducer is a producer server with the GPU source feeding its "raw"
// stream.
type gpuProducer struct {
	ctx *cuda.Context
	src *cudasrc.Source
	srv *producer.Server
	st  *producer.Stream
}

// startProducer starts a server on addr whose raw stream the GPU source
// feeds at fps. The caller must call stop.
func startProducer(g *gpuFlags, addr string, fps float64, export ipc.Kind, poolMax int, log *slog.Logger) (*gpuProducer, error) {
	img, err := g.kernelImage()
	if err != nil {
		return nil, err
	}
	_, ctx, err := g.open(nil)
	if err != nil {
		return nil, err
	}
	p := &gpuProducer{ctx: ctx}
	p.src, err = cudasrc.New(cudasrc.Config{
		Context: ctx, Width: g.width, Height: g.height, FPS: fps, Export: export,
		PoolMin: poolMax, PoolMax: poolMax, Kernels: img,
	})
	if err != nil {
		return nil, errors.Join(err, ctx.Close())
	}
	if p.srv, err = producer.New(producer.Config{Addr: addr, Logger: log}); err == nil {
		if p.st, err = p.srv.AddStream(p.src.StreamConfig("raw")); err == nil {
			err = p.srv.Start()
		}
	}
	if err != nil {
		return nil, errors.Join(err, p.src.Close(), ctx.Close())
	}
	return p, nil
}

// run renders until ctx is done.
func (p *gpuProducer) run(ctx context.Context) error { return p.src.Run(ctx, p.st) }

// stop closes the server (every lease ends), then the source and the
// context.
func (p *gpuProducer) stop() error {
	return errors.Join(p.srv.Close(), p.src.Close(), p.ctx.Close())
}

// producerMain runs a producer until SIGTERM; it prints "ready" once the
// socket accepts consumers.
func producerMain(args []string) error {
	fs := flag.NewFlagSet("producer", flag.ExitOnError)
	var g gpuFlags
	g.register(fs)
	addr := fs.String("socket", "", "socket path (required)")
	fps := fs.Float64("fps", 60, "frames per second")
	export := fs.String("export", "cuda", "what consumers receive: cuda (POSIX fd of the allocation) or dmabuf")
	poolMax := fs.Int("pool", 8, "surfaces in the pool")
	fs.Parse(args)
	if *addr == "" {
		return errors.New("producer: -socket is required")
	}
	kind := ipc.KindCUDA
	switch *export {
	case "cuda":
	case "dmabuf":
		kind = ipc.KindDMABuf
	default:
		return fmt.Errorf("producer: -export %q: want cuda or dmabuf", *export)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := startProducer(&g, *addr, *fps, kind, *poolMax, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	fmt.Println("ready")
	return errors.Join(p.run(ctx), p.stop())
}
