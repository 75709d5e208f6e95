// Package host launches and supervises framehub consumer plugins (package
// plugin): it starts each plugin binary with go-plugin's versioned handshake,
// passes it its configuration and the producer's socket, re-logs what the
// plugin writes to stderr under the plugin's name, checks its health every
// few seconds and restarts it, with exponential backoff, when it crashes,
// hangs or its consumer stops.
//
// The host never touches frames: each plugin subscribes to the producer on
// its own connection (see package plugin for why). Its restart loop, the
// plugins' status and the relay of their output are those of
// framehub-supervisor, which shares them. Stopping the host stops
// its plugins, and a host that dies takes its plugins with it (they get
// SIGKILL through PR_SET_PDEATHSIG).
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/framehub/framehub/sdk"
	"github.com/framehub/framehub/sdk/plugin"
)

// PluginConfig describes one plugin.
type PluginConfig struct {
	// Name identifies the plugin in logs and status, and is the consumer
	// name the producer shows. Required, unique within a host.
	Name string
	// Path is the plugin executable. Required.
	Path string
	// Args are the executable's arguments.
	Args []string
	// Env adds "KEY=value" entries to the environment the plugin inherits
	// from the host.
	Env []string
	// Stream is the stream the plugin subscribes to. It defaults to "raw".
	Stream string
	// MaxInFlight, MaxHold and Policy are the subscription's budget,
	// deadline and policy ("queue" or "latest"); zero values take the
	// producer's defaults.
	MaxInFlight int
	MaxHold     time.Duration
	Policy      string
	// Params are handed to the plugin's Configure.
	Params map[string]string
}

// Config configures a Host. Zero durations take the defaults given.
type Config struct {
	// Socket is the producer's socket address, passed to every plugin. It
	// defaults to sdk.DefaultAddr().
	Socket string
	// Plugins are the plugins to run.
	Plugins []PluginConfig
	// HealthInterval is the time between health checks. It defaults to 2 s.
	HealthInterval time.Duration
	// HealthTimeout is how long a plugin may take to answer a health check
	// before it is considered hung, killed and restarted. It defaults to 3 s.
	HealthTimeout time.Duration
	// StartTimeout bounds a launch: go-plugin's handshake, Configure and the
	// subscription. It defaults to 15 s.
	StartTimeout time.Duration
	// StopTimeout is how long a plugin gets to stop its consumer and exit
	// before it is killed. It defaults to 5 s.
	StopTimeout time.Duration
	// RestartMin and RestartMax bound the exponential backoff between
	// restarts of a plugin. They default to 500 ms and 30 s. The backoff
	// starts again from RestartMin once a plugin ran for StableAfter.
	RestartMin, RestartMax time.Duration
	// StableAfter defaults to 30 s.
	StableAfter time.Duration
	// StatsInterval is how often each plugin's counters and metrics are
	// logged (at Info). It defaults to 30 s; negative disables the logs.
	StatsInterval time.Duration
	// Logger receives the host's logs and the plugins' re-logged lines. It
	// defaults to slog.Default().
	Logger *slog.Logger
}

// Defaults returns the configuration of the defaults given on each field
// (no plugins; Socket and Logger, which are looked up when used, empty):
// the values New gives zero fields, and those of framehub-pluginhost's
// flags.
func Defaults() Config {
	return Config{
		HealthInterval: 2 * time.Second, HealthTimeout: 3 * time.Second, StartTimeout: 15 * time.Second,
		StopTimeout: 5 * time.Second, RestartMin: 500 * time.Millisecond, RestartMax: 30 * time.Second,
		StableAfter: 30 * time.Second, StatsInterval: 30 * time.Second,
	}
}

func (c *Config) setDefaults() error {
	if c.Socket == "" {
		c.Socket = sdk.DefaultAddr()
	}
	if err := sdk.AddrError(c.Socket); err != nil {
		return fmt.Errorf("host: config: Socket: %w", err)
	}
	d := Defaults()
	def := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	def(&c.HealthInterval, d.HealthInterval)
	def(&c.HealthTimeout, d.HealthTimeout)
	def(&c.StartTimeout, d.StartTimeout)
	def(&c.StopTimeout, d.StopTimeout)
	def(&c.RestartMin, d.RestartMin)
	def(&c.RestartMax, d.RestartMax)
	def(&c.StableAfter, d.StableAfter)
	def(&c.StatsInterval, d.StatsInterval)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"HealthInterval", c.HealthInterval}, {"HealthTimeout", c.HealthTimeout}, {"StartTimeout", c.StartTimeout},
		{"StopTimeout", c.StopTimeout}, {"RestartMin", c.RestartMin}, {"RestartMax", c.RestartMax}, {"StableAfter", c.StableAfter}} {
		if d.v < 0 {
			return fmt.Errorf("host: config: %s %v must not be negative", d.name, d.v)
		}
	}
	if c.RestartMax < c.RestartMin {
		return fmt.Errorf("host: config: RestartMax %v is below RestartMin %v", c.RestartMax, c.RestartMin)
	}
	if len(c.Plugins) == 0 {
		return errors.New("host: config: no plugins")
	}
	seen := make(map[string]bool)
	for i := range c.Plugins {
		p := &c.Plugins[i]
		if p.Name == "" {
			return fmt.Errorf("host: config: plugin %d (%s) has no name", i, p.Path)
		}
		if seen[p.Name] {
			return fmt.Errorf("host: config: plugin name %q used twice", p.Name)
		}
		seen[p.Name] = true
		if p.Stream == "" {
			p.Stream = "raw"
		}
		if p.MaxInFlight < 0 || p.MaxHold < 0 {
			return fmt.Errorf("host: config: plugin %q: max_in_flight %d and max_hold %v must not be negative", p.Name, p.MaxInFlight, p.MaxHold)
		}
		st, err := os.Stat(p.Path)
		if err != nil {
			return fmt.Errorf("host: config: plugin %q: %w", p.Name, err)
		}
		if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("host: config: plugin %q: %s is not an executable file (mode %v)", p.Name, p.Path, st.Mode())
		}
	}
	return nil
}

// State is where a plugin is in its life cycle. Its values are those of
// the restart engine that framehub's process supervisor shares.
type State string

// The states of a plugin.
const (
	StateStarting State = "starting" // launching, handshaking, subscribing
	StateRunning  State = "running"  // its consumer runs
	StateBackoff  State = "backoff"  // ended; waiting before the next start
	StateStopped  State = "stopped"  // the host is stopping or stopped
)

// Status is a plugin's state as the host sees it.
type Status struct {
	Name      string    `json:"name"`
	State     State     `json:"state"`
	Since     time.Time `json:"since"` // when State was entered
	PID       int       `json:"pid,omitempty"`
	Session   uint64    `json:"session,omitempty"` // the producer's session id
	Starts    int       `json:"starts"`            // launches so far
	LastError string    `json:"last_error,omitempty"`
	LastExit  string    `json:"last_exit,omitempty"` // how the last process ended ("exit status 2")
	// Health is the last answer to a health check, HealthAgeSeconds how
	// long ago it came.
	Health           plugin.HealthReply `json:"health"`
	HealthAgeSeconds float64            `json:"health_age_seconds,omitempty"`
}

// Host supervises plugins. Create it with New and Run it.
type Host struct {
	cfg Config
	log *slog.Logger
	sup []*supervisor
}

// New validates cfg (every plugin's executable must exist) and returns a
// host that is not running yet.
func New(cfg Config) (*Host, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	h := &Host{cfg: cfg, log: cfg.Logger}
	for _, pc := range cfg.Plugins {
		h.sup = append(h.sup, newSupervisor(&h.cfg, pc))
	}
	return h, nil
}

// Run starts every plugin and supervises them until ctx is done, then stops
// them (each gets StopTimeout) and returns nil once all have exited.
func (h *Host) Run(ctx context.Context) error {
	h.log.Info("plugin host starting", "plugins", len(h.sup), "socket", h.cfg.Socket)
	var wg sync.WaitGroup
	for _, s := range h.sup {
		wg.Go(func() { s.run(ctx) })
	}
	wg.Wait()
	h.log.Info("plugin host stopped")
	return nil
}

// Status returns every plugin's status, in configuration order.
func (h *Host) Status() []Status {
	out := make([]Status, 0, len(h.sup))
	for _, s := range h.sup {
		out = append(out, s.status())
	}
	return out
}
