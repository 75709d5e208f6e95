// Command framehub-streamer serves a framehub producer's H.264 stream over
// RTSP (TCP and UDP, any number of viewers), and optionally publishes it to
// an external RTSP server such as MediaMTX.
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

	"github.com/framehub/framehub/consumers/streamer"
)

func main() {
	var (
		opts     streamer.Options
		logLevel slog.Level
	)
	fs := flag.NewFlagSet("framehub-streamer", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: framehub-streamer [flags]\n\n"+
			"Subscribes to a framehub producer's H.264 stream and serves it over RTSP at\n"+
			"rtsp://<rtsp-addr>/<path> (default rtsp://127.0.0.1:8554/cam), over TCP and UDP, to any number of\n"+
			"viewers. A new viewer starts on a fresh keyframe (requested from the producer), or from the cached\n"+
			"GOP when none comes within -keyframe-wait. A slow viewer loses only its own frames. With -publish\n"+
			"the stream is also pushed to an external RTSP server (e.g. MediaMTX), reconnecting with backoff.\n"+
			"The streamer survives producer restarts: viewers stay connected and see continuous timestamps.\n\n"+
			"Prometheus metrics are served on http://<admin>/metrics and health on http://<admin>/healthz\n"+
			"(503 when no frame came from the producer for -health-stale).\n\n"+
			"Settings come from the flags below, or from a YAML file given with -config whose keys are the\n"+
			"flag names (e.g. \"rtsp-addr: 0.0.0.0:8554\", \"keyframe-wait: 300ms\", \"user: viewer\"); a flag given\n"+
			"on the command line wins over the file.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	if err := opts.Load(fs, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "framehub-streamer:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))
	st, err := streamer.New(opts, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "framehub-streamer:", err)
		os.Exit(2)
	}

	var g run.Group
	// Signals.
	g.Add(run.SignalHandler(context.Background(), os.Interrupt, syscall.SIGTERM))
	// Streamer: producer subscription, RTSP server, publisher, admin HTTP.
	{
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error {
			return st.Run(ctx)
		}, func(error) {
			log.Info("stopping streamer")
			cancel()
		})
	}
	err = g.Run()
	var sig run.SignalError
	if err == nil || errors.As(err, &sig) {
		return
	}
	log.Error("streamer failed", "err", err)
	os.Exit(1)
}
