// Package daemon is the framehub-streamer program: its options (flags and
// a YAML config file whose keys are the flag names) and its run, the
// streamer of package streamer.
package daemon

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/framehub/framehub/consumers/streamer"
	"github.com/framehub/framehub/internal/config"
	"github.com/framehub/framehub/internal/daemonrun"
)

// Options are the streamer's settings: its flags (RegisterFlags), which are
// also the keys of its YAML config file (Load). Each is the field of
// streamer.Config of the same name.
type Options struct {
	Socket            string        `yaml:"socket"`
	Stream            string        `yaml:"stream"`
	Name              string        `yaml:"name"`
	RTSPAddr          string        `yaml:"rtsp-addr"`
	Path              string        `yaml:"path"`
	Cameras           cameraList    `yaml:"camera"`
	UDPRTPAddr        string        `yaml:"udp-rtp-addr"`
	User              string        `yaml:"user"`
	Pass              string        `yaml:"pass"`
	MaxViewers        int           `yaml:"max-viewers"`
	ViewerQueue       int           `yaml:"viewer-queue"`
	KeyframeWait      time.Duration `yaml:"keyframe-wait"`
	KeyframeInterval  time.Duration `yaml:"keyframe-interval"`
	GOPCache          int           `yaml:"gop-cache"`
	Publish           string        `yaml:"publish"`
	PublishTransport  string        `yaml:"publish-transport"`
	PublishBackoffMax time.Duration `yaml:"publish-backoff-max"`
	ReconnectMax      time.Duration `yaml:"reconnect-max"`
	Admin             string        `yaml:"admin"`
	HealthStale       time.Duration `yaml:"health-stale"`
}

// RegisterFlags defines the streamer's flags on fs, with their defaults:
// streamer.Defaults'.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	d := streamer.Defaults()
	fs.StringVar(&o.Socket, "socket", d.Socket, "producer socket: a path, or @name for the abstract namespace")
	fs.StringVar(&o.Stream, "stream", d.Stream, "producer stream to serve (H.264 access units, Annex B)")
	fs.StringVar(&o.Name, "name", d.Name, "consumer name shown in the producer's logs and metrics")
	fs.StringVar(&o.RTSPAddr, "rtsp-addr", d.RTSPAddr, "RTSP listen address (TCP; port 0 picks a free one)")
	fs.StringVar(&o.Path, "path", d.Path, "stream path: viewers play rtsp://<rtsp-addr>/<path>")
	fs.Var(&o.Cameras, "camera", "serve this camera, name=socket (its producer's socket), at rtsp://<rtsp-addr>/<name>; give it once per camera "+
		"(in the config file: a list); with cameras, -socket and -path are not used")
	fs.StringVar(&o.UDPRTPAddr, "udp-rtp-addr", d.UDPRTPAddr, "UDP address RTP is sent from (even port; RTCP uses port+1; port 0 picks a free pair; empty disables UDP)")
	fs.StringVar(&o.User, "user", d.User, "user name viewers must authenticate with (with -pass; empty: no authentication)")
	fs.StringVar(&o.Pass, "pass", d.Pass, "password viewers must authenticate with (prefer the config file: flags show in ps)")
	fs.IntVar(&o.MaxViewers, "max-viewers", d.MaxViewers, "most simultaneous viewers (0: no limit)")
	fs.IntVar(&o.ViewerQueue, "viewer-queue", d.ViewerQueue, "access units that may wait for one viewer before it drops its backlog and resumes at the next keyframe")
	fs.DurationVar(&o.KeyframeWait, "keyframe-wait", d.KeyframeWait, "how long a new viewer waits for a requested keyframe before it starts from the cached GOP (0: start from the cache at once)")
	fs.DurationVar(&o.KeyframeInterval, "keyframe-interval", d.KeyframeInterval, "least time between keyframe requests to the producer (match the producer's rate limit)")
	fs.IntVar(&o.GOPCache, "gop-cache", d.GOPCache, "most access units of the last GOP kept (copies) for viewers that start from it (0: no cache)")
	fs.StringVar(&o.Publish, "publish", d.Publish, "also publish the stream to this RTSP URL, e.g. rtsp://mediamtx:8554/cam (empty: do not publish)")
	fs.StringVar(&o.PublishTransport, "publish-transport", d.PublishTransport, "transport of -publish: tcp or udp")
	fs.DurationVar(&o.PublishBackoffMax, "publish-backoff-max", d.PublishBackoffMax, "longest wait between attempts to publish")
	fs.DurationVar(&o.ReconnectMax, "reconnect-max", d.ReconnectMax, "longest wait between attempts to reach the producer")
	fs.StringVar(&o.Admin, "admin", d.Admin, "HTTP address of /metrics and /healthz (empty: disabled)")
	fs.DurationVar(&o.HealthStale, "health-stale", d.HealthStale, "/healthz fails when no frame came from the producer for this long")
}

// Config returns the streamer configuration of o.
func (o *Options) Config() streamer.Config {
	return streamer.Config{
		Socket: o.Socket, Stream: o.Stream, Name: o.Name, RTSPAddr: o.RTSPAddr, Path: o.Path, UDPRTPAddr: o.UDPRTPAddr,
		User: o.User, Pass: o.Pass, MaxViewers: o.MaxViewers, ViewerQueue: o.ViewerQueue, KeyframeWait: o.KeyframeWait,
		KeyframeInterval: o.KeyframeInterval, GOPCache: o.GOPCache, Publish: o.Publish, PublishTransport: o.PublishTransport,
		PublishBackoffMax: o.PublishBackoffMax, ReconnectMax: o.ReconnectMax, Admin: o.Admin, HealthStale: o.HealthStale,
		Cameras: o.Cameras.cameras(),
	}
}

// cameraList is -camera: name=socket, given once per camera; a
// config.ListValue.
type cameraList []string

// Reset empties the list.
func (l *cameraList) Reset() { *l = nil }

func (l *cameraList) String() string { return strings.Join(*l, " ") }

func (l *cameraList) Set(v string) error {
	if name, socket, ok := strings.Cut(v, "="); !ok || name == "" || socket == "" {
		return fmt.Errorf("%q is not name=socket", v)
	}
	*l = append(*l, v)
	return nil
}

// cameras returns the streamer's cameras of the list. An entry of the
// config file without '=' becomes a camera without a socket, which
// streamer.Config.Validate refuses.
func (l cameraList) cameras() []streamer.Camera {
	var out []streamer.Camera
	for _, v := range l {
		name, socket, _ := strings.Cut(v, "=")
		out = append(out, streamer.Camera{Name: name, Socket: socket})
	}
	return out
}

// Load fills o from the command line and its -config file, the command
// line winning (see config.ParseFlags). Every setting is a flag: an
// argument after the flags is an error. The values are checked as
// streamer.Config.Validate does, whose errors name the keys.
func (o *Options) Load(fs *flag.FlagSet, args []string) error {
	o.RegisterFlags(fs)
	return config.ParseFlags(fs, args, o, func(args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unexpected arguments %q (settings are flags)", args)
		}
		return nil
	}, func() error {
		c := o.Config()
		return c.Validate()
	})
}

// Run serves the stream until ctx is done (see package streamer). It makes
// o a daemonrun.Program.
func (o *Options) Run(ctx context.Context, log *slog.Logger) error {
	st, err := streamer.New(o.Config(), log)
	if err != nil {
		return daemonrun.BadConfig(err)
	}
	return st.Run(ctx)
}
