package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/framehub/framehub/fdpass"
	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/internal/ring"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer/fanout"
	"github.com/framehub/framehub/producer/surface"
)

// StreamConfig describes a named stream.
type StreamConfig struct {
	// Name is what consumers subscribe to ("raw", "h264"). Required.
	Name string
	// Caps describes the stream's frames; sent in Welcome and Caps.
	Caps ipc.Caps
	// Pool holds the stream's surfaces. Required. The stream does not own it:
	// the caller closes it after the server is closed.
	Pool *surface.Pool
	// Capacity is how many surfaces the stream's frames can occupy at once:
	// consumers are promised at most Capacity − Reserve of them (admission
	// control, see package fanout). It defaults to the Pool's maximum.
	// Sources that publish surfaces of their own (PublishRef) set it to the
	// size of what backs them, or call SetCapacity once they know it.
	Capacity int
	// Reserve is how many surfaces the source keeps for itself (the frame
	// being filled, the encoder's queue), never promised to consumers. It
	// defaults to 1.
	Reserve int
	// OnKeyframeRequest, when set, is called (from the goroutine that read
	// the consumer's RequestKeyframe) at most once per KeyframeInterval.
	OnKeyframeRequest func()
	// KeyframeInterval rate-limits OnKeyframeRequest. It defaults to 250 ms.
	KeyframeInterval time.Duration
	// Replay keeps the frames of the last Replay seconds for consumers that
	// ask to replay from a capture time (package fanout). 0 disables it. The
	// pool must be sized for it; when it is not, the buffer shrinks.
	Replay time.Duration
	// OnConsumers, when set, is called with the number of subscribed
	// consumers each time it changed (a subscription, a consumer that left
	// or was evicted), without the stream's lock, on the goroutine that
	// changed it. Calls from different goroutines may overlap and arrive
	// out of order: a source that acts on the count (the media pipeline
	// decodes only while raw consumers are subscribed) treats a call as a
	// wake-up and reads Consumers. It must not block.
	OnConsumers func(n int)
}

// FrameInfo is the per-frame metadata a source passes to Publish.
type FrameInfo struct {
	Offset, Size  uint32 // payload region in the surface; Size 0 means the whole surface
	PTS, DTS, Dur int64  // pipeline timestamps in ns, -1 when unknown
	// Capture time, CLOCK_MONOTONIC and CLOCK_REALTIME. MonoNS 0 means
	// "now"; RealNS 0 means the wall-clock time of MonoNS (a frame that
	// left the encoder 80 ms after its capture is stamped with its capture
	// time on both clocks, not with the time it was published).
	MonoNS, RealNS int64
	Flags          uint32 // ipc.FlagKeyframe, ipc.FlagHeader...
	Planes         []ipc.Plane
	Meta           map[string][]byte
}

// SurfaceRef is how a stream sees a surface: its identity and the fds to
// announce. The fds are borrowed from the surface's owner.
type SurfaceRef struct {
	ID, Gen uint32
	Kind    ipc.Kind
	Size    uint64
	FDs     []int
	Device  *ipc.Device // GPU memory: announced to consumers; nil for host memory
}

func (r SurfaceRef) fanout() fanout.Surface {
	return fanout.Surface{Info: ipc.Surface{ID: r.ID, Gen: r.Gen, Size: r.Size, Kind: r.Kind, Device: r.Device}, FDs: r.FDs}
}

func poolSurface(s *surface.Surface) fanout.Surface {
	return fanout.Surface{Info: s.Info(), FDs: []int{s.Mem.ShareFD()}}
}

// StreamStats are a stream's counters since it was created, and its gauges.
type StreamStats struct {
	fanout.Stats
	Consumers int // subscribed now (Stats.Subscribers)
	Pool      surface.PoolStats
}

// Stream is a named flow of frames with its own pool and fan-out. Create it
// with Server.AddStream.
//
// A Stream is the shell around a fanout.Core: it calls the core under its
// mutex, hands the actions to the sessions' outboxes while it still holds
// it (so each consumer's messages keep the core's order), and after
// unlocking frees frames, logs and lets each touched session send. The
// mutex guards the core, the caps and the map of attached sessions;
// nothing of a session.
type Stream struct {
	cfg StreamConfig
	srv *Server
	log *slog.Logger

	poller  *fdpass.Poller // the sockets the stream drains (not own readers): which have something to read
	waiting atomic.Bool    // AcquireWait sleeps on the poller: frees must wake it
	svcMu   sync.Mutex     // serialises service; guards the fields below
	rbuf    []byte         // receive buffer for draining sessions
	keys    []uint64       // poller results
	ready   []*session     // sessions to drain, to read the rings of, to flush
	rings   []*session
	backlog []*session
	ids     []uint64 // lease ids read from a ring
	lastSvc atomic.Int64
	svcWake chan struct{} // a consumer subscribed: runService ticks again

	mu          sync.Mutex
	core        *fanout.Core
	caps        ipc.Caps
	sessions    map[fanout.SubID]*session
	holdObs     prometheus.Observer // lease hold times (Metrics), or nil
	lastExh     time.Time
	lastShedLog time.Time
	told        int // consumers last reported to OnConsumers

	dispatches sync.Pool // of *dispatch, reused across core calls
}

func newStream(srv *Server, cfg StreamConfig) (*Stream, error) {
	if cfg.Name == "" {
		return nil, errors.New("producer: stream config: Name is required")
	}
	if cfg.Pool == nil {
		return nil, fmt.Errorf("producer: stream %q: Pool is required", cfg.Name)
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = cfg.Pool.Config().Max
	}
	st := &Stream{
		cfg:      cfg,
		srv:      srv,
		log:      srv.log.With("stream", cfg.Name),
		rbuf:     make([]byte, ipc.MaxMessageSize),
		caps:     cfg.Caps,
		sessions: make(map[fanout.SubID]*session),
		svcWake:  make(chan struct{}, 1),
	}
	poller, err := fdpass.NewPoller()
	if err != nil {
		return nil, fmt.Errorf("producer: stream %q: %w", cfg.Name, err)
	}
	st.poller = poller
	core, err := fanout.New(fanout.Config{
		Capacity: cfg.Capacity, Reserve: cfg.Reserve, Replay: cfg.Replay, KeyframeInterval: cfg.KeyframeInterval,
		PenaltyWindow: srv.cfg.PenaltyWindow, ControlRate: srv.cfg.ControlRate, ControlBurst: srv.cfg.ControlBurst,
		ObserveHold: st.observeHold,
	})
	if err != nil {
		poller.Close()
		return nil, fmt.Errorf("producer: stream %q: %w", cfg.Name, err)
	}
	st.core = core
	return st, nil
}

// observeHold runs inside core calls, under st.mu.
func (st *Stream) observeHold(d time.Duration) {
	if st.holdObs != nil {
		st.holdObs.Observe(d.Seconds())
	}
}

func (st *Stream) setHoldObserver(o prometheus.Observer) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.holdObs = o
}

// Name returns the stream's name.
func (st *Stream) Name() string { return st.cfg.Name }

// Pool returns the stream's pool.
func (st *Stream) Pool() *surface.Pool { return st.cfg.Pool }

// Caps returns the stream's current caps.
func (st *Stream) Caps() ipc.Caps {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.caps
}

// dispatch is what a core call asked for, to carry out after st.mu is
// released: frames to free, skips to log, sessions with something to send.
type dispatch struct {
	frees     []func()
	notices   []fanout.Action
	touched   []*session
	consumers int // for OnConsumers, when tell
	tell      bool
}

// dispatchLocked takes the core's actions: sends go to their session's
// outbox (in the core's order), the rest into the returned dispatch. Call
// with st.mu held, then finish the dispatch after unlocking.
func (st *Stream) dispatchLocked() *dispatch {
	d, _ := st.dispatches.Get().(*dispatch)
	if d == nil {
		d = new(dispatch)
	}
	for _, a := range st.core.Actions() {
		switch a.Kind {
		case fanout.Free:
			d.frees = append(d.frees, a.Free)
		case fanout.Notice:
			d.notices = append(d.notices, a)
		default:
			ss := st.sessions[a.Sub]
			if ss == nil {
				continue
			}
			if a.Kind == fanout.Close {
				delete(st.sessions, a.Sub)
			}
			if ss.enqueue(a) && !slices.Contains(d.touched, ss) {
				d.touched = append(d.touched, ss)
			}
		}
	}
	// Every change of st.sessions is followed by a dispatch (subscribe,
	// detach, the core's Close actions above).
	if n := len(st.sessions); st.cfg.OnConsumers != nil && n != st.told {
		st.told, d.consumers, d.tell = n, n, true
	}
	return d
}

// finish carries out a dispatch: frees the frames (their surfaces go back
// to their pools before finish returns), logs skips, and flushes the
// touched sessions; a frame a full socket refused goes back to the core,
// a broken socket ends its session.
func (d *dispatch) finish(st *Stream) {
	for _, f := range d.frees {
		f()
	}
	if len(d.frees) > 0 && st.waiting.Load() {
		st.poller.Wake()
	}
	for _, n := range d.notices {
		st.logNotice(n)
	}
	var unsent []*session
	var results []flushResult
	for _, ss := range d.touched {
		if r := ss.flush(); len(r.unsent) > 0 || r.broken != nil {
			unsent, results = append(unsent, ss), append(results, r)
		}
	}
	tell, n := d.tell, d.consumers
	clear(d.frees)
	clear(d.notices)
	clear(d.touched)
	d.frees, d.notices, d.touched, d.tell = d.frees[:0], d.notices[:0], d.touched[:0], false
	st.dispatches.Put(d)
	if tell {
		st.cfg.OnConsumers(n)
	}

	for i, ss := range unsent {
		st.settle(ss, results[i])
	}
}

// settle gives the core back the frames a session could not send, or ends
// a session whose socket broke.
func (st *Stream) settle(ss *session, r flushResult) {
	switch {
	case errors.Is(r.broken, syscall.EPIPE), errors.Is(r.broken, syscall.ECONNRESET):
		ss.closeWith(ipc.CodeOK, "", nil) // the consumer left while we were sending
		return
	case r.broken != nil:
		ss.closeWith(ipc.CodeProtocol, "send failed", r.broken)
		return
	}
	now := time.Now()
	st.mu.Lock()
	for _, l := range r.unsent {
		st.core.Unsent(ss.id, l, now)
	}
	d := st.dispatchLocked()
	st.mu.Unlock()
	d.finish(st)
}

func (st *Stream) logNotice(n fanout.Action) {
	st.mu.Lock()
	ss := st.sessions[n.Sub]
	st.mu.Unlock()
	if ss != nil {
		ss.log.Info("consumer is too slow, skipping frames", "why", n.Why, "skipped", n.Count)
	}
}

// Acquire takes a free surface from the pool for the next frame. When the
// pool is exhausted it reads the consumers' releases, then lets the replay
// buffer give way, then reclaims surfaces from the consumer holding most
// beyond its fair share (package fanout); only when all that frees nothing
// is the frame dropped at the source: the drop is counted and logged (at
// most once a second), the sequence number advances so consumers see the
// gap, and the error wraps surface.ErrExhausted. The caller must pass the
// surface to Publish or give it back with Discard.
func (st *Stream) Acquire() (*surface.Surface, error) {
	s, err := st.cfg.Pool.Get()
	if !errors.Is(err, surface.ErrExhausted) {
		return s, err
	}
	st.service()
	for {
		if s, err = st.cfg.Pool.Get(); !errors.Is(err, surface.ErrExhausted) {
			return s, err
		}
		if !st.shed() {
			break
		}
	}
	if st.Reclaim() {
		if s, err = st.cfg.Pool.Get(); !errors.Is(err, surface.ErrExhausted) {
			return s, err
		}
	}
	st.dropAtSource()
	return nil, fmt.Errorf("producer: stream %q: acquire surface: %w", st.cfg.Name, err)
}

// shed lets the oldest quarter of the replay buffer go; it reports whether
// it let anything go.
func (st *Stream) shed() bool {
	now := time.Now()
	st.mu.Lock()
	n := st.core.Shed()
	window := st.core.ReplayWindow()
	logIt := n > 0 && now.Sub(st.lastShedLog) >= time.Second
	if logIt {
		st.lastShedLog = now
	}
	d := st.dispatchLocked()
	st.mu.Unlock()
	d.finish(st)
	if logIt {
		st.log.Warn("surface pool exhausted: shortening the replay buffer", "shed_frames", n, "window", window.Round(time.Millisecond))
	}
	return n > 0
}

// Reclaim is for a source that found no free surface (Acquire does it by
// itself; a source with a pool of its own calls it): it evicts the consumer
// pinning the most surfaces beyond its fair share, with ipc.CodeReclaimed,
// and reports whether it did. The evicted consumer's surfaces are back in
// their pool when Reclaim returns.
func (st *Stream) Reclaim() bool {
	st.mu.Lock()
	ok := st.core.Reclaim(time.Now())
	d := st.dispatchLocked()
	st.mu.Unlock()
	d.finish(st)
	return ok
}

// DroppedAtSource records a frame that a source which shares its own
// buffers (PublishRef) had to drop before publishing it, having logged
// why: its sequence number is used up, so every consumer sees the gap
// (Frame.Dropped, DISCONT), and it counts as dropped at the source
// (dropped_total{reason="pool_exhausted"}).
func (st *Stream) DroppedAtSource() {
	st.mu.Lock()
	st.core.DropAtSource()
	st.mu.Unlock()
	// The frame clock still ticks: read the releases that may give the
	// source its buffers back (runService sleeps while frames come).
	st.service()
}

// Unwatched tells the stream that its source produced n frames while no
// consumer was subscribed and did not publish them (Core.Unwatched): they
// count in Published and use up sequence numbers.
func (st *Stream) Unwatched(n uint64) {
	st.mu.Lock()
	st.core.Unwatched(n)
	st.mu.Unlock()
}

func (st *Stream) dropAtSource() {
	now := time.Now()
	st.mu.Lock()
	st.core.DropAtSource()
	logIt := now.Sub(st.lastExh) >= time.Second
	if logIt {
		st.lastExh = now
	}
	s := st.core.Stats()
	st.mu.Unlock()
	if logIt {
		ps := st.cfg.Pool.Stats()
		st.log.Warn("surface pool exhausted, dropping frames at the source",
			"in_use", ps.InUse, "max", ps.Max, "leases", s.Leases, "dropped_total", s.DroppedExhausted)
	}
}

// AcquireWait is Acquire for sources that would rather wait than drop (the
// IPC-bound benchmark): when the pool is exhausted it waits, without counting
// a drop, until a surface is freed or ctx is done. Meanwhile consumers with
// a release ring are asked to release with messages, which wake it.
func (st *Stream) AcquireWait(ctx context.Context) (*surface.Surface, error) {
	s, err := st.cfg.Pool.Get()
	if !errors.Is(err, surface.ErrExhausted) {
		return s, err
	}
	st.waiting.Store(true)
	st.setKicks(true)
	defer func() {
		st.setKicks(false)
		st.waiting.Store(false)
	}()
	var keys []uint64
	for {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// After the kicks are set: what a consumer wrote into its ring
		// before it saw the kick is read here.
		st.service()
		if s, err := st.cfg.Pool.Get(); !errors.Is(err, surface.ErrExhausted) {
			return s, err
		}
		if keys, err = st.poller.Wait(keys, 10*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// setKicks asks the consumers with a release ring to release with Release
// messages (on), or in their rings again (off).
func (st *Stream) setKicks(on bool) {
	st.mu.Lock()
	var rings []*session
	for _, ss := range st.sessions {
		if ss.ring != nil {
			rings = append(rings, ss)
		}
	}
	st.mu.Unlock()
	for _, ss := range rings {
		ss.setKick(on)
	}
}

// nextSeq is the sequence number the next Publish assigns, for sources that
// stamp it into the pixels. It is exact only with a single publisher.
func (st *Stream) nextSeq() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.core.NextSeq()
}

// Discard gives back a surface taken with Acquire that will not be published.
func (st *Stream) Discard(s *surface.Surface) { st.cfg.Pool.Put(s) }

// Publish hands a filled pool surface to every subscriber and returns how
// many consumers it was sent to. Publish takes ownership of s: the surface
// goes back to the pool once the last lease on it ends.
func (st *Stream) Publish(s *surface.Surface, fi FrameInfo) int {
	pool := st.cfg.Pool
	return st.publish(poolSurface(s), fi, func() { pool.Put(s) })
}

// PublishRef hands a frame in a surface the stream's pool does not own (an
// adopted DMA-BUF, a slab) to every subscriber. free is called exactly once,
// when the last lease ends, from whichever goroutine ended it and without
// the stream's lock; it must not block. ref.ID must not collide with the
// pool's ids, and ref.FDs must stay open until free runs: the stream may
// announce them to a consumer at any time before (a pending latest-policy
// delivery, a replay).
func (st *Stream) PublishRef(ref SurfaceRef, fi FrameInfo, free func()) int {
	return st.publish(ref.fanout(), fi, free)
}

func (st *Stream) publish(surf fanout.Surface, fi FrameInfo, free func()) int {
	// Releases that arrived since the last frame free budget for this one.
	st.serviceBeforePublish()
	if fi.MonoNS == 0 || fi.RealNS == 0 {
		now := clock.Mono()
		if fi.MonoNS == 0 {
			fi.MonoNS = now
		}
		if fi.RealNS == 0 {
			fi.RealNS = clock.Real() - (now - fi.MonoNS)
		}
	}
	if fi.Size == 0 {
		fi.Size = uint32(surf.Info.Size) - fi.Offset
	}
	msg := ipc.Frame{
		Offset: fi.Offset, Size: fi.Size, PTS: fi.PTS, DTS: fi.DTS, Dur: fi.Dur, MonoNS: fi.MonoNS, RealNS: fi.RealNS,
		Flags: fi.Flags, Planes: fi.Planes, Meta: fi.Meta,
	}
	now := time.Now()
	st.mu.Lock()
	n := st.core.Publish(surf, msg, free, now)
	d := st.dispatchLocked()
	st.mu.Unlock()
	d.finish(st)
	return n
}

// released handles a consumer's Release. It reports whether the session is
// still subscribed.
func (st *Stream) released(ss *session, leases []uint64) bool {
	st.mu.Lock()
	ok := st.core.Released(ss.id, leases, time.Now())
	d := st.dispatchLocked()
	st.mu.Unlock()
	d.finish(st)
	return ok
}

// control charges a message that releases nothing (Ping, Pong, unknown) to
// the consumer's allowance, and queues reply (a Pong), if any. It reports
// whether the session is still subscribed.
func (st *Stream) control(ss *session, reply ipc.Message) bool {
	st.mu.Lock()
	ok := st.core.Control(ss.id, time.Now())
	if ok && reply != nil {
		ss.enqueue(fanout.Action{Kind: fanout.Send, Sub: ss.id, Msg: reply})
	}
	d := st.dispatchLocked()
	if ok && reply != nil && !slices.Contains(d.touched, ss) {
		d.touched = append(d.touched, ss)
	}
	st.mu.Unlock()
	d.finish(st)
	return ok
}

// requestKeyframe handles a consumer's RequestKeyframe: charged to its
// allowance, forwarded to the encoder at most once per KeyframeInterval.
func (st *Stream) requestKeyframe(ss *session) bool {
	st.mu.Lock()
	forward := st.core.RequestKeyframe(ss.id, time.Now())
	ok := st.core.Has(ss.id)
	d := st.dispatchLocked()
	st.mu.Unlock()
	d.finish(st)
	if forward && st.cfg.OnKeyframeRequest != nil {
		st.cfg.OnKeyframeRequest()
	}
	return ok
}

// subscribe attaches ss to the fan-out: the core decides its budget (or
// refuses it: the error wraps fanout.ErrNoCapacity), then the Welcome and
// the announce of every pool surface go out before any frame. It fills w's
// budget and caps.
func (st *Stream) subscribe(ss *session, w *ipc.Welcome) error {
	if !ss.ownReader {
		if err := st.poller.Add(ss.conn, uint64(ss.id)); err != nil {
			return err
		}
	}
	surfaces := st.cfg.Pool.Surfaces()
	refs := make([]fanout.Surface, len(surfaces))
	for i, s := range surfaces {
		refs[i] = poolSurface(s)
	}
	st.mu.Lock()
	budget, err := st.core.Attach(ss.id, ss.params, refs, time.Now())
	if errors.Is(err, fanout.ErrNoCapacity) {
		// Consumers that left since the last frame still hold their
		// promises until a service reads their goodbyes: read them, then
		// try again.
		st.mu.Unlock()
		st.service()
		st.mu.Lock()
		budget, err = st.core.Attach(ss.id, ss.params, refs, time.Now())
	}
	if err != nil {
		st.mu.Unlock()
		st.poller.Remove(ss.conn)
		return err
	}
	w.Caps = st.caps
	ps := st.cfg.Pool.Stats()
	w.Pool = ipc.Pool{Min: uint32(st.cfg.Pool.Config().Min), Max: uint32(ps.Max), SurfaceSize: uint64(ps.Size), Kind: st.cfg.Pool.Config().Allocator.Kind()}
	ss.budget = budget
	w.MaxInFlight = uint32(budget)
	// The Welcome goes first: the attach's announces and replayed frames
	// were appended to the core's actions, not yet to the outbox.
	if !ss.enqueue(fanout.Action{Kind: fanout.Send, Sub: ss.id, Msg: w}) {
		// Closed meanwhile (the server is stopping): leave again.
		st.core.Detach(ss.id)
		d := st.dispatchLocked()
		st.mu.Unlock()
		d.finish(st)
		return errors.New("session closed during the handshake")
	}
	if ss.ring != nil {
		ss.enqueue(fanout.Action{Kind: fanout.Send, Sub: ss.id, Msg: &ipc.Ring{Size: ring.Size}})
	}
	st.sessions[ss.id] = ss
	d := st.dispatchLocked()
	if !slices.Contains(d.touched, ss) {
		d.touched = append(d.touched, ss)
	}
	st.mu.Unlock()
	d.finish(st)
	select {
	case st.svcWake <- struct{}{}:
	default: // a wake is pending
	}
	return nil
}

// detach removes ss from the fan-out and releases every lease it holds. It
// is idempotent and returns how many leases were released.
func (st *Stream) detach(ss *session) int {
	st.mu.Lock()
	n := st.core.Detach(ss.id)
	delete(st.sessions, ss.id)
	d := st.dispatchLocked()
	st.mu.Unlock()
	d.finish(st)
	return n
}

// service reads what the stream's consumers sent — the lease ids in their
// release rings, and on the sockets that have something (releases,
// keyframe requests, goodbyes, disconnects; one epoll_wait tells which) —
// without waiting, evicts consumers past their deadline, and retries sends
// to consumers whose sockets were full. It runs on the frame clock (before
// each Publish) and, when no frames flow, from runService, so consumer
// sockets never need to wake the producer.
func (st *Stream) service() {
	st.svcMu.Lock()
	defer st.svcMu.Unlock()
	keys, err := st.poller.Wait(st.keys, 0)
	st.keys = keys
	if err != nil && !errors.Is(err, net.ErrClosed) {
		st.log.Error("poll consumer sockets", "err", err)
	}
	st.mu.Lock()
	st.ready, st.rings, st.backlog = st.ready[:0], st.rings[:0], st.backlog[:0]
	for _, k := range keys {
		if ss := st.sessions[fanout.SubID(k)]; ss != nil {
			st.ready = append(st.ready, ss)
		}
	}
	for _, ss := range st.sessions {
		if ss.ring != nil {
			st.rings = append(st.rings, ss)
		}
		if ss.backlogged() {
			st.backlog = append(st.backlog, ss)
		}
	}
	st.mu.Unlock()
	for _, ss := range st.rings {
		ids, err := ss.popRing(st.ids[:0])
		st.ids = ids
		switch {
		case err != nil:
			ss.closeWith(ipc.CodeProtocol, "release ring: "+err.Error(), nil)
		case len(ids) > 0:
			st.released(ss, ids)
		}
	}
	for _, ss := range st.ready {
		ss.drain(st.rbuf)
	}
	now := time.Now()
	st.mu.Lock()
	st.core.Tick(now)
	d := st.dispatchLocked()
	st.mu.Unlock()
	for _, ss := range st.backlog {
		if !slices.Contains(d.touched, ss) {
			d.touched = append(d.touched, ss)
		}
	}
	d.finish(st)
	clear(st.ready)
	clear(st.rings)
	clear(st.backlog)
	st.lastSvc.Store(now.UnixNano())
}

// serviceBeforePublish reads what consumers released since the last frame:
// it frees budget and surfaces for this one.
func (st *Stream) serviceBeforePublish() { st.service() }

// svcFlowing is how long runService sleeps while frames flow: each frame
// services the stream itself (serviceBeforePublish, DroppedAtSource), and
// each wake-up of the Go runtime costs several context switches (a camera
// passed through: 11.5 → 5.2 per frame, docs/bench/ipcam.md). When the
// frames stop, the first service comes at most this much later.
const svcFlowing = time.Second

// runService services the stream when no frame did, so that disconnects,
// releases and evictions are handled while the source is idle or stalled:
// while frames flow a dead consumer is noticed within one frame period;
// while none flow, within an interval; when they stop, within svcFlowing
// plus an interval. While no consumer is subscribed there is nothing to
// service and the timer stays stopped until a subscription (svcWake): a
// producer at rest is not woken for nothing (docs/bench/atrest.md).
func (st *Stream) runService(ctx context.Context, interval time.Duration) {
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-st.svcWake:
			t.Reset(interval)
		case now := <-t.C:
			switch {
			case st.Consumers() == 0:
				// Nothing to service until a subscription sets the timer.
			case now.UnixNano()-st.lastSvc.Load() < int64(interval/2):
				t.Reset(svcFlowing) // frames service the stream: look again later
			default:
				st.service()
				t.Reset(interval)
			}
		}
	}
}

// close releases the stream's poller; the server calls it once every
// session ended.
func (st *Stream) close() { st.poller.Close() }

// dropReplay lets go of the whole replay buffer (the server is closing).
func (st *Stream) dropReplay() {
	st.mu.Lock()
	st.core.DropReplay()
	d := st.dispatchLocked()
	st.mu.Unlock()
	d.finish(st)
}

// Stats returns the stream's counters.
func (st *Stream) Stats() StreamStats {
	st.mu.Lock()
	s := st.core.Stats()
	st.mu.Unlock()
	return StreamStats{Stats: s, Consumers: s.Subscribers, Pool: st.cfg.Pool.Stats()}
}

// SetCapacity changes how many surfaces the stream's frames can occupy and
// how many the source keeps (see StreamConfig.Capacity): a source learns
// the real size of a pool it does not own from its first buffer. Promises
// already made stand; Reclaim deals with a pool that runs dry meanwhile.
func (st *Stream) SetCapacity(capacity, reserve int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.core.SetCapacity(capacity, reserve)
}

// SetCaps changes the stream's caps (a caps change upstream) and tells every
// consumer with a Caps message. Surfaces whose ids are listed in forget (for
// a pool, what Pool.Resize returned) are forgotten: each consumer that had
// them announced gets a Forget, sent after the Caps. Surfaces still leased
// keep their announcement until reused; a new generation in the same slot is
// announced again before use.
func (st *Stream) SetCaps(caps ipc.Caps, forget []uint32) {
	st.mu.Lock()
	st.caps = caps
	st.core.SetCaps(caps, forget)
	d := st.dispatchLocked()
	st.mu.Unlock()
	d.finish(st)
}

// Forget tells every consumer to drop the listed surfaces (a shrinking pool,
// an adopted buffer pool that went away).
func (st *Stream) Forget(ids []uint32) {
	st.mu.Lock()
	st.core.Forget(ids)
	d := st.dispatchLocked()
	st.mu.Unlock()
	d.finish(st)
}

// EndOfStream tells every consumer that the stream ended or broke (camera
// lost, pipeline error) with an EOS message. Frames may follow later; the
// first one to each consumer carries FlagDiscont.
func (st *Stream) EndOfStream(reason string) {
	st.mu.Lock()
	st.core.EndOfStream(reason)
	d := st.dispatchLocked()
	st.mu.Unlock()
	d.finish(st)
}

// Consumers returns how many consumers are subscribed now.
func (st *Stream) Consumers() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.sessions)
}
