package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/config"
	"github.com/framehub/framehub/internal/daemonrun"
	"github.com/framehub/framehub/sdk/plugin/host"
)

// fileConfig is the YAML configuration file (-config).
type fileConfig struct {
	Socket         string        `yaml:"socket"`
	HealthInterval time.Duration `yaml:"health-interval"`
	HealthTimeout  time.Duration `yaml:"health-timeout"`
	StartTimeout   time.Duration `yaml:"start-timeout"`
	StopTimeout    time.Duration `yaml:"stop-timeout"`
	RestartMin     time.Duration `yaml:"restart-min"`
	RestartMax     time.Duration `yaml:"restart-max"`
	StatsInterval  time.Duration `yaml:"stats-interval"`
	Plugins        []filePlugin  `yaml:"plugins"`
}

type filePlugin struct {
	Name        string            `yaml:"name"`
	Path        string            `yaml:"path"`
	Args        []string          `yaml:"args"`
	Env         []string          `yaml:"env"`
	Stream      string            `yaml:"stream"`
	MaxInFlight int               `yaml:"max-in-flight"`
	MaxHold     time.Duration     `yaml:"max-hold"`
	Policy      string            `yaml:"policy"`
	Params      map[string]string `yaml:"params"`
}

// options are the command line, merged with the config file: the plugin
// host program (a daemonrun.Program).
type options struct {
	host      host.Config
	adminAddr string
	access    admin.Access // of the status endpoint
}

// Load parses args and the -config file (see load).
func (o *options) Load(fs *flag.FlagSet, args []string) error {
	var err error
	*o, err = load(fs, args)
	return err
}

// Run runs the plugins until ctx is done, and the admin endpoints, if
// asked for, with them (daemonrun.RunActors).
func (o *options) Run(ctx context.Context, log *slog.Logger) error {
	// go-plugin and yamux log through the standard log package ("[ERR]
	// yamux: ..." when a plugin dies); route that into the same logs.
	slog.SetDefault(log)
	o.host.Logger = log
	h, err := host.New(o.host)
	if err != nil {
		return daemonrun.BadConfig(err)
	}
	actors := []daemonrun.Actor{{Name: "plugins", Run: h.Run}}
	if o.adminAddr != "" {
		adm, err := admin.New(o.adminAddr, adminHandler(h), o.access)
		if err != nil {
			return fmt.Errorf("admin endpoints on %s: %w", o.adminAddr, err)
		}
		log.Info("admin endpoints", "addr", adm.Addr(), "status", "http://"+adm.Addr()+"/status")
		actors = append(actors, daemonrun.Actor{Name: "admin", Run: adm.Serve})
	}
	return daemonrun.RunActors(ctx, log, actors...)
}

// pluginFlags collects repeated -plugin NAME=PATH flags.
type pluginFlags []host.PluginConfig

func (p *pluginFlags) String() string { return fmt.Sprint(len(*p), " plugins") }

func (p *pluginFlags) Set(v string) error {
	name, path, ok := strings.Cut(v, "=")
	if !ok || name == "" || path == "" {
		return fmt.Errorf("want NAME=PATH, got %q", v)
	}
	*p = append(*p, host.PluginConfig{Name: name, Path: path})
	return nil
}

// load parses args and the -config file; flags given on the command line
// win over the file, and -plugin flags add to the file's plugins.
func load(fs *flag.FlagSet, args []string) (options, error) {
	var (
		o        options
		cfgPath  string
		socket   string
		health   time.Duration
		extra    pluginFlags
		explicit = map[string]bool{}
	)
	fs.StringVar(&cfgPath, "config", "", "YAML file: socket, health-interval, health-timeout, start-timeout, stop-timeout,\n"+
		"restart-min, restart-max, stats-interval, plugins: [{name, path, args, env, stream, max-in-flight,\nmax-hold, policy, params}]")
	fs.StringVar(&socket, "socket", "", "producer socket passed to the plugins (default: the file's, else $FRAMEHUB_SOCKET or the standard path)")
	fs.DurationVar(&health, "health-interval", host.Defaults().HealthInterval, "time between health checks of a plugin")
	fs.Var(&extra, "plugin", "run plugin `NAME=PATH` (repeatable; params only through -config)")
	fs.StringVar(&o.adminAddr, "admin", "", "admin address (host:port or unix:/path, e.g. 127.0.0.1:9420): GET /status (the plugins' "+
		"status as JSON; it names pids: the admin token is needed unless -admin-public), /healthz and /metrics; empty disables")
	fs.StringVar(&o.adminAddr, "status-addr", "", "the old name of -admin")
	o.access.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	var fc fileConfig
	if cfgPath != "" {
		if err := config.Load(cfgPath, &fc, func() error { return validate(fc) }); err != nil {
			return o, err
		}
	}
	o.host = host.Config{
		Socket: fc.Socket, HealthInterval: fc.HealthInterval, HealthTimeout: fc.HealthTimeout,
		StartTimeout: fc.StartTimeout, StopTimeout: fc.StopTimeout, RestartMin: fc.RestartMin,
		RestartMax: fc.RestartMax, StatsInterval: fc.StatsInterval,
	}
	for _, p := range fc.Plugins {
		path := p.Path
		if !filepath.IsAbs(path) {
			// Relative to the config file, not to wherever the host started.
			path = filepath.Join(filepath.Dir(cfgPath), path)
		}
		o.host.Plugins = append(o.host.Plugins, host.PluginConfig{
			Name: p.Name, Path: path, Args: p.Args, Env: p.Env, Stream: p.Stream, MaxInFlight: p.MaxInFlight,
			MaxHold: p.MaxHold, Policy: p.Policy, Params: p.Params,
		})
	}
	o.host.Plugins = append(o.host.Plugins, extra...)
	if explicit["socket"] {
		o.host.Socket = socket
	}
	if explicit["health-interval"] {
		o.host.HealthInterval = health
	}
	if len(o.host.Plugins) == 0 {
		return o, errors.New("no plugins: give -config FILE or -plugin NAME=PATH")
	}
	return o, nil
}

// validate checks what the file can get wrong that the host would only
// report without a line number.
func validate(fc fileConfig) error {
	for i, p := range fc.Plugins {
		switch {
		case p.Name == "":
			return config.Invalid(fmt.Sprintf("plugins.%d", i), "a plugin needs a name")
		case p.Path == "":
			return config.Invalid(fmt.Sprintf("plugins.%d.name", i), "plugin %q needs a path", p.Name)
		case p.Policy != "" && p.Policy != "queue" && p.Policy != "latest":
			return config.Invalid(fmt.Sprintf("plugins.%d.policy", i), "policy %q: want queue or latest", p.Policy)
		}
	}
	return nil
}
