package streamer

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// hub fans access units out to sinks (RTSP viewers, the publisher). It
// keeps the stream's parameter sets (for SDPs) and the current GOP: the
// access units since the last keyframe, copies that hold no lease, for
// sinks that must start at once (see Config.KeyframeWait).
//
// The hub never blocks on a sink: publish appends to each sink's bounded
// queue and wakes its writer. A sink whose queue is full loses its backlog
// and the frames up to the next keyframe (a decoder cannot use P-frames
// whose reference it never got); that costs that sink only, and is counted.
type hub struct {
	maxGOP     int    // most access units kept in the GOP cache
	requestKey func() // asks the producer for a keyframe soon (coalesced)

	mu        sync.Mutex
	sps, pps  []byte
	gen       uint64        // bumped when the parameter sets change
	paramsSet chan struct{} // closed once parameter sets are known
	gop       []*accessUnit // from the last keyframe; nil when unusable
	sinks     map[*sink]struct{}
	waiting   bool      // the source waits for a keyframe (after a gap)
	lastAU    time.Time // receipt of the last frame from the producer

	departed sinkCounts // counters of sinks that left, for totals
}

// sinkCounts are a sink's counters.
type sinkCounts struct {
	frames, bytes, dropped uint64
}

func newHub(maxGOP int, requestKey func()) *hub {
	return &hub{maxGOP: maxGOP, requestKey: requestKey, paramsSet: make(chan struct{}), sinks: make(map[*sink]struct{})}
}

// setParams records the stream's parameter sets; it returns true when they
// changed. Copies are kept: sps and pps may be slices of an access unit.
func (h *hub) setParams(sps, pps []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if bytes.Equal(sps, h.sps) && bytes.Equal(pps, h.pps) {
		return false
	}
	h.sps, h.pps = bytes.Clone(sps), bytes.Clone(pps)
	if h.gen == 0 {
		close(h.paramsSet)
	}
	h.gen++
	return true
}

// params returns the parameter sets and their generation (0: none yet).
func (h *hub) params() (sps, pps []byte, gen uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sps, h.pps, h.gen
}

// waitParams waits until the parameter sets are known or ctx is done.
func (h *hub) waitParams(ctx context.Context) error {
	select {
	case <-h.paramsSet:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// publish hands au to every sink and to the GOP cache.
func (h *hub) publish(au *accessUnit) {
	h.mu.Lock()
	defer h.mu.Unlock()
	au.gen = h.gen
	h.waiting = false
	switch {
	case au.key:
		h.gop = append(make([]*accessUnit, 0, min(h.maxGOP, 64)), au)
	case h.gop != nil && len(h.gop) < h.maxGOP:
		h.gop = append(h.gop, au)
	default:
		// Longer than the cache allows: a cache without its keyframe is
		// useless, so wait for the next one.
		h.gop = nil
	}
	if h.maxGOP == 0 {
		h.gop = nil
	}
	for s := range h.sinks {
		s.offerLocked(au)
	}
}

// gap tells the hub that access units were lost before the next one: the
// cached GOP cannot be continued.
func (h *hub) gap() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gop = nil
	h.waiting = true
}

// waitingForKey reports whether a sink or the source waits for a keyframe.
func (h *hub) waitingForKey() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.waiting {
		return true
	}
	for s := range h.sinks {
		if s.needKey {
			return true
		}
	}
	return false
}

// received notes that a frame came from the producer at t (served or not:
// health is about the producer feeding us).
func (h *hub) received(t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastAU = t
}

// lastFrame returns when the last frame arrived (zero: never).
func (h *hub) lastFrame() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastAU
}

// attach adds s; it starts at the next keyframe, or from the GOP cache when
// its writer asks (startFromCache). A keyframe is requested for it.
func (h *hub) attach(s *sink) {
	h.mu.Lock()
	s.needKey = true
	h.sinks[s] = struct{}{}
	h.mu.Unlock()
	h.requestKey()
}

// detach removes s and adds its counters to the totals.
func (h *hub) detach(s *sink) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.sinks[s]; !ok {
		return
	}
	delete(h.sinks, s)
	c := s.counts()
	h.departed.frames += c.frames
	h.departed.bytes += c.bytes
	h.departed.dropped += c.dropped
	s.queue = nil
}

// startFromCache starts a sink that still waits for its first keyframe from
// the cached GOP: it returns the cached access units, which the sink's
// writer sends before anything queued after them. It returns nil when the
// sink already started or there is no usable cache.
func (h *hub) startFromCache(s *sink) []*accessUnit {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.started || len(h.gop) == 0 {
		return nil
	}
	s.started, s.needKey = true, false
	s.queue = s.queue[:0]
	return append([]*accessUnit(nil), h.gop...)
}

// take returns the access units queued for s (nil when none), emptying its
// queue.
func (h *hub) take(s *sink, spare []*accessUnit) []*accessUnit {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := s.queue
	if len(q) == 0 {
		return nil
	}
	s.queue = spare[:0]
	return q
}

// resync makes s wait for the next keyframe after its transport lost
// packets (a full write queue): its queue and the frames until then are
// counted as dropped, lost is how many its writer lost already. No keyframe
// is requested: the loss is the sink's own doing, and one slow viewer must
// not make the encoder emit keyframes (and spend bitrate) for everyone.
func (h *hub) resync(s *sink, lost int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s.dropped.Add(uint64(lost + len(s.queue)))
	s.queue = s.queue[:0]
	s.needKey = true
}

// totals returns the counters of every sink, present and departed, and how
// many sinks are attached.
func (h *hub) totals() (sinkCounts, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.departed
	for s := range h.sinks {
		c := s.counts()
		t.frames += c.frames
		t.bytes += c.bytes
		t.dropped += c.dropped
	}
	return t, len(h.sinks)
}

// snapshot returns the attached sinks.
func (h *hub) snapshot() []*sink {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*sink, 0, len(h.sinks))
	for s := range h.sinks {
		out = append(out, s)
	}
	return out
}

// sink is one receiver of the stream: an RTSP viewer or the publisher. Its
// queue is filled by the hub and drained by its writer goroutine.
type sink struct {
	id        string // "1", "2"... for viewers, "publish" for the publisher
	remote    string // peer address
	transport string // "tcp", "udp"...
	maxQueue  int
	wake      chan struct{} // capacity 1: queue became non-empty

	// Guarded by hub.mu.
	queue   []*accessUnit
	needKey bool // drop until a keyframe
	started bool // had its first keyframe

	frames, bytes, dropped atomic.Uint64
}

func newSink(id, remote, transport string, maxQueue int) *sink {
	return &sink{id: id, remote: remote, transport: transport, maxQueue: maxQueue, wake: make(chan struct{}, 1)}
}

func (s *sink) counts() sinkCounts {
	return sinkCounts{frames: s.frames.Load(), bytes: s.bytes.Load(), dropped: s.dropped.Load()}
}

// offerLocked queues au for s, or drops it; the caller holds hub.mu.
func (s *sink) offerLocked(au *accessUnit) {
	if s.needKey {
		if !au.key {
			if s.started {
				s.dropped.Add(1) // resynchronising after a loss
			}
			return
		}
		s.needKey, s.started = false, true
	}
	if len(s.queue) >= s.maxQueue {
		// The writer is this far behind: drop the backlog, not just this
		// frame, so that the sink comes back near live at the next
		// keyframe instead of staying a queue's length behind.
		s.dropped.Add(uint64(len(s.queue)) + 1)
		s.queue = s.queue[:0]
		s.needKey = true
		return
	}
	s.queue = append(s.queue, au)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
