package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/framehub/framehub/fdpass"
	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/lease"
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
	// OnKeyframeRequest, when set, is called (from a session's goroutine) when
	// a consumer sends RequestKeyframe, at most once per KeyframeInterval.
	OnKeyframeRequest func()
	// KeyframeInterval rate-limits OnKeyframeRequest. It defaults to 250 ms.
	KeyframeInterval time.Duration
	// Replay keeps the frames of the last Replay seconds for consumers that
	// ask to replay from a capture time (see stream_replay.go). 0 disables
	// it. The pool must be sized for it; when it is not, the buffer shrinks.
	Replay time.Duration
}

// FrameInfo is the per-frame metadata a source passes to Publish.
type FrameInfo struct {
	Offset, Size   uint32 // payload region in the surface; Size 0 means the whole surface
	PTS, DTS, Dur  int64  // pipeline timestamps in ns, -1 when unknown
	MonoNS, RealNS int64  // capture time; 0 means "now"
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

func poolRef(s *surface.Surface) SurfaceRef {
	return SurfaceRef{ID: s.ID, Gen: s.Gen, Kind: s.Mem.Kind(), Size: uint64(s.Mem.Size()), FDs: []int{s.Mem.ShareFD()}, Device: s.Mem.Device()}
}

// brokenSession is a session whose socket failed under the stream lock.
type brokenSession struct {
	ss  *session
	err error
}

// closeBroken finishes the sessions whose sends failed; call it without
// st.mu held.
func (st *Stream) closeBroken() {
	st.mu.Lock()
	broken := st.broken
	st.broken = nil
	st.mu.Unlock()
	for _, b := range broken {
		b.ss.closeWith(ipc.CodeProtocol, "send failed", b.err)
	}
}

// frame is one published frame while any hold or lease on it is live.
type frame struct {
	id   lease.FrameID
	surf SurfaceRef
	msg  ipc.Frame // everything but the per-consumer fields (Lease, Dropped, discont)
	free func()
}

// StreamStats are a stream's counters since it was created.
type StreamStats struct {
	Published        uint64 // frames handed to Publish
	Delivered        uint64 // Frame messages sent (one per consumer per frame)
	DroppedExhausted uint64 // frames dropped at the source: pool exhausted
	DroppedLossless  uint64 // frames dropped at the source: a lossless consumer was at its budget
	SkippedBudget    uint64 // frames not sent to a consumer at its budget
	SkippedSocket    uint64 // frames not sent because a consumer's socket buffer was full
	Evictions        uint64 // consumers disconnected for holding a lease past max_hold
	Released         uint64 // leases released by consumers
	ReleasedOnClose  uint64 // leases released because their consumer disconnected or was evicted
	HoldNanos        uint64 // total lease hold time of released leases
	MaxHoldNanos     uint64 // longest lease hold seen
	KeyframeRequests uint64 // RequestKeyframe forwarded to the source
	Replayed         uint64 // frames delivered from the replay buffer
	ReplayShed       uint64 // buffered frames let go early because the pool ran out
	ReplayFrames     int    // frames in the replay buffer now
	Consumers        int    // subscribed now
	Leases           int    // live leases now
	Frames           int    // frames with a live hold or lease now
	Pool             surface.PoolStats
}

type streamCounters struct {
	published, delivered, droppedExhausted, droppedLossless atomic.Uint64
	skippedBudget, skippedSocket, evictions, released       atomic.Uint64
	releasedOnClose, holdNanos, maxHoldNanos, keyframeReqs  atomic.Uint64
	replayed, replayShed                                    atomic.Uint64
}

// Stream is a named flow of frames with its own pool and lease table. Create
// it with Server.AddStream.
type Stream struct {
	cfg   StreamConfig
	srv   *Server
	log   *slog.Logger
	codec *ipc.Codec
	ctr   streamCounters

	holdObs prometheus.Observer // lease hold times (Metrics), or nil; set before Start
	svcMu   sync.Mutex          // serialises service; guards rbuf
	rbuf    []byte              // receive buffer for draining sessions
	lastSvc atomic.Int64

	mu          sync.Mutex
	table       *lease.Table
	frames      map[lease.FrameID]*frame
	subs        []*session
	byID        map[lease.ConsumerID]*session
	nextFrame   lease.FrameID
	seq         uint64
	lastKey     time.Time
	lastExh     time.Time
	ring        []*frame        // replay buffer, oldest first (StreamConfig.Replay)
	broken      []brokenSession // sessions whose send failed, finished by closeBroken
	lastShedLog time.Time
}

func newStream(srv *Server, cfg StreamConfig) (*Stream, error) {
	if cfg.Name == "" {
		return nil, errors.New("producer: stream config: Name is required")
	}
	if cfg.Pool == nil {
		return nil, fmt.Errorf("producer: stream %q: Pool is required", cfg.Name)
	}
	if cfg.KeyframeInterval == 0 {
		cfg.KeyframeInterval = 250 * time.Millisecond
	}
	st := &Stream{
		cfg:    cfg,
		srv:    srv,
		log:    srv.log.With("stream", cfg.Name),
		codec:  srv.codec,
		rbuf:   make([]byte, ipc.MaxMessageSize),
		frames: make(map[lease.FrameID]*frame),
		byID:   make(map[lease.ConsumerID]*session),
	}
	st.table = lease.New(st.onFree)
	return st, nil
}

// Name returns the stream's name.
func (st *Stream) Name() string { return st.cfg.Name }

// Pool returns the stream's pool.
func (st *Stream) Pool() *surface.Pool { return st.cfg.Pool }

// Caps returns the stream's current caps.
func (st *Stream) Caps() ipc.Caps {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.cfg.Caps
}

// onFree runs under st.mu when the last hold or lease of a frame ends.
func (st *Stream) onFree(id lease.FrameID) {
	fr := st.frames[id]
	if fr == nil {
		return
	}
	delete(st.frames, id)
	if fr.free != nil {
		fr.free()
	}
}

// Acquire takes a free surface from the pool for the next frame. When the pool
// is exhausted the frame is dropped at the source: the drop is counted and
// logged (at most once a second), the sequence number advances so consumers
// see the gap, and the error wraps surface.ErrExhausted. The caller must pass
// the surface to Publish or give it back with Discard.
func (st *Stream) Acquire() (*surface.Surface, error) {
	s, err := st.cfg.Pool.Get()
	if err == nil {
		return s, nil
	}
	if errors.Is(err, surface.ErrExhausted) {
		// Releases queued since the last frame may free a surface; then the
		// replay buffer gives way before the live stream drops a frame.
		st.service()
		for {
			if s, err = st.cfg.Pool.Get(); err == nil {
				return s, nil
			}
			if !errors.Is(err, surface.ErrExhausted) || !st.shedForPool() {
				break
			}
		}
	}
	if errors.Is(err, surface.ErrExhausted) {
		st.ctr.droppedExhausted.Add(1)
		st.mu.Lock()
		st.seq++
		now := time.Now()
		logIt := now.Sub(st.lastExh) >= time.Second
		if logIt {
			st.lastExh = now
		}
		leases := st.table.Leases()
		st.mu.Unlock()
		if logIt {
			ps := st.cfg.Pool.Stats()
			st.log.Warn("surface pool exhausted, dropping frames at the source",
				"in_use", ps.InUse, "max", ps.Max, "leases", leases, "dropped_total", st.ctr.droppedExhausted.Load())
		}
	}
	return nil, fmt.Errorf("producer: stream %q: acquire surface: %w", st.cfg.Name, err)
}

// AcquireWait is Acquire for sources that would rather wait than drop (the
// IPC-bound benchmark): when the pool is exhausted it waits, without counting
// a drop, until a surface is freed or ctx is done.
func (st *Stream) AcquireWait(ctx context.Context) (*surface.Surface, error) {
	for {
		s, err := st.cfg.Pool.Get()
		if err == nil || !errors.Is(err, surface.ErrExhausted) {
			return s, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		st.service()
		if s, err := st.cfg.Pool.Get(); err == nil {
			return s, nil
		}
		st.mu.Lock()
		conns := make([]*fdpass.Conn, len(st.subs))
		for i, ss := range st.subs {
			conns[i] = ss.conn
		}
		st.mu.Unlock()
		if _, err := fdpass.WaitReadable(conns, 10*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// nextSeq is the sequence number the next Publish assigns, for sources that
// stamp it into the pixels. It is exact only with a single publisher.
func (st *Stream) nextSeq() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.seq + 1
}

// Discard gives back a surface taken with Acquire that will not be published.
func (st *Stream) Discard(s *surface.Surface) { st.cfg.Pool.Put(s) }

// Publish hands a filled pool surface to every subscriber and returns how
// many consumers it was sent to. Publish takes ownership of s: the surface
// goes back to the pool once the last lease on it ends.
func (st *Stream) Publish(s *surface.Surface, fi FrameInfo) int {
	pool := st.cfg.Pool
	return st.publish(poolRef(s), fi, func() { pool.Put(s) })
}

// PublishRef hands a frame in a surface the stream's pool does not own (an
// adopted DMA-BUF) to every subscriber. free is called exactly once, under the
// stream's lock, when the last lease ends; it must not block or call back into
// the stream. ref.ID must not collide with the pool's ids, and ref.FDs must
// stay open until free runs: the stream may announce them to a consumer at
// any time before (a pending latest-policy delivery, a replay).
func (st *Stream) PublishRef(ref SurfaceRef, fi FrameInfo, free func()) int {
	return st.publish(ref, fi, free)
}

func (st *Stream) publish(ref SurfaceRef, fi FrameInfo, free func()) int {
	// Releases that arrived since the last frame free budget for this one.
	st.serviceBeforePublish()
	if fi.MonoNS == 0 {
		fi.MonoNS = clock.Mono()
	}
	if fi.RealNS == 0 {
		fi.RealNS = clock.Real()
	}
	if fi.Size == 0 {
		fi.Size = uint32(ref.Size) - fi.Offset
	}
	st.ctr.published.Add(1)
	now := time.Now()
	defer st.closeBroken()

	st.mu.Lock()
	defer st.mu.Unlock()
	st.seq++
	st.nextFrame++
	fr := &frame{
		id:   st.nextFrame,
		surf: ref,
		free: free,
		msg: ipc.Frame{
			Surface: ref.ID, Gen: ref.Gen, Seq: st.seq, Offset: fi.Offset, Size: fi.Size,
			PTS: fi.PTS, DTS: fi.DTS, Dur: fi.Dur, MonoNS: fi.MonoNS, RealNS: fi.RealNS,
			Flags: fi.Flags, Planes: fi.Planes, Meta: fi.Meta,
		},
	}
	st.frames[fr.id] = fr
	if err := st.table.AddFrame(fr.id); err != nil {
		// Frame ids come from a counter under st.mu: a duplicate is a bug.
		panic(err)
	}
	for _, ss := range st.subs {
		if ss.lossless && st.table.AtBudget(ss.cid) {
			st.ctr.droppedLossless.Add(1)
			st.unholdLocked(fr.id)
			return 0
		}
	}
	st.retainLocked(fr)
	sent := 0
	for _, ss := range st.subs {
		if ss.cursor != 0 {
			st.pumpLocked(ss, now) // still replaying: fr is in the buffer
			continue
		}
		if st.table.AtBudget(ss.cid) {
			ss.skipLocked(st, fr, now)
			continue
		}
		if st.deliverLocked(ss, fr, now) {
			sent++
		}
	}
	st.unholdLocked(fr.id)
	return sent
}

func (st *Stream) unholdLocked(id lease.FrameID) {
	if err := st.table.Unhold(id); err != nil {
		panic(err) // every Hold is paired in this file; anything else is a bug
	}
}

// deliverLocked grants a lease on fr to ss and sends it. It reports whether
// the frame went out; on failure the lease is returned at once.
func (st *Stream) deliverLocked(ss *session, fr *frame, now time.Time) bool {
	lid, err := st.table.Grant(ss.cid, fr.id, now)
	if err != nil {
		ss.log.Error("grant lease", "err", err)
		return false
	}
	if err := ss.sendFrameLocked(fr, uint64(lid)); err != nil {
		if _, _, rerr := st.table.Release(ss.cid, lid, now); rerr != nil {
			panic(rerr)
		}
		ss.sinceLast++
		if errors.Is(err, errSocketFull) {
			st.ctr.skippedSocket.Add(1)
			ss.ctr.skippedSocket.Add(1)
			ss.noteDropLocked(now, "socket buffer full")
			return false
		}
		// The peer is gone or broken: leave the fan-out now, and finish
		// the session (log, Bye, connection slot) once the lock is released
		// (closeBroken): closeWith takes st.mu.
		st.dropLocked(ss)
		st.broken = append(st.broken, brokenSession{ss, err})
		return false
	}
	ss.sinceLast = 0
	st.ctr.delivered.Add(1)
	ss.ctr.delivered.Add(1)
	return true
}

// releaseFromPeer handles a Release message. It returns an error naming the
// first lease id that was not live; leases before it were released.
func (st *Stream) releaseFromPeer(ss *session, ids []uint64) error {
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	if ss.detached {
		return nil
	}
	for _, id := range ids {
		_, held, err := st.table.Release(ss.cid, lease.ID(id), now)
		if err != nil {
			return err
		}
		st.ctr.released.Add(1)
		ss.ctr.released.Add(1)
		h := uint64(held)
		st.ctr.holdNanos.Add(h)
		if st.holdObs != nil {
			st.holdObs.Observe(held.Seconds())
		}
		for {
			m := st.ctr.maxHoldNanos.Load()
			if h <= m || st.ctr.maxHoldNanos.CompareAndSwap(m, h) {
				break
			}
		}
	}
	if ss.cursor != 0 {
		st.pumpLocked(ss, now)
	}
	if ss.pending != nil && !st.table.AtBudget(ss.cid) {
		fr := ss.pending
		ss.pending = nil
		st.deliverLocked(ss, fr, now)
		st.unholdLocked(fr.id)
	}
	return nil
}

// subscribe sends Welcome and the announce of every pool surface, then adds
// ss to the fan-out. Doing it under st.mu guarantees no Frame overtakes the
// Welcome and no surface allocated meanwhile is missed.
func (st *Stream) subscribe(ss *session, w *ipc.Welcome) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	w.Caps = st.cfg.Caps
	ps := st.cfg.Pool.Stats()
	w.Pool = ipc.Pool{Min: uint32(st.cfg.Pool.Config().Min), Max: uint32(ps.Max), SurfaceSize: uint64(ps.Size), Kind: st.cfg.Pool.Config().Allocator.Kind()}
	if err := ss.sendLocked(w, nil); err != nil {
		return fmt.Errorf("send welcome: %w", err)
	}
	var refs []SurfaceRef
	for _, s := range st.cfg.Pool.Surfaces() {
		refs = append(refs, poolRef(s))
	}
	if err := ss.announceLocked(refs); err != nil {
		return fmt.Errorf("announce %d surfaces: %w", len(refs), err)
	}
	if err := st.table.AddConsumer(ss.cid, lease.Limits{MaxInFlight: ss.budget, MaxHold: ss.maxHold}); err != nil {
		return err
	}
	st.byID[ss.cid] = ss
	subs := make([]*session, len(st.subs), len(st.subs)+1)
	copy(subs, st.subs)
	st.subs = append(subs, ss)
	st.startReplayLocked(ss, ss.replayFrom)
	st.pumpLocked(ss, time.Now())
	return nil
}

// detach removes ss from the fan-out and releases every lease it holds. It
// is idempotent and returns how many leases were released.
func (st *Stream) detach(ss *session) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.dropLocked(ss)
}

func (st *Stream) dropLocked(ss *session) int {
	if ss.detached {
		return 0
	}
	ss.detached = true
	subs := make([]*session, 0, len(st.subs))
	for _, o := range st.subs {
		if o != ss {
			subs = append(subs, o)
		}
	}
	st.subs = subs
	delete(st.byID, ss.cid)
	if ss.pending != nil {
		fr := ss.pending
		ss.pending = nil
		st.unholdLocked(fr.id)
	}
	if !st.table.Has(ss.cid) {
		return 0
	}
	n, err := st.table.RemoveConsumer(ss.cid)
	if err != nil {
		panic(err)
	}
	st.ctr.releasedOnClose.Add(uint64(n))
	return n
}

// requestKeyframe forwards a consumer's RequestKeyframe, rate-limited.
func (st *Stream) requestKeyframe() bool {
	if st.cfg.OnKeyframeRequest == nil {
		return false
	}
	st.mu.Lock()
	now := time.Now()
	ok := now.Sub(st.lastKey) >= st.cfg.KeyframeInterval
	if ok {
		st.lastKey = now
	}
	st.mu.Unlock()
	if ok {
		st.ctr.keyframeReqs.Add(1)
		st.cfg.OnKeyframeRequest()
	}
	return ok
}

// evictExpired disconnects every consumer holding a lease past its deadline.
func (st *Stream) evictExpired(now time.Time) {
	st.mu.Lock()
	var evict []*session
	for _, cid := range st.table.Expired(now) {
		ss := st.byID[cid]
		if ss == nil {
			continue
		}
		n := st.dropLocked(ss)
		st.ctr.evictions.Add(1)
		ss.ctr.evicted.Store(true)
		ss.log.Warn("evicting consumer: lease held past max_hold", "max_hold", ss.maxHold, "leases_released", n)
		evict = append(evict, ss)
	}
	st.mu.Unlock()
	for _, ss := range evict {
		ss.closeWith(ipc.CodeMaxHold, fmt.Sprintf("a lease was held longer than max_hold (%v)", ss.maxHold), nil)
	}
}

// service reads every message queued by the stream's consumers (releases,
// keyframe requests, goodbyes, disconnects) without waiting, then evicts
// consumers past their deadline. It runs on the frame clock (each Publish)
// and, when no frames flow, from runService, so consumer sockets never need
// to wake the producer.
func (st *Stream) service() {
	st.closeBroken()
	st.svcMu.Lock()
	defer st.svcMu.Unlock()
	st.mu.Lock()
	subs := st.subs // copy-on-write: safe to range over without the lock
	st.mu.Unlock()
	for _, ss := range subs {
		if !ss.ownReader {
			ss.drain(st.rbuf)
		}
	}
	now := time.Now()
	st.evictExpired(now)
	st.lastSvc.Store(now.UnixNano())
}

// fullServiceEvery is how often publishing reads every consumer; between
// full services it reads only the consumers at their budget, the only ones
// whose releases the next frame needs (a free surface is the pool's concern:
// Acquire services when it finds none). At 30 fps every publish is a full
// service; at thousands of frames per second this saves most of the reads
// that would find nothing.
const fullServiceEvery = 10 * time.Millisecond

func (st *Stream) serviceBeforePublish() {
	if time.Now().UnixNano()-st.lastSvc.Load() >= int64(fullServiceEvery) {
		st.service()
		return
	}
	st.svcMu.Lock()
	defer st.svcMu.Unlock()
	st.mu.Lock()
	var due []*session
	for _, ss := range st.subs {
		if !ss.ownReader && st.table.AtBudget(ss.cid) {
			due = append(due, ss)
		}
	}
	st.mu.Unlock()
	for _, ss := range due {
		ss.drain(st.rbuf)
	}
}

// runService services the stream every interval when no frame did, so that
// disconnects, releases and evictions are handled while the source is idle
// or stalled. A dead consumer is therefore noticed within one frame period,
// or within 1.5 intervals when no frames flow.
func (st *Stream) runService(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if now.UnixNano()-st.lastSvc.Load() >= int64(interval/2) {
				st.service()
			}
		}
	}
}

// Stats returns the stream's counters.
func (st *Stream) Stats() StreamStats {
	st.mu.Lock()
	consumers, leases, frames, ringLen := len(st.subs), st.table.Leases(), st.table.Frames(), len(st.ring)
	st.mu.Unlock()
	c := &st.ctr
	return StreamStats{
		Published: c.published.Load(), Delivered: c.delivered.Load(),
		DroppedExhausted: c.droppedExhausted.Load(), DroppedLossless: c.droppedLossless.Load(),
		SkippedBudget: c.skippedBudget.Load(), SkippedSocket: c.skippedSocket.Load(),
		Evictions: c.evictions.Load(), Released: c.released.Load(), ReleasedOnClose: c.releasedOnClose.Load(),
		HoldNanos: c.holdNanos.Load(), MaxHoldNanos: c.maxHoldNanos.Load(), KeyframeRequests: c.keyframeReqs.Load(),
		Replayed: c.replayed.Load(), ReplayShed: c.replayShed.Load(), ReplayFrames: ringLen,
		Consumers: consumers, Leases: leases, Frames: frames, Pool: st.cfg.Pool.Stats(),
	}
}

// SetCaps changes the stream's caps (a caps change upstream) and tells every
// consumer with a Caps message. Surfaces whose ids are listed in forget (for
// a pool, what Pool.Resize returned) are forgotten: each consumer that had
// them announced gets a Forget, sent after the Caps. Surfaces still leased
// keep their announcement until reused; a new generation in the same slot is
// announced again before use.
func (st *Stream) SetCaps(caps ipc.Caps, forget []uint32) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.cfg.Caps = caps
	for _, ss := range st.subs {
		if err := ss.sendLocked(&caps, nil); err != nil {
			ss.log.Warn("send caps", "err", err)
			continue
		}
		st.forgetLocked(ss, forget)
	}
}

// Forget tells every consumer to drop the listed surfaces (a shrinking pool,
// an adopted buffer pool that went away).
func (st *Stream) Forget(ids []uint32) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, ss := range st.subs {
		st.forgetLocked(ss, ids)
	}
}

func (st *Stream) forgetLocked(ss *session, ids []uint32) {
	var drop []uint32
	for _, id := range ids {
		if _, ok := ss.announced[id]; ok {
			drop = append(drop, id)
		}
	}
	if len(drop) == 0 {
		return
	}
	if err := ss.sendLocked(&ipc.Forget{IDs: drop}, nil); err != nil {
		ss.log.Warn("send forget", "err", err)
		return
	}
	for _, id := range drop {
		delete(ss.announced, id)
	}
}

// EndOfStream tells every consumer that the stream ended or broke (camera
// lost, pipeline error) with an EOS message. Frames may follow later; the
// first one to each consumer carries FlagDiscont.
func (st *Stream) EndOfStream(reason string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, ss := range st.subs {
		if err := ss.sendLocked(&ipc.EOS{Reason: reason}, nil); err != nil {
			ss.log.Warn("send eos", "err", err)
		}
		ss.sinceLast++ // the next frame says discont
	}
}

// Consumers returns how many consumers are subscribed now.
func (st *Stream) Consumers() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.subs)
}
