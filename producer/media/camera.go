package media

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"

	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/internal/rawio"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
)

// An rtsp:// source is an IP camera that already sends H.264. Its access
// units go to the h264 stream as they arrive: no decode, no encode, no
// second generation of compression, and almost no CPU. The camera is read
// with gortsplib (pure Go, already framehub's RTSP server library), not
// GStreamer's rtspsrc ! rtph264depay ! h264parse, because
//
//   - gortsplib hands over whole access units as NAL units: the one copy
//     into a slab is all the work, without a GStreamer pipeline, its
//     threads and its jitter buffer running for every frame;
//   - what reaches logs is under framehub's control: rtspsrc's errors and
//     debug strings quote the location, credentials included, and the
//     credentials must never appear in logs, metrics or framehubctl;
//   - reconnecting is a loop here, with the backoff the other sources use,
//     instead of a pipeline torn down and rebuilt;
//   - TCP, UDP, and basic and digest authentication are built in.
//
// The raw stream still needs pixels: decoder.go runs a GStreamer decoder,
// fed from here, only while raw consumers are subscribed.
//
// A camera cannot be asked for a keyframe: RequestKeyframe does nothing
// for this source. A session publishes nothing before its first IDR
// (nothing could decode it), and keeps the access units since the last
// IDR (the GOP cache, decoder.go) to start a decoder at once.

// camera is the connection to the IP camera of an rtsp:// source, kept
// across sessions (reconnections).
type camera struct {
	p         *Pipeline
	url       *base.URL // with the credentials, for gortsplib only
	name      string    // the URL as logged: without them
	sc        scrubber
	transport *gortsplib.Transport // nil: UDP, then TCP
	log       *slog.Logger
	epoch     int64 // CLOCK_MONOTONIC when Run started: PTS count from it

	// The session's RTP goroutine writes these; Stats reads them.
	up       atomic.Bool   // a session publishes access units now
	lost     atomic.Uint64 // RTP packets lost (UDP)
	waitKey  atomic.Uint64 // access units dropped before a session's first IDR
	badAU    atomic.Uint64 // access units the depayloader or builder refused
	lastPTS  int64         // of the last access unit published, over sessions; -1 none (RTP goroutine)
	sessions uint64        // sessions that published (RTP goroutine, then Run after it ended)
}

func newCamera(p *Pipeline) *camera {
	c := &camera{p: p, url: (*base.URL)(p.src.camera), name: redactURL(p.src.camera), sc: newScrubber(p.src.camera, p.src.raw),
		log: p.log.With("camera", redactURL(p.src.camera)), lastPTS: -1}
	switch p.cfg.RTSPTransport {
	case TransportTCP:
		t := gortsplib.TransportTCP
		c.transport = &t
	case TransportUDP:
		t := gortsplib.TransportUDP
		c.transport = &t
	}
	return c
}

// run connects to the camera and publishes its access units until ctx is
// done, reconnecting with exponential backoff (RetryMin..RetryMax) when
// the camera cannot be reached or goes away. Consumers keep their
// sessions: when a session that published ends they get EOS on both
// streams, and the first frame of the next session says DISCONT.
func (c *camera) run(ctx context.Context) {
	p := c.p
	backoff := p.cfg.RetryMin
	for {
		started := time.Now()
		published, err := c.session(ctx)
		if ctx.Err() != nil {
			return
		}
		err = c.sc.err(err)
		if err == nil {
			err = errors.New("the camera ended the session")
		}
		p.mu.Lock()
		p.lastErr = err.Error()
		p.mu.Unlock()
		if published > 0 {
			if time.Since(started) >= p.cfg.RetryMax {
				backoff = p.cfg.RetryMin // it ran well for a while: a new failure starts over
			}
			reason := "camera lost: " + err.Error() + "; reconnecting"
			p.h264.EndOfStream(reason)
			if p.raw != nil {
				p.raw.EndOfStream(reason)
			}
		}
		c.log.Warn("camera session ended, reconnecting", "err", err, "in", backoff, "published", published, "restarts", p.ctr.restarts.Load())
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, p.cfg.RetryMax)
		p.ctr.restarts.Add(1)
	}
}

// session runs one RTSP session: DESCRIBE, SETUP of the H.264 video,
// PLAY, then access units until the camera or the network fails (the
// error) or ctx is done. It returns how many access units it published.
func (c *camera) session(ctx context.Context) (uint64, error) {
	p := c.p
	s := &cameraSession{c: c, waitKey: true}
	cl := &gortsplib.Client{
		Scheme: c.url.Scheme, Host: c.url.Host, Transport: c.transport,
		ReadTimeout: p.cfg.RTSPTimeout, WriteTimeout: p.cfg.RTSPTimeout, DialContext: dialBuffered,
		OnPacketsLost: func(n uint64) {
			c.lost.Add(n)
			s.discont.Store(true)
		},
		OnDecodeError: func(err error) { s.logBad("RTP packet", err) },
		OnTransportSwitch: func(err error) {
			c.log.Info("camera: switching RTP transport", "why", c.sc.scrub(err.Error()))
		},
	}
	if err := cl.Start2(); err != nil {
		return 0, fmt.Errorf("rtsp client: %w", err)
	}
	stop := context.AfterFunc(ctx, cl.Close)
	defer func() {
		stop()
		cl.Close() // after it, no callback runs
		s.slabs.close()
		s.end()
	}()
	desc, _, err := cl.Describe(c.url)
	if err != nil {
		return 0, fmt.Errorf("DESCRIBE: %w", err)
	}
	var forma *format.H264
	medi := desc.FindFormat(&forma)
	if medi == nil {
		var have []string
		for _, m := range desc.Medias {
			for _, f := range m.Formats {
				have = append(have, string(m.Type)+"/"+f.Codec())
			}
		}
		return 0, fmt.Errorf("the camera offers no H.264 video (it offers %v)", have)
	}
	if s.dec, err = forma.CreateDecoder(); err != nil {
		return 0, fmt.Errorf("H.264 depayloader: %w", err)
	}
	s.forma = forma
	s.b.setParams(forma.SPS, forma.PPS)
	s.dts.Initialize()
	if _, err := cl.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return 0, fmt.Errorf("SETUP: %w", err)
	}
	cl.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		pts, ok := cl.PacketPTS2(medi, pkt)
		s.onPacket(pkt, pts, ok)
	})
	if _, err := cl.Play(nil); err != nil {
		return s.published.Load(), fmt.Errorf("PLAY: %w", err)
	}
	c.log.Info("camera connected", "rtp", transportName(c.transport))
	err = cl.Wait()
	return s.published.Load(), err
}

// readBuffer is what one read of the camera's TCP connection may take in.
// gortsplib reads through a 4 KiB buffer, so an access unit of a 1080p
// camera (tens of KiB, sent as one burst of RTP packets) took a read
// system call per 4 KiB; one read now takes the burst.
const readBuffer = 64 << 10

// dialBuffered dials the camera, reading through a readBuffer.
func dialBuffered(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	// The camera's packets come in a burst per frame: reading them through
	// raw system calls keeps each burst from waking Go's sysmon (package
	// rawio), most of what a passed-through camera cost the producer.
	rc := rawio.Wrap(nc)
	return &bufferedConn{Conn: rc, r: bufio.NewReaderSize(rc, readBuffer)}, nil
}

// bufferedConn is a net.Conn whose reads go through a bufio.Reader.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func transportName(t *gortsplib.Transport) string {
	if t == nil {
		return TransportAuto
	}
	return t.String()
}

// cameraSession is one RTSP session's state. onPacket runs on gortsplib's
// reader goroutine (one per session for a single medium), so the fields
// need no lock; published and discont are also touched from elsewhere.
type cameraSession struct {
	c       *camera
	forma   *format.H264
	dec     *rtph264.Decoder
	b       auBuilder
	dts     h264.DTSExtractor
	slabs   slabWriter
	waitKey bool // nothing published yet: waiting for the first IDR

	firstTicks int64 // RTP PTS (90 kHz) of the first access unit published
	base       int64 // its PTS, ns since camera.epoch
	lastLog    time.Time
	dtsLogged  bool

	// What the depayloader holds: packets of an access unit not yet
	// complete, of RTP timestamp bufTS and decoded PTS bufPTS (bufOK).
	buffered bool
	bufTS    uint32
	bufPTS   int64
	bufOK    bool

	published atomic.Uint64
	discont   atomic.Bool // packets were lost: the next access unit says DISCONT
}

// onPacket takes one RTP packet; pts is its decoded timestamp (90 kHz
// ticks), ok false while gortsplib cannot tell it yet.
func (s *cameraSession) onPacket(pkt *rtp.Packet, pts int64, ok bool) {
	// The depayloader returns an access unit when its last packet (the
	// marker) arrives, or, for cameras that set no marker, when the first
	// packet of the next one does: then it returns the buffered access
	// unit, of the buffered timestamp, and keeps this packet buffered.
	split := s.buffered && pkt.Timestamp != s.bufTS
	auPTS, auOK := pts, ok
	if split {
		auPTS, auOK = s.bufPTS, s.bufOK
	}
	nalus, err := s.dec.Decode(pkt)
	switch {
	case errors.Is(err, rtph264.ErrMorePacketsNeeded):
		s.buffered, s.bufTS, s.bufPTS, s.bufOK = true, pkt.Timestamp, pts, ok
		return
	case errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious):
		return
	case err != nil:
		s.buffered = false
		s.discont.Store(true)
		s.logBad("RTP packet", err)
		return
	}
	if split {
		s.buffered, s.bufTS, s.bufPTS, s.bufOK = true, pkt.Timestamp, pts, ok
	} else {
		s.buffered = false
	}
	if !auOK {
		return // before gortsplib knows the timing (it starts at an IDR)
	}
	s.onAU(nalus, auPTS)
}

// onAU publishes one access unit (NAL units without start codes).
func (s *cameraSession) onAU(nalus [][]byte, ticks int64) {
	c, p := s.c, s.c.p
	arrived := clock.Mono()
	au, flags, err := s.b.build(nalus)
	if err != nil {
		s.logBad("access unit", err)
		return
	}
	if sps := s.b.takeNewSPS(); sps != nil {
		c.spsChanged(sps)
	}
	key := flags&ipc.FlagKeyframe != 0
	if s.waitKey {
		if !key {
			c.waitKey.Add(1)
			return
		}
		s.waitKey = false
		s.firstTicks = ticks
		// PTS go on from the last session's, by the time that passed.
		s.base = max(arrived-c.epoch, c.lastPTS+int64(time.Millisecond), 0)
	}
	// The NAL units as published: the SPS the extractor needs may have
	// come in the SDP.
	dtsTicks, err := s.dts.Extract(s.b.built(), ticks)
	if err != nil {
		if !s.dtsLogged {
			s.dtsLogged = true
			c.log.Info("camera: cannot derive decoding times from the stream; DTS = PTS", "why", err)
		}
		dtsTicks = ticks
	}
	pts, dts := s.ns(ticks), s.ns(dtsTicks)
	if s.discont.Swap(false) {
		flags |= ipc.FlagDiscont
	}
	if len(au) > p.cfg.H264SlabSize {
		p.ctr.h264Dropped.Add(1)
		s.logBad("access unit", fmt.Errorf("%d bytes: larger than H264SlabSize %d (raise -h264-slab-size)", len(au), p.cfg.H264SlabSize))
		return
	}
	sl, dst, err := s.slabs.reserve(p.h264, len(au))
	if err != nil {
		if !errors.Is(err, surface.ErrExhausted) { // exhaustion is counted and logged by the stream
			c.log.Error("reserve an h264 slab", "err", err)
		}
		return
	}
	if err := sl.surf.Mem.BeginWrite(); err != nil {
		c.log.Error("write an h264 slab", "err", err)
		return
	}
	copy(dst, au)
	if err := sl.surf.Mem.EndWrite(); err != nil {
		c.log.Error("write an h264 slab", "err", err)
		return
	}
	s.slabs.publish(p.h264, sl, len(au), producer.FrameInfo{PTS: pts, DTS: dts, Dur: -1, MonoNS: arrived, Flags: flags})
	p.ctr.h264.Add(1)
	c.lastPTS = pts
	if s.published.Add(1) == 1 {
		c.sessions++
		c.up.Store(true)
		w, h, fn, fd, _, _ := spsCaps(s.b.sps)
		c.log.Info("camera streaming", "width", w, "height", h, "fps", fmt.Sprintf("%d/%d", fn, fd), "session", c.sessions)
	}
	p.decoderInput(au, pts, dts, arrived, key)
}

// ns converts RTP ticks of this session to the stream's PTS in ns.
func (s *cameraSession) ns(ticks int64) int64 {
	d := ticks - s.firstTicks
	rate := int64(s.forma.ClockRate())
	return max(0, s.base+d/rate*int64(time.Second)+d%rate*int64(time.Second)/rate)
}

// logBad counts an access unit or packet that could not be used and logs
// it, at most once a second.
func (s *cameraSession) logBad(what string, err error) {
	s.c.badAU.Add(1)
	if now := time.Now(); now.Sub(s.lastLog) >= time.Second {
		s.lastLog = now
		s.c.log.Warn("camera: "+what+" dropped", "err", s.c.sc.scrub(err.Error()))
	}
}

// end is the end of the session: the GOP cache and the decoder belong to
// it (the next session's timestamps start over).
func (s *cameraSession) end() {
	if s.c.up.Swap(false) {
		s.c.p.cameraDown()
	}
}

// spsChanged makes the h264 stream's caps (and, at the camera's own size,
// the raw stream's) follow the camera's SPS.
func (c *camera) spsChanged(sps []byte) {
	p := c.p
	w, h, fn, fd, codec, err := spsCaps(sps)
	if err != nil {
		c.log.Warn("camera: unreadable SPS; the h264 caps keep their size", "err", err)
		return
	}
	hc := p.h264.Caps()
	if hc.Width != uint32(w) || hc.Height != uint32(h) || hc.FPSNum != fn || hc.FPSDen != fd || hc.Codec != codec {
		hc.Width, hc.Height, hc.FPSNum, hc.FPSDen, hc.Codec = uint32(w), uint32(h), fn, fd, codec
		c.log.Info("camera caps", "width", w, "height", h, "fps", fmt.Sprintf("%d/%d", fn, fd), "codec", codec)
		p.h264.SetCaps(hc, nil)
	}
	if p.raw == nil || p.cfg.Width != 0 {
		return
	}
	layout, err := surface.NV12(w, h, 0)
	if err != nil {
		c.log.Warn("camera: its size cannot be shared as NV12", "width", w, "height", h, "err", err)
		return
	}
	forget, err := p.rawPool.Resize(layout.Size)
	if err != nil {
		c.log.Error("resize the raw copy pool", "size", layout.Size, "err", err)
	}
	caps := producer.RawCaps(layout, fn, fd)
	if !sameCaps(p.raw.Caps(), caps) || len(forget) > 0 {
		p.raw.SetCaps(caps, forget)
	}
}
