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
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/daemonrun"
	"github.com/framehub/framehub/internal/rundir"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/media"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/producer/synth"
)

// Options are the producer's settings, given as flags (RegisterFlags) or in
// a YAML config file keyed by the flag names (Load).
type Options struct {
	Socket string `yaml:"socket"`
	Admin  string `yaml:"admin"`
	// Access protects the admin endpoints (-admin-token, -admin-public).
	admin.Access `yaml:",inline"`
	SocketMode   uint    `yaml:"socket-mode"`
	SocketGroup  string  `yaml:"socket-group"`
	AllowUIDs    intList `yaml:"allow-uid"`
	AllowGIDs    intList `yaml:"allow-gid"`

	AllowWritableSurfaces bool `yaml:"allow-writable-surfaces"`
	// AddSeals replaces fcntl(F_ADD_SEALS) on the producer's memfds
	// (surface.MemfdConfig.AddSeals); nil in the program, set by tests to
	// simulate a kernel without F_SEAL_FUTURE_WRITE.
	AddSeals func(fd, seals int) error `yaml:"-"`

	Source       string        `yaml:"source"`
	Encoder      string        `yaml:"encoder"`
	BitrateKbps  int           `yaml:"bitrate"`
	GOP          int           `yaml:"gop"`
	H264PoolMax  int           `yaml:"h264-pool-max"`
	H264SlabSize int           `yaml:"h264-slab-size"`
	H264Replay   time.Duration `yaml:"h264-replay"`

	Decoder       string        `yaml:"decoder"`
	RTSPTransport string        `yaml:"rtsp-transport"`
	RTSPTimeout   time.Duration `yaml:"rtsp-timeout"`

	Width     int     `yaml:"width"`
	Height    int     `yaml:"height"`
	FPS       float64 `yaml:"fps"`
	Pattern   string  `yaml:"pattern"`
	Frames    uint64  `yaml:"frames"`
	Allocator string  `yaml:"allocator"`
	PoolMin   int     `yaml:"pool-min"`
	PoolMax   int     `yaml:"pool-max"`
	PoolRes   int     `yaml:"pool-reserve"`

	MaxConnections  int           `yaml:"max-connections"`
	MaxHandshakes   int           `yaml:"max-handshakes"`
	HandshakesUID   int           `yaml:"max-handshakes-per-uid"`
	HandshakesProc  int           `yaml:"max-handshakes-per-process"`
	HelloTimeout    time.Duration `yaml:"hello-timeout"`
	PenaltyWindow   time.Duration `yaml:"penalty-window"`
	MaxInFlight     int           `yaml:"max-in-flight"`
	DefaultInFlight int           `yaml:"default-in-flight"`
	DefaultMaxHold  time.Duration `yaml:"default-max-hold"`
	MaxHold         time.Duration `yaml:"max-hold"`
	AllowLossless   bool          `yaml:"allow-lossless"`
}

// intList is a flag holding comma-separated integers; a config.ListValue.
type intList []int

// Reset empties the list.
func (l *intList) Reset() { *l = nil }

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

// RegisterFlags defines the producer's flags on fs, with their defaults:
// those of producer.Defaults and media.Defaults where they configure the
// server and the pipeline.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	srv, pipe := producer.Defaults(), media.Defaults()
	fs.StringVar(&o.Socket, "socket", defaultSocket(), "consumer socket: a path, or @name for the abstract namespace")
	fs.StringVar(&o.Admin, "admin", "127.0.0.1:7701", "admin address for /metrics, /healthz and /consumers (host:port or unix:/path; empty disables)")
	o.Access.RegisterFlags(fs)
	fs.UintVar(&o.SocketMode, "socket-mode", uint(srv.SocketMode), "file mode of a path socket")
	fs.StringVar(&o.SocketGroup, "socket-group", "", "group (name or gid) whose members may connect: the socket's directory, when the producer "+
		"creates it, gets mode 0750 and this group (else 0700: only this uid and root), and the socket this group")
	fs.Var(&o.AllowUIDs, "allow-uid", "admit only these peer uids (comma-separated; with -allow-gid: either matches)")
	fs.Var(&o.AllowGIDs, "allow-gid", "admit only these peer gids (comma-separated)")
	fs.StringVar(&o.Source, "source", "test", "frame source: test (GStreamer videotestsrc), v4l2:/dev/videoN, jetson-csi:N, "+
		"launch:<gst-launch source description>, rtsp://[user:pass@]host[:port]/path (an IP camera: its H.264 goes to the h264 stream as it is, "+
		"neither decoded nor encoded, and is decoded for the raw stream only while raw consumers are subscribed; give the URL in the -config file, "+
		"not on the command line, which every local user can read), synthetic (pure Go, stamped frames, no GStreamer; only a raw stream), "+
		"or gpu (CUDA kernels render stamped frames into GPU memory, shared as cuda surfaces; needs an NVIDIA GPU; only a raw stream)")
	fs.StringVar(&o.Encoder, "encoder", "", "H.264 encoder element; empty picks the first installed of nvv4l2h264enc, v4l2h264enc, x264enc, openh264enc; none disables the h264 stream "+
		"(an rtsp:// source is not encoded: leave it empty)")
	fs.StringVar(&o.Decoder, "decoder", "", "H.264 decoder of an rtsp:// source's raw stream, run only while raw consumers are subscribed; empty picks the first installed of "+
		"nvv4l2decoder, v4l2h264dec, v4l2slh264dec, vah264dec, vaapih264dec, avdec_h264; none: no raw stream")
	fs.StringVar(&o.RTSPTransport, "rtsp-transport", pipe.RTSPTransport, "how an rtsp:// source receives RTP: tcp (in the RTSP connection: nothing lost on the way), udp, or auto (UDP, then TCP when no packet comes)")
	fs.DurationVar(&o.RTSPTimeout, "rtsp-timeout", pipe.RTSPTimeout, "how long an rtsp:// camera may stay silent before the producer declares it gone (EOS to consumers) and reconnects")
	fs.IntVar(&o.BitrateKbps, "bitrate", pipe.BitrateKbps, "H.264 bitrate, kbit/s")
	fs.IntVar(&o.GOP, "gop", 0, "H.264 keyframe interval in frames (0: two seconds' worth)")
	fs.IntVar(&o.H264PoolMax, "h264-pool-max", pipe.H264PoolMax, "surfaces of the h264 stream")
	fs.IntVar(&o.H264SlabSize, "h264-slab-size", pipe.H264SlabSize, "bytes of one h264 slab (consecutive access units are packed into it; also the largest access unit accepted)")
	fs.DurationVar(&o.H264Replay, "h264-replay", pipe.H264Replay, "how long the h264 stream keeps its access units for consumers that replay from a capture time (a restarted recorder resumes without a gap); 0 disables")
	fs.IntVar(&o.Width, "width", 0, fmt.Sprintf("frame width (0: %d, or an rtsp:// camera's own width)", pipe.Width))
	fs.IntVar(&o.Height, "height", 0, fmt.Sprintf("frame height (0: %d, or an rtsp:// camera's own height)", pipe.Height))
	fs.Float64Var(&o.FPS, "fps", float64(pipe.FPSNum)/float64(pipe.FPSDen), "frame rate; 0 renders as fast as surfaces free up (benchmarks)")
	fs.StringVar(&o.Pattern, "pattern", "moving", "pattern of -source synthetic: moving, static, stamp-only")
	fs.Uint64Var(&o.Frames, "frames", 0, "stop after this many frames (0: run until stopped)")
	fs.StringVar(&o.Allocator, "allocator", "memfd", "surface memory of -source synthetic: memfd, dma-heap, dma-heap:/dev/dma_heap/NAME, udmabuf; "+
		"of -source gpu: cuda (the default there) or cuda-dmabuf (DMA-BUF exports of the GPU memory)")
	fs.IntVar(&o.PoolMin, "pool-min", pipe.RawPoolMin, "surfaces allocated at start")
	fs.IntVar(&o.PoolMax, "pool-max", pipe.RawPoolMax, "most surfaces the raw pool may grow to; consumers are promised at most pool-max minus pool-reserve of them in all")
	fs.IntVar(&o.PoolRes, "pool-reserve", 0, "raw surfaces the source keeps for itself, never promised to consumers (0: 3 for GStreamer sources — the buffer being filled, the encoder's queued and encoding ones — 1 for -source synthetic)")
	fs.IntVar(&o.MaxConnections, "max-connections", srv.MaxConnections, "most subscribed consumers")
	fs.IntVar(&o.MaxHandshakes, "max-handshakes", srv.MaxHandshakes, "most connections that have not sent their Hello yet; beyond it, or the per-uid and per-process limits, a connection is rejected at once")
	fs.IntVar(&o.HandshakesUID, "max-handshakes-per-uid", srv.MaxHandshakesPerUID, "most connections without a Hello from one uid")
	fs.IntVar(&o.HandshakesProc, "max-handshakes-per-process", srv.MaxHandshakesPerProcess, "most connections without a Hello from one process")
	fs.DurationVar(&o.HelloTimeout, "hello-timeout", srv.HelloTimeout, "how long a new connection may take to send its Hello")
	// package fanout's default, which producer.Config leaves to it (0)
	fs.DurationVar(&o.PenaltyWindow, "penalty-window", time.Minute, "how long an eviction (max_hold, reclaim) halves the budget of a consumer that returns with the same uid and name")
	fs.IntVar(&o.MaxInFlight, "max-in-flight", srv.MaxInFlight, "largest budget (frames held at once) a consumer may ask for; admission control grants less when the pool cannot back it")
	fs.IntVar(&o.DefaultInFlight, "default-in-flight", srv.DefaultInFlight, "budget of a consumer that asks for none")
	fs.DurationVar(&o.DefaultMaxHold, "default-max-hold", srv.DefaultMaxHold, "lease deadline of a consumer that asks for none")
	fs.DurationVar(&o.MaxHold, "max-hold", srv.MaxHold, "longest lease deadline a consumer may ask for")
	fs.BoolVar(&o.AllowLossless, "allow-lossless", false, "let consumers ask for lossless delivery")
	fs.BoolVar(&o.AllowWritableSurfaces, "allow-writable-surfaces", false, "run on a kernel without F_SEAL_FUTURE_WRITE (Linux < 5.1), "+
		"where consumers can write the memfd surfaces other consumers read (by default the producer refuses to start there)")
}

// Run serves the configured source until ctx is done (or, for the
// synthetic and gpu sources, until Frames were sent): the producer's
// actors, the frame source with its socket and the admin endpoints, run
// together (daemonrun.RunActors). It makes o a daemonrun.Program.
func (o *Options) Run(ctx context.Context, log *slog.Logger) error {
	if o.Width == 0 && o.Height == 0 && !strings.HasPrefix(strings.ToLower(o.Source), media.SourceRTSP) {
		d := media.Defaults()
		o.Width, o.Height = d.Width, d.Height
	}
	gid, err := groupID(o.SocketGroup)
	if err != nil {
		return fmt.Errorf("-socket-group: %w", err)
	}
	if !strings.HasPrefix(o.Socket, "@") {
		if err := rundir.Ensure(filepath.Dir(o.Socket), gid); err != nil {
			return fmt.Errorf("socket directory: %w", err)
		}
	}
	if err := checkSurfaces(*o, log); err != nil {
		return err
	}
	srv, err := producer.New(producer.Config{
		Addr: o.Socket, SocketMode: os.FileMode(o.SocketMode), SocketGID: gid, SetSocketGID: gid >= 0,
		AllowUIDs: o.AllowUIDs, AllowGIDs: o.AllowGIDs,
		MaxConnections: o.MaxConnections, MaxHandshakes: o.MaxHandshakes, MaxHandshakesPerUID: o.HandshakesUID,
		MaxHandshakesPerProcess: o.HandshakesProc, HelloTimeout: o.HelloTimeout, PenaltyWindow: o.PenaltyWindow,
		MaxInFlight: o.MaxInFlight, DefaultInFlight: o.DefaultInFlight,
		DefaultMaxHold: o.DefaultMaxHold, MaxHold: o.MaxHold, AllowLossless: o.AllowLossless, Logger: log,
	})
	if err != nil {
		return err
	}
	metrics := producer.NewMetrics(srv)
	metrics.Registry().MustRegister(admin.BuildInfo("framehub-producer"))
	actors := []daemonrun.Actor{{Name: "source", Run: func(ctx context.Context) error {
		switch o.Source {
		case "synthetic":
			return runSynthetic(ctx, *o, srv, log)
		case "gpu":
			return runGPU(ctx, *o, srv, log)
		}
		return runMedia(ctx, *o, srv, metrics, log)
	}}}
	if o.Admin != "" {
		actors = append(actors, daemonrun.Actor{Name: "admin", Run: func(ctx context.Context) error {
			adm, err := admin.New(o.Admin, metrics.Handler(), o.Access)
			if err != nil {
				// A taken metrics port must not keep the camera from
				// serving frames: this actor waits for the others.
				log.Error("admin endpoints disabled", "err", err)
				<-ctx.Done()
				return nil
			}
			log.Info("admin endpoints", "addr", adm.Addr())
			return adm.Serve(ctx)
		}})
	}
	return daemonrun.RunActors(ctx, log, actors...)
}

// runMedia serves a GStreamer source: streams "raw" and "h264".
func runMedia(ctx context.Context, o Options, srv *producer.Server, metrics *producer.Metrics, log *slog.Logger) error {
	fpsN, fpsD := fpsFraction(o.FPS)
	p, err := media.New(media.Config{
		Source: o.Source, Width: o.Width, Height: o.Height, FPSNum: int(fpsN), FPSDen: int(fpsD),
		Encoder: o.Encoder, BitrateKbps: o.BitrateKbps, GOP: o.GOP, RawPoolMin: o.PoolMin, RawPoolMax: o.PoolMax, RawReserve: o.PoolRes,
		H264PoolMax: o.H264PoolMax, H264SlabSize: o.H264SlabSize, H264Replay: replayOption(o.H264Replay),
		Decoder: o.Decoder, RTSPTransport: o.RTSPTransport, RTSPTimeout: o.RTSPTimeout,
		AllowWritableSurfaces: o.AllowWritableSurfaces, Logger: log,
	}, srv)
	if err != nil {
		return err
	}
	defer p.Close()
	registerMediaMetrics(metrics, p)
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()
	if cam := p.Camera(); cam != "" {
		raw, _ := p.Streams()
		log.Info("camera source: its H.264 is passed through; raw frames are decoded only while raw consumers are subscribed",
			"camera", cam, "rtsp_transport", o.RTSPTransport, "raw_stream", raw, "decoder_pipeline", p.Describe())
	} else {
		log.Info("media pipeline", "pipeline", p.Describe())
	}
	err = p.Run(ctx)
	s := p.Stats()
	if p.Camera() != "" {
		log.Info("camera source stopped", "h264_frames", s.H264Frames, "raw_frames", s.RawFrames, "copied_frames", s.CopiedFrames,
			"reconnects", s.Restarts, "packets_lost", s.PacketsLost, "wait_keyframe", s.WaitKeyframe, "decoder_starts", s.DecoderStarts)
	} else {
		log.Info("pipeline stopped", "raw_frames", s.RawFrames, "unwatched_frames", s.UnwatchedFrames, "h264_frames", s.H264Frames, "copied_frames", s.CopiedFrames,
			"raw_dropped", s.RawDropped, "encoder_busy", s.EncoderBusy, "encoder_skipped", s.EncoderSkipped, "h264_too_large", s.H264Dropped,
			"restarts", s.Restarts)
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// runSynthetic serves the pure-Go synthetic source: stream "raw" only.
func runSynthetic(ctx context.Context, o Options, srv *producer.Server, log *slog.Logger) error {
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
	if alloc.Kind() == ipc.KindMemfd {
		alloc = surface.NewMemfdWith(surface.MemfdConfig{Name: "framehub", AllowWritable: o.AllowWritableSurfaces, AddSeals: o.AddSeals})
	}
	pool, err := surface.NewPool(surface.PoolConfig{Allocator: alloc, Size: layout.Size, Min: o.PoolMin, Max: o.PoolMax})
	if err != nil {
		return fmt.Errorf("surface pool: %w", err)
	}
	defer pool.Close()
	fpsN, fpsD := fpsFraction(o.FPS)
	st, err := srv.AddStream(producer.StreamConfig{Name: "raw", Caps: producer.RawCaps(layout, fpsN, fpsD), Pool: pool, Reserve: o.PoolRes})
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
		"dropped_exhausted", s.DroppedExhausted, "evictions", s.Evictions, "reclaims", s.Reclaims)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// checkSurfaces refuses to serve memfd surfaces on a kernel without
// F_SEAL_FUTURE_WRITE unless -allow-writable-surfaces says to, and then
// logs what that means. Every source but the synthetic one with a DMA-BUF
// allocator makes memfd pools (GStreamer's, the copy and h264 pools).
func checkSurfaces(o Options, log *slog.Logger) error {
	if o.Source == "synthetic" && o.Allocator != "" && o.Allocator != "memfd" {
		return nil
	}
	err := surface.CheckFutureWriteSeal(o.AddSeals)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, surface.ErrNoFutureWriteSeal):
		return err
	case !o.AllowWritableSurfaces:
		return fmt.Errorf("%w; the producer does not start there unless -allow-writable-surfaces accepts that "+
			"(or use a kernel ≥ 5.1)", err)
	}
	log.Warn("surfaces are writable by consumers: -allow-writable-surfaces is given and the kernel has no F_SEAL_FUTURE_WRITE " +
		"(Linux < 5.1), so any consumer can reopen a memfd surface read-write and change frames that other consumers read")
	return nil
}

// groupID resolves -socket-group: a group name or a gid; "" is -1 (none).
func groupID(group string) (int, error) {
	if group == "" {
		return -1, nil
	}
	if n, err := strconv.Atoi(group); err == nil && n >= 0 {
		return n, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return -1, fmt.Errorf("%q is neither a gid nor a known group: %w", group, err)
	}
	return strconv.Atoi(g.Gid)
}

// registerMediaMetrics exports the pipeline's counters, read at scrape
// time, and counts the raw frames its encoder never encoded among the h264
// stream's drops.
func registerMediaMetrics(metrics *producer.Metrics, p *media.Pipeline) {
	reg := metrics.Registry()
	camera := p.Camera() != ""
	metrics.AddDrops(media.StreamH264, func() map[string]uint64 {
		s := p.Stats()
		if camera {
			return map[string]uint64{"wait_keyframe": s.WaitKeyframe, "too_large": s.H264Dropped}
		}
		return map[string]uint64{"encoder_busy": s.EncoderBusy, "encoder_skipped": s.EncoderSkipped, "too_large": s.H264Dropped}
	})
	counter := func(name, help string, v func(media.Stats) uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v(p.Stats())) }))
	}
	gauge := func(name, help string, v func(media.Stats) bool) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			if v(p.Stats()) {
				return 1
			}
			return 0
		}))
	}
	if camera {
		// No label names the camera: its URL may carry credentials (the log names it without them).
		gauge("framehub_producer_camera_connected", "1 while a session with the rtsp:// camera publishes access units.",
			func(s media.Stats) bool { return s.CameraConnected })
		counter("framehub_producer_camera_packets_lost_total", "RTP packets of the camera that never arrived (UDP transport).",
			func(s media.Stats) uint64 { return s.PacketsLost })
		counter("framehub_producer_camera_bad_packets_total", "RTP packets and access units of the camera that could not be used.",
			func(s media.Stats) uint64 { return s.BadAccessUnits })
		gauge("framehub_producer_decoder_running", "1 while the raw stream's decoder runs (raw consumers are subscribed).",
			func(s media.Stats) bool { return s.DecoderRunning })
		counter("framehub_producer_decoder_starts_total", "Times the raw stream's decoder was started.",
			func(s media.Stats) uint64 { return s.DecoderStarts })
		counter("framehub_producer_decoder_skipped_total", "Access units not decoded because the decoder fell behind (it resumed at the next keyframe).",
			func(s media.Stats) uint64 { return s.DecoderSkipped })
	}
	counter("framehub_producer_copied_frames_total", "Raw frames that had no fd and were copied once into a pool surface.",
		func(s media.Stats) uint64 { return s.CopiedFrames })
	counter("framehub_producer_zero_copy_frames_total", "Raw frames shared without a copy (the producer's own memfd pool).",
		func(s media.Stats) uint64 { return s.ZeroCopyFrames })
	counter("framehub_producer_adopted_frames_total", "Raw frames shared as the DMA-BUFs they arrived in.",
		func(s media.Stats) uint64 { return s.AdoptedFrames })
	counter("framehub_producer_pipeline_restarts_total", "Media pipeline restarts after an error (an rtsp:// source: reconnections to the camera).",
		func(s media.Stats) uint64 { return s.Restarts })
	counter("framehub_producer_keyframes_forced_total", "Keyframes forced at a consumer's request.",
		func(s media.Stats) uint64 { return s.KeyframesForced })
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "framehub_producer_raw_buffer_surfaces",
		Help: "GStreamer-owned raw surfaces alive now (the source's memfd buffer pool, adopted DMA-BUFs); each holds its fds."},
		func() float64 { return float64(p.Stats().RawSurfaces) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "framehub_producer_held_buffers",
		Help: "GStreamer buffers referenced because a lease or the producer's hold is live."},
		func() float64 { return float64(p.Stats().HeldBuffers) }))
}

// replayOption maps -h264-replay 0 ("disabled") to media.Config's negative.
func replayOption(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// fpsFraction expresses fps as a fraction with denominator 1000 when needed.
func fpsFraction(fps float64) (uint32, uint32) {
	if fps == float64(uint32(fps)) {
		return uint32(fps), 1
	}
	return uint32(fps*1000 + 0.5), 1000
}

// defaultSocket is -socket's default: rundir.DefaultSocket's, or "" (which
// the options' check explains) when there is none.
func defaultSocket() string {
	a, _ := rundir.DefaultSocket()
	return a
}
