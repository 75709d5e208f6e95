// Command framehub-supervisor runs the framehub processes (producer and
// consumers, or a producer per camera and their consumers) as one group
// from a config file: start order, restarts with backoff, clean stop, no
// orphans, status on an admin address, config reloads on SIGHUP.
package main

import (
	"context"
	"flag"
	"log/slog"
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
	"with an error is refused and the group goes on. A config that lists cameras (cameras: name, source,\n" +
	"options) gets a producer per camera (producer.<camera>), an instance per camera of each per-camera\n" +
	"process (<process>.<camera>) and camera-args for the processes serving every camera (docs/OPERATIONS.md,\n" +
	"\"Cameras\"). GET /status, /logs, /metrics and /healthz on the\n" +
	"admin address; /status and /logs need the admin token (see -admin-token, docs/SECURITY.md).\n\nFlags:\n"

func main() {
	var p program
	daemonrun.Main("framehub-supervisor", usage, &p)
}

// program is the supervisor's command line and run.
type program struct {
	hup        chan os.Signal // SIGHUP: reload the config
	configPath string
	adminAddr  string
	access     admin.Access
	explicit   map[string]bool // the flags given on the command line
	cfg        supervisor.Config
}

// Load reads the flags and the config file, and checks the config as the
// supervisor will (binaries resolved): a config error exits with status 2.
func (p *program) Load(fs *flag.FlagSet, args []string) error {
	// Before anything else: SIGHUP's default action would end the
	// supervisor, and its children with it.
	p.hup = make(chan os.Signal, 1)
	signal.Notify(p.hup, syscall.SIGHUP)
	fs.StringVar(&p.configPath, "config", "framehub.yaml", "the group's YAML config file (see docs/OPERATIONS.md)")
	fs.StringVar(&p.adminAddr, "admin", "", "admin address (host:port or unix:/path); overrides the config's admin")
	p.access.RegisterFlags(fs) // override the config's admin-token and admin-public
	_ = fs.Parse(args)         // ExitOnError
	p.explicit = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { p.explicit[f.Name] = true })
	var err error
	if p.cfg, err = p.load(); err != nil {
		return err
	}
	return supervisor.Check(p.cfg)
}

// load reads the config file, with the command line's overrides.
func (p *program) load() (supervisor.Config, error) {
	cfg, err := supervisor.Load(p.configPath)
	if err != nil {
		return cfg, err
	}
	if p.adminAddr != "" {
		cfg.Admin = p.adminAddr
	}
	if p.explicit["admin-token"] {
		cfg.TokenFile = p.access.TokenFile
	}
	if p.explicit["admin-public"] {
		cfg.Public = p.access.Public
	}
	return cfg, nil
}

// Run supervises the group until ctx is done: the supervisor, its admin
// endpoints and the config reloads on SIGHUP run together; the group stops
// last-started first.
func (p *program) Run(ctx context.Context, log *slog.Logger) error {
	sup, err := supervisor.New(p.cfg, log)
	if err != nil {
		return daemonrun.BadConfig(err)
	}
	// A failure to listen is not a config error: the address is taken,
	// say, or the token's directory not there yet; a retry may work.
	adm, err := admin.New(sup.Config().Admin, sup.Handler(), sup.Config().Access)
	if err != nil {
		return err
	}
	log.Info("supervising", "config", p.configPath, "processes", len(p.cfg.Processes), "admin", adm.Addr())
	return daemonrun.RunActors(ctx, log,
		daemonrun.Actor{Name: "supervisor", Run: sup.Run},
		daemonrun.Actor{Name: "admin", Run: adm.Serve},
		daemonrun.Actor{Name: "reloads", Run: func(ctx context.Context) error {
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-p.hup:
				}
				log.Info("SIGHUP: reloading the config", "config", p.configPath)
				if _, err := sup.ReloadFrom(ctx, p.load); err != nil {
					log.Error("config refused: the group keeps running with the config it has", "config", p.configPath, "err", err)
				}
			}
		}},
	)
}
