package supervisor

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/framehub/framehub/internal/camname"
	"github.com/framehub/framehub/internal/config"
	"github.com/framehub/framehub/internal/rundir"
)

// Camera is one camera of the group: the supervisor runs a producer for it
// (process producer.<name>) and, for each process entry with per-camera,
// one instance (<process>.<name>). The camera list is the group's one
// source of truth: the streamer and any process with camera-args learn the
// cameras from it.
type Camera struct {
	// Name is the camera's name: its RTSP path (rtsp://host:8554/<name>),
	// its directory names, the suffix of its processes' names; a–z, 0–9,
	// '_' and '-', at most 32 (camname.Check). The one camera of a config
	// that lists one may leave it out: it is "cam" (rtsp://host:8554/cam,
	// as before cameras were listed).
	Name string `yaml:"name"`
	// Source is the producer's -source: rtsp://[user:pass@]host/path, test,
	// v4l2:/dev/videoN… Credentials in it never leave the camera's own
	// directory (mode 0700): they are written to the producer's config file
	// there, not given on a command line, and /status shows the source
	// without them.
	Source string `yaml:"source"`
	// Options are more settings of the camera's producer, keyed by its flag
	// names (as in its config file): encoder, width, rtsp-transport… The
	// producer checks them when it starts. source, socket, admin and
	// config are the supervisor's to set.
	Options map[string]any `yaml:"options"`
}

// CameraStatus describes one camera for /status and framehubctl.
type CameraStatus struct {
	Name string `json:"name"`
	// Source is the camera's source, without credentials.
	Source string `json:"source"`
	// Socket is its producer's consumer socket, Dir its run directory.
	Socket string `json:"socket"`
	Dir    string `json:"dir"`
	// Processes are the names of its processes: its producer first.
	Processes []string `json:"processes"`
}

// Placeholders replaced in a per-camera process's args, env, dir, admin
// and ready-socket, in camera-args and in producer-admin. {port:N} is
// N for the first camera, N+1 for the second…: a TCP port per camera
// (Prometheus scrapes no Unix socket).
const (
	PlaceholderCamera = "{camera}" // the camera's name
	PlaceholderSocket = "{socket}" // its producer's consumer socket: {dir}/framehub.sock
	PlaceholderDir    = "{dir}"    // its run directory: <run-dir>/<camera>
	// PlaceholderProducerAdmin is its producer's admin address
	// (producer-admin), for a process that reads the producer's
	// /consumers or /metrics.
	PlaceholderProducerAdmin = "{producer-admin}"
)

// producerProcess is the name of a camera's producer (its prefix; the
// process is producer.<camera>).
const producerProcess = "producer"

func (c *Config) cameraDir(name string) string { return filepath.Join(c.RunDir, name) }

// cameraSocket is a camera's producer socket.
func (c *Config) cameraSocket(name string) string {
	return filepath.Join(c.cameraDir(name), "framehub.sock")
}

// validateCameras checks the camera list; errors name the key (and so its
// line).
func (c *Config) validateCameras() error {
	if len(c.Cameras) == 0 {
		for i, p := range c.Processes {
			switch {
			case p.PerCamera:
				return config.Invalid(fmt.Sprintf("processes.%d.per-camera", i), "process %q runs per camera, but the config lists no cameras", p.Name)
			case len(p.CameraArgs) > 0:
				return config.Invalid(fmt.Sprintf("processes.%d.camera-args", i), "process %q has camera-args, but the config lists no cameras", p.Name)
			}
		}
		return nil
	}
	if c.RunDir == "" {
		d, err := rundir.Default()
		if err != nil {
			return config.Invalid("run-dir", "is needed for the cameras' sockets: %w", err)
		}
		c.RunDir = d
	}
	if c.ProducerBinary == "" {
		c.ProducerBinary = "framehub-producer"
	}
	if c.ProducerAdmin == "" {
		c.ProducerAdmin = "unix:" + PlaceholderDir + "/producer.admin"
	}
	if !filepath.IsAbs(c.RunDir) {
		return config.Invalid("run-dir", "%q must be an absolute path", c.RunDir)
	}
	if len(c.Cameras) == 1 && c.Cameras[0].Name == "" {
		c.Cameras[0].Name = camname.Default // served at /cam, as the one camera always was
	}
	seen := map[string]int{}
	for i, cam := range c.Cameras {
		at := func(k string) string { return fmt.Sprintf("cameras.%d.%s", i, k) }
		if err := camname.Check(cam.Name); err != nil {
			return config.Invalid(at("name"), "%w", err)
		}
		if j, dup := seen[cam.Name]; dup {
			return config.Invalid(at("name"), "camera %q is also camera %d", cam.Name, j)
		}
		seen[cam.Name] = i
		if cam.Source == "" {
			return config.Invalid(at("source"), "camera %q has no source", cam.Name)
		}
		for _, k := range []string{"source", "socket", "admin", "config"} { // the supervisor's to set
			if _, ok := cam.Options[k]; ok {
				return config.Invalid(at("options."+k), "camera %q: %s is set by the supervisor", cam.Name, k)
			}
		}
		// The socket path must fit sockaddr_un (108 bytes with its NUL).
		if s := c.cameraSocket(cam.Name); len(s) > 107 {
			return config.Invalid("run-dir", "camera %q's socket %s is %d bytes long: a Unix socket path has at most 107; choose a shorter run-dir", cam.Name, s, len(s))
		}
	}
	return nil
}

// expand replaces the process entries as written by the processes run:
// each camera's producer first, then every entry in order, one instance
// per camera of a per-camera entry, camera-args repeated for every camera.
// A config without cameras is left as it is.
func (c *Config) expand() error {
	if len(c.Cameras) == 0 {
		return nil
	}
	var out []Process
	for i, cam := range c.Cameras {
		p, err := c.producerOf(cam, i)
		if err != nil {
			return err
		}
		out = append(out, p)
	}
	for i, p := range c.Processes {
		at := func(k string) string { return fmt.Sprintf("processes.%d.%s", i, k) }
		if !p.PerCamera {
			for _, f := range [][]string{p.Args, p.Env, {p.Dir, p.Admin, p.ReadySocket}} {
				for _, v := range f {
					if m := placeholderRE.FindString(v); m != "" {
						return config.Invalid(at("name"), "process %q runs once for all cameras: %s in %q has no camera to stand for "+
							"(put it in camera-args, or make the process per-camera)", p.Name, m, v)
					}
				}
			}
			q := p
			q.PerCamera, q.CameraArgs = false, nil
			q.Args = slices.Clone(p.Args)
			for j := range c.Cameras {
				args, err := c.substituteAll(p.CameraArgs, j)
				if err != nil {
					return config.Invalid(at("camera-args"), "%w", err)
				}
				q.Args = append(q.Args, args...)
			}
			out = append(out, q)
			continue
		}
		for j, cam := range c.Cameras {
			q := p
			q.Name, q.Camera, q.PerCamera = p.Name+"."+cam.Name, cam.Name, false
			var err error
			if q.Args, err = c.substituteAll(p.Args, j); err != nil {
				return config.Invalid(at("args"), "%w", err)
			}
			if q.Env, err = c.substituteAll(p.Env, j); err != nil {
				return config.Invalid(at("env"), "%w", err)
			}
			for _, f := range []struct {
				key string
				v   *string
			}{{"dir", &q.Dir}, {"admin", &q.Admin}, {"ready-socket", &q.ReadySocket}} {
				if *f.v, err = c.substitute(*f.v, j); err != nil {
					return config.Invalid(at(f.key), "%w", err)
				}
			}
			// It starts after its camera's producer and the processes it
			// names, each of the same camera when that runs per camera.
			q.After = []string{producerProcess + "." + cam.Name}
			for _, a := range p.After {
				if k := slices.IndexFunc(c.Processes[:i], func(e Process) bool { return e.Name == a }); k >= 0 && c.Processes[k].PerCamera {
					a += "." + cam.Name
				}
				q.After = append(q.After, a)
			}
			out = append(out, q)
		}
	}
	seen := map[string]bool{}
	for _, p := range out {
		if seen[p.Name] {
			return config.Invalid("processes", "two processes are named %q (a per-camera process is named <process>.<camera>, a camera's producer producer.<camera>)", p.Name)
		}
		seen[p.Name] = true
	}
	c.Processes = out
	return nil
}

// placeholderRE matches a placeholder: {name} or {name:argument}.
var placeholderRE = regexp.MustCompile(`\{([a-z][a-z-]*)(?::([^{}]*))?\}`)

// substitute replaces the placeholders of s by the values of camera i
// (its index in Cameras). An unknown placeholder is an error, so that a
// typo ({camra}) cannot make every camera write to one directory.
func (c *Config) substitute(s string, i int) (string, error) {
	var bad error
	cam := c.Cameras[i].Name
	out := placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := placeholderRE.FindStringSubmatch(m)
		name, arg, hasArg := sub[1], sub[2], strings.Contains(m, ":")
		switch {
		case m == PlaceholderCamera:
			return cam
		case m == PlaceholderSocket:
			return c.cameraSocket(cam)
		case m == PlaceholderDir:
			return c.cameraDir(cam)
		case m == PlaceholderProducerAdmin && s != c.ProducerAdmin:
			a, err := c.substitute(c.ProducerAdmin, i)
			if err != nil && bad == nil {
				bad = err
			}
			return a
		case name == "port" && hasArg:
			base, err := strconv.Atoi(arg)
			if last := base + len(c.Cameras) - 1; err != nil || base < 1 || last > 65535 {
				if bad == nil {
					bad = fmt.Errorf("%s: want {port:N}, N a port number with N + %d ≤ 65535 (one port per camera, from N)", m, len(c.Cameras)-1)
				}
				return m
			}
			return strconv.Itoa(base + i)
		}
		if bad == nil {
			bad = fmt.Errorf("unknown placeholder %s in %q (known: {camera}, {socket}, {dir}, {port:N}, {producer-admin})", m, s)
		}
		return m
	})
	return out, bad
}

// substituteAll is substitute of every string of in.
func (c *Config) substituteAll(in []string, i int) ([]string, error) {
	if in == nil {
		return nil, nil
	}
	out := make([]string, len(in))
	for k, s := range in {
		var err error
		if out[k], err = c.substitute(s, i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// producerOf is the process entry of camera i's producer. Its settings go
// to a config file in the camera's directory (ProducerConfig), written
// before each start, so that the source's credentials are not on a
// command line.
func (c *Config) producerOf(cam Camera, i int) (Process, error) {
	dir := c.cameraDir(cam.Name)
	settings := map[string]any{}
	for k, v := range cam.Options {
		settings[k] = v
	}
	socket := c.cameraSocket(cam.Name)
	admin, err := c.substitute(c.ProducerAdmin, i)
	if err != nil {
		return Process{}, config.Invalid("producer-admin", "%w", err)
	}
	settings["source"], settings["socket"], settings["admin"] = cam.Source, socket, admin
	b, err := yaml.Marshal(settings)
	if err != nil {
		return Process{}, config.Invalid(fmt.Sprintf("cameras.%d.options", i), "camera %q: %w", cam.Name, err)
	}
	return Process{
		Name: producerProcess + "." + cam.Name, Binary: c.ProducerBinary, Camera: cam.Name,
		Args: []string{"-config", filepath.Join(dir, "producer.yaml")}, ReadySocket: socket, Admin: admin,
		ProducerConfig: string(b), Restart: defaultRestart(Restart{}), After: []string{},
	}, nil
}

// prepareCamera makes a camera's run directory (mode 0700: it holds its
// producer's config with the source's credentials, and its sockets) and
// writes its producer's config file, when p is a camera's producer.
func prepareCamera(p Process) error {
	if p.ProducerConfig == "" {
		return nil
	}
	file := p.Args[1]
	dir := filepath.Dir(file)
	if err := rundir.Ensure(dir, -1); err != nil {
		return fmt.Errorf("camera %q: run directory: %w", p.Camera, err)
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte("# Written by framehub-supervisor from its config's camera "+p.Camera+"; changes here are lost.\n"+p.ProducerConfig), 0o600); err != nil {
		return fmt.Errorf("camera %q: producer config: %w", p.Camera, err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("camera %q: producer config: %w", p.Camera, err)
	}
	return nil
}

// cameraStatus describes the cameras of cfg.
func cameraStatus(cfg Config) []CameraStatus {
	out := make([]CameraStatus, 0, len(cfg.Cameras))
	for _, cam := range cfg.Cameras {
		cs := CameraStatus{Name: cam.Name, Source: redact(cam.Source), Socket: cfg.cameraSocket(cam.Name), Dir: cfg.cameraDir(cam.Name)}
		for _, p := range cfg.Processes {
			if p.Camera == cam.Name {
				cs.Processes = append(cs.Processes, p.Name)
			}
		}
		out = append(out, cs)
	}
	return out
}

// redact returns a source without the credentials of its URL.
func redact(source string) string {
	u, err := url.Parse(source)
	if err != nil || u.User == nil {
		if strings.Contains(source, "@") && strings.Contains(source, "://") {
			return "(a URL that does not parse; not shown: it may hold credentials)"
		}
		return source
	}
	u.User = nil
	return u.String()
}
