// Package daemon is the framehub-producer program: its options and flags, and
// the wiring of sockets, pools, streams and the frame source.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/producer/synth"
	"github.com/framehub/framehub/sdk"
)

// Options are the producer's settings, from a config file (LoadFile) and
// flags (RegisterFlags); a flag given on the command line wins over the file.
// The YAML keys are the flag names.
type Options struct {
	Socket     string  `yaml:"socket"`
	SocketMode uint    `yaml:"socket-mode"`
	AllowUIDs  intList `yaml:"allow-uid"`
	AllowGIDs  intList `yaml:"allow-gid"`

	Width     int     `yaml:"width"`
	Height    int     `yaml:"height"`
	FPS       float64 `yaml:"fps"`
	Pattern   string  `yaml:"pattern"`
	Frames    uint64  `yaml:"frames"`
	Allocator string  `yaml:"allocator"`
	PoolMin   int     `yaml:"pool-min"`
	PoolMax   int     `yaml:"pool-max"`

	MaxConnections  int           `yaml:"max-connections"`
	MaxInFlight     int           `yaml:"max-in-flight"`
	DefaultInFlight int           `yaml:"default-in-flight"`
	DefaultMaxHold  time.Duration `yaml:"default-max-hold"`
	MaxHold         time.Duration `yaml:"max-hold"`
	AllowLossless   bool          `yaml:"allow-lossless"`
}

// intList is a flag holding comma-separated integers.
type intList []int

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("%q is not an integer", f)
		}
		*l = append(*l, n)
	}
	return nil
}

// RegisterFlags defines the producer's flags on fs, with their defaults.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Socket, "socket", sdk.DefaultAddr(), "consumer socket: a path, or @name for the abstract namespace")
	fs.UintVar(&o.SocketMode, "socket-mode", 0o660, "file mode of a path socket")
	fs.Var(&o.AllowUIDs, "allow-uid", "admit only these peer uids (comma-separated; with -allow-gid: either matches)")
	fs.Var(&o.AllowGIDs, "allow-gid", "admit only these peer gids (comma-separated)")
	fs.IntVar(&o.Width, "width", 1920, "frame width")
	fs.IntVar(&o.Height, "height", 1080, "frame height")
	fs.Float64Var(&o.FPS, "fps", 30, "frame rate; 0 renders as fast as surfaces free up (benchmarks)")
	fs.StringVar(&o.Pattern, "pattern", "moving", "synthetic pattern: moving, static, stamp-only")
	fs.Uint64Var(&o.Frames, "frames", 0, "stop after this many frames (0: run until stopped)")
	fs.StringVar(&o.Allocator, "allocator", "memfd", "surface memory: memfd, dma-heap, dma-heap:/dev/dma_heap/NAME, udmabuf")
	fs.IntVar(&o.PoolMin, "pool-min", 4, "surfaces allocated at start")
	fs.IntVar(&o.PoolMax, "pool-max", 32, "most surfaces the pool may grow to; beyond it frames are dropped at the source")
	fs.IntVar(&o.MaxConnections, "max-connections", 64, "most concurrent consumer connections")
	fs.IntVar(&o.MaxInFlight, "max-in-flight", 32, "largest budget (frames held at once) a consumer may ask for")
	fs.IntVar(&o.DefaultInFlight, "default-in-flight", 4, "budget of a consumer that asks for none")
	fs.DurationVar(&o.DefaultMaxHold, "default-max-hold", 2*time.Second, "lease deadline of a consumer that asks for none")
	fs.DurationVar(&o.MaxHold, "max-hold", 60*time.Second, "longest lease deadline a consumer may ask for")
	fs.BoolVar(&o.AllowLossless, "allow-lossless", false, "let consumers ask for lossless delivery")
}

// Run serves the synthetic source until ctx is done or Frames were sent.
func Run(ctx context.Context, o Options, log *slog.Logger) error {
	layout, err := surface.NV12(o.Width, o.Height, 64)
	if err != nil {
		return fmt.Errorf("-width %d -height %d: %w", o.Width, o.Height, err)
	}
	pattern, err := synth.ParsePattern(o.Pattern)
	if err != nil {
		return fmt.Errorf("-pattern: %w", err)
	}
	renderer, err := synth.NewRenderer(producer.SynthLayout(layout), pattern)
	if err != nil {
		return err
	}
	alloc, err := surface.Open(o.Allocator)
	if err != nil {
		return fmt.Errorf("-allocator: %w", err)
	}
	pool, err := surface.NewPool(surface.PoolConfig{Allocator: alloc, Size: layout.Size, Min: o.PoolMin, Max: o.PoolMax})
	if err != nil {
		return fmt.Errorf("surface pool: %w", err)
	}
	defer pool.Close()

	if !strings.HasPrefix(o.Socket, "@") {
		if err := os.MkdirAll(filepath.Dir(o.Socket), 0o755); err != nil {
			return fmt.Errorf("socket directory: %w", err)
		}
	}
	srv, err := producer.New(producer.Config{
		Addr: o.Socket, SocketMode: os.FileMode(o.SocketMode), AllowUIDs: o.AllowUIDs, AllowGIDs: o.AllowGIDs,
		MaxConnections: o.MaxConnections, MaxInFlight: o.MaxInFlight, DefaultInFlight: o.DefaultInFlight,
		DefaultMaxHold: o.DefaultMaxHold, MaxHold: o.MaxHold, AllowLossless: o.AllowLossless, Logger: log,
	})
	if err != nil {
		return err
	}
	fpsN, fpsD := fpsFraction(o.FPS)
	st, err := srv.AddStream(producer.StreamConfig{Name: "raw", Caps: producer.RawCaps(layout, fpsN, fpsD), Pool: pool})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()
	log.Info("synthetic source", "width", o.Width, "height", o.Height, "fps", o.FPS, "pattern", pattern.String(),
		"allocator", alloc.Name(), "surface_bytes", layout.Size, "pool_max", o.PoolMax)
	src := &producer.Synthetic{Stream: st, Renderer: renderer, FPS: o.FPS, Frames: o.Frames}
	err = src.Run(ctx)
	s := st.Stats()
	log.Info("source stopped", "published", s.Published, "delivered", s.Delivered, "skipped_budget", s.SkippedBudget,
		"dropped_exhausted", s.DroppedExhausted, "evictions", s.Evictions)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// fpsFraction expresses fps as a fraction with denominator 1000 when needed.
func fpsFraction(fps float64) (uint32, uint32) {
	if fps == float64(uint32(fps)) {
		return uint32(fps), 1
	}
	return uint32(fps*1000 + 0.5), 1000
}
