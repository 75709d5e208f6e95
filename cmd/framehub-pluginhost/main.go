// Command framehub-pluginhost runs third-party framehub consumers written as
// go-plugin plugins (package sdk/plugin): it launches each plugin, gives it
// its settings and the producer's socket, re-logs its stderr under its
// name, checks its health every few seconds and restarts it with backoff
// when it crashes or hangs. Frames never pass through the host: each plugin
// subscribes to the producer itself.
package main

import (
	"log/slog"
	"os"

	"github.com/framehub/framehub/internal/admin"
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
	// Admin endpoints, if asked for.
	if o.adminAddr != "" {
		adm, err := admin.New(o.adminAddr, adminHandler(h), o.access)
		if err != nil {
			log.Error("admin endpoints", "addr", o.adminAddr, "err", err)
			os.Exit(1)
		}
		log.Info("admin endpoints", "addr", adm.Addr(), "status", "http://"+adm.Addr()+"/status")
		actors = append(actors, daemonrun.Actor{Execute: adm.Run, Interrupt: func(error) { adm.Close() }})
	}
	// Plugins.
	daemonrun.Run(log, daemonrun.Daemon{
		Run:      h.Run,
		Stopping: "stopping plugins",
		Failed:   "plugin host failed",
		Actors:   actors,
	})
}
