// Command framehub-supervisor runs the framehub processes (producer and
// consumers) as one group from a config file: start order, restarts with
// backoff, clean stop, no orphans, status on an admin address, config
// reloads on SIGHUP.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/daemonrun"
	"github.com/framehub/framehub/internal/supervisor"
)

const usage = "Usage: framehub-supervisor -config framehub.yaml\n\n" +
	"Runs the processes of a config file as a group: each in its own process group, in order (consumers\n" +
	"once the producer's socket accepts connections), restarted with exponential backoff when they crash,\n" +
	"given up on after a crash loop, stopped in reverse order on SIGTERM/SIGINT (SIGKILL after the grace\n" +
	"period). Children are killed if the supervisor dies. SIGHUP reloads the config file: processes whose\n" +
	"entry changed are restarted, new ones started, removed ones stopped, the others left running; a config\n" +
	"with an error is refused and the group goes on. GET /status, /logs, /metrics and /healthz on the\n" +
	"admin address; /status and /logs need the admin token (see -admin-token, docs/SECURITY.md).\n\nFlags:\n"

func main() {
	// Before anything else: SIGHUP's default action would end the
	// supervisor, and its children with it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	cmd := daemonrun.New("framehub-supervisor", usage)
	configPath := cmd.Flags.String("config", "framehub.yaml", "the group's YAML config file (see docs/OPERATIONS.md)")
	adminAddr := cmd.Flags.String("admin", "", "admin address (host:port or unix:/path); overrides the config's admin")
	var access admin.Access
	access.RegisterFlags(cmd.Flags)  // override the config's admin-token and admin-public
	_ = cmd.Flags.Parse(os.Args[1:]) // ExitOnError
	log := cmd.Logger()

	// load reads the config file, with the command line's overrides.
	load := func() (supervisor.Config, error) {
		cfg, err := supervisor.Load(*configPath)
		if err != nil {
			return cfg, err
		}
		if *adminAddr != "" {
			cfg.Admin = *adminAddr
		}
		cmd.Flags.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "admin-token":
				cfg.TokenFile = access.TokenFile
			case "admin-public":
				cfg.Public = access.Public
			}
		})
		return cfg, nil
	}
	cfg, err := load()
	cmd.Check(err)
	sup, err := supervisor.New(cfg, log)
	cmd.Check(err)
	adm, err := admin.New(sup.Config().Admin, sup.Handler(), sup.Config().Access)
	if err != nil {
		// Not a config error: the address is taken, say, or the token's
		// directory not there yet; a retry may work.
		fmt.Fprintln(os.Stderr, "framehub-supervisor:", err)
		os.Exit(1)
	}

	log.Info("supervising", "config", *configPath, "processes", len(cfg.Processes), "admin", adm.Addr())
	reloadCtx, stopReloads := context.WithCancel(context.Background())
	// The group stops last-started first; SIGTERM and SIGINT stop it.
	daemonrun.Run(log, daemonrun.Daemon{
		Run:      sup.Run,
		Stopping: "stopping supervisor",
		Failed:   "supervisor failed",
		Actors: []daemonrun.Actor{
			{Execute: adm.Run, Interrupt: func(error) { adm.Close() }}, // admin endpoints
			{ // config reloads on SIGHUP
				Execute: func() error {
					for {
						select {
						case <-reloadCtx.Done():
							return nil
						case <-hup:
						}
						log.Info("SIGHUP: reloading the config", "config", *configPath)
						if _, err := sup.ReloadFrom(reloadCtx, load); err != nil {
							log.Error("config refused: the group keeps running with the config it has", "config", *configPath, "err", err)
						}
					}
				},
				Interrupt: func(error) { stopReloads() },
			},
		},
	})
}
