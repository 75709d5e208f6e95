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
	// RunDir holds a directory per camera (mode 0700): its producer's
	// socket (framehub.sock), config file and admin socket, and whatever
	// its per-camera processes put in {dir}. It defaults to the daemons'
	// run directory (/run/framehub as root, else
	// $XDG_RUNTIME_DIR/framehub).
	RunDir string `yaml:"run-dir"`
	// Cameras are the group's cameras: a producer runs for each (see
	// Camera), before the processes.
	Cameras []Camera `yaml:"cameras"`
	// ProducerBinary is the program of the cameras' producers, found as a
	// process's binary is; default framehub-producer.
	ProducerBinary string `yaml:"producer-binary"`
	// ProducerAdmin is the admin address of each camera's producer, with
	// placeholders (Camera): default "unix:{dir}/producer.admin"; e.g.
	// "127.0.0.1:{port:7711}" for TCP ports 7711, 7712… that Prometheus
	// can scrape.
	ProducerAdmin string `yaml:"producer-admin"`
	// Processes are started in this order and stopped in the reverse order.
	// With cameras, an entry with per-camera runs once per camera, and the
	// others once, with their camera-args repeated for every camera.
	Processes []Process `yaml:"processes"`

	expanded bool // Processes are the processes run, not the entries as written
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

	// PerCamera runs the process once per camera, named <name>.<camera>,
	// with {camera}, {socket} and {dir} in args, env, dir, admin and
	// ready-socket replaced by the camera's name, its producer's socket
	// and its run directory; it starts after its camera's producer (and
	// the processes of after, a per-camera one of the same camera), not
	// after the other cameras'. The recorder and the snapshot service run
	// so: a camera's crash, memory and disk stay its own
	// (docs/OPERATIONS.md, "Cameras").
	PerCamera bool `yaml:"per-camera"`
	// CameraArgs are appended to args once for every camera, placeholders
	// replaced: how one process serving every camera learns them, e.g. the
	// streamer's [-camera, "{camera}={socket}"].
	CameraArgs []string `yaml:"camera-args"`

	// Camera is the camera a process of the expanded config belongs to
	// ("" for a process of the whole group).
	Camera string `yaml:"-"`
	// ProducerConfig is, for a camera's producer, the config file the
	// supervisor writes before starting it (its source and options).
	ProducerConfig string `yaml:"-"`
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
		p.Restart = defaultRestart(p.Restart)
		if p.After == nil {
			p.After = append([]string(nil), ready...)
		}
		if p.ReadySocket != "" && !p.PerCamera {
			ready = append(ready, p.Name)
		}
	}
}

// defaultRestart returns r with its defaults filled in.
func defaultRestart(r Restart) Restart {
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
	return r
}

// validate fills defaults, checks the config and expands its cameras
// (expand); errors name the key path as written.
func (c *Config) validate() error {
	if c.expanded {
		return nil
	}
	c.setDefaults()
	if len(c.Processes) == 0 && len(c.Cameras) == 0 {
		return config.Invalid("processes", "at least one process (or camera) is needed")
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
	if err := c.validateCameras(); err != nil {
		return err
	}
	if err := c.expand(); err != nil {
		return err
	}
	c.expanded = true
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
