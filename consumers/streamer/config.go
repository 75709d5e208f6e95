package streamer

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/framehub/framehub/internal/camname"
	"github.com/framehub/framehub/internal/config"
	"github.com/framehub/framehub/sdk"
)

// Config is the streamer's configuration. Defaults returns the default of
// every field; framehub-streamer's flags and config file keys
// (consumers/streamer/daemon) set them.
type Config struct {
	// Socket is the producer's socket; Stream the encoded stream to serve
	// (of every camera).
	Socket string
	Stream string
	// Name identifies the streamer in the producer's logs and metrics.
	Name string

	// RTSPAddr is the RTSP (TCP) listen address, Path the stream's path:
	// viewers play rtsp://RTSPAddr/Path.
	RTSPAddr string
	Path     string
	// Cameras, when given, are the producers served instead of Socket and
	// Path: each camera's stream at rtsp://RTSPAddr/<Name>, all from this
	// process (one RTSP port, one UDP pair). A group config's camera list
	// (internal/supervisor) gives them.
	Cameras []Camera
	// UDPRTPAddr is where RTP over UDP is sent from; RTCP uses the next
	// port. Its port must be even; 0 picks a free pair; "" disables UDP.
	UDPRTPAddr string
	// User and Pass, when set, are the credentials viewers must give
	// (RTSP basic or digest authentication).
	User string
	Pass string
	// MaxViewers caps simultaneous viewers (0: no cap).
	MaxViewers int
	// ViewerQueue is how many access units may wait for one viewer before
	// it loses its backlog and resumes at the next keyframe.
	ViewerQueue int

	// KeyframeWait is how long a new viewer waits for a fresh keyframe,
	// requested from the producer, before it starts from the cached GOP
	// instead (0: start from the cache at once).
	KeyframeWait time.Duration
	// KeyframeInterval paces keyframe requests to the producer; it should
	// match the producer's own rate limit (250 ms).
	KeyframeInterval time.Duration
	// GOPCache bounds the cached GOP, in access units (0: no cache).
	GOPCache int

	// Publish, when set, is an RTSP URL (rtsp://[user:pass@]host:port/path)
	// the stream is also published to, for example a MediaMTX server.
	Publish string
	// PublishTransport is "tcp" or "udp".
	PublishTransport string
	// PublishBackoffMax caps the wait between publishing attempts.
	PublishBackoffMax time.Duration

	// ReconnectMax caps the wait between attempts to reach the producer.
	ReconnectMax time.Duration

	// Admin is the HTTP address of /metrics and /healthz ("" disables).
	Admin string
	// HealthStale is how long without a frame from the producer makes
	// /healthz report unhealthy.
	HealthStale time.Duration
}

// Camera is one producer the streamer serves.
type Camera struct {
	// Name is the camera's RTSP path; a valid camera name (camname.Check).
	Name string
	// Socket is the camera's producer socket.
	Socket string
}

// Defaults returns the streamer's default configuration: no
// authentication, no publishing, the producer's socket sdk.DefaultAddr().
func Defaults() Config {
	return Config{
		Socket: sdk.DefaultAddr(), Stream: "h264", Name: "streamer", RTSPAddr: "127.0.0.1:8554", Path: "cam",
		UDPRTPAddr: "127.0.0.1:8000", MaxViewers: 32, ViewerQueue: 60, KeyframeWait: 500 * time.Millisecond,
		KeyframeInterval: 250 * time.Millisecond, GOPCache: 300, PublishTransport: "tcp", PublishBackoffMax: 30 * time.Second,
		ReconnectMax: time.Second, Admin: "127.0.0.1:7703", HealthStale: 5 * time.Second,
	}
}

// Validate checks values a type cannot. Its errors are *config.FieldError
// naming the key.
func (o *Config) Validate() error {
	o.Path = strings.Trim(o.Path, "/")
	switch {
	case o.Socket == "" && len(o.Cameras) == 0:
		return config.Invalid("socket", "%w", sdk.AddrError(o.Socket))
	case o.Stream == "":
		return config.Invalid("stream", "must not be empty")
	case o.Path == "" && len(o.Cameras) == 0:
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
	seen := map[string]int{}
	for i, c := range o.Cameras {
		at := fmt.Sprintf("camera.%d", i)
		if err := camname.Check(c.Name); err != nil {
			return config.Invalid(at, "%w", err)
		}
		if c.Socket == "" {
			return config.Invalid(at, "camera %q has no producer socket: give name=socket", c.Name)
		}
		if j, dup := seen[c.Name]; dup {
			return config.Invalid(at, "camera %q is also camera %d", c.Name, j)
		}
		seen[c.Name] = i
	}
	if len(o.Cameras) > 1 && o.Publish != "" {
		return config.Invalid("publish", "publishes one stream: with %d cameras, run a streamer per camera to publish", len(o.Cameras))
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

// cameras returns the cameras served: Cameras, or the one of Socket and
// Path.
func (o *Config) cameras() []Camera {
	if len(o.Cameras) > 0 {
		return o.Cameras
	}
	return []Camera{{Name: o.Path, Socket: o.Socket}}
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
