// Command framehub-supervisor runs the framehub processes (producer and
// consumers) as one group from a config file: start order, restarts with
// backoff, clean stop, no orphans, status on an admin address.
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

	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/supervisor"
)

func main() {
	fs := flag.NewFlagSet("framehub-supervisor", flag.ExitOnError)
	configPath := fs.String("config", "framehub.yaml", "the group's YAML config file (see docs/OPERATIONS.md)")
	adminAddr := fs.String("admin", "", "admin address (host:port or unix:/path); overrides the config's admin")
	var logLevel slog.Level
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: framehub-supervisor -config framehub.yaml\n\n"+
			"Runs the processes of a config file as a group: each in its own process group, in order (consumers\n"+
			"once the producer's socket accepts connections), restarted with exponential backoff when they crash,\n"+
			"given up on after a crash loop, stopped in reverse order on SIGTERM/SIGINT (SIGKILL after the grace\n"+
			"period). Children are killed if the supervisor dies. GET /status, /logs, /metrics and /healthz on the\n"+
			"admin address.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))

	cfg, err := supervisor.Load(*configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "framehub-supervisor:", err)
		os.Exit(2)
	}
	if *adminAddr != "" {
		cfg.Admin = *adminAddr
	}
	sup, err := supervisor.New(cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "framehub-supervisor:", err)
		os.Exit(2)
	}
	adm, err := admin.New(sup.Config().Admin, sup.Handler())
	if err != nil {
		fmt.Fprintln(os.Stderr, "framehub-supervisor:", err)
		os.Exit(1)
	}

	var g run.Group
	// Signals: SIGTERM and SIGINT stop the group.
	g.Add(run.SignalHandler(context.Background(), os.Interrupt, syscall.SIGTERM))
	// Admin endpoints.
	g.Add(adm.Run, func(error) { adm.Close() })
	// The group; stops last-started first.
	{
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { return sup.Run(ctx) }, func(error) {
			log.Info("stopping supervisor")
			cancel()
		})
	}
	log.Info("supervising", "config", *configPath, "processes", len(cfg.Processes), "admin", adm.Addr())
	err = g.Run()
	var sig run.SignalError
	if err == nil || errors.As(err, &sig) {
		return
	}
	log.Error("supervisor failed", "err", err)
	os.Exit(1)
}
