// Package daemon is the framehub-web program: its options (flags and YAML
// config file) and the wiring of the web server.
package daemon

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/framehub/framehub/consumers/web"
	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/config"
)

// Options are the web daemon's settings, set by flags (RegisterFlags) or by
// the YAML config file, whose keys are the flag names (Load).
type Options struct {
	Addr string `yaml:"addr"`
	// Access protects the state-changing endpoints (-admin-token; its
	// Public is not used).
	admin.Access     `yaml:",inline"`
	Cameras          cameraList      `yaml:"camera"`
	ViewerQueue      int             `yaml:"viewer-queue"`
	KeyframeInterval time.Duration   `yaml:"keyframe-interval"`
	MaxClip          time.Duration   `yaml:"max-clip"`
	MaxClipBytes     config.ByteSize `yaml:"max-clip-bytes"`
	Quality          int             `yaml:"quality"`
	SnapshotTimeout  time.Duration   `yaml:"snapshot-timeout"`
}

// cameraList is the -camera flag, given once per camera; a
// config.ListValue. In the config file it is a list of mappings with the
// keys name, socket, stream, raw-stream, recordings, snapshots and admin.
type cameraList []web.Camera

// Reset empties the list.
func (l *cameraList) Reset() { *l = nil }

func (l *cameraList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, c := range *l {
		s[i] = fmt.Sprintf("name=%s,socket=%s,recordings=%s,snapshots=%s,admin=%s", c.Name, c.Socket, c.Recordings, c.Snapshots, c.Admin)
	}
	return strings.Join(s, " ")
}

// Set parses "name=cam,socket=/run/framehub/framehub.sock,recordings=DIR,
// snapshots=DIR" (also stream=, raw-stream= and admin=, the producer's
// admin address); keys left out take the
// default camera's values, except name, which is required.
func (l *cameraList) Set(v string) error {
	c := web.DefaultCamera()
	c.Name = ""
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("%q is not key=value (keys: name, socket, stream, raw-stream, recordings, snapshots, admin)", kv)
		}
		switch strings.TrimSpace(k) {
		case "name":
			c.Name = val
		case "socket":
			c.Socket = val
		case "stream":
			c.Stream = val
		case "raw-stream":
			c.RawStream = val
		case "recordings":
			c.Recordings = val
		case "snapshots":
			c.Snapshots = val
		case "admin":
			c.Admin = val
		default:
			return fmt.Errorf("unknown key %q (keys: name, socket, stream, raw-stream, recordings, snapshots, admin)", k)
		}
	}
	if c.Name == "" {
		return fmt.Errorf("%q names no camera: give name=", v)
	}
	if err := c.Validate(); err != nil {
		return err
	}
	*l = append(*l, c)
	return nil
}

// RegisterFlags defines the daemon's flags on fs, with web.Defaults' values.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	d := web.Defaults()
	fs.StringVar(&o.Addr, "addr", web.DefaultAddr, "HTTP address (host:port) of the page, live video, snapshots and recordings; "+
		"anyone who reaches it can watch: keep it on loopback unless that is wanted")
	// Only -admin-token of admin.Access: the views are open anyway, and
	// -admin-public would open nothing more.
	var scratch flag.FlagSet
	o.Access.RegisterFlags(&scratch)
	tok := scratch.Lookup("admin-token")
	fs.Var(tok.Value, tok.Name, "admin token file: DELETE of a WHEP session must send 'Authorization: Bearer <token>'; created with "+
		"a random token, mode 0600, when missing (default $FRAMEHUB_ADMIN_TOKEN_FILE, else /run/framehub/admin.token for root, "+
		"$XDG_RUNTIME_DIR/framehub/admin.token for others)")
	fs.Var(&o.Cameras, "camera", "a camera, given once per camera: name=NAME,socket=PRODUCER_SOCKET,recordings=DIR,snapshots=DIR "+
		"(also stream=, raw-stream=, and admin=PRODUCER_ADMIN_ADDRESS to list its consumers on the page); default: name=cam at the default producer socket, recordings in ./"+
		d.Cameras[0].Recordings+", snapshots in ./"+d.Cameras[0].Snapshots)
	fs.IntVar(&o.ViewerQueue, "viewer-queue", d.ViewerQueue, "access units queued for one live viewer; a viewer whose queue is full skips to the next keyframe")
	fs.DurationVar(&o.KeyframeInterval, "keyframe-interval", d.KeyframeInterval, "least time between two keyframe requests sent to a producer for joining viewers")
	fs.DurationVar(&o.MaxClip, "max-clip", d.MaxClip, "longest duration /get serves")
	o.MaxClipBytes = config.ByteSize(d.MaxClipBytes)
	fs.Var(&o.MaxClipBytes, "max-clip-bytes", "largest MP4 /get builds in memory; suffixes K, M, G, KiB, MiB, GiB")
	fs.IntVar(&o.Quality, "quality", d.Quality, "JPEG quality of /<camera>/snapshot.jpg, 1..100")
	fs.DurationVar(&o.SnapshotTimeout, "snapshot-timeout", d.SnapshotTimeout, "longest wait of /<camera>/snapshot.jpg for a frame")
}

// validate checks values a flag type cannot.
func (o *Options) validate() error {
	seen := map[string]bool{}
	for _, c := range o.Cameras {
		if err := c.Validate(); err != nil {
			return config.Invalid("camera", "%w", err)
		}
		if seen[c.Name] {
			return config.Invalid("camera", "camera name %q given twice", c.Name)
		}
		seen[c.Name] = true
	}
	switch {
	case o.Addr == "":
		return config.Invalid("addr", "must not be empty")
	case o.ViewerQueue < 2:
		return config.Invalid("viewer-queue", "%d must be ≥ 2", o.ViewerQueue)
	case o.KeyframeInterval <= 0:
		return config.Invalid("keyframe-interval", "%v must be positive", o.KeyframeInterval)
	case o.MaxClip <= 0:
		return config.Invalid("max-clip", "%v must be positive", o.MaxClip)
	case o.MaxClipBytes <= 0:
		return config.Invalid("max-clip-bytes", "%d must be positive", int64(o.MaxClipBytes))
	case o.Quality < 1 || o.Quality > 100:
		return config.Invalid("quality", "%d is not in 1..100", o.Quality)
	case o.SnapshotTimeout <= 0:
		return config.Invalid("snapshot-timeout", "%v must be positive", o.SnapshotTimeout)
	}
	return nil
}

// Load fills o from the command line: the flag defaults, then the YAML file
// named by -config (if any), then the flags given explicitly.
func (o *Options) Load(fs *flag.FlagSet, args []string) error {
	o.RegisterFlags(fs)
	return config.ParseFlags(fs, args, o, config.NoArgs, o.validate)
}

// Config returns the server configuration of o.
func (o *Options) Config() web.Config {
	cfg := web.Defaults()
	if len(o.Cameras) > 0 {
		cfg.Cameras = append([]web.Camera(nil), o.Cameras...)
	}
	cfg.ViewerQueue, cfg.KeyframeInterval, cfg.MaxClip = o.ViewerQueue, o.KeyframeInterval, o.MaxClip
	cfg.MaxClipBytes, cfg.Quality, cfg.SnapshotTimeout = int64(o.MaxClipBytes), o.Quality, o.SnapshotTimeout
	return cfg
}
