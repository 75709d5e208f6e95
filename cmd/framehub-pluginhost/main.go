// Command framehub-pluginhost runs third-party framehub consumers written as
// go-plugin plugins (package sdk/plugin): it launches each plugin, gives it
// its settings and the producer's socket, re-logs its stderr under its
// name, checks its health every few seconds and restarts it with backoff
// when it crashes or hangs. Frames never pass through the host: each plugin
// subscribes to the producer itself.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/framehub/framehub/internal/daemonrun"
	"github.com/framehub/framehub/sdk/plugin/host"
)

const usage = "Usage: framehub-pluginhost [-config FILE] [-plugin NAME=PATH]... [flags]\n\n" +
	"Runs framehub consumer plugins (see docs/SDK.md, \"Plugins\") and keeps them running.\n\nFlags:\n"

func main() {
	cmd := daemonrun.New("framehub-pluginhost", usage)
	o, err := load(cmd.Flags, os.Args[1:])
	cmd.Check(err)
	log := cmd.Logger()
	// go-plugin and yamux log through the standard log package ("[ERR]
	// yamux: ..." when a plugin dies); route that into the same logs.
	slog.SetDefault(log)
	o.host.Logger = log
	h, err := host.New(o.host)
	cmd.Check(err)

	var actors []daemonrun.Actor
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
		actors = append(actors, daemonrun.Actor{Execute: func() error {
			log.Info("serving status", "url", "http://"+ln.Addr().String()+"/status")
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("status endpoint %s: %w", o.statusAddr, err)
			}
			return nil
		}, Interrupt: func(error) { _ = srv.Close() }})
	}
	// Plugins.
	daemonrun.Run(log, daemonrun.Daemon{
		Run:      h.Run,
		Stopping: "stopping plugins",
		Failed:   "plugin host failed",
		Actors:   actors,
	})
}
