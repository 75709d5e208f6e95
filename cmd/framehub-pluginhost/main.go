// Command framehub-pluginhost runs third-party framehub consumers written as
// go-plugin plugins (package sdk/plugin): it launches each plugin, gives it
// its settings and the producer's socket, re-logs its stderr under its
// name, checks its health every few seconds and restarts it with backoff
// when it crashes or hangs. Frames never pass through the host: each plugin
// subscribes to the producer itself.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/oklog/run"

	"github.com/framehub/framehub/sdk/plugin/host"
)

func main() {
	var logLevel slog.Level
	fs := flag.NewFlagSet("framehub-pluginhost", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: framehub-pluginhost [-config FILE] [-plugin NAME=PATH]... [flags]\n\n"+
			"Runs framehub consumer plugins (see docs/SDK.md, \"Plugins\") and keeps them running.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	o, err := load(fs, os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "framehub-pluginhost:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))
	// go-plugin and yamux log through the standard log package ("[ERR]
	// yamux: ..." when a plugin dies); route that into the same logs.
	slog.SetDefault(log)
	o.host.Logger = log
	h, err := host.New(o.host)
	if err != nil {
		fmt.Fprintln(os.Stderr, "framehub-pluginhost:", err)
		os.Exit(2)
	}

	var g run.Group
	// Signals.
	g.Add(run.SignalHandler(context.Background(), os.Interrupt, syscall.SIGTERM))
	// Plugins.
	{
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { return h.Run(ctx) }, func(error) {
			log.Info("stopping plugins")
			cancel()
		})
	}
	// Status endpoint, if asked for.
	if o.statusAddr != "" {
		ln, err := net.Listen("tcp", o.statusAddr)
		if err != nil {
			log.Error("status endpoint", "addr", o.statusAddr, "err", err)
			os.Exit(1)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(h.Status())
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		g.Add(func() error {
			log.Info("serving status", "url", "http://"+ln.Addr().String()+"/status")
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("status endpoint %s: %w", o.statusAddr, err)
			}
			return nil
		}, func(error) { _ = srv.Close() })
	}
	err = g.Run()
	var sig run.SignalError
	if err == nil || errors.As(err, &sig) {
		return
	}
	log.Error("plugin host failed", "err", err)
	os.Exit(1)
}
