// Package daemon is the framehub-recorder program: its options (flags and a
// YAML config file whose keys are the flag names) and the wiring of the
// recorder and its admin API.
package daemon

import (
	"flag"
	"time"

	"github.com/framehub/framehub/consumers/recorder"
	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/config"
	"github.com/framehub/framehub/sdk"
)

// Options are the recorder's settings: its flags (RegisterFlags), which
// are also the keys of its YAML config file (Load).
type Options struct {
	Socket string `yaml:"socket"`
	Stream string `yaml:"stream"`
	Name   string `yaml:"name"`
	Admin  string `yaml:"admin"`
	// Access protects the admin API (-admin-token, -admin-public).
	admin.Access `yaml:",inline"`
	Dir          string          `yaml:"dir"`
	Mode         string          `yaml:"mode"`
	Segment      time.Duration   `yaml:"segment"`
	Fragment     time.Duration   `yaml:"fragment"`
	Pre          time.Duration   `yaml:"pre"`
	Post         time.Duration   `yaml:"post"`
	KeepBytes    config.ByteSize `yaml:"keep-bytes"`
	KeepAge      time.Duration   `yaml:"keep-age"`
	QueueBytes   config.ByteSize `yaml:"queue-bytes"`
	MaxHold      time.Duration   `yaml:"max-hold"`
}

// RegisterFlags defines the recorder's flags on fs, with their defaults:
// recorder.Defaults'.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	d := recorder.Defaults()
	fs.StringVar(&o.Socket, "socket", sdk.DefaultAddr(), "producer socket: a path, or @name for the abstract namespace")
	fs.StringVar(&o.Stream, "stream", d.Stream, "the producer's H.264 stream")
	fs.StringVar(&o.Name, "name", d.Name, "this consumer's name in the producer's logs and metrics")
	fs.StringVar(&o.Admin, "admin", recorder.DefaultAdminAddr, "admin API address (POST /record/event, /healthz, /metrics): host:port or unix:/path; empty disables")
	o.Access.RegisterFlags(fs)
	fs.StringVar(&o.Dir, "dir", d.Dir, "root directory of the recordings; segments go to DIR/YYYY-MM-DD/<UTC start time>.mp4")
	fs.StringVar(&o.Mode, "mode", d.Mode, "continuous (every frame) or event (only around POST /record/event)")
	fs.DurationVar(&o.Segment, "segment", d.Segment, "duration of a segment file; each starts on a keyframe")
	fs.DurationVar(&o.Fragment, "fragment", d.Fragment, "media written and fsync'ed at a time: the most a crash or power loss can lose")
	fs.DurationVar(&o.Pre, "pre", d.Pre, "event mode: video kept in memory and recorded before an event")
	fs.DurationVar(&o.Post, "post", d.Post, "event mode: video recorded after an event (a request may ask for another value)")
	fs.Var(&o.KeepBytes, "keep-bytes", "delete the oldest segments beyond this many bytes in -dir; suffixes K, M, G, KiB, MiB, GiB (0: no limit)")
	fs.DurationVar(&o.KeepAge, "keep-age", 0, "delete segments older than this, e.g. 720h (0: no limit)")
	o.QueueBytes = config.ByteSize(d.QueueBytes)
	fs.Var(&o.QueueBytes, "queue-bytes", "access units waiting for storage, at most (a stall); beyond it whole GOPs are dropped and counted")
	fs.DurationVar(&o.MaxHold, "max-hold", d.MaxHold, "lease deadline declared to the producer (access units are copied and released at once)")
}

// validate checks values a flag type cannot; its errors are
// *config.FieldError naming the key.
func (o *Options) validate() error {
	switch {
	case o.Socket == "":
		return config.Invalid("socket", "%w", sdk.AddrError(o.Socket))
	case o.Stream == "":
		return config.Invalid("stream", "must not be empty")
	case o.Dir == "":
		return config.Invalid("dir", "must not be empty")
	case o.Mode != recorder.ModeContinuous && o.Mode != recorder.ModeEvent:
		return config.Invalid("mode", "%q is not %s or %s", o.Mode, recorder.ModeContinuous, recorder.ModeEvent)
	case o.Fragment < 10*time.Millisecond:
		return config.Invalid("fragment", "%v must be ≥ 10ms", o.Fragment)
	case o.Segment < o.Fragment:
		return config.Invalid("segment", "%v must be ≥ fragment (%v)", o.Segment, o.Fragment)
	case o.Pre < 0:
		return config.Invalid("pre", "%v must not be negative", o.Pre)
	case o.Post < 0:
		return config.Invalid("post", "%v must not be negative", o.Post)
	case o.KeepAge < 0:
		return config.Invalid("keep-age", "%v must not be negative", o.KeepAge)
	case o.QueueBytes < 1<<20:
		return config.Invalid("queue-bytes", "%d must be ≥ 1MiB", o.QueueBytes)
	case o.MaxHold < 100*time.Millisecond:
		return config.Invalid("max-hold", "%v must be ≥ 100ms", o.MaxHold)
	}
	return nil
}

// Config returns the recorder configuration of o.
func (o *Options) Config() recorder.Config {
	return recorder.Config{
		Producer: o.Socket, Stream: o.Stream, Name: o.Name, Dir: o.Dir, Mode: o.Mode, Segment: o.Segment, Fragment: o.Fragment,
		Pre: o.Pre, Post: o.Post, KeepBytes: int64(o.KeepBytes), KeepAge: o.KeepAge, QueueBytes: int64(o.QueueBytes), MaxHold: o.MaxHold,
	}
}

// Load fills o from the command line and its -config file, the command
// line winning (see config.ParseFlags). Every setting is a flag: an
// argument after the flags is an error.
func (o *Options) Load(fs *flag.FlagSet, args []string) error {
	o.RegisterFlags(fs)
	return config.ParseFlags(fs, args, o, config.NoArgs, o.validate)
}
