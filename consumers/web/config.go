package web

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/framehub/framehub/internal/camname"

	"github.com/framehub/framehub/consumers/recorder"
	"github.com/framehub/framehub/consumers/snapshot"
	"github.com/framehub/framehub/sdk"
)

// DefaultAddr is where framehub-web serves by default: loopback only.
const DefaultAddr = "127.0.0.1:8889"

// Camera is one camera the web daemon shows: a producer and the
// directories its recorder and snapshot service write.
type Camera struct {
	// Name is the camera's URL path segment (/<name>/whep): [a-z0-9_-],
	// 1 to 32 characters.
	Name string `yaml:"name"`
	// Socket is the producer's consumer socket. It defaults to
	// sdk.DefaultAddr().
	Socket string `yaml:"socket"`
	// Stream and RawStream are the producer's H.264 and NV12 streams. They
	// default to "h264" and "raw".
	Stream    string `yaml:"stream"`
	RawStream string `yaml:"raw-stream"`
	// Recordings is the recorder's directory (its -dir); "" shows no
	// recordings. Snapshots is the snapshot service's directory (its
	// -dir); "" shows no stored snapshots.
	Recordings string `yaml:"recordings"`
	Snapshots  string `yaml:"snapshots"`
	// Admin is the producer's admin address (its -admin: host:port or
	// unix:/path); when set, the page lists the producer's consumers,
	// read with the admin token (Config.AdminTokenFile). "" lists none.
	Admin string `yaml:"admin"`
}

// Validate checks c; the error names the camera and the field.
func (c Camera) Validate() error {
	if err := camname.Check(c.Name); err != nil {
		return err
	}
	switch {
	case c.Socket == "":
		return fmt.Errorf("camera %q: %w", c.Name, sdk.AddrError(c.Socket))
	}
	return nil
}

// Config is the web daemon's configuration. Zero values take Defaults'.
type Config struct {
	// Cameras are the cameras shown, at least one, with distinct names.
	Cameras []Camera
	// ViewerQueue is how many access units wait for one viewer (WebRTC
	// or HLS) before that viewer skips to the next keyframe. It defaults
	// to 60 (2 s at 30 fps).
	ViewerQueue int
	// KeyframeInterval paces the keyframe requests sent to a producer for
	// joining viewers. It defaults to 500 ms.
	KeyframeInterval time.Duration
	// MaxClip bounds /get: the longest duration asked, and the most bytes
	// built in memory. They default to 1 hour and 512 MiB.
	MaxClip      time.Duration
	MaxClipBytes int64
	// SnapshotTimeout is the longest /<camera>/snapshot.jpg waits for a
	// frame. It defaults to 5 s.
	SnapshotTimeout time.Duration
	// Quality is the JPEG quality of /<camera>/snapshot.jpg. It defaults
	// to snapshot.Defaults().Quality.
	Quality int
	// ReconnectMax is the longest wait between two subscription attempts
	// to a producer that is down. It defaults to 5 s.
	ReconnectMax time.Duration
	// AdminTokenFile is the admin token file of the group, for the
	// producers' GET /consumers (Camera.Admin). The daemon sets it to its
	// own guard's.
	AdminTokenFile string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// DefaultCamera is the camera shown when none is configured: "cam" at
// the default producer socket, with the recorder's and snapshot service's
// default directories.
func DefaultCamera() Camera {
	return Camera{Name: "cam", Socket: sdk.DefaultAddr(), Stream: "h264", RawStream: "raw",
		Recordings: recorder.Defaults().Dir, Snapshots: snapshot.Defaults().Dir}
}

// Defaults returns the default configuration.
func Defaults() Config {
	return Config{
		Cameras: []Camera{DefaultCamera()}, ViewerQueue: 60, KeyframeInterval: 500 * time.Millisecond,
		MaxClip: time.Hour, MaxClipBytes: 512 << 20, SnapshotTimeout: 5 * time.Second,
		Quality: snapshot.Defaults().Quality, ReconnectMax: 5 * time.Second,
	}
}

// fill sets the zero values to the defaults and validates.
func (c *Config) fill() error {
	d := Defaults()
	if len(c.Cameras) == 0 {
		c.Cameras = d.Cameras
	}
	seen := map[string]bool{}
	for i := range c.Cameras {
		cam := &c.Cameras[i]
		if cam.Stream == "" {
			cam.Stream = "h264"
		}
		if cam.RawStream == "" {
			cam.RawStream = "raw"
		}
		if err := cam.Validate(); err != nil {
			return err
		}
		if seen[cam.Name] {
			return fmt.Errorf("camera name %q given twice", cam.Name)
		}
		seen[cam.Name] = true
	}
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setInt(&c.ViewerQueue, d.ViewerQueue)
	setInt(&c.Quality, d.Quality)
	setDur(&c.KeyframeInterval, d.KeyframeInterval)
	setDur(&c.MaxClip, d.MaxClip)
	setDur(&c.SnapshotTimeout, d.SnapshotTimeout)
	setDur(&c.ReconnectMax, d.ReconnectMax)
	if c.MaxClipBytes == 0 {
		c.MaxClipBytes = d.MaxClipBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.ViewerQueue < 2:
		return fmt.Errorf("viewer queue %d: must be ≥ 2", c.ViewerQueue)
	case c.Quality < 1 || c.Quality > 100:
		return fmt.Errorf("quality %d: not in 1..100", c.Quality)
	case c.MaxClip < 0 || c.MaxClipBytes < 0 || c.SnapshotTimeout < 0 || c.KeyframeInterval < 0 || c.ReconnectMax < 0:
		return fmt.Errorf("negative duration or size in %+v", *c)
	}
	return nil
}
