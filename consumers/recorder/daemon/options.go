// Package daemon is the framehub-recorder program: its options (flags and a
// YAML config file whose keys are the flag names) and the wiring of the
// recorder and its admin API.
package daemon

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/framehub/framehub/consumers/recorder"
	"github.com/framehub/framehub/internal/config"
	"github.com/framehub/framehub/sdk"
)

// Options are the recorder's settings, from a config file (LoadFile) and
// flags (RegisterFlags); a flag given on the command line wins over the
// file. The YAML keys are the flag names.
type Options struct {
	Socket     string        `yaml:"socket"`
	Stream     string        `yaml:"stream"`
	Name       string        `yaml:"name"`
	Admin      string        `yaml:"admin"`
	Dir        string        `yaml:"dir"`
	Mode       string        `yaml:"mode"`
	Segment    time.Duration `yaml:"segment"`
	Fragment   time.Duration `yaml:"fragment"`
	Pre        time.Duration `yaml:"pre"`
	Post       time.Duration `yaml:"post"`
	KeepBytes  ByteSize      `yaml:"keep-bytes"`
	KeepAge    time.Duration `yaml:"keep-age"`
	QueueBytes ByteSize      `yaml:"queue-bytes"`
	MaxHold    time.Duration `yaml:"max-hold"`
}

// RegisterFlags defines the recorder's flags on fs, with their defaults.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Socket, "socket", sdk.DefaultAddr(), "producer socket: a path, or @name for the abstract namespace")
	fs.StringVar(&o.Stream, "stream", "h264", "the producer's H.264 stream")
	fs.StringVar(&o.Name, "name", "framehub-recorder", "this consumer's name in the producer's logs and metrics")
	fs.StringVar(&o.Admin, "admin", recorder.DefaultAdminAddr, "admin API address (POST /record/event, /healthz, /metrics): host:port or unix:/path; empty disables")
	fs.StringVar(&o.Dir, "dir", "recordings", "root directory of the recordings; segments go to DIR/YYYY-MM-DD/<UTC start time>.mp4")
	fs.StringVar(&o.Mode, "mode", recorder.ModeContinuous, "continuous (every frame) or event (only around POST /record/event)")
	fs.DurationVar(&o.Segment, "segment", time.Minute, "duration of a segment file; each starts on a keyframe")
	fs.DurationVar(&o.Fragment, "fragment", time.Second, "media written and fsync'ed at a time: the most a crash or power loss can lose")
	fs.DurationVar(&o.Pre, "pre", 5*time.Second, "event mode: video kept in memory and recorded before an event")
	fs.DurationVar(&o.Post, "post", 10*time.Second, "event mode: video recorded after an event (a request may ask for another value)")
	fs.Var(&o.KeepBytes, "keep-bytes", "delete the oldest segments beyond this many bytes in -dir; suffixes K, M, G, KiB, MiB, GiB (0: no limit)")
	fs.DurationVar(&o.KeepAge, "keep-age", 0, "delete segments older than this, e.g. 720h (0: no limit)")
	o.QueueBytes = 32 << 20
	fs.Var(&o.QueueBytes, "queue-bytes", "access units waiting for storage, at most (a stall); beyond it whole GOPs are dropped and counted")
	fs.DurationVar(&o.MaxHold, "max-hold", 2*time.Second, "lease deadline declared to the producer (access units are copied and released at once)")
}

// validate checks values a flag type cannot; it returns the offending key.
func (o *Options) validate() (string, error) {
	switch {
	case o.Socket == "":
		return "socket", errors.New("must not be empty")
	case o.Stream == "":
		return "stream", errors.New("must not be empty")
	case o.Dir == "":
		return "dir", errors.New("must not be empty")
	case o.Mode != recorder.ModeContinuous && o.Mode != recorder.ModeEvent:
		return "mode", fmt.Errorf("%q is not %s or %s", o.Mode, recorder.ModeContinuous, recorder.ModeEvent)
	case o.Fragment < 10*time.Millisecond:
		return "fragment", fmt.Errorf("%v must be ≥ 10ms", o.Fragment)
	case o.Segment < o.Fragment:
		return "segment", fmt.Errorf("%v must be ≥ fragment (%v)", o.Segment, o.Fragment)
	case o.Pre < 0:
		return "pre", fmt.Errorf("%v must not be negative", o.Pre)
	case o.Post < 0:
		return "post", fmt.Errorf("%v must not be negative", o.Post)
	case o.KeepAge < 0:
		return "keep-age", fmt.Errorf("%v must not be negative", o.KeepAge)
	case o.QueueBytes < 1<<20:
		return "queue-bytes", fmt.Errorf("%d must be ≥ 1MiB", o.QueueBytes)
	case o.MaxHold < 100*time.Millisecond:
		return "max-hold", fmt.Errorf("%v must be ≥ 100ms", o.MaxHold)
	}
	return "", nil
}

// Config returns the recorder configuration of o.
func (o *Options) Config() recorder.Config {
	return recorder.Config{
		Producer: o.Socket, Stream: o.Stream, Name: o.Name, Dir: o.Dir, Mode: o.Mode, Segment: o.Segment, Fragment: o.Fragment,
		Pre: o.Pre, Post: o.Post, KeepBytes: int64(o.KeepBytes), KeepAge: o.KeepAge, QueueBytes: int64(o.QueueBytes), MaxHold: o.MaxHold,
	}
}

// LoadFile reads a YAML config file into o. Unknown keys, values of the
// wrong type and invalid values are errors (*config.Error) naming the file,
// the line and the key. Keys absent from the file keep o's values.
func (o *Options) LoadFile(path string) error {
	return config.Load(path, o, func() error {
		if field, err := o.validate(); err != nil {
			return &config.FieldError{Field: field, Err: err}
		}
		return nil
	})
}

// Load fills o from the command line: defaults, then the file named by
// -config (if any), then the flags given explicitly.
func (o *Options) Load(fs *flag.FlagSet, args []string) error {
	var path string
	fs.StringVar(&path, "config", "", "YAML config file; its keys are these flags' names, flags given on the command line win")
	o.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (all settings are flags)", fs.Arg(0))
	}
	if path != "" {
		// The file overwrites what the flags set: remember what was given
		// on the command line and apply it again after the file.
		given := map[string]string{}
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "config" {
				given[f.Name] = f.Value.String()
			}
		})
		if err := o.LoadFile(path); err != nil {
			return err
		}
		for name, v := range given {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("-%s: %w", name, err)
			}
		}
	}
	if field, err := o.validate(); err != nil {
		return fmt.Errorf("-%s: %w", field, err)
	}
	return nil
}

// ByteSize is a size in bytes, written as an integer with an optional
// suffix: K, M, G (powers of 1000) or KiB, MiB, GiB (powers of 1024). It is
// a flag.Value and a YAML value.
type ByteSize int64

// UnmarshalYAML parses a YAML scalar; errors say the line.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a size must be a single value", n.Line)
	}
	if err := b.UnmarshalText([]byte(n.Value)); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

func (b *ByteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

// Set implements flag.Value.
func (b *ByteSize) Set(s string) error { return b.UnmarshalText([]byte(s)) }

// UnmarshalText parses a size such as 500000000, 500M or 2GiB.
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := string(text)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"B", 1}}
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
