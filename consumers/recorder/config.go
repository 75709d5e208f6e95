package recorder

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/framehub/framehub/sdk"
)

// Recording modes (Config.Mode).
const (
	ModeContinuous = "continuous" // every frame, in back-to-back segments
	ModeEvent      = "event"      // only around events (POST /record/event)
)

// DefaultAdminAddr is the recorder's admin address in a framehub group.
const DefaultAdminAddr = "127.0.0.1:7702"

// Config configures a Recorder. Zero values take the defaults given; New
// fills them in and validates.
type Config struct {
	// Producer is the producer's socket; default sdk.DefaultAddr().
	Producer string
	// Stream is the producer's H.264 stream; default "h264".
	Stream string
	// Name identifies the recorder in the producer's logs; default
	// "framehub-recorder".
	Name string
	// Dir is the root of the recordings: segments go to Dir/YYYY-MM-DD/
	// (UTC date of their first frame). Default "recordings".
	Dir string
	// Mode is ModeContinuous (default) or ModeEvent.
	Mode string
	// Segment is the target duration of a segment file; default 60 s. A
	// segment ends at the first keyframe at or after it (the recorder asks
	// the producer for one, so the overshoot is a few frames).
	Segment time.Duration
	// Fragment is how much media is buffered before it is written and
	// fsync'ed: what a crash or power loss can lose. Default 1 s, ≥ 10 ms.
	Fragment time.Duration
	// Pre is how much video before an event the event mode keeps (copied
	// access units in memory, not leases); default 5 s. Requests may ask
	// for less, not more.
	Pre time.Duration
	// Post is how long the event mode records after an event; default
	// 10 s. Requests may ask for a different value.
	Post time.Duration
	// KeepBytes and KeepAge bound the recordings in Dir: the oldest closed
	// segments are deleted first. 0 means no limit (default). A full disk
	// (ENOSPC) deletes the oldest segments regardless, so that recording
	// goes on.
	KeepBytes int64
	KeepAge   time.Duration
	// QueueBytes bounds the access units waiting to be written (a storage
	// stall); default 32 MiB (~1 min at 4 Mbit/s). When it is full, whole
	// GOPs are dropped and counted.
	QueueBytes int64
	// MaxHold is the lease deadline declared to the producer. Access units
	// are copied and released at once, so the default, 2 s, is generous.
	MaxHold time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between dials of a
	// producer that is gone; defaults 100 ms and 5 s.
	ReconnectMin, ReconnectMax time.Duration
	// FS is the storage; default OSFS. Tests inject stalls and errors.
	FS FS
	// Logger receives the recorder's logs; default slog.Default().
	Logger *slog.Logger
}

// Defaults returns the configuration of the defaults given on each field
// (Producer, FS and Logger, which are looked up when used, empty): the
// values New gives zero fields, and those of framehub-recorder's flags.
func Defaults() Config {
	return Config{
		Stream: "h264", Name: "framehub-recorder", Dir: "recordings", Mode: ModeContinuous,
		Segment: time.Minute, Fragment: time.Second, Pre: 5 * time.Second, Post: 10 * time.Second,
		QueueBytes: 32 << 20, MaxHold: 2 * time.Second, ReconnectMin: 100 * time.Millisecond, ReconnectMax: 5 * time.Second,
	}
}

func (c *Config) fill() {
	d := Defaults()
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	str := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	if c.Producer == "" {
		c.Producer = sdk.DefaultAddr()
	}
	str(&c.Stream, d.Stream)
	str(&c.Name, d.Name)
	str(&c.Dir, d.Dir)
	str(&c.Mode, d.Mode)
	set(&c.Segment, d.Segment)
	set(&c.Fragment, d.Fragment)
	set(&c.Pre, d.Pre)
	set(&c.Post, d.Post)
	set(&c.MaxHold, d.MaxHold)
	set(&c.ReconnectMin, d.ReconnectMin)
	set(&c.ReconnectMax, d.ReconnectMax)
	if c.QueueBytes == 0 {
		c.QueueBytes = d.QueueBytes
	}
	if c.FS == nil {
		c.FS = OSFS{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// validate checks a filled config; errors name the field and its value.
func (c *Config) validate() error {
	switch {
	case c.Mode != ModeContinuous && c.Mode != ModeEvent:
		return fmt.Errorf("recorder: config: Mode %q is not %q or %q", c.Mode, ModeContinuous, ModeEvent)
	case c.Fragment < 10*time.Millisecond:
		return fmt.Errorf("recorder: config: Fragment %v must be ≥ 10ms", c.Fragment)
	case c.Segment < c.Fragment:
		return fmt.Errorf("recorder: config: Segment %v must be ≥ Fragment %v", c.Segment, c.Fragment)
	case c.Pre < 0 || c.Post < 0:
		return fmt.Errorf("recorder: config: Pre %v and Post %v must not be negative", c.Pre, c.Post)
	case c.KeepBytes < 0 || c.KeepAge < 0:
		return fmt.Errorf("recorder: config: KeepBytes %d and KeepAge %v must not be negative", c.KeepBytes, c.KeepAge)
	case c.QueueBytes < 1<<20:
		return fmt.Errorf("recorder: config: QueueBytes %d must be ≥ 1 MiB", c.QueueBytes)
	case c.MaxHold < 100*time.Millisecond:
		return fmt.Errorf("recorder: config: MaxHold %v must be ≥ 100ms", c.MaxHold)
	case c.ReconnectMin <= 0 || c.ReconnectMax < c.ReconnectMin:
		return fmt.Errorf("recorder: config: ReconnectMin %v and ReconnectMax %v must satisfy 0 < min ≤ max", c.ReconnectMin, c.ReconnectMax)
	}
	return nil
}
