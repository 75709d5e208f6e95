// Package daemon is the framehub-snapshot program: its options (flags and
// YAML config file) and the wiring of the snapshot service and its admin
// API.
package daemon

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/framehub/framehub/consumers/snapshot"
	"github.com/framehub/framehub/sdk"
)

// Options are the daemon's settings, from flags (RegisterFlags) and a config
// file whose keys are the flag names (Load); a flag given on the command
// line wins over the file.
type Options struct {
	Socket       string
	Stream       string
	Admin        string
	Dir          string
	Encoder      string
	GstLaunch    string
	Quality      int
	Queue        int
	KeepCount    int
	KeepBytes    ByteSize
	WriteRetries int
	FrameTimeout time.Duration
	MaxHold      time.Duration
	Webhook      string
	EventSocket  string
}

// RegisterFlags defines the daemon's flags on fs, with their defaults.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Socket, "socket", sdk.DefaultAddr(), "producer socket: a path, or @name for the abstract namespace")
	fs.StringVar(&o.Stream, "stream", "raw", "the producer's raw NV12 stream to snapshot")
	fs.StringVar(&o.Admin, "admin", snapshot.DefaultAdminAddr, "admin API address (POST /snapshot, GET /snapshot/{id}, /healthz, /metrics): host:port, or unix:/path")
	fs.StringVar(&o.Dir, "dir", "snapshots", "directory of the snapshot files (created); files are named by capture time (UTC) and id")
	fs.StringVar(&o.Encoder, "encoder", "", "JPEG encoder: gst (jpegenc in a gst-launch-1.0 child process) or go (image/jpeg); default gst when gst-launch-1.0 is installed, else go")
	fs.StringVar(&o.GstLaunch, "gst-launch", "gst-launch-1.0", "gst-launch-1.0 binary for -encoder gst")
	fs.IntVar(&o.Quality, "quality", 85, "default JPEG quality, 1..100")
	fs.IntVar(&o.Queue, "queue", 32, "snapshots kept in memory until written; when full, requests get 503 \"storage busy\"")
	fs.IntVar(&o.KeepCount, "keep-count", 1000, "keep at most this many snapshots in -dir, deleting the oldest (0: no limit)")
	o.KeepBytes = 1 << 30
	fs.Var(&o.KeepBytes, "keep-bytes", "keep at most this many bytes of snapshots in -dir, deleting the oldest; suffixes K, M, G, KiB, MiB, GiB (0: no limit)")
	fs.IntVar(&o.WriteRetries, "write-retries", 3, "retries of a failed write or fsync (backoff 250 ms, doubling) before the snapshot is reported failed")
	fs.DurationVar(&o.FrameTimeout, "frame-timeout", 5*time.Second, "longest wait for a frame captured at or after the requested time")
	fs.DurationVar(&o.MaxHold, "max-hold", 10*time.Second, "lease deadline asked of the producer: the longest an encode may hold a frame")
	fs.StringVar(&o.Webhook, "webhook", "", "URL that receives a JSON POST when a snapshot is durable or failed")
	fs.StringVar(&o.EventSocket, "event-socket", "", "Unix datagram socket path that receives one JSON datagram when a snapshot is durable or failed")
}

// validate checks values a flag type cannot; it returns the offending key.
func (o *Options) validate() (string, error) {
	switch {
	case o.Socket == "":
		return "socket", errors.New("must not be empty")
	case o.Admin == "":
		return "admin", errors.New("must not be empty")
	case o.Dir == "":
		return "dir", errors.New("must not be empty")
	case o.Encoder != "" && o.Encoder != snapshot.EncoderGo && o.Encoder != snapshot.EncoderGst:
		return "encoder", fmt.Errorf("%q is not go or gst", o.Encoder)
	case o.Quality < 1 || o.Quality > 100:
		return "quality", fmt.Errorf("%d is not in 1..100", o.Quality)
	case o.Queue < 1:
		return "queue", fmt.Errorf("%d must be ≥ 1", o.Queue)
	case o.KeepCount < 0:
		return "keep-count", fmt.Errorf("%d must not be negative", o.KeepCount)
	case o.WriteRetries < 0:
		return "write-retries", fmt.Errorf("%d must not be negative", o.WriteRetries)
	case o.FrameTimeout <= 0:
		return "frame-timeout", fmt.Errorf("%v must be positive", o.FrameTimeout)
	case o.MaxHold <= 0:
		return "max-hold", fmt.Errorf("%v must be positive", o.MaxHold)
	}
	if o.Webhook != "" {
		u, err := url.Parse(o.Webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "webhook", fmt.Errorf("%q is not an http:// or https:// URL", o.Webhook)
		}
	}
	return "", nil
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

// ByteSize is a size in bytes, written as an integer with an optional
// suffix: K, M, G (powers of 1000) or KiB, MiB, GiB (powers of 1024).
type ByteSize int64

func (b *ByteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

// Set implements flag.Value.
func (b *ByteSize) Set(s string) error {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a size in bytes (e.g. 500000000, 500M, 2GiB)", s)
	}
	*b = ByteSize(n * mult)
	return nil
}
