// Command framehub-snapshot is framehub's snapshot consumer: it subscribes to
// the producer's raw stream and, on request (POST /snapshot on its admin
// address, or `framehubctl snapshot`), encodes the next frame as JPEG,
// answers at once and writes the file behind a bounded queue, reporting when
// it is durable.
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

	"github.com/framehub/framehub/consumers/snapshot/daemon"
)

const usage = `Usage: framehub-snapshot [flags]

Takes JPEG snapshots of a framehub producer's raw NV12 stream on request.

  curl -X POST 'http://127.0.0.1:7704/snapshot?format=jpeg' -o now.jpg
  framehubctl snapshot -o now.jpg -scale 640

Admin API (-admin): POST /snapshot (format=jpeg|json, quality, scale or width+height,
after=CLOCK_MONOTONIC ns, encoder=go|gst), GET /snapshot/{id}[?wait=5s], GET /healthz,
GET /metrics. A request answers as soon as the JPEG exists ("durable": false); the file
is written behind a queue of -queue snapshots (full: 503 "storage busy") and reported
durable (fsync of the file and of its directory) by GET /snapshot/{id}, a log line,
-webhook and -event-socket.

Settings come from the flags below, or from a YAML file given with -config whose keys
are the flag names (e.g. "quality: 90", "keep-bytes: 2GiB", "frame-timeout: 3s"); a
flag given on the command line wins over the file.

Flags:
`

func main() {
	var (
		opts     daemon.Options
		logLevel slog.Level
	)
	fs := flag.NewFlagSet("framehub-snapshot", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	if err := opts.Load(fs, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "framehub-snapshot:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))

	var g run.Group
	// Signals.
	g.Add(run.SignalHandler(context.Background(), os.Interrupt, syscall.SIGTERM))
	// Snapshot service and its admin API; on stop it finishes writing what it accepted.
	{
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error {
			return daemon.Run(ctx, opts, log)
		}, func(error) {
			log.Info("stopping framehub-snapshot")
			cancel()
		})
	}
	err := g.Run()
	var sig run.SignalError
	if err == nil || errors.As(err, &sig) {
		return
	}
	log.Error("framehub-snapshot failed", "err", err)
	os.Exit(1)
}
