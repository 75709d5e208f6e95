// Command framehub-producer owns the camera (for now: a synthetic NV12
// source) and shares its frames with consumer processes over a Unix socket,
// without copying pixels.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"github.com/oklog/run"

	"github.com/framehub/framehub/producer/daemon"
)

func main() {
	var (
		opts     daemon.Options
		logLevel slog.Level
	)
	fs := flag.NewFlagSet("framehub-producer", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: framehub-producer [flags]\n\n"+
			"Serves frames of a synthetic NV12 source to framehub consumers on a Unix socket.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	opts.RegisterFlags(fs)
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	_ = fs.Parse(os.Args[1:])
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))

	var g run.Group
	// Signals.
	g.Add(run.SignalHandler(context.Background(), os.Interrupt, syscall.SIGTERM))
	// Producer: server and source.
	{
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error {
			return daemon.Run(ctx, opts, log)
		}, func(error) {
			log.Info("stopping producer")
			cancel()
		})
	}
	err := g.Run()
	var sig run.SignalError
	if err == nil || errors.As(err, &sig) {
		return
	}
	log.Error("producer failed", "err", err)
	os.Exit(1)
}
