// Command framehub-producer owns the camera and the H.264 encoder and shares
// their frames (streams "raw", NV12, and "h264") with consumer processes over
// a Unix socket, without copying pixels.
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
			"Owns the camera and the H.264 encoder and serves their frames to framehub consumers on a Unix\n"+
			"socket: stream \"raw\" (NV12 surfaces, zero-copy) and stream \"h264\" (access units).\n\n"+
			"Settings come from the flags below, or from a YAML file given with -config whose keys are the\n"+
			"flag names (e.g. \"width: 1280\", \"default-max-hold: 2s\", \"allow-uid: [1000]\"); a flag given on\n"+
			"the command line wins over the file.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	if err := opts.Load(fs, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "framehub-producer:", err)
		os.Exit(2)
	}
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
