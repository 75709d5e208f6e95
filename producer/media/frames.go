package media

import (
	"errors"
	"fmt"
	"time"

	"github.com/framehub/framehub/internal/clock"
	fhgst "github.com/framehub/framehub/internal/gst"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/sdk/stamp"
)

// foreignReserve is how many buffers of a foreign pool (a camera driver's)
// framehub leaves to the pipeline: one for the driver to capture into, and
// the encoder's (encSrcQueue queued plus one encoding).
const foreignReserve = encSrcQueue + 2

// pump hands every sample an appsink queues to handle, in order, and calls
// eos (if not nil) once when the sink reached end of stream, until the
// watch is closed. It runs on a goroutine of its own per sink, woken
// through w, rather than on GStreamer's streaming thread (why:
// fhgst.SampleWatch). The appsink's queue (max-buffers) still holds the
// source back when the goroutine falls behind.
//
// idle, when not nil, lets the streaming thread drop the samples nobody
// wants (SampleWatch.SetIdle): after each sample, when idle.wanted says no
// consumer or encoder takes them, and until the next sample it is given
// (whoever subscribes ends idling, see Pipeline.onRawConsumers). What was
// dropped so is passed to idle.unwatched.
func pump(sink *fhgst.Element, w *fhgst.SampleWatch, handle func(*fhgst.Sample), eos func(), idle *idler) {
	atEOS := false
	for w.Wait() == nil {
		for s := w.Pull(); s != nil; s = w.Pull() {
			handle(s)
			if idle != nil && !idle.wanted() {
				w.SetIdle(s)
				// A consumer that subscribed before SetIdle may have found
				// the watch not idle yet: look again.
				if idle.wanted() {
					w.SetIdle(nil)
				}
			}
			s.Unref()
		}
		if idle != nil {
			if n := w.TakeUnwatched(); n > 0 {
				idle.unwatched(n)
				// Woken for the count (once a second): idling ends here
				// at the latest should a subscription have been missed.
				if idle.wanted() {
					w.SetIdle(nil)
				}
			}
		}
		if eos != nil && !atEOS && w.SawEOS() && sink.IsEOS() {
			atEOS = true
			eos()
		}
	}
}

// idler is what pump needs to let a sink's samples be dropped while nobody
// wants them.
type idler struct {
	wanted    func() bool    // someone takes the frames now
	unwatched func(n uint64) // n frames were dropped on the streaming thread
}

// onRawEOS ends the encoder's input when the source ends, so that the
// pipeline's EOS (every sink at EOS) is posted.
func (r *run) onRawEOS() {
	if r.encSrc != nil {
		r.encSrc.EndOfStream()
	}
}

// handleRaw publishes one raw frame; it runs on the raw sink's pump.
func (r *run) handleRaw(s *fhgst.Sample) {
	p := r.p
	r.frames.Add(1)
	// A sample the streaming thread prepared under the latest Prepare has
	// the caps accepted then: no need to look (a cgo call).
	if !s.PreparedCaps() && r.caps.Changed(s) {
		ok := r.capsChanged(s)
		r.prepare(s, ok)
		if !ok {
			return
		}
	}
	var camMono int64
	if r.feed != nil {
		// A camera's picture: its capture time is its access unit's.
		var publish bool
		if camMono, publish = r.feed.frame(s.Timing().PTS); !publish {
			return // decoded from the GOP cache to prime the decoder: the past
		}
	}
	p.flushForgets()
	d := s.Describe(r.vi, p.reg.obs)
	p.reg.noteFresh(&d)
	fi := producer.FrameInfo{PTS: d.PTS, DTS: d.DTS, Dur: d.Dur, MonoNS: r.mono(d.Running)}
	if r.feed != nil {
		fi.MonoNS = camMono
	}
	if d.Kind != fhgst.KindNone && fits(&d) {
		r.followPool(&d)
		if !r.admit(&d) && !r.reclaim(&d) {
			p.ctr.rawDropped.Add(1)
			p.raw.DroppedAtSource()
			if now := time.Now(); now.Sub(r.lastDropLog) >= time.Second {
				r.lastDropLog = now
				p.log.Warn("raw buffers all held by consumers and the encoder: dropping frames at the source",
					"outstanding", d.PoolOutstanding, "pool_max", d.PoolMax, "held", p.ctr.held.Load(), "dropped_total", p.ctr.rawDropped.Load())
			}
			return
		}
		if p.stamp {
			fi.MonoNS = r.stampShared(s, &d, fi.MonoNS)
		}
		r.publishShared(s, &d, fi)
	} else if !r.publishCopy(s, fi) {
		return
	}
	p.ctr.raw.Add(1)
	if r.encSrc != nil {
		// The encoder gets the same GstBuffer (appsrc takes a reference):
		// zero-copy, and the surface stays out of the pool until encoded.
		p.ledger.pushed(d.Running, r.encSrc.QueuedBuffers(), encSrcQueue)
		r.encSrc.PushSample(s)
	}
}

// prepare tells the raw sink's watch which samples its streaming thread
// may prepare (fhgst.SampleWatch.Prepare): those with s's caps, just
// accepted (ok), described with the run's video info; none when the caps
// were refused.
func (r *run) prepare(s *fhgst.Sample, ok bool) {
	if r.rawWatch == nil {
		return
	}
	if !ok {
		s = nil
	}
	r.rawWatch.Prepare(s, r.vi, r.p.reg.obs)
}

// fits reports whether every plane lies inside its fd and every offset and
// size fits the wire's 32 bits.
func fits(d *fhgst.Desc) bool {
	if d.NMems == 0 || d.NPlanes == 0 {
		return false
	}
	for i := 0; i < d.NPlanes; i++ {
		pl := &d.Planes[i]
		m := &d.Mems[pl.Mem]
		if end := pl.Offset + pl.Size; end > m.FDSize || end > 1<<32-1 {
			return false
		}
	}
	return d.Mems[0].Offset+d.Mems[0].Size <= 1<<32-1
}

// admit decides whether a shared buffer may be leased. Leases and the
// encoder keep buffers out of their pool; if the source then found its pool
// empty it would block, and every consumer would stall behind the slowest.
// So a frame is dropped at the source (counted) when leasing it would leave
// the source no buffer for the next frame.
func (r *run) admit(d *fhgst.Desc) bool {
	switch {
	case d.Ours:
		// PoolOutstanding counts this buffer, the encoder's and the leased
		// ones: below the max, the source still has one to fill.
		return d.PoolMax == 0 || d.PoolOutstanding < d.PoolMax
	case d.Pool != 0 && d.PoolMax > 0:
		return r.p.foreignHolds(d.Pool, 0)+1 <= max(1, d.PoolMax-foreignReserve)
	}
	return true
}

// reclaim is admit's second chance: when consumers hold the buffers the
// source needs, the raw stream evicts the one holding most beyond its fair
// share (Stream.Reclaim) rather than the frame being dropped for everyone.
// It reports whether the frame may now be leased.
func (r *run) reclaim(d *fhgst.Desc) bool {
	held := r.p.ctr.held.Load()
	if !r.p.raw.Reclaim() {
		return false
	}
	// The evicted consumer's buffers went back to their pool; d counted
	// them as outstanding.
	d.PoolOutstanding -= int(held - r.p.ctr.held.Load())
	return r.admit(d)
}

// followPool sets the raw stream's capacity to a foreign pool's size (a
// camera driver's, learnt from its buffers) minus the pipeline's reserve,
// so admission control promises consumers no more than that pool holds.
func (r *run) followPool(d *fhgst.Desc) {
	if d.Ours || d.Pool == 0 || d.PoolMax <= 0 || d.Pool == r.capPool {
		return
	}
	r.capPool = d.Pool
	r.p.raw.SetCapacity(d.PoolMax, min(foreignReserve, d.PoolMax-1))
	r.p.log.Info("raw stream capacity follows the source's buffer pool", "pool_max", d.PoolMax, "reserve", min(foreignReserve, d.PoolMax-1))
}

// foreignHolds adds delta to the lease references held on buffers of a
// foreign pool and returns the new count.
func (p *Pipeline) foreignHolds(pool uintptr, delta int) int {
	p.foreignMu.Lock()
	defer p.foreignMu.Unlock()
	n := p.foreignHeld[pool] + delta
	if n <= 0 {
		delete(p.foreignHeld, pool)
		return 0
	}
	p.foreignHeld[pool] = n
	return n
}

// publishShared leases the buffer's own memory: a framehub memfd
// (zero-copy) or an adopted DMA-BUF. The GstBuffer reference taken here is
// the lease's: it keeps the surface out of its pool (seed 000) until the
// last consumer released it, when the stream calls free.
func (r *run) publishShared(s *fhgst.Sample, d *fhgst.Desc, fi producer.FrameInfo) {
	p := r.p
	ref, planes := p.reg.surface(d)
	fi.Offset, fi.Size, fi.Planes = uint32(d.Mems[0].Offset), uint32(d.Mems[0].Size), planes
	buf := s.BufferRef()
	p.ctr.held.Add(1)
	var pool uintptr
	if !d.Ours && d.Pool != 0 {
		pool = d.Pool
		p.foreignHolds(pool, 1)
	}
	// free runs once, under the stream's lock: it must not block or call
	// into the stream. Unref may return the buffer to its pool or finalize
	// its memory (registry.MemoryFreed only records that).
	free := func() {
		buf.Unref()
		p.ctr.held.Add(-1)
		if pool != 0 {
			p.foreignHolds(pool, -1)
		}
	}
	p.raw.PublishRef(ref, fi, free)
	if d.Ours {
		p.ctr.zeroCopy.Add(1)
	} else {
		p.ctr.adopted.Add(1)
	}
}

// stampShared writes the test stamp (a Sink's Stamp option, PROTOCOL.md
// §9) into the top rows of a frame shared in its own memory, with the
// sequence number its publish is about to get, before any consumer can
// see it. Only buffers of framehub's memfd pool are stamped: they are
// ours, and no other branch of the pipeline can hold them (a tee never
// proposes a pool upstream); an adopted DMA-BUF belongs to its producer.
// It returns the capture time it stamped, which the frame must carry.
func (r *run) stampShared(s *fhgst.Sample, d *fhgst.Desc, mono int64) int64 {
	if mono == 0 {
		mono = clock.Mono()
	}
	var w *fhgst.WritablePlane
	if d.Ours {
		w = s.MapPlane0Writable(r.vi)
	}
	if w == nil {
		r.countStamp(errors.New("the frame is not in framehub's memfd pool (an adopted DMA-BUF), or its memory is read-only"))
		return mono
	}
	r.countStamp(stamp.Write(w.Y, w.Stride, r.vi.Width(), r.p.raw.NextSeq(), mono))
	w.Unmap()
	return mono
}

// countStamp counts a stamp written, or one that could not be (logged at
// most once a second).
func (r *run) countStamp(err error) {
	if err == nil {
		r.p.ctr.stamped.Add(1)
		return
	}
	r.p.ctr.unstamped.Add(1)
	if now := time.Now(); now.Sub(r.lastStampLog) >= time.Second {
		r.lastStampLog = now
		r.p.log.Warn("frame published without a stamp", "err", err, "unstamped_total", r.p.ctr.unstamped.Load())
	}
}

// publishCopy copies a frame that has no shareable memory once into a
// surface of the raw stream's copy pool. It reports whether it published.
func (r *run) publishCopy(s *fhgst.Sample, fi producer.FrameInfo) bool {
	p := r.p
	if r.vi == nil {
		return false
	}
	surf, err := p.raw.Acquire()
	if err != nil {
		return false // pool exhausted: counted and logged by the stream
	}
	err = surf.Mem.BeginWrite()
	if err == nil {
		err = s.CopyFrame(r.vi, surf.Mem.Bytes(), r.copyOffsets, r.copyStrides)
		if err == nil && p.stamp {
			if fi.MonoNS == 0 {
				fi.MonoNS = clock.Mono()
			}
			y := r.layout.Planes[0]
			r.countStamp(stamp.Write(surf.Mem.Bytes()[y.Offset:], int(y.Stride), r.layout.Width, p.raw.NextSeq(), fi.MonoNS))
		}
		if eerr := surf.Mem.EndWrite(); err == nil {
			err = eerr
		}
	}
	if err != nil {
		p.raw.Discard(surf)
		if now := time.Now(); now.Sub(r.lastDropLog) >= time.Second {
			r.lastDropLog = now
			p.log.Error("copy raw frame into the copy pool", "err", err)
		}
		return false
	}
	fi.Offset, fi.Size, fi.Planes = 0, uint32(r.layout.Size), r.layout.Planes
	p.raw.Publish(surf, fi)
	p.ctr.copied.Add(1)
	return true
}

// capsChanged handles new raw caps: the stream's caps (and the h264
// stream's size and rate) follow, and the copy pool is resized, its freed
// surfaces forgotten. It reports whether frames of these caps can be
// published.
func (r *run) capsChanged(s *fhgst.Sample) bool {
	p := r.p
	vi := s.VideoInfo()
	r.vi.Free()
	r.vi = vi
	if vi == nil || vi.Format() != "NV12" {
		p.log.Error("raw caps are not NV12 video; dropping frames")
		return false
	}
	w, h := vi.Width(), vi.Height()
	fn, fd := vi.FPS()
	layout, err := surface.NV12(w, h, 0)
	if err != nil {
		p.log.Error("raw caps", "err", err)
		return false
	}
	r.setLayout(layout)
	forget, err := p.rawPool.Resize(layout.Size)
	if err != nil {
		p.log.Error("resize the raw copy pool", "size", layout.Size, "err", err)
	}
	caps := producer.RawCaps(layout, uint32(fn), uint32(fd))
	if cur := p.raw.Caps(); !sameCaps(cur, caps) || len(forget) > 0 {
		p.log.Info("raw caps changed", "width", w, "height", h, "fps", fmt.Sprintf("%d/%d", fn, fd))
		p.raw.SetCaps(caps, forget)
	}
	if p.h264 != nil && p.cam == nil { // a camera's h264 caps follow its SPS (camera.go)
		hc := p.h264.Caps()
		if hc.Width != uint32(w) || hc.Height != uint32(h) || hc.FPSNum != uint32(fn) || hc.FPSDen != uint32(fd) {
			hc.Width, hc.Height, hc.FPSNum, hc.FPSDen = uint32(w), uint32(h), uint32(fn), uint32(fd)
			p.h264.SetCaps(hc, nil)
		}
	}
	return true
}

// setLayout sets the raw frames' layout, that of the copy pool's surfaces.
func (r *run) setLayout(l surface.Layout) {
	r.layout = l
	r.copyOffsets, r.copyStrides = make([]uint32, len(l.Planes)), make([]uint32, len(l.Planes))
	for i, pl := range l.Planes {
		r.copyOffsets[i], r.copyStrides[i] = pl.Offset, pl.Stride
	}
}

func sameCaps(a, b ipc.Caps) bool {
	if a.Format != b.Format || a.Width != b.Width || a.Height != b.Height || a.FPSNum != b.FPSNum ||
		a.FPSDen != b.FPSDen || a.Codec != b.Codec || len(a.Planes) != len(b.Planes) {
		return false
	}
	for i := range a.Planes {
		if a.Planes[i] != b.Planes[i] {
			return false
		}
	}
	return true
}

// mono converts a running time to the capture time on CLOCK_MONOTONIC, 0
// ("now", for Publish) when unknown.
func (r *run) mono(running int64) int64 {
	if running < 0 {
		return 0
	}
	base := r.monoBase.Load()
	if base == monoUnknown {
		base = r.base.MonoBase()
		r.monoBase.Store(base)
	}
	if base < 0 {
		return 0
	}
	m := base + running
	if m <= 0 || m > clock.Mono() {
		return 0
	}
	return m
}

// handleH264 runs on the H.264 sink's pump for every access unit: it is
// small and in system memory, so it is copied once into the open slab of
// the h264 stream (slab.go), next to the access units before it.
func (r *run) handleH264(s *fhgst.Sample) {
	p := r.p
	t := s.Timing()
	n := s.Extract(nil)
	if n == 0 {
		return
	}
	if p.encoder != "" { // a Sink's access units come from someone else's encoder
		p.ledger.encoded(t.Running)
		if _, _, off := p.ledger.counts(); off != "" && !r.uncountedLogged {
			r.uncountedLogged = true
			p.log.Warn("frames the encoder drops are not counted in this run", "why", off)
		}
	}
	if n > p.cfg.H264SlabSize {
		p.ctr.h264Dropped.Add(1)
		if now := time.Now(); now.Sub(r.lastAULog) >= time.Second {
			r.lastAULog = now
			p.log.Error("access unit larger than H264SlabSize: dropped", "bytes", n, "H264SlabSize", p.cfg.H264SlabSize)
		}
		return
	}
	sl, au, err := r.slabs.reserve(p.h264, n)
	if err != nil {
		if !errors.Is(err, surface.ErrExhausted) { // exhaustion is counted and logged by the stream
			p.log.Error("reserve an h264 slab", "err", err)
		}
		return
	}
	err = sl.surf.Mem.BeginWrite()
	if err == nil {
		s.Extract(au)
		err = sl.surf.Mem.EndWrite()
	}
	if err != nil {
		p.log.Error("copy access unit", "err", err)
		return
	}
	var flags uint32
	if !t.Delta {
		flags |= ipc.FlagKeyframe
	}
	if sps := findSPS(au); sps != nil {
		flags |= ipc.FlagHeader
		if codec := codecString(sps); codec != "" {
			if hc := p.h264.Caps(); hc.Codec != codec {
				hc.Codec = codec
				p.h264.SetCaps(hc, nil)
			}
		}
	}
	r.slabs.publish(p.h264, sl, n, producer.FrameInfo{PTS: t.PTS, DTS: t.DTS, Dur: t.Dur, MonoNS: r.mono(t.Running), Flags: flags})
	p.ctr.h264.Add(1)
}

// findSPS returns the payload of the first SPS NAL unit (type 7) of a
// byte-stream access unit, or nil. It stops at the first slice: parameter
// sets come before it.
func findSPS(au []byte) []byte {
	for i := 0; i+3 < len(au); i++ {
		if au[i] != 0 || au[i+1] != 0 || au[i+2] != 1 {
			continue
		}
		switch au[i+3] & 0x1f {
		case 7:
			return au[i+4:]
		case 1, 2, 3, 4, 5:
			return nil
		}
		i += 2
	}
	return nil
}

// codecString is the RFC 6381 codec of an SPS payload: "avc1.PPCCLL".
func codecString(sps []byte) string {
	if len(sps) < 3 {
		return ""
	}
	return fmt.Sprintf("avc1.%02x%02x%02x", sps[0], sps[1], sps[2])
}
