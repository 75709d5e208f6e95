package media

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	fhgst "github.com/framehub/framehub/internal/gst"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
)

// Media types a Sink serves.
const (
	mediaRaw  = "video/x-raw"
	mediaH264 = "video/x-h264"
)

// SinkConfig configures a Sink. Zero values take the defaults given.
type SinkConfig struct {
	// Stream names the stream on the server. "" names it after the caps of
	// the first sample: StreamRaw for raw video, StreamH264 for H.264.
	Stream string
	// RawPoolMax is the raw stream's capacity: the maximum of the memfd
	// pool the element proposes upstream (Element.InstallAllocationProbe,
	// which the caller installs with the same maximum) and of the copy
	// pool. Default Defaults().RawPoolMax (32).
	RawPoolMax int
	// RawReserve is how many of RawPoolMax the pipeline upstream keeps for
	// itself (the buffer being filled, a queue's): never promised to
	// consumers. Default 3.
	RawReserve int
	// H264PoolMax, H264SlabSize and H264Replay are Config's; defaults
	// Defaults()'s (64, 2 MiB and 30 s).
	H264PoolMax, H264SlabSize int
	H264Replay                time.Duration
	// Stamp writes the test stamp (sdk/stamp, PROTOCOL.md §9) into the
	// top 8 rows of the Y plane of every raw frame, with the frame's
	// sequence number and capture time, before consumers can see it: a
	// consumer verifies with it that the pixels it maps are the frame its
	// metadata names. It overwrites those rows of the picture. Frames in
	// framehub's memfd pool and copied frames are stamped; adopted
	// DMA-BUFs, which belong to their producer, are not
	// (SinkStats.Unstamped).
	Stamp bool
	// AllowWritableSurfaces is Config's.
	AllowWritableSurfaces bool
	// OnStream, when set, is called (from the sink's goroutine) once the
	// stream exists on the server: a server may start listening then.
	OnStream func(name string)
	// OnError, when set, is called (from the sink's goroutine) when the
	// sink cannot publish what its element receives: caps it cannot serve,
	// a stream name another sink took. Frames are dropped meanwhile.
	OnError func(error)
	// Logger receives the sink's logs; default slog.Default().
	Logger *slog.Logger
}

// SinkStats are a Sink's counters since NewSink.
type SinkStats struct {
	Stream         string // "" until the first sample named it
	Frames         uint64 // frames published: raw (ZeroCopy + Adopted + Copied) or access units
	ZeroCopyFrames uint64 // raw frames written upstream straight into a framehub memfd
	AdoptedFrames  uint64 // raw frames shared in their own DMA-BUF memory
	CopiedFrames   uint64 // raw frames copied once into the copy pool
	Dropped        uint64 // frames dropped: every buffer held (raw), larger than a slab (H.264)
	Stamped        uint64 // raw frames stamped (SinkConfig.Stamp)
	Unstamped      uint64 // raw frames Stamp could not stamp
	HeldBuffers    uint64 // GstBuffers referenced now because a lease on them is live
	Unwatched      uint64 // raw frames dropped on the streaming thread while nobody was subscribed
	Consumers      int    // subscribed now
}

// Sink publishes the buffers that reach an appsink of an application's own
// pipeline into one stream of a producer.Server: framehubsink, the
// GStreamer element that makes any pipeline a producer (gst/framehubsink).
// It is a Pipeline without a pipeline of its own, and publishes exactly as
// the Pipeline's appsinks do (see the package documentation): raw NV12
// frames zero-copy when upstream wrote them into the framehub memfd pool
// the appsink proposes, DMA-BUF buffers adopted with their GstBuffer held
// until the last lease ends, anything else copied once (counted); H.264
// access units (byte-stream, one per buffer) copied into slabs.
//
// The stream is created at the first sample, by its caps, and lives as
// long as the server (a server cannot remove a stream): the element
// Attaches its appsink for each run (READY→PAUSED) and Detaches it after
// (PAUSED→READY); Close frees the pools once the server is closed.
type Sink struct {
	cfg SinkConfig
	srv *producer.Server
	log *slog.Logger

	mu      sync.Mutex
	p       *Pipeline // nil until the first sample chose the stream
	kind    string    // mediaRaw or mediaH264, once chosen
	failed  bool      // OnError was called for this run: drop frames quietly
	el      *fhgst.Element
	r       *run
	watch   *fhgst.SampleWatch
	pumping sync.WaitGroup

	// idleWatch is watch while the stream is raw: the stream's OnConsumers
	// ends its idling when a consumer subscribes.
	idleWatch atomic.Pointer[fhgst.SampleWatch]
}

// NewSink returns a sink that will publish on srv. It creates nothing on
// srv before the first sample. The caller must Close it after srv is
// closed.
func NewSink(cfg SinkConfig, srv *producer.Server) (*Sink, error) {
	if srv == nil {
		return nil, errors.New("media: NewSink: nil server")
	}
	d := Defaults()
	if cfg.RawPoolMax == 0 {
		cfg.RawPoolMax = d.RawPoolMax
	}
	if cfg.RawReserve == 0 {
		cfg.RawReserve = foreignReserve
	}
	if cfg.H264PoolMax == 0 {
		cfg.H264PoolMax = d.H264PoolMax
	}
	if cfg.H264SlabSize == 0 {
		cfg.H264SlabSize = d.H264SlabSize
	}
	if cfg.H264Replay == 0 {
		cfg.H264Replay = d.H264Replay
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch {
	case cfg.RawPoolMax < 2 || cfg.RawReserve < 1 || cfg.RawReserve >= cfg.RawPoolMax:
		return nil, fmt.Errorf("media: sink: RawPoolMax %d and RawReserve %d must satisfy 1 ≤ reserve < max, max ≥ 2", cfg.RawPoolMax, cfg.RawReserve)
	case cfg.H264PoolMax < 1:
		return nil, fmt.Errorf("media: sink: H264PoolMax %d must be ≥ 1", cfg.H264PoolMax)
	case cfg.H264SlabSize < 4096 || cfg.H264SlabSize > 1<<30:
		return nil, fmt.Errorf("media: sink: H264SlabSize %d must be in [4096, 1 GiB]", cfg.H264SlabSize)
	}
	fhgst.Init()
	return &Sink{cfg: cfg, srv: srv, log: cfg.Logger.With("component", "framehubsink")}, nil
}

// Attach starts publishing what appsink queues, on a goroutine woken
// through a SampleWatch (GStreamer's streaming thread never calls into Go:
// fhgst.SampleWatch says why). The caller keeps its reference to appsink
// until Detach returned, and must Detach before attaching again.
func (s *Sink) Attach(appsink *fhgst.Element) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watch != nil {
		return errors.New("media: sink: already attached")
	}
	w, err := appsink.WatchSamples()
	if err != nil {
		return fmt.Errorf("media: sink: %w", err)
	}
	s.el, s.watch, s.failed = appsink, w, false
	s.r = nil
	s.idleWatch.Store(w)
	// A raw stream nobody subscribed to has nothing to publish: the
	// streaming thread drops its frames itself (SampleWatch.SetIdle), so
	// that an idle pipeline does not wake Go for each frame. An H.264 stream
	// keeps every access unit for its replay buffer, and the first sample,
	// which creates the stream, always enters Go.
	idle := &idler{wanted: s.wanted, unwatched: s.unwatched}
	s.pumping.Go(func() { pump(appsink, w, s.publish, s.endOfStream, idle) })
	return nil
}

// wanted reports whether the samples must enter Go: always, except for a
// raw stream without consumers.
func (s *Sink) wanted() bool {
	s.mu.Lock()
	p, failed := s.p, s.failed
	s.mu.Unlock()
	return p == nil || p.raw == nil || failed || p.raw.Consumers() > 0
}

// unwatched counts n raw frames the streaming thread dropped while the
// stream had no consumer.
func (s *Sink) unwatched(n uint64) {
	s.mu.Lock()
	r := s.r
	s.mu.Unlock()
	if r != nil { // idling starts after the run's first sample, on a raw stream
		r.unwatched(n)
	}
}

// onRawConsumers is the raw stream's OnConsumers: a consumer that
// subscribed ends the streaming thread's idling (pump starts it again once
// none is left).
func (s *Sink) onRawConsumers(n int) {
	if w := s.idleWatch.Load(); w != nil && n > 0 {
		w.SetIdle(nil) // a no-op on the watch of a run that ended
	}
}

// Detach stops publishing: call it once the element's streaming thread
// stopped (the appsink is in READY or NULL). Consumers are told the stream
// ended (EOS); leased buffers stay referenced until their leases end.
func (s *Sink) Detach() {
	s.mu.Lock()
	w := s.watch
	s.mu.Unlock()
	if w == nil {
		return
	}
	_ = w.Close()
	s.pumping.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.r; r != nil {
		r.slabs.close()
		r.caps.Release()
		r.vi.Free()
		r.vi = nil
	}
	s.r, s.watch, s.el = nil, nil, nil
	if s.p != nil {
		s.p.flushForgets()
		s.p.endOfStream("framehubsink stopped")
	}
}

// endOfStream is the pump's EOS: upstream sent EOS.
func (s *Sink) endOfStream() {
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	if p != nil {
		p.endOfStream("end of stream upstream of framehubsink")
	}
}

// publish publishes one sample; it runs on the pump.
func (s *Sink) publish(sample *fhgst.Sample) {
	r, kind := s.runFor(sample)
	switch {
	case r == nil:
	case kind == mediaRaw:
		r.handleRaw(sample)
	default:
		r.handleH264(sample)
	}
}

// runFor returns the run that publishes sample (creating the stream at
// the first sample), or nil when the sample cannot be published.
func (s *Sink) runFor(sample *fhgst.Sample) (*run, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed {
		return nil, ""
	}
	kind := s.kind
	if !sample.PreparedCaps() { // a prepared sample has the raw caps handleRaw accepted
		kind = sample.MediaType()
	}
	if kind != mediaRaw && kind != mediaH264 {
		s.fail(fmt.Errorf("media: sink: caps %q: framehubsink serves raw video and H.264", kind))
		return nil, ""
	}
	if s.p == nil {
		if err := s.create(sample, kind); err != nil {
			s.fail(err)
			return nil, ""
		}
	} else if kind != s.kind {
		s.fail(fmt.Errorf("media: sink: stream %q carries %s; caps changed to %s, which needs another stream (another framehubsink)", s.streamName(), s.kind, kind))
		return nil, ""
	}
	if s.r == nil {
		s.r = &run{p: s.p, base: s.el}
		s.r.monoBase.Store(monoUnknown)
		if s.kind == mediaRaw {
			// handleRaw prepares the watch for the caps it accepts: a
			// frame in the pool the sink proposed then costs Go no cgo call.
			s.r.rawWatch = s.watch
		}
	}
	return s.r, s.kind
}

func (s *Sink) fail(err error) {
	s.failed = true
	s.log.Error("cannot publish", "err", err)
	if s.cfg.OnError != nil {
		s.cfg.OnError(err)
	}
}

func (s *Sink) streamName() string {
	switch {
	case s.cfg.Stream != "":
		return s.cfg.Stream
	case s.kind == mediaH264:
		return StreamH264
	}
	return StreamRaw
}

// create makes the stream (and its pools) for the first sample's caps.
func (s *Sink) create(sample *fhgst.Sample, kind string) error {
	s.kind = kind
	name := s.streamName()
	if s.srv.Stream(name) != nil {
		return fmt.Errorf("media: sink: the producer already has a stream %q: give each framehubsink on one socket its own stream name", name)
	}
	w, h, fn, fd := sample.Geometry()
	p := &Pipeline{
		cfg: Config{H264SlabSize: s.cfg.H264SlabSize}, log: s.log.With("stream", name), stamp: s.cfg.Stamp,
		foreignHeld: make(map[uintptr]int), reg: newRegistry(),
	}
	var err error
	if kind == mediaRaw {
		var layout surface.Layout
		if layout, err = surface.NV12(w, h, 0); err != nil {
			return fmt.Errorf("media: sink: raw caps %dx%d: %w", w, h, err)
		}
		p.rawPool, err = surface.NewPool(surface.PoolConfig{Allocator: surface.NewMemfdWith(surface.MemfdConfig{Name: "framehub-sink-copy", AllowWritable: s.cfg.AllowWritableSurfaces}),
			Size: layout.Size, Max: s.cfg.RawPoolMax})
		if err != nil {
			return fmt.Errorf("media: sink: raw copy pool: %w", err)
		}
		p.raw, err = s.srv.AddStream(producer.StreamConfig{
			Name: name, Pool: p.rawPool, Capacity: s.cfg.RawPoolMax, Reserve: s.cfg.RawReserve,
			Caps: producer.RawCaps(layout, uint32(fn), uint32(fd)), OnConsumers: s.onRawConsumers,
		})
	} else {
		p.h264Pool, err = surface.NewPool(surface.PoolConfig{Allocator: surface.NewMemfdWith(surface.MemfdConfig{Name: "framehub-sink-h264", AllowWritable: s.cfg.AllowWritableSurfaces}),
			Size: s.cfg.H264SlabSize, Min: min(4, s.cfg.H264PoolMax), Max: s.cfg.H264PoolMax})
		if err != nil {
			return fmt.Errorf("media: sink: h264 slab pool: %w", err)
		}
		p.h264, err = s.srv.AddStream(producer.StreamConfig{
			Name: name, Pool: p.h264Pool, Reserve: 2, OnKeyframeRequest: s.requestKeyframe, Replay: s.cfg.H264Replay,
			Caps: ipc.Caps{Format: "H264", Width: uint32(w), Height: uint32(h), FPSNum: uint32(fn), FPSDen: uint32(fd)},
		})
	}
	if err != nil {
		p.closePools()
		return fmt.Errorf("media: sink: %w", err)
	}
	s.p = p
	s.log.Info("stream created", "stream", name, "caps", kind, "width", w, "height", h, "fps", fmt.Sprintf("%d/%d", fn, fd))
	if s.cfg.OnStream != nil {
		s.cfg.OnStream(name)
	}
	return nil
}

// requestKeyframe is the h264 stream's OnKeyframeRequest: a force-key-unit
// event upstream of the appsink, to whatever encodes there.
func (s *Sink) requestKeyframe() {
	s.mu.Lock()
	el := s.el
	s.mu.Unlock()
	if el != nil && el.RequestKeyUnit() {
		s.mu.Lock()
		if s.p != nil {
			s.p.ctr.keyframes.Add(1)
		}
		s.mu.Unlock()
	}
}

// Stats returns the sink's counters.
func (s *Sink) Stats() SinkStats {
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	if p == nil {
		return SinkStats{}
	}
	c := &p.ctr
	st := SinkStats{
		Frames: c.raw.Load() + c.h264.Load(), ZeroCopyFrames: c.zeroCopy.Load(), AdoptedFrames: c.adopted.Load(),
		CopiedFrames: c.copied.Load(), Dropped: c.rawDropped.Load() + c.h264Dropped.Load(),
		Stamped: c.stamped.Load(), Unstamped: c.unstamped.Load(), HeldBuffers: uint64(max(0, c.held.Load())),
		Unwatched: c.unwatched.Load(),
	}
	if p.raw != nil {
		st.Stream, st.Consumers = p.raw.Name(), p.raw.Consumers()
	} else if p.h264 != nil {
		st.Stream, st.Consumers = p.h264.Name(), p.h264.Consumers()
	}
	return st
}

// Close frees the pools, after Detach and after the server was closed.
// Surfaces still leased are freed when released. It is idempotent.
func (s *Sink) Close() error {
	s.Detach()
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	p.closeOnce.Do(func() {
		p.flushForgets()
		p.reg.close()
		p.closeErr = p.closePools()
	})
	return p.closeErr
}
