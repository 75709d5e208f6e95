package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	gogst "github.com/go-gst/go-gst/gst"

	"github.com/framehub/framehub/internal/clock"
	fhgst "github.com/framehub/framehub/internal/gst"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
)

// Stats are a pipeline's counters since New.
type Stats struct {
	RawFrames       uint64 // raw frames published (ZeroCopyFrames + AdoptedFrames + CopiedFrames)
	H264Frames      uint64 // access units published
	ZeroCopyFrames  uint64 // raw frames the source wrote straight into a framehub memfd
	AdoptedFrames   uint64 // raw frames shared in their own fd memory (DMA-BUF)
	CopiedFrames    uint64 // raw frames copied once into the copy pool: the copied_frames_total metric
	HeldBuffers     uint64 // GstBuffers referenced now because a lease on them is live
	RawSurfaces     int    // GStreamer-owned raw surfaces alive now (our memfd pool's buffers, adopted DMA-BUFs): each holds its fds
	Restarts        uint64 // pipeline restarts after an error or end of stream
	KeyframesForced uint64 // force-key-unit events sent to the encoder
	RawDropped      uint64 // raw frames dropped at the source: buffer pool at its limit
	// Raw frames the source produced while nobody wanted them (no raw
	// consumer, no encoder), dropped on GStreamer's streaming thread
	// without entering Go (fhgst.SampleWatch.SetIdle). The raw stream
	// counts them as published (framehub_producer_frames_total).
	UnwatchedFrames uint64
	H264Dropped     uint64 // access units dropped: larger than H264SlabSize
	// Raw frames published and pushed to the encoder that never became
	// access units: replaced in the encoder's input queue while it was
	// busy, or taken and skipped by it (encoderLedger). EncoderUncounted
	// says why they are no longer counted, "" while they are.
	EncoderBusy, EncoderSkipped uint64
	EncoderUncounted            string
	LastError                   string // the last pipeline error (an rtsp:// source's: the last camera session's), "" if none

	// An rtsp:// source's (Restarts counts its reconnections).
	CameraConnected bool   // a session with the camera publishes access units now
	PacketsLost     uint64 // RTP packets the camera sent that never arrived (UDP; the next access unit says DISCONT)
	WaitKeyframe    uint64 // access units dropped at the start of a session, before its first IDR: nothing could decode them
	BadAccessUnits  uint64 // RTP packets and access units the depayloader could not use (logged)
	DecoderRunning  bool   // the raw stream's decoder runs (a raw consumer is subscribed)
	DecoderStarts   uint64 // times the decoder was started
	DecoderSkipped  uint64 // access units not decoded because the decoder fell behind (it resumed at the next keyframe)
}

type counters struct {
	raw, h264, zeroCopy, adopted, copied, restarts, keyframes, rawDropped, h264Dropped, unwatched atomic.Uint64
	decStarts, decSkipped                                                                         atomic.Uint64
	stamped, unstamped                                                                            atomic.Uint64 // a Sink's Stamp option
	held                                                                                          atomic.Int64
}

// Pipeline runs the GStreamer media pipeline of a producer: a camera (or
// test) source whose frames are shared zero-copy on the "raw" stream, and
// an H.264 encoder whose access units go to the "h264" stream. Create it
// with New, run it with Run, and Close it after Run returned.
type Pipeline struct {
	cfg      Config
	log      *slog.Logger
	src      source
	encoder  string // element name; "" when nothing is encoded (no h264 stream, an rtsp:// source's, or the encoder is not ours: a Sink)
	decoder  string // rtsp:// source: the raw stream's decoder element; "" when there is no raw stream
	overlay  bool
	stamp    bool // write the test stamp into raw frames (a Sink's Stamp option)
	raw      *producer.Stream
	h264     *producer.Stream
	rawPool  *surface.Pool // the copy fallback's surfaces
	h264Pool *surface.Pool
	reg      *registry
	ctr      counters
	ledger   encoderLedger // raw frames the encoder never encoded

	running   atomic.Bool
	rawWatch  atomic.Pointer[fhgst.SampleWatch] // the running raw sink's, when it may idle (onRawConsumers)
	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex
	ioMode  string         // v4l2src io-mode in use
	lastErr string         // Stats.LastError
	enc     *fhgst.Element // encoder of the running pipeline, for keyframe requests
	lastKey time.Time      // rate limit of the log of failed keyframe requests

	foreignMu   sync.Mutex
	foreignHeld map[uintptr]int // lease references per foreign buffer pool

	// rtsp:// source (camera.go, decoder.go).
	cam        *camera
	decWake    chan struct{} // wakes runDecoder
	decRunning atomic.Bool
	decMu      sync.Mutex
	gop        gopCache // decMu
	feed       *decFeed // decMu: the running decoder's input, nil when none
}

// New validates cfg, checks that the source's device and every element
// exist (a missing element is a *MissingElementError naming its Debian
// package), and creates the "raw" stream and, unless Encoder is "none", the
// "h264" stream on srv. The caller must Run the pipeline, then Close it
// after Run returned and after srv was closed (Close frees the streams'
// pools).
func New(cfg Config, srv *producer.Server) (*Pipeline, error) {
	if srv == nil {
		return nil, errors.New("media: New: nil server")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	src, _ := parseSource(cfg.Source) // Validate checked it
	fhgst.Init()
	p := &Pipeline{
		cfg: cfg, log: cfg.Logger.With("component", "media"), src: src,
		ioMode: "dmabuf", foreignHeld: make(map[uintptr]int),
	}
	if err := checkSource(src); err != nil {
		return nil, err
	}
	enc, err := "", error(nil)
	if src.kind == SourceRTSP {
		p.decoder, err = chooseDecoder(cfg.Decoder)
	} else {
		enc, err = chooseEncoder(cfg.Encoder)
	}
	if err != nil {
		return nil, err
	}
	p.encoder = enc
	hasRaw := src.kind != SourceRTSP || p.decoder != ""
	hasH264 := enc != "" || src.kind == SourceRTSP
	if src.kind == SourceTest {
		p.overlay = elementExists("timeoverlay")
		if !p.overlay {
			p.log.Info("timeoverlay is not installed (Debian package gstreamer1.0-x): the test source shows no timestamp")
		}
	}
	if hasRaw {
		if err := parseCheck(p.Describe()); err != nil {
			return nil, err
		}
	}

	w, h := cfg.Width, cfg.Height
	if w == 0 && h == 0 {
		w, h = 1920, 1080 // an rtsp:// source's own size, until its SPS tells it
	}
	layout, err := surface.NV12(w, h, 0)
	if err != nil {
		return nil, fmt.Errorf("media: raw layout %dx%d: %w", w, h, err)
	}
	// The copy pool allocates nothing up front: with a source that writes
	// into framehub's memfd pool it is never used.
	p.rawPool, err = surface.NewPool(surface.PoolConfig{Allocator: surface.NewMemfdWith(surface.MemfdConfig{Name: "framehub-raw-copy", AllowWritable: cfg.AllowWritableSurfaces}), Size: layout.Size, Max: cfg.RawPoolMax})
	if err != nil {
		return nil, fmt.Errorf("media: raw copy pool: %w", err)
	}
	if hasH264 {
		p.h264Pool, err = surface.NewPool(surface.PoolConfig{Allocator: surface.NewMemfdWith(surface.MemfdConfig{Name: "framehub-h264", AllowWritable: cfg.AllowWritableSurfaces}), Size: cfg.H264SlabSize,
			Min: min(4, cfg.H264PoolMax), Max: cfg.H264PoolMax})
		if err != nil {
			p.rawPool.Close()
			return nil, fmt.Errorf("media: h264 slab pool: %w", err)
		}
	}
	fpsN, fpsD := uint32(cfg.FPSNum), uint32(cfg.FPSDen)
	onKey, onConsumers := p.requestKeyframe, p.onRawConsumers
	if src.kind == SourceRTSP {
		fpsN, fpsD = 0, 1 // the camera's, once its SPS is read
		p.decWake = make(chan struct{}, 1)
		onKey = nil // a camera cannot be asked for a keyframe
		onConsumers = func(n int) {
			p.onRawConsumers(n)
			p.wakeDecoder()
		}
	}
	if hasRaw {
		p.raw, err = srv.AddStream(producer.StreamConfig{
			Name: StreamRaw, Pool: p.rawPool, Capacity: cfg.RawPoolMax, Reserve: cfg.RawReserve,
			Caps: producer.RawCaps(layout, fpsN, fpsD), OnConsumers: onConsumers,
		})
	}
	if err == nil && hasH264 {
		p.h264, err = srv.AddStream(producer.StreamConfig{
			// Reserve: the slab being filled and the next one.
			Name: StreamH264, Pool: p.h264Pool, Reserve: 2, OnKeyframeRequest: onKey, Replay: cfg.H264Replay,
			Caps: ipc.Caps{Format: "H264", Width: uint32(w), Height: uint32(h), FPSNum: fpsN, FPSDen: fpsD},
		})
	}
	if err != nil {
		// A stream added before the failure stays on srv (the server has no
		// RemoveStream); it has no source and its pool is closed.
		p.rawPool.Close()
		if p.h264Pool != nil {
			p.h264Pool.Close()
		}
		return nil, fmt.Errorf("media: %w", err)
	}
	p.reg = newRegistry()
	if src.kind == SourceRTSP {
		p.cam = newCamera(p)
	}
	p.log.Debug("media pipeline ready", "pipeline", p.Describe())
	return p, nil
}

// Describe returns the gst-launch description of the pipeline in use; for
// an rtsp:// source the raw stream's decoding pipeline (which runs only
// while raw consumers are subscribed), or "" when it has no raw stream.
func (p *Pipeline) Describe() string {
	if p.src.kind == SourceRTSP && p.decoder == "" {
		return ""
	}
	p.mu.Lock()
	io := p.ioMode
	p.mu.Unlock()
	return description(&p.cfg, p.src, p.encoder, p.decoder, p.overlay, io)
}

// Camera returns an rtsp:// source's URL without its credentials (what
// may be logged and shown), or "" for other sources.
func (p *Pipeline) Camera() string {
	if p.cam == nil {
		return ""
	}
	return p.cam.name
}

// Streams reports which streams the pipeline serves.
func (p *Pipeline) Streams() (raw, h264 bool) { return p.raw != nil, p.h264 != nil }

// Stats returns the pipeline's counters.
func (p *Pipeline) Stats() Stats {
	p.mu.Lock()
	last := p.lastErr
	p.mu.Unlock()
	c := &p.ctr
	busy, skipped, uncounted := p.ledger.counts()
	s := Stats{
		EncoderBusy: busy, EncoderSkipped: skipped, EncoderUncounted: uncounted,
		RawFrames: c.raw.Load(), H264Frames: c.h264.Load(), ZeroCopyFrames: c.zeroCopy.Load(),
		AdoptedFrames: c.adopted.Load(), CopiedFrames: c.copied.Load(), HeldBuffers: uint64(max(0, c.held.Load())),
		Restarts: c.restarts.Load(), KeyframesForced: c.keyframes.Load(), RawDropped: c.rawDropped.Load(),
		H264Dropped: c.h264Dropped.Load(), UnwatchedFrames: c.unwatched.Load(), LastError: last, RawSurfaces: p.reg.surfaces(),
		DecoderRunning: p.decRunning.Load(), DecoderStarts: c.decStarts.Load(), DecoderSkipped: c.decSkipped.Load(),
	}
	if cam := p.cam; cam != nil {
		s.CameraConnected, s.PacketsLost, s.WaitKeyframe, s.BadAccessUnits = cam.up.Load(), cam.lost.Load(), cam.waitKey.Load(), cam.badAU.Load()
	}
	return s
}

// Run builds and plays the pipeline until ctx is done, then returns nil. A
// pipeline error or end of stream is logged with the element's name, told to
// consumers (EOS on both streams), and followed by a restart after an
// exponential backoff from RetryMin to RetryMax; Run never returns because
// of one. Run must not be called concurrently with itself or after Close.
func (p *Pipeline) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("media: Run: already running")
	}
	defer p.running.Store(false)
	if p.reg.isClosed() {
		return errors.New("media: Run: pipeline closed")
	}
	if p.cam != nil {
		p.runCamera(ctx)
		return nil
	}
	backoff := p.cfg.RetryMin
	for {
		started := time.Now()
		frames, err := p.runOnce(ctx)
		if ctx.Err() != nil {
			if err == nil {
				p.endOfStream("producer stopping")
			}
			p.flushForgets()
			return nil
		}
		if frames > 0 && time.Since(started) >= p.cfg.RetryMax {
			backoff = p.cfg.RetryMin // it ran well for a while: a new failure starts over
		}
		if frames == 0 && p.src.kind == SourceV4L2 && p.switchToMmap() {
			p.log.Warn("v4l2 source failed before its first frame with io-mode=dmabuf: retrying with io-mode=mmap", "device", p.src.device, "err", err)
		}
		p.log.Warn("media pipeline stopped, restarting", "err", err, "in", backoff, "restarts", p.ctr.restarts.Load())
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			p.flushForgets()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, p.cfg.RetryMax)
		p.ctr.restarts.Add(1)
	}
}

// runCamera runs an rtsp:// source: the camera's session loop, and the
// raw stream's decoder beside it, until ctx is done.
func (p *Pipeline) runCamera(ctx context.Context) {
	p.cam.epoch = clock.Mono()
	var wg sync.WaitGroup
	if p.raw != nil {
		wg.Go(func() { p.runDecoder(ctx) })
	}
	p.cam.run(ctx)
	wg.Wait()
	p.h264.EndOfStream("producer stopping")
	if p.raw != nil {
		p.raw.EndOfStream("producer stopping")
	}
	p.flushForgets()
}

func (p *Pipeline) switchToMmap() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ioMode == "mmap" {
		return false
	}
	p.ioMode = "mmap"
	return true
}

// errEOS is what a run returns when its source ended.
var errEOS = errors.New("end of stream")

// runOnce runs one pipeline until ctx is done (nil) or it fails. It returns
// how many raw frames it received. A failure is logged and told to
// consumers (fail); the end by ctx is the caller's to tell.
func (p *Pipeline) runOnce(ctx context.Context) (uint64, error) {
	p.ledger.reset() // frames in flight in the last run are gone with it
	r, err := p.start()
	if err != nil {
		p.fail("", err)
		return 0, err
	}
	defer r.stop()
	for {
		// Popping is a cgo call, made only after the bus's watch woke us.
		for msg := r.bus.Pop(); msg != nil; msg = r.bus.Pop() {
			if err := p.onBusMessage(msg); err != nil {
				return r.frames.Load(), err
			}
		}
		select {
		case <-ctx.Done():
			return r.frames.Load(), nil
		case <-r.busMsgs:
		case <-p.reg.freed:
			p.flushForgets()
		}
	}
}

// busMask is the messages a run handles (onBusMessage); its bus watch
// drops every other type as it is posted.
const busMask = gogst.MessageError | gogst.MessageEOS | gogst.MessageWarning

// onBusMessage handles a message of busMask: an error or the end of the
// source ends the run (the error returned).
func (p *Pipeline) onBusMessage(msg *gogst.Message) error {
	switch msg.Type() {
	case gogst.MessageError:
		gerr := msg.ParseError()
		err := fmt.Errorf("element %s: %s", msg.Source(), gerr.Error())
		p.log.Error("media pipeline error", "element", msg.Source(), "err", gerr.Error(), "debug", gerr.DebugString())
		p.fail(fmt.Sprintf("pipeline error in %s: %s", msg.Source(), gerr.Error()), err)
		return err
	case gogst.MessageEOS:
		p.log.Warn("media source ended (end of stream)")
		p.fail("source ended", errEOS)
		return errEOS
	case gogst.MessageWarning:
		gerr := msg.ParseWarning()
		p.log.Warn("media pipeline warning", "element", msg.Source(), "warning", gerr.Error(), "debug", gerr.DebugString())
	}
	return nil
}

// fail records err and tells consumers the stream broke.
func (p *Pipeline) fail(reason string, err error) {
	p.mu.Lock()
	p.lastErr = err.Error()
	p.mu.Unlock()
	if reason == "" {
		reason = err.Error()
	}
	p.endOfStream(reason + "; restarting")
}

// endOfStream tells the consumers of the pipeline's streams that it
// stopped. An rtsp:// source's GStreamer pipeline is only its decoder: its
// h264 stream goes on (the camera's session ends it, camera.go).
func (p *Pipeline) endOfStream(reason string) {
	if p.raw != nil { // a Sink of H.264 has no raw stream, an rtsp:// source without a decoder neither
		p.raw.EndOfStream(reason)
	}
	if p.h264 != nil && p.cam == nil {
		p.h264.EndOfStream(reason)
	}
}

// flushForgets tells consumers to forget surfaces whose memory is gone. It
// must not be called under a stream's lock.
func (p *Pipeline) flushForgets() {
	if ids := p.reg.takeDead(); len(ids) > 0 && p.raw != nil {
		p.raw.Forget(ids)
	}
}

// requestKeyframe is the h264 stream's OnKeyframeRequest (already rate
// limited by the stream). It may run on the H.264 pump inside Publish.
func (p *Pipeline) requestKeyframe() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.enc == nil {
		return
	}
	if p.enc.ForceKeyUnit() {
		p.ctr.keyframes.Add(1)
		return
	}
	if now := time.Now(); now.Sub(p.lastKey) >= time.Second {
		p.lastKey = now
		p.log.Warn("encoder did not accept a force-key-unit event", "encoder", p.encoder)
	}
}

// Close frees the pools after Run returned. Surfaces still leased are freed
// when released. It is idempotent.
func (p *Pipeline) Close() error {
	if p.running.Load() {
		return errors.New("media: Close: Run has not returned")
	}
	p.closeOnce.Do(func() {
		p.flushForgets()
		p.reg.close()
		p.closeErr = p.closePools()
	})
	return p.closeErr
}

// closePools closes the pools the pipeline has (a Sink has one of them).
func (p *Pipeline) closePools() error {
	var errs []error
	for _, pool := range []*surface.Pool{p.rawPool, p.h264Pool} {
		if pool != nil {
			errs = append(errs, pool.Close())
		}
	}
	return errors.Join(errs...)
}

// monoBaser gives the CLOCK_MONOTONIC base time of the pipeline a run's
// buffers come from (fhgst.Pipeline.MonoBase, fhgst.Element.MonoBase).
type monoBaser interface{ MonoBase() int64 }

// run is one instance of the GStreamer pipeline, from start to stop, or
// one attachment of a Sink to its element.
type run struct {
	p        *Pipeline
	base     monoBaser // the pipeline the run's buffers come from
	pipe     *fhgst.Pipeline
	gp       *gogst.Pipeline
	rawSink  *fhgst.Element
	decSrc   *fhgst.Element // rtsp:// source: the decoder's input
	feed     *decFeed       // rtsp:// source: what went into the decoder
	encSrc   *fhgst.Element // nil without encoder
	enc      *fhgst.Element
	h264Sink *fhgst.Element
	frames   atomic.Uint64
	monoBase atomic.Int64 // CLOCK_MONOTONIC base time, monoUnknown until read
	// The sinks' watches and the pumps reading them, and the bus's watch
	// and the goroutine waiting on it, which tells busMsgs (closed and
	// joined by stop, after the streaming threads ended).
	watches []*fhgst.SampleWatch
	bus     *fhgst.BusWatch
	busMsgs chan struct{}
	pumps   sync.WaitGroup

	// Raw sink's pump only.
	rawWatch     *fhgst.SampleWatch // set before the pump starts
	caps         fhgst.CapsTracker
	vi           *fhgst.VideoInfo
	layout       surface.Layout // of the copy pool's surfaces
	copyOffsets  []uint32       // layout's plane offsets and strides
	copyStrides  []uint32
	lastDropLog  time.Time
	lastStampLog time.Time
	capPool      uintptr // the foreign pool whose size the raw stream's capacity follows
	// H.264 sink's pump only.
	lastAULog       time.Time
	uncountedLogged bool       // the ledger's giving up was logged
	slabs           slabWriter // closed by stop, after the pump ended
}

const monoUnknown = -2

// start builds the pipeline, wires framehub into it and sets it PLAYING.
func (p *Pipeline) start() (*run, error) {
	desc := p.Describe()
	pipe, err := fhgst.ParseLaunch(desc)
	if err != nil {
		return nil, fmt.Errorf("media: build pipeline: %w", err)
	}
	r := &run{p: p, base: pipe, pipe: pipe, gp: pipe.Go(), busMsgs: make(chan struct{}, 1)}
	r.monoBase.Store(monoUnknown)
	layout, _ := surface.NV12(p.cfg.Width, p.cfg.Height, 0) // Validate checked the size
	r.setLayout(layout)
	fail := func(err error) (*run, error) {
		r.stop()
		return nil, err
	}
	if r.rawSink = pipe.Element(elemRawSink); r.rawSink == nil {
		return fail(fmt.Errorf("media: pipeline has no element %s", elemRawSink))
	}
	if err := r.rawSink.InstallAllocationProbe(p.cfg.RawPoolMin, p.cfg.RawPoolMax); err != nil {
		return fail(fmt.Errorf("media: %w", err))
	}
	if p.cam != nil {
		if r.decSrc = pipe.Element(elemDecSrc); r.decSrc == nil {
			return fail(fmt.Errorf("media: pipeline has no element %s", elemDecSrc))
		}
	}
	if p.encoder != "" { // an rtsp:// source has an h264 stream and no encoder
		r.encSrc, r.enc, r.h264Sink = pipe.Element(elemEncSrc), pipe.Element(elemEncoder), pipe.Element(elemH264Sink)
		if r.encSrc == nil || r.enc == nil || r.h264Sink == nil {
			return fail(fmt.Errorf("media: pipeline lacks %s, %s or %s", elemEncSrc, elemEncoder, elemH264Sink))
		}
	}
	// Before PLAYING: from here the watch takes busMask's messages.
	if r.bus, err = pipe.WatchBus(busMask); err != nil {
		return fail(fmt.Errorf("media: %w", err))
	}
	r.pumps.Go(func() {
		for r.bus.Wait() == nil {
			select {
			case r.busMsgs <- struct{}{}:
			default: // runOnce is due to pop anyway
			}
		}
	})
	var idle *idler
	if r.encSrc == nil {
		// Without an encoder the raw frames are only for the raw stream's
		// consumers: while it has none, they need not enter Go at all.
		idle = &idler{wanted: func() bool { return p.raw.Consumers() > 0 }, unwatched: r.unwatched}
	}
	rawWatch, err := r.startPump(r.rawSink, r.handleRaw, r.onRawEOS, idle)
	if err != nil {
		return fail(err)
	}
	if idle != nil {
		p.rawWatch.Store(rawWatch)
	}
	if r.h264Sink != nil {
		if _, err := r.startPump(r.h264Sink, r.handleH264, nil, nil); err != nil {
			return fail(err)
		}
		p.mu.Lock()
		p.enc = r.enc
		p.mu.Unlock()
	}
	if err := r.gp.SetState(gogst.StatePlaying); err != nil {
		// The bus says why; the message is more useful than "failed".
		if msg := r.firstError(); msg != nil {
			gerr := msg.ParseError()
			p.log.Error("media pipeline failed to start", "element", msg.Source(), "err", gerr.Error(), "debug", gerr.DebugString())
			err = fmt.Errorf("element %s: %s", msg.Source(), gerr.Error())
		}
		return fail(fmt.Errorf("media: start pipeline: %w", err))
	}
	if r.decSrc != nil {
		// After PLAYING: the appsrc accepts buffers.
		r.feed = p.attachFeed(r.decSrc)
	}
	p.log.Info("media pipeline playing", "pipeline", desc)
	return r, nil
}

// firstError pops the bus watch's messages up to the first error, nil when
// there is none.
func (r *run) firstError() *gogst.Message {
	for msg := r.bus.Pop(); msg != nil; msg = r.bus.Pop() {
		if msg.Type() == gogst.MessageError {
			return msg
		}
	}
	return nil
}

// startPump starts the goroutine that reads sink's samples (see pump).
func (r *run) startPump(sink *fhgst.Element, handle func(*fhgst.Sample), eos func(), idle *idler) (*fhgst.SampleWatch, error) {
	w, err := sink.WatchSamples()
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	r.watches = append(r.watches, w)
	if sink == r.rawSink {
		r.rawWatch = w
	}
	r.pumps.Go(func() { pump(sink, w, handle, eos, idle) })
	return w, nil
}

// unwatched counts n raw frames the raw sink's streaming thread dropped
// while the raw stream had no consumer and no encoder took them.
func (r *run) unwatched(n uint64) {
	r.frames.Add(n)
	r.p.ctr.unwatched.Add(n)
	r.p.raw.Unwatched(n)
}

// onRawConsumers ends the raw sink's idling when a consumer subscribed
// (pump starts it again once none is left). It is the raw stream's
// OnConsumers: a call is a wake-up, the count is read again.
func (p *Pipeline) onRawConsumers(int) {
	if w := p.rawWatch.Load(); w != nil && p.raw.Consumers() > 0 {
		w.SetIdle(nil) // a no-op on the watch of a run that ended
	}
}

// stop sets the pipeline to NULL, which joins its streaming threads, ends
// the pumps, and drops every reference the run took. Buffers leased to
// consumers stay alive until their leases end.
func (r *run) stop() {
	r.p.mu.Lock()
	if r.p.enc == r.enc {
		r.p.enc = nil
	}
	r.p.mu.Unlock()
	if r.feed != nil {
		r.p.detachFeed(r.feed)
	}
	_ = r.gp.SetState(gogst.StateNull)
	// The streaming threads have ended: nothing writes to the watches.
	for _, w := range r.watches {
		_ = w.Close()
	}
	if r.bus != nil {
		_ = r.bus.Close()
	}
	r.pumps.Wait()
	r.slabs.close()
	// go-gst's wrappers hold references that only the garbage collector
	// drops: without an explicit dispose the pipeline, the appsinks' last
	// samples and so the whole memfd pool would live until a collection.
	r.pipe.Dispose()
	for _, e := range []*fhgst.Element{r.rawSink, r.h264Sink} {
		if e != nil {
			e.Dispose()
		}
	}
	for _, e := range []*fhgst.Element{r.rawSink, r.decSrc, r.encSrc, r.enc, r.h264Sink} {
		if e != nil {
			e.Unref()
		}
	}
	r.caps.Release()
	r.vi.Free()
	r.pipe.Unref()
	r.gp = nil
}
