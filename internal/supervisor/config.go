package supervisor

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/config"
)

// Config is the supervisor's config file: the group of processes to run.
type Config struct {
	// Admin is where the supervisor serves /status, /metrics and /healthz:
	// host:port or unix:/path. It defaults to 127.0.0.1:7700.
	Admin string `yaml:"admin"`
	// Access protects the admin endpoints: admin-token (the token file,
	// default as admin.DefaultTokenFile) and admin-public (let callers
	// without the token read /status and /logs). See docs/SECURITY.md.
	admin.Access `yaml:",inline"`
	// Grace is how long a stopping process has between SIGTERM and SIGKILL.
	// It defaults to 5 seconds.
	Grace time.Duration `yaml:"grace"`
	// Processes are started in this order and stopped in the reverse order.
	Processes []Process `yaml:"processes"`
}

// Process is one supervised program.
type Process struct {
	// Name identifies it in logs, status and metrics. Required, unique.
	Name string `yaml:"name"`
	// Binary is the program: a path, or a name looked up in $PATH and then
	// next to the supervisor's own executable. Required.
	Binary string   `yaml:"binary"`
	Args   []string `yaml:"args"`
	// Env adds KEY=VALUE pairs to the supervisor's environment.
	Env []string `yaml:"env"`
	Dir string   `yaml:"dir"`
	// ReadySocket marks the process ready once a Unix socket connection to
	// this path (or @name) succeeds: the producer's consumer socket.
	ReadySocket string `yaml:"ready-socket"`
	// After lists processes that must be ready before this one starts. It
	// defaults to every earlier process that has a ReadySocket (consumers
	// wait for the producer).
	After []string `yaml:"after"`
	// Admin is the process's admin address (host:port or unix:/path), shown
	// in the status so framehubctl can query it.
	Admin   string  `yaml:"admin"`
	Restart Restart `yaml:"restart"`
}

// Restart is a process's restart policy.
type Restart struct {
	// Policy: "always" (default), "on-failure" (not after exit status 0)
	// or "never".
	Policy string `yaml:"policy"`
	// BackoffMin and BackoffMax bound the exponential wait before a restart
	// (defaults 500 ms and 30 s).
	BackoffMin time.Duration `yaml:"backoff-min"`
	BackoffMax time.Duration `yaml:"backoff-max"`
	// StableAfter: a run at least this long resets the backoff and the
	// crash count (default 30 s).
	StableAfter time.Duration `yaml:"stable-after"`
	// MaxCrashes crashes in a row, each shorter than StableAfter, is a crash
	// loop: the supervisor gives up on the process (default 5).
	MaxCrashes int `yaml:"max-crashes"`
}

// Load reads a config file.
func Load(path string) (Config, error) {
	var c Config
	err := config.Load(path, &c, c.validate)
	if err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c *Config) setDefaults() {
	if c.Admin == "" {
		c.Admin = "127.0.0.1:7700"
	}
	if c.Grace == 0 {
		c.Grace = 5 * time.Second
	}
	var ready []string
	for i := range c.Processes {
		p := &c.Processes[i]
		r := &p.Restart
		if r.Policy == "" {
			r.Policy = "always"
		}
		if r.BackoffMin == 0 {
			r.BackoffMin = 500 * time.Millisecond
		}
		if r.BackoffMax == 0 {
			r.BackoffMax = 30 * time.Second
		}
		if r.StableAfter == 0 {
			r.StableAfter = 30 * time.Second
		}
		if r.MaxCrashes == 0 {
			r.MaxCrashes = 5
		}
		if p.After == nil {
			p.After = append([]string(nil), ready...)
		}
		if p.ReadySocket != "" {
			ready = append(ready, p.Name)
		}
	}
}

// validate fills defaults and checks the config; errors name the key path.
func (c *Config) validate() error {
	c.setDefaults()
	if len(c.Processes) == 0 {
		return config.Invalid("processes", "at least one process is needed")
	}
	if c.Grace < 0 {
		return config.Invalid("grace", "%v must not be negative", c.Grace)
	}
	seen := map[string]int{}
	for i, p := range c.Processes {
		at := func(k string) string { return fmt.Sprintf("processes.%d.%s", i, k) }
		switch {
		case p.Name == "":
			return config.Invalid(at("name"), "must not be empty")
		case strings.ContainsAny(p.Name, " /"):
			return config.Invalid(at("name"), "%q must not contain spaces or slashes", p.Name)
		case p.Binary == "":
			return config.Invalid(at("binary"), "must not be empty")
		}
		if j, dup := seen[p.Name]; dup {
			return config.Invalid(at("name"), "%q is also the name of process %d", p.Name, j)
		}
		seen[p.Name] = i
		for _, e := range p.Env {
			if !strings.Contains(e, "=") {
				return config.Invalid(at("env"), "%q is not KEY=VALUE", e)
			}
		}
		for _, a := range p.After {
			j, ok := seen[a]
			if !ok || j >= i {
				return config.Invalid(at("after"), "%q is not an earlier process", a)
			}
		}
		r := p.Restart
		switch r.Policy {
		case "always", "on-failure", "never":
		default:
			return config.Invalid(at("restart.policy"), "%q is not always, on-failure or never", r.Policy)
		}
		if r.BackoffMin < 0 || r.BackoffMax < r.BackoffMin {
			return config.Invalid(at("restart.backoff-max"), "%v must be ≥ backoff-min (%v)", r.BackoffMax, r.BackoffMin)
		}
		if r.MaxCrashes < 1 {
			return config.Invalid(at("restart.max-crashes"), "%d must be ≥ 1", r.MaxCrashes)
		}
	}
	return nil
}

// resolve finds a process's binary: as given when it has a slash, else in
// $PATH, else next to the supervisor's executable (a release directory).
func resolve(binary, selfDir string) (string, error) {
	if strings.Contains(binary, "/") {
		return binary, nil
	}
	if p, err := exec.LookPath(binary); err == nil {
		return p, nil
	}
	if selfDir != "" {
		p := selfDir + "/" + binary
		if _, err := exec.LookPath(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("binary %q not found in $PATH nor in %s: %w", binary, selfDir, errors.New("not found"))
}
