package fanout

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/lease"
)

// Config configures a Core. Zero values take the defaults given on each
// field.
type Config struct {
	// Capacity is how many surfaces the stream's frames may occupy at once:
	// its pool's maximum. 0 means unknown: no admission control, and
	// Reclaim measures fair shares against what subscribers pin now.
	Capacity int
	// Reserve is how many of those surfaces the source keeps for itself (the
	// frame being filled, the encoder's queue); never promised to
	// subscribers. It defaults to 1.
	Reserve int
	// Replay keeps every frame captured in the last Replay under a hold of
	// the core, for subscribers that attach with Params.ReplayFromNS. 0 or
	// less disables it.
	Replay time.Duration
	// KeyframeInterval is the least time between two keyframe requests the
	// core lets through, over all subscribers. It defaults to 250 ms.
	KeyframeInterval time.Duration
	// PenaltyWindow is how long an eviction for holding (max_hold) or a
	// reclaim counts against a subscriber that attaches again with the same
	// uid and name. It defaults to 60 seconds.
	PenaltyWindow time.Duration
	// ControlRate is how many messages that release nothing (Ping, Pong,
	// RequestKeyframe, empty Release, unknown types) a subscriber may send
	// per second, sustained; ControlBurst how many at once. They default to
	// 50 and 100.
	ControlRate  float64
	ControlBurst int
	// ObserveHold, when set, is called with the hold time of every lease a
	// subscriber releases (a metrics histogram). It runs inside the call
	// that released the lease and must not call the core.
	ObserveHold func(time.Duration)
}

func (c *Config) setDefaults() error {
	if c.Reserve == 0 {
		c.Reserve = 1
	}
	if c.KeyframeInterval == 0 {
		c.KeyframeInterval = 250 * time.Millisecond
	}
	if c.PenaltyWindow == 0 {
		c.PenaltyWindow = time.Minute
	}
	if c.ControlRate == 0 {
		c.ControlRate = 50
	}
	if c.ControlBurst == 0 {
		c.ControlBurst = 100
	}
	switch {
	case c.Capacity < 0:
		return fmt.Errorf("fanout: config: Capacity %d must not be negative", c.Capacity)
	case c.Reserve < 0:
		return fmt.Errorf("fanout: config: Reserve %d must not be negative", c.Reserve)
	case c.KeyframeInterval < 0 || c.PenaltyWindow < 0:
		return fmt.Errorf("fanout: config: KeyframeInterval %v and PenaltyWindow %v must not be negative",
			c.KeyframeInterval, c.PenaltyWindow)
	case c.ControlRate < 0 || c.ControlBurst < 1:
		return fmt.Errorf("fanout: config: ControlRate %v must not be negative and ControlBurst %d must be ≥ 1",
			c.ControlRate, c.ControlBurst)
	}
	return nil
}

// Params is what a subscriber asked for, after the server's defaults and
// caps (the core may grant a smaller budget).
type Params struct {
	Name     string // for the reconnect penalty (with UID) and reasons
	UID, PID int
	Budget   int           // asked max_in_flight, ≥ 1
	MaxHold  time.Duration // lease deadline; 0 means none
	Policy   ipc.Policy    // "" means queue
	Lossless bool          // at its budget, the frame is dropped for everyone
	// ReplayFromNS asks for the buffered frames captured after this
	// CLOCK_MONOTONIC time (0: live only).
	ReplayFromNS int64
}

// ErrNoCapacity is wrapped by the error of an Attach that would promise more
// surfaces than the stream's capacity can back.
var ErrNoCapacity = errors.New("no capacity left")

// NoCapacityError is the error of an Attach refused by admission control.
// Its message is meant for the Reject's reason.
type NoCapacityError struct {
	Capacity, Reserve, Promised, Subscribers, Need int
}

func (e *NoCapacityError) Error() string {
	return fmt.Sprintf("%v: the pool's %d surfaces are promised (%d to %d consumers, %d kept for the source) and this "+
		"subscription needs %d; retry later, or raise the producer's pool maximum",
		ErrNoCapacity, e.Capacity, e.Promised, e.Subscribers, e.Reserve, e.Need)
}

// Unwrap makes errors.Is(err, ErrNoCapacity) true.
func (e *NoCapacityError) Unwrap() error { return ErrNoCapacity }

// frame is one published frame while any hold or lease on it is live.
type frame struct {
	id   lease.FrameID
	surf Surface
	msg  ipc.Frame // everything but the per-subscriber fields (Lease, Dropped, Discont, Replay)
	free func()
}

// sub is one subscriber.
type sub struct {
	id        SubID
	p         Params
	budget    int
	announced map[uint32]uint32 // surface id → generation announced
	pending   *frame            // latest policy: the newest frame waiting for budget (held)
	cursor    uint64            // replaying: seq of the next buffered frame to give; 0 = live
	lastSeq   uint64            // seq of the last frame delivered; 0 = none yet
	unsent    uint32            // delivered frames taken back (Unsent) since the last delivery
	discont   bool              // the next frame says FlagDiscont (stream broke, replay gap, unsent)
	tokens    float64           // control-message allowance
	refilled  time.Time
	noticed   time.Time // last Notice
	unnoticed uint64    // skips since the last Notice
	ctr       SubStats
}

// promise is how many surfaces the subscriber may pin: its budget, and the
// pending frame of the latest policy.
func (s *sub) promise() int {
	if s.p.Policy == ipc.PolicyLatest {
		return s.budget + 1
	}
	return s.budget
}

type penaltyKey struct {
	uid  int
	name string
}

type penalty struct {
	count int
	until time.Time
}

// maxPenalties bounds the penalty memory: beyond it the entries closest to
// expiry are dropped first.
const maxPenalties = 1024

// Core is the fan-out of one stream. Create it with New. It is not safe for
// concurrent use: the caller serialises every call (the producer's Stream
// holds its mutex around each), and carries out the actions a call appended
// (Actions) after it.
type Core struct {
	cfg       Config
	table     *lease.Table
	frames    map[lease.FrameID]*frame
	subs      map[SubID]*sub
	order     []*sub // attach order: the fan-out order
	nextFrame lease.FrameID
	seq       uint64
	ring      []*frame // replay buffer, oldest first
	lastKey   time.Time
	promised  int
	penalties map[penaltyKey]penalty
	ctr       Stats
	acts      []Action
}

// New returns an empty core.
func New(cfg Config) (*Core, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	c := &Core{
		cfg:       cfg,
		frames:    make(map[lease.FrameID]*frame),
		subs:      make(map[SubID]*sub),
		penalties: make(map[penaltyKey]penalty),
	}
	c.table = lease.New(c.onFree)
	return c, nil
}

// Actions returns the actions appended since the last call and forgets
// them. The slice is reused by the next core call: carry the actions out,
// or copy them, before calling the core again.
func (c *Core) Actions() []Action {
	a := c.acts
	c.acts = c.acts[:0]
	return a
}

// onFree runs inside the lease table's call when a frame's last hold or
// lease ended.
func (c *Core) onFree(id lease.FrameID) {
	fr := c.frames[id]
	if fr == nil {
		return
	}
	delete(c.frames, id)
	if fr.free != nil {
		c.acts = append(c.acts, Action{Kind: Free, Free: fr.free})
	}
}

// SetCapacity changes the capacity and reserve (a pool that turned out
// smaller, a caps change). Promises already made stand; Reclaim deals with
// a pool that runs dry meanwhile.
func (c *Core) SetCapacity(capacity, reserve int) {
	c.cfg.Capacity, c.cfg.Reserve = max(capacity, 0), max(reserve, 0)
}

// Attach adds subscriber id, announces surfaces to it (a pool's surfaces,
// so that it maps them before frames flow), and starts its replay if asked.
// It returns the granted budget: the asked one, halved per recent eviction
// of the same uid and name, and within what the capacity can still back
// (see the package doc). When nothing is left it changes nothing and
// returns an error wrapping ErrNoCapacity (a *NoCapacityError). The
// caller sends its Welcome before carrying out the actions.
func (c *Core) Attach(id SubID, p Params, surfaces []Surface, now time.Time) (int, error) {
	if _, dup := c.subs[id]; dup {
		return 0, fmt.Errorf("fanout: attach subscriber %d: already attached", id)
	}
	if p.Budget < 1 || p.MaxHold < 0 {
		return 0, fmt.Errorf("fanout: attach subscriber %d: budget %d must be ≥ 1 and max hold %v not negative", id, p.Budget, p.MaxHold)
	}
	if p.Policy == "" {
		p.Policy = ipc.PolicyQueue
	}
	budget, err := c.admit(p, now)
	if err != nil {
		return 0, err
	}
	if err := c.table.AddConsumer(lease.ConsumerID(id), lease.Limits{MaxInFlight: budget, MaxHold: p.MaxHold}); err != nil {
		return 0, fmt.Errorf("fanout: attach subscriber %d: %w", id, err)
	}
	s := &sub{id: id, p: p, budget: budget, announced: make(map[uint32]uint32),
		tokens: float64(c.cfg.ControlBurst), refilled: now, noticed: now}
	c.subs[id] = s
	c.order = append(c.order, s)
	c.promised += s.promise()
	c.announce(s, surfaces)
	c.startReplay(s, p.ReplayFromNS)
	c.pump(s, now)
	return budget, nil
}

// Detach removes subscriber id (it disconnected, broke the protocol, or the
// server is stopping) and releases every lease it holds; it returns how
// many. It appends no Close: the caller is closing. Unknown ids (already
// detached) return 0.
func (c *Core) Detach(id SubID) int {
	s := c.subs[id]
	if s == nil {
		return 0
	}
	return c.remove(s)
}

func (c *Core) remove(s *sub) int {
	delete(c.subs, s.id)
	c.order = slices.DeleteFunc(c.order, func(o *sub) bool { return o == s })
	c.promised -= s.promise()
	if fr := s.pending; fr != nil {
		s.pending = nil
		c.unhold(fr.id)
	}
	n, err := c.table.RemoveConsumer(lease.ConsumerID(s.id))
	if err != nil {
		panic(err) // every attached subscriber is in the table
	}
	c.ctr.ReleasedOnClose += uint64(n)
	return n
}

// close detaches s and tells the caller to close it with code and reason.
func (c *Core) close(s *sub, code ipc.Code, reason string, now time.Time, penalise bool) {
	n := c.remove(s)
	if penalise {
		c.penalise(s, now)
	}
	c.acts = append(c.acts, Action{Kind: Close, Sub: s.id, Code: code, Reason: reason, Count: uint64(n)})
}

// Has reports whether subscriber id is attached.
func (c *Core) Has(id SubID) bool { return c.subs[id] != nil }

// AtBudget reports whether subscriber id holds its budget of leases: the
// next frame would be skipped for it unless it releases one.
func (c *Core) AtBudget(id SubID) bool { return c.table.AtBudget(lease.ConsumerID(id)) }

// Publish hands a frame in surf to every subscriber and returns to how many
// it was delivered. msg is the frame's message without the per-subscriber
// fields; Publish sets its Surface, Gen and Seq. free is called (through a
// Free action) once the frame's last lease and hold ended — possibly within
// this call, when nobody took it.
func (c *Core) Publish(surf Surface, msg ipc.Frame, free func(), now time.Time) int {
	c.seq++
	c.nextFrame++
	msg.Surface, msg.Gen, msg.Seq = surf.Info.ID, surf.Info.Gen, c.seq
	msg.Lease, msg.Dropped = 0, 0
	fr := &frame{id: c.nextFrame, surf: surf, msg: msg, free: free}
	c.frames[fr.id] = fr
	if err := c.table.AddFrame(fr.id); err != nil {
		panic(err) // frame ids come from a counter: a duplicate is a bug
	}
	c.ctr.Published++
	for _, s := range c.order {
		if s.p.Lossless && c.AtBudget(s.id) {
			c.ctr.DroppedLossless++
			c.unhold(fr.id)
			return 0
		}
	}
	c.retain(fr)
	sent := 0
	for _, s := range c.order {
		switch {
		case s.cursor != 0:
			c.pump(s, now) // still replaying: fr is in the buffer
		case c.AtBudget(s.id):
			c.skip(s, fr, now)
		default:
			// A pending frame left behind while budget freed up (an
			// Unsent) is older than fr: delivering it later would
			// reorder the stream.
			c.supersede(s)
			c.deliver(s, fr, now, 0)
			sent++
		}
	}
	c.unhold(fr.id)
	return sent
}

// DropAtSource records a frame the source could not publish (no free
// surface): its sequence number is used up, so every subscriber sees the
// gap in the next frame's Seq and Dropped.
func (c *Core) DropAtSource() {
	c.seq++
	c.ctr.DroppedExhausted++
}

// Unwatched records n frames the source produced and did not publish
// because no subscriber was attached (a GStreamer source drops them on its
// streaming thread rather than wake the producer for nobody). They count
// as published and use up their sequence numbers, as a Publish with no
// subscriber would: a subscriber that attached while they were dropped
// sees them as a gap, which they are for it.
func (c *Core) Unwatched(n uint64) {
	c.seq += n
	c.ctr.Published += n
}

// NextSeq is the sequence number the next Publish assigns.
func (c *Core) NextSeq() uint64 { return c.seq + 1 }

func (c *Core) unhold(id lease.FrameID) {
	if err := c.table.Unhold(id); err != nil {
		panic(err) // every hold is paired in this package; anything else is a bug
	}
}

func (c *Core) hold(id lease.FrameID) {
	if err := c.table.Hold(id); err != nil {
		panic(err)
	}
}

// deliver grants s a lease on fr, announces fr's surface if s lacks it, and
// appends the Deliver.
func (c *Core) deliver(s *sub, fr *frame, now time.Time, flags uint32) {
	lid, err := c.table.Grant(lease.ConsumerID(s.id), fr.id, now)
	if err != nil {
		panic(err) // callers check the budget; the frame is held by them
	}
	if g, ok := s.announced[fr.surf.Info.ID]; !ok || g != fr.surf.Info.Gen {
		c.announce(s, []Surface{fr.surf})
	}
	msg := fr.msg
	msg.Lease = uint64(lid)
	if s.lastSeq > 0 {
		msg.Dropped = uint32(min(msg.Seq-s.lastSeq-1+uint64(s.unsent), 1<<32-1))
	}
	msg.Flags |= flags
	if msg.Dropped > 0 || s.discont {
		msg.Flags |= ipc.FlagDiscont
	}
	s.lastSeq, s.unsent, s.discont = msg.Seq, 0, false
	s.ctr.Delivered++
	c.ctr.Delivered++
	c.acts = append(c.acts, Action{Kind: Deliver, Sub: s.id, Frame: msg})
}

// announce appends Announces of the surfaces s does not have (or has of an
// older generation), at most ipc.MaxFDsPerMessage fds per Announce.
func (c *Core) announce(s *sub, surfaces []Surface) {
	var batch []Surface
	nfds := 0
	for _, sf := range surfaces {
		if g, ok := s.announced[sf.Info.ID]; ok && g == sf.Info.Gen {
			continue
		}
		if len(batch) > 0 && nfds+len(sf.FDs) > ipc.MaxFDsPerMessage {
			c.acts = append(c.acts, Action{Kind: Announce, Sub: s.id, Surfaces: batch})
			batch, nfds = nil, 0
		}
		sf.Info.NFDs = uint8(len(sf.FDs))
		batch = append(batch, sf)
		nfds += len(sf.FDs)
		s.announced[sf.Info.ID] = sf.Info.Gen
	}
	if len(batch) > 0 {
		c.acts = append(c.acts, Action{Kind: Announce, Sub: s.id, Surfaces: batch})
	}
}

// skip handles a frame published while s is at its budget: a latest-policy
// subscriber keeps it as its pending frame (superseding the one before, a
// skip by policy), a queue subscriber misses it (a drop, reported).
func (c *Core) skip(s *sub, fr *frame, now time.Time) {
	if s.p.Policy == ipc.PolicyLatest {
		c.supersede(s)
		c.hold(fr.id)
		s.pending = fr
		return
	}
	s.ctr.SkippedBudget++
	c.ctr.SkippedBudget++
	c.notice(s, now, "at its budget (max_in_flight)")
}

// supersede lets go of the pending frame of s, if any: a newer frame
// replaces it (a skip by the latest policy, not a drop).
func (c *Core) supersede(s *sub) {
	if old := s.pending; old != nil {
		s.pending = nil
		c.unhold(old.id)
		s.ctr.Superseded++
		c.ctr.Superseded++
	}
}

// notice counts a skip of s and appends a Notice at most once a second.
func (c *Core) notice(s *sub, now time.Time, why string) {
	s.unnoticed++
	if now.Sub(s.noticed) < time.Second {
		return
	}
	c.acts = append(c.acts, Action{Kind: Notice, Sub: s.id, Count: s.unnoticed, Why: why})
	s.noticed, s.unnoticed = now, 0
}

// Released ends leases of subscriber id (a Release message). A lease id it
// does not hold closes it with ipc.CodeBadRelease (leases before it in ids
// are released); an empty Release draws on its control allowance. It then
// delivers what the freed budget allows: replayed frames, or the pending
// latest frame. It reports whether the subscriber is still attached.
func (c *Core) Released(id SubID, leases []uint64, now time.Time) bool {
	s := c.subs[id]
	if s == nil {
		return false
	}
	if len(leases) == 0 {
		return c.Control(id, now)
	}
	for _, l := range leases {
		_, held, err := c.table.Release(lease.ConsumerID(id), lease.ID(l), now)
		if err != nil {
			c.close(s, ipc.CodeBadRelease, fmt.Sprintf("release of lease %d, which is not live on this connection: %v", l, err), now, false)
			return false
		}
		s.ctr.Released++
		c.ctr.Released++
		c.ctr.HoldNanos += uint64(held)
		c.ctr.MaxHoldNanos = max(c.ctr.MaxHoldNanos, uint64(held))
		if c.cfg.ObserveHold != nil {
			c.cfg.ObserveHold(held)
		}
	}
	c.pump(s, now)
	if fr := s.pending; fr != nil && !c.AtBudget(id) {
		s.pending = nil
		c.deliver(s, fr, now, 0)
		c.unhold(fr.id)
	}
	return true
}

// Unsent takes back lease l of subscriber id, whose Deliver could not be
// sent because the subscriber's socket buffer was full: the lease ends, the
// frame counts as skipped for it (the next frame says so), and the skip is
// reported. Unknown subscribers and leases are ignored (it may have left or
// released a lease it guessed meanwhile).
func (c *Core) Unsent(id SubID, l uint64, now time.Time) {
	s := c.subs[id]
	if s == nil {
		return
	}
	if _, _, err := c.table.Release(lease.ConsumerID(id), lease.ID(l), now); err != nil {
		return
	}
	s.unsent++
	s.ctr.Delivered--
	c.ctr.Delivered--
	s.ctr.SkippedSocket++
	c.ctr.SkippedSocket++
	c.notice(s, now, "socket buffer full")
}

// Control charges one message that releases nothing to subscriber id's
// allowance (ControlRate per second, ControlBurst at once). A subscriber
// past it is closed with ipc.CodeRateLimit. It reports whether the
// subscriber is still attached.
func (c *Core) Control(id SubID, now time.Time) bool {
	s := c.subs[id]
	if s == nil {
		return false
	}
	if dt := now.Sub(s.refilled); dt > 0 {
		s.tokens = min(float64(c.cfg.ControlBurst), s.tokens+dt.Seconds()*c.cfg.ControlRate)
		s.refilled = now
	}
	if s.tokens < 1 {
		c.ctr.RateLimited++
		c.close(s, ipc.CodeRateLimit, fmt.Sprintf("more than %d control messages (Ping, RequestKeyframe, empty Release, unknown) "+
			"at once or %g a second", c.cfg.ControlBurst, c.cfg.ControlRate), now, false)
		return false
	}
	s.tokens--
	return true
}

// RequestKeyframe charges a RequestKeyframe of subscriber id to its
// allowance and reports whether to forward it to the encoder: at most one
// per KeyframeInterval over all subscribers.
func (c *Core) RequestKeyframe(id SubID, now time.Time) bool {
	if !c.Control(id, now) {
		return false
	}
	if !c.lastKey.IsZero() && now.Sub(c.lastKey) < c.cfg.KeyframeInterval {
		return false
	}
	c.lastKey = now
	c.ctr.KeyframeRequests++
	return true
}

// Tick evicts every subscriber holding a lease past its max_hold, with
// ipc.CodeMaxHold (remembered for the reconnect penalty), and forgets
// expired penalties. Call it often (the producer: every 50 ms and before
// each frame); its precision is the eviction's.
func (c *Core) Tick(now time.Time) {
	for _, cid := range c.table.Expired(now) {
		s := c.subs[SubID(cid)]
		c.ctr.Evictions++
		c.close(s, ipc.CodeMaxHold, fmt.Sprintf("a lease was held longer than max_hold (%v)", s.p.MaxHold), now, true)
	}
	for k, p := range c.penalties {
		if !now.Before(p.until) {
			delete(c.penalties, k)
		}
	}
}

// EndOfStream tells every subscriber that the stream ended or broke with an
// EOS; the next frame each gets says FlagDiscont.
func (c *Core) EndOfStream(reason string) {
	m := &ipc.EOS{Reason: reason}
	for _, s := range c.order {
		c.acts = append(c.acts, Action{Kind: Send, Sub: s.id, Msg: m})
		s.discont = true
	}
}

// SetCaps sends caps to every subscriber, then Forgets the surfaces of
// forget that each had announced (what Pool.Resize returned).
func (c *Core) SetCaps(caps ipc.Caps, forget []uint32) {
	m := &caps
	for _, s := range c.order {
		c.acts = append(c.acts, Action{Kind: Send, Sub: s.id, Msg: m})
		c.forget(s, forget)
	}
}

// Forget tells every subscriber that had them announced to drop the
// surfaces ids (a shrinking pool, an adopted pool that went away).
func (c *Core) Forget(ids []uint32) {
	for _, s := range c.order {
		c.forget(s, ids)
	}
}

func (c *Core) forget(s *sub, ids []uint32) {
	var drop []uint32
	for _, id := range ids {
		if _, ok := s.announced[id]; ok {
			drop = append(drop, id)
			delete(s.announced, id)
		}
	}
	if len(drop) > 0 {
		c.acts = append(c.acts, Action{Kind: Forget, Sub: s.id, IDs: drop})
	}
}
