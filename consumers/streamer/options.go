package streamer

import (
	"flag"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/framehub/framehub/internal/config"
	"github.com/framehub/framehub/sdk"
)

// Options are the streamer's settings. Each is a flag (RegisterFlags) and
// a key of the YAML config file of the same name (Load).
type Options struct {
	// Socket is the producer's socket; Stream the encoded stream to serve.
	Socket string `yaml:"socket"`
	Stream string `yaml:"stream"`
	// Name identifies the streamer in the producer's logs and metrics.
	Name string `yaml:"name"`

	// RTSPAddr is the RTSP (TCP) listen address, Path the stream's path:
	// viewers play rtsp://RTSPAddr/Path.
	RTSPAddr string `yaml:"rtsp-addr"`
	Path     string `yaml:"path"`
	// UDPRTPAddr is where RTP over UDP is sent from; RTCP uses the next
	// port. Its port must be even; 0 picks a free pair; "" disables UDP.
	UDPRTPAddr string `yaml:"udp-rtp-addr"`
	// User and Pass, when set, are the credentials viewers must give
	// (RTSP basic or digest authentication).
	User string `yaml:"user"`
	Pass string `yaml:"pass"`
	// MaxViewers caps simultaneous viewers (0: no cap).
	MaxViewers int `yaml:"max-viewers"`
	// ViewerQueue is how many access units may wait for one viewer before
	// it loses its backlog and resumes at the next keyframe.
	ViewerQueue int `yaml:"viewer-queue"`

	// KeyframeWait is how long a new viewer waits for a fresh keyframe,
	// requested from the producer, before it starts from the cached GOP
	// instead (0: start from the cache at once).
	KeyframeWait time.Duration `yaml:"keyframe-wait"`
	// KeyframeInterval paces keyframe requests to the producer; it should
	// match the producer's own rate limit (250 ms).
	KeyframeInterval time.Duration `yaml:"keyframe-interval"`
	// GOPCache bounds the cached GOP, in access units (0: no cache).
	GOPCache int `yaml:"gop-cache"`

	// Publish, when set, is an RTSP URL (rtsp://[user:pass@]host:port/path)
	// the stream is also published to, for example a MediaMTX server.
	Publish string `yaml:"publish"`
	// PublishTransport is "tcp" or "udp".
	PublishTransport string `yaml:"publish-transport"`
	// PublishBackoffMax caps the wait between publishing attempts.
	PublishBackoffMax time.Duration `yaml:"publish-backoff-max"`

	// ReconnectMax caps the wait between attempts to reach the producer.
	ReconnectMax time.Duration `yaml:"reconnect-max"`

	// Admin is the HTTP address of /metrics and /healthz ("" disables).
	Admin string `yaml:"admin"`
	// HealthStale is how long without a frame from the producer makes
	// /healthz report unhealthy.
	HealthStale time.Duration `yaml:"health-stale"`
}

// RegisterFlags defines the streamer's flags on fs, with their defaults.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Socket, "socket", sdk.DefaultAddr(), "producer socket: a path, or @name for the abstract namespace")
	fs.StringVar(&o.Stream, "stream", "h264", "producer stream to serve (H.264 access units, Annex B)")
	fs.StringVar(&o.Name, "name", "streamer", "consumer name shown in the producer's logs and metrics")
	fs.StringVar(&o.RTSPAddr, "rtsp-addr", "127.0.0.1:8554", "RTSP listen address (TCP; port 0 picks a free one)")
	fs.StringVar(&o.Path, "path", "cam", "stream path: viewers play rtsp://<rtsp-addr>/<path>")
	fs.StringVar(&o.UDPRTPAddr, "udp-rtp-addr", "127.0.0.1:8000", "UDP address RTP is sent from (even port; RTCP uses port+1; port 0 picks a free pair; empty disables UDP)")
	fs.StringVar(&o.User, "user", "", "user name viewers must authenticate with (with -pass; empty: no authentication)")
	fs.StringVar(&o.Pass, "pass", "", "password viewers must authenticate with (prefer the config file: flags show in ps)")
	fs.IntVar(&o.MaxViewers, "max-viewers", 32, "most simultaneous viewers (0: no limit)")
	fs.IntVar(&o.ViewerQueue, "viewer-queue", 60, "access units that may wait for one viewer before it drops its backlog and resumes at the next keyframe")
	fs.DurationVar(&o.KeyframeWait, "keyframe-wait", 500*time.Millisecond, "how long a new viewer waits for a requested keyframe before it starts from the cached GOP (0: start from the cache at once)")
	fs.DurationVar(&o.KeyframeInterval, "keyframe-interval", 250*time.Millisecond, "least time between keyframe requests to the producer (match the producer's rate limit)")
	fs.IntVar(&o.GOPCache, "gop-cache", 300, "most access units of the last GOP kept (copies) for viewers that start from it (0: no cache)")
	fs.StringVar(&o.Publish, "publish", "", "also publish the stream to this RTSP URL, e.g. rtsp://mediamtx:8554/cam (empty: do not publish)")
	fs.StringVar(&o.PublishTransport, "publish-transport", "tcp", "transport of -publish: tcp or udp")
	fs.DurationVar(&o.PublishBackoffMax, "publish-backoff-max", 30*time.Second, "longest wait between attempts to publish")
	fs.DurationVar(&o.ReconnectMax, "reconnect-max", time.Second, "longest wait between attempts to reach the producer")
	fs.StringVar(&o.Admin, "admin", "127.0.0.1:7703", "HTTP address of /metrics and /healthz (empty: disabled)")
	fs.DurationVar(&o.HealthStale, "health-stale", 5*time.Second, "/healthz fails when no frame came from the producer for this long")
}

// Defaults returns the options with every flag's default.
func Defaults() Options {
	var o Options
	o.RegisterFlags(flag.NewFlagSet("defaults", flag.ContinueOnError))
	return o
}

// Validate checks values a type cannot. Its errors are *config.FieldError
// naming the key.
func (o *Options) Validate() error {
	o.Path = strings.Trim(o.Path, "/")
	switch {
	case o.Socket == "":
		return config.Invalid("socket", "%w", sdk.AddrError(o.Socket))
	case o.Stream == "":
		return config.Invalid("stream", "must not be empty")
	case o.Path == "":
		return config.Invalid("path", "must not be empty")
	case (o.User == "") != (o.Pass == ""):
		if o.User == "" {
			return config.Invalid("user", "must be set when pass is")
		}
		return config.Invalid("pass", "must be set when user is")
	case o.MaxViewers < 0:
		return config.Invalid("max-viewers", "%d must not be negative", o.MaxViewers)
	case o.ViewerQueue < 1:
		return config.Invalid("viewer-queue", "%d must be ≥ 1", o.ViewerQueue)
	case o.KeyframeWait < 0:
		return config.Invalid("keyframe-wait", "%v must not be negative", o.KeyframeWait)
	case o.KeyframeInterval < 0:
		return config.Invalid("keyframe-interval", "%v must not be negative", o.KeyframeInterval)
	case o.GOPCache < 0:
		return config.Invalid("gop-cache", "%d must not be negative", o.GOPCache)
	case o.PublishTransport != "tcp" && o.PublishTransport != "udp":
		return config.Invalid("publish-transport", "%q must be tcp or udp", o.PublishTransport)
	case o.PublishBackoffMax <= 0:
		return config.Invalid("publish-backoff-max", "%v must be positive", o.PublishBackoffMax)
	case o.ReconnectMax <= 0:
		return config.Invalid("reconnect-max", "%v must be positive", o.ReconnectMax)
	case o.HealthStale <= 0:
		return config.Invalid("health-stale", "%v must be positive", o.HealthStale)
	}
	if _, _, err := splitPort(o.RTSPAddr); err != nil {
		return config.Invalid("rtsp-addr", "%w", err)
	}
	if o.UDPRTPAddr != "" {
		_, port, err := splitPort(o.UDPRTPAddr)
		if err != nil {
			return config.Invalid("udp-rtp-addr", "%w", err)
		}
		if port%2 != 0 || port == 65535 {
			return config.Invalid("udp-rtp-addr", "port %d must be even and below 65535 (RTCP uses the next one), or 0", port)
		}
	}
	if o.Admin != "" {
		if _, _, err := splitPort(o.Admin); err != nil {
			return config.Invalid("admin", "%w", err)
		}
	}
	if o.Publish != "" {
		u, err := url.Parse(o.Publish)
		if err != nil {
			return config.Invalid("publish", "%w", err)
		}
		if (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "" || strings.Trim(u.Path, "/") == "" {
			return config.Invalid("publish", "%q must be rtsp://host:port/path", o.Publish)
		}
	}
	return nil
}

// splitPort checks a host:port address and returns its parts.
func splitPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: port %q is not a number in 0..65535", addr, p)
	}
	return host, port, nil
}

// Load reads o from the flags in args and the file named by -config (see
// config.ParseFlags); a flag given on the command line wins over the file.
func (o *Options) Load(fs *flag.FlagSet, args []string) error {
	o.RegisterFlags(fs)
	return config.ParseFlags(fs, args, o, func(args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unexpected arguments %q (settings are flags)", args)
		}
		return nil
	}, o.Validate)
}
