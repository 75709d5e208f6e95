// Package daemon is the framehub-snapshot program: its options (flags and
// YAML config file) and the wiring of the snapshot service and its admin
// API.
package daemon

import (
	"flag"
	"fmt"
	"net/url"
	"time"

	"github.com/framehub/framehub/consumers/snapshot"
	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/config"
	"github.com/framehub/framehub/sdk"
)

// Options are the snapshot daemon's settings, set by flags (RegisterFlags)
// or by the YAML config file, whose keys are the flag names (Load).
type Options struct {
	Socket string `yaml:"socket"`
	Stream string `yaml:"stream"`
	Admin  string `yaml:"admin"`
	// Access protects the admin API (-admin-token, -admin-public).
	admin.Access `yaml:",inline"`
	Dir          string          `yaml:"dir"`
	Encoder      string          `yaml:"encoder"`
	GstLaunch    string          `yaml:"gst-launch"`
	Quality      int             `yaml:"quality"`
	Queue        int             `yaml:"queue"`
	KeepCount    int             `yaml:"keep-count"`
	KeepBytes    config.ByteSize `yaml:"keep-bytes"`
	WriteRetries int             `yaml:"write-retries"`
	FrameTimeout time.Duration   `yaml:"frame-timeout"`
	MaxHold      time.Duration   `yaml:"max-hold"`
	Webhook      string          `yaml:"webhook"`
	EventSocket  string          `yaml:"event-socket"`
}

// RegisterFlags defines the daemon's flags on fs, with their defaults:
// snapshot.Defaults' for the service's settings.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	d := snapshot.Defaults()
	fs.StringVar(&o.Socket, "socket", sdk.DefaultAddr(), "producer socket: a path, or @name for the abstract namespace")
	fs.StringVar(&o.Stream, "stream", d.Stream, "the producer's raw NV12 stream to snapshot")
	fs.StringVar(&o.Admin, "admin", snapshot.DefaultAdminAddr, "admin API address (POST /snapshot, GET /snapshot/{id}, /healthz, /metrics): host:port, or unix:/path")
	o.Access.RegisterFlags(fs)
	fs.StringVar(&o.Dir, "dir", d.Dir, "directory of the snapshot files (created); files are named by capture time (UTC) and id")
	fs.StringVar(&o.Encoder, "encoder", "", "JPEG encoder: gst (jpegenc in a gst-launch-1.0 child process) or go (image/jpeg); default gst when gst-launch-1.0 is installed, else go")
	fs.StringVar(&o.GstLaunch, "gst-launch", "gst-launch-1.0", "gst-launch-1.0 binary for -encoder gst")
	fs.IntVar(&o.Quality, "quality", d.Quality, "default JPEG quality, 1..100")
	fs.IntVar(&o.Queue, "queue", d.QueueSize, "snapshots kept in memory until written; when full, requests get 503 \"storage busy\"")
	fs.IntVar(&o.KeepCount, "keep-count", 1000, "keep at most this many snapshots in -dir, deleting the oldest (0: no limit)")
	o.KeepBytes = 1 << 30
	fs.Var(&o.KeepBytes, "keep-bytes", "keep at most this many bytes of snapshots in -dir, deleting the oldest; suffixes K, M, G, KiB, MiB, GiB (0: no limit)")
	fs.IntVar(&o.WriteRetries, "write-retries", d.WriteRetries, fmt.Sprintf("retries of a failed write or fsync (backoff %v, doubling) before the snapshot is reported failed", d.RetryBackoff))
	fs.DurationVar(&o.FrameTimeout, "frame-timeout", d.FrameTimeout, "longest wait for a frame captured at or after the requested time")
	fs.DurationVar(&o.MaxHold, "max-hold", d.MaxHold, "lease deadline asked of the producer: the longest an encode may hold a frame")
	fs.StringVar(&o.Webhook, "webhook", "", "URL that receives a JSON POST when a snapshot is durable or failed")
	fs.StringVar(&o.EventSocket, "event-socket", "", "Unix datagram socket path that receives one JSON datagram when a snapshot is durable or failed")
}

// validate checks values a flag type cannot; its errors are
// *config.FieldError naming the key.
func (o *Options) validate() error {
	switch {
	case o.Socket == "":
		return config.Invalid("socket", "%w", sdk.AddrError(o.Socket))
	case o.Admin == "":
		return config.Invalid("admin", "must not be empty")
	case o.Dir == "":
		return config.Invalid("dir", "must not be empty")
	case o.Encoder != "" && o.Encoder != snapshot.EncoderGo && o.Encoder != snapshot.EncoderGst:
		return config.Invalid("encoder", "%q is not go or gst", o.Encoder)
	case o.Quality < 1 || o.Quality > 100:
		return config.Invalid("quality", "%d is not in 1..100", o.Quality)
	case o.Queue < 1:
		return config.Invalid("queue", "%d must be ≥ 1", o.Queue)
	case o.KeepCount < 0:
		return config.Invalid("keep-count", "%d must not be negative", o.KeepCount)
	case o.WriteRetries < 0:
		return config.Invalid("write-retries", "%d must not be negative", o.WriteRetries)
	case o.FrameTimeout <= 0:
		return config.Invalid("frame-timeout", "%v must be positive", o.FrameTimeout)
	case o.MaxHold <= 0:
		return config.Invalid("max-hold", "%v must be positive", o.MaxHold)
	}
	if o.Webhook != "" {
		u, err := url.Parse(o.Webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return config.Invalid("webhook", "%q is not an http:// or https:// URL", o.Webhook)
		}
	}
	return nil
}

// Load fills o from the command line: the flag defaults, then the YAML file
// named by -config (if any), then the flags given explicitly. The file is a
// mapping whose keys are the flag names ("quality: 90", "keep-bytes: 2GiB",
// "frame-timeout: 3s"). Unknown keys, keys given twice and invalid values
// are *config.Error naming the file, the line and the key.
func (o *Options) Load(fs *flag.FlagSet, args []string) error {
	o.RegisterFlags(fs)
	return config.ParseFlags(fs, args, o, config.NoArgs, o.validate)
}

// Config returns the service configuration of o.
func (o *Options) Config() snapshot.Config {
	retries := o.WriteRetries
	if retries == 0 {
		retries = -1 // Config's "no retry"
	}
	return snapshot.Config{
		Producer: o.Socket, Stream: o.Stream, Dir: o.Dir, Encoder: o.Encoder, GstLaunch: o.GstLaunch,
		Quality: o.Quality, QueueSize: o.Queue, KeepCount: o.KeepCount, KeepBytes: int64(o.KeepBytes),
		WriteRetries: retries, FrameTimeout: o.FrameTimeout, MaxHold: o.MaxHold,
		Webhook: o.Webhook, EventSocket: o.EventSocket,
	}
}
