// Package lease is the reference-counting core of framehub: it tracks which
// frames (surfaces in shared memory) are in use and by whom, and says when a
// surface may go back to its pool.
//
// A frame is live while its count is above zero, where
//
//	count = producer holds + live leases (over all consumers).
//
// The producer adds a frame with one hold (AddFrame), may take and drop more
// holds (Hold, Unhold: replay buffers, pending slots), and hands the frame to
// consumers with Grant, which creates a lease. A lease ends when the consumer
// releases it (Release) or when the consumer goes away (RemoveConsumer, used
// for disconnect, crash and eviction of consumers that hold leases past their
// deadline, see Expired and NextDeadline). When the count of a frame drops to
// zero the table calls onFree exactly once for it and forgets the frame.
//
// The package is pure logic: no I/O, no goroutines, no locks. A Table is NOT
// safe for concurrent use; the caller must serialize all calls (one owning
// goroutine, or one mutex held around every call). onFree runs inside such a
// call, so calls it makes are already serialized and must not take that
// mutex again.
//
// Times are supplied by the caller; pass readings of a monotonic clock
// (time.Now) so that durations are immune to wall-clock jumps.
package lease

import (
	"fmt"
	"slices"
	"time"
)

// ConsumerID identifies a consumer (a connected process) in a Table.
type ConsumerID uint64

// FrameID identifies a frame. It is assigned by the producer and must be
// unique per table: once a frame has been freed the table forgets it, so it
// cannot detect that a freed id is reused (AddFrame would accept it as a new
// frame).
type FrameID uint64

// ID identifies a lease. Lease ids are per consumer: the first lease granted
// to a consumer is 1, later ones are strictly increasing, and an id is never
// reused while the consumer is in the table (a consumer removed and added
// again starts over at 1). The zero ID is never a valid lease.
type ID uint64

// Limits bound what one consumer may hold.
type Limits struct {
	// MaxInFlight is the maximum number of live leases of the consumer;
	// Grant fails with ErrBudget beyond it. Must be >= 1.
	MaxInFlight int
	// MaxHold is the deadline of each lease, measured from its grant time:
	// a consumer holding a lease for MaxHold or longer shows up in Expired.
	// 0 means no deadline; negative is invalid.
	MaxHold time.Duration
}

// ConsumerStats describes one consumer, for diagnostics and metrics.
type ConsumerStats struct {
	InFlight int       // live leases
	Granted  uint64    // leases granted since the consumer was added
	Released uint64    // leases ended by Release since the consumer was added
	Oldest   time.Time // grant time of the oldest live lease; zero if none
}

type leaseEntry struct {
	frame   FrameID
	granted time.Time
}

type consumer struct {
	lim      Limits
	lastID   ID // last id handed out; the next lease gets lastID+1
	leases   map[ID]leaseEntry
	granted  uint64
	released uint64
}

type frame struct {
	holds  int // producer holds
	leases int // live leases over all consumers
}

func (f *frame) count() int { return f.holds + f.leases }

// Table tracks consumers, frames, producer holds and leases. Create it with
// New. The zero Table is not usable. Not safe for concurrent use.
type Table struct {
	onFree    func(FrameID)
	consumers map[ConsumerID]*consumer
	frames    map[FrameID]*frame
	leases    int // live leases over all consumers
}

// New returns an empty table.
//
// onFree (may be nil) is called synchronously, exactly once per frame, when
// the frame's count (producer holds + live leases) drops to zero, from inside
// the Unhold, Release or RemoveConsumer call that dropped it. By then the
// table is fully consistent and has already forgotten the frame (Live is
// false, Count is 0, Hold/Grant return ErrUnknownFrame), and the method's
// results are already determined. onFree may therefore call any Table method,
// including mutating ones (e.g. AddFrame for the next surface, or
// RemoveConsumer, which may call onFree again, nested); such calls run on the
// same goroutine and thus need no extra locking, but a caller that guards the
// table with a mutex must not try to re-acquire it in onFree. When one call
// frees several frames (RemoveConsumer), onFree is called once per frame in
// ascending FrameID order. onFree must not panic: if it does, frames of the
// same RemoveConsumer call not yet reported are never reported.
func New(onFree func(FrameID)) *Table {
	return &Table{
		onFree:    onFree,
		consumers: make(map[ConsumerID]*consumer),
		frames:    make(map[FrameID]*frame),
	}
}

// AddConsumer registers consumer c with limits lim; it must be called before
// the consumer can be granted leases. It fails with ErrDuplicateConsumer if c
// is already present and with ErrInvalidLimits if lim.MaxInFlight < 1 or
// lim.MaxHold < 0; on error nothing changes.
func (t *Table) AddConsumer(c ConsumerID, lim Limits) error {
	if _, ok := t.consumers[c]; ok {
		return fmt.Errorf("lease: add consumer %d: %w", c, ErrDuplicateConsumer)
	}
	if lim.MaxInFlight < 1 {
		return fmt.Errorf("lease: add consumer %d: max in-flight %d, want >= 1: %w", c, lim.MaxInFlight, ErrInvalidLimits)
	}
	if lim.MaxHold < 0 {
		return fmt.Errorf("lease: add consumer %d: max hold %v, want >= 0: %w", c, lim.MaxHold, ErrInvalidLimits)
	}
	t.consumers[c] = &consumer{lim: lim, leases: make(map[ID]leaseEntry)}
	return nil
}

// RemoveConsumer removes consumer c and releases all its live leases at once;
// use it when the consumer disconnects, crashes or is evicted (see Expired).
// It returns the number of leases released. Frames whose count drops to zero
// are reported to onFree (in ascending FrameID order) after c is gone. It
// fails with ErrUnknownConsumer if c is not present.
func (t *Table) RemoveConsumer(c ConsumerID) (released int, err error) {
	cs, ok := t.consumers[c]
	if !ok {
		return 0, fmt.Errorf("lease: remove consumer %d: %w", c, ErrUnknownConsumer)
	}
	delete(t.consumers, c)
	var freed []FrameID
	for _, l := range cs.leases {
		fr := t.frames[l.frame]
		fr.leases--
		if fr.count() == 0 {
			delete(t.frames, l.frame)
			freed = append(freed, l.frame)
		}
	}
	released = len(cs.leases)
	t.leases -= released
	if t.onFree != nil {
		slices.Sort(freed)
		for _, f := range freed {
			t.onFree(f)
		}
	}
	return released, nil
}

// AddFrame makes frame f live with one producer hold (count 1). The producer
// must eventually drop that hold with Unhold. It fails with ErrDuplicateFrame
// if f is still live.
func (t *Table) AddFrame(f FrameID) error {
	if _, ok := t.frames[f]; ok {
		return fmt.Errorf("lease: add frame %d: %w", f, ErrDuplicateFrame)
	}
	t.frames[f] = &frame{holds: 1}
	return nil
}

// Hold adds one producer hold to live frame f (e.g. a replay buffer or a
// pending slot keeps it); each Hold must be paired with an Unhold. It fails
// with ErrUnknownFrame if f is not live.
func (t *Table) Hold(f FrameID) error {
	fr, ok := t.frames[f]
	if !ok {
		return fmt.Errorf("lease: hold frame %d: %w", f, ErrUnknownFrame)
	}
	fr.holds++
	return nil
}

// Unhold drops one producer hold of frame f. If that was the last reference
// the frame is forgotten and onFree(f) is called before Unhold returns. It
// fails with ErrUnknownFrame if f is not live and with ErrNotHeld if f is
// live only through leases (no producer hold left).
func (t *Table) Unhold(f FrameID) error {
	fr, ok := t.frames[f]
	if !ok {
		return fmt.Errorf("lease: unhold frame %d: %w", f, ErrUnknownFrame)
	}
	if fr.holds == 0 {
		return fmt.Errorf("lease: unhold frame %d: held only by %d lease(s): %w", f, fr.leases, ErrNotHeld)
	}
	fr.holds--
	t.freeIfUnused(f, fr)
	return nil
}

// Grant leases live frame f to consumer c at time now and returns the new
// lease id, which the consumer must hand back to Release. The lease's deadline
// is now + MaxHold of c (none if MaxHold is 0). A consumer may hold several
// leases on the same frame. Grant fails, changing nothing, with
// ErrUnknownConsumer, ErrUnknownFrame (f not live) or ErrBudget (c already has
// MaxInFlight live leases; retry after one of them is released).
func (t *Table) Grant(c ConsumerID, f FrameID, now time.Time) (ID, error) {
	cs, ok := t.consumers[c]
	if !ok {
		return 0, fmt.Errorf("lease: grant frame %d to consumer %d: %w", f, c, ErrUnknownConsumer)
	}
	fr, ok := t.frames[f]
	if !ok {
		return 0, fmt.Errorf("lease: grant frame %d to consumer %d: %w", f, c, ErrUnknownFrame)
	}
	if len(cs.leases) >= cs.lim.MaxInFlight {
		return 0, fmt.Errorf("lease: grant frame %d to consumer %d: %d of %d in flight: %w",
			f, c, len(cs.leases), cs.lim.MaxInFlight, ErrBudget)
	}
	cs.lastID++
	id := cs.lastID
	cs.leases[id] = leaseEntry{frame: f, granted: now}
	cs.granted++
	fr.leases++
	t.leases++
	return id, nil
}

// Release ends lease id of consumer c at time now. It returns the leased
// frame and how long the lease was held (now - grant time; 0 if now is before
// the grant time). If that was the last reference to the frame, the frame is
// forgotten and onFree is called before Release returns. It fails, changing
// nothing, with ErrUnknownConsumer, or with ErrUnknownLease if id was never
// granted to c or was already released (double release).
func (t *Table) Release(c ConsumerID, id ID, now time.Time) (f FrameID, held time.Duration, err error) {
	cs, ok := t.consumers[c]
	if !ok {
		return 0, 0, fmt.Errorf("lease: release %d for consumer %d: %w", id, c, ErrUnknownConsumer)
	}
	l, ok := cs.leases[id]
	if !ok {
		return 0, 0, fmt.Errorf("lease: release %d for consumer %d: %w", id, c, ErrUnknownLease)
	}
	delete(cs.leases, id)
	cs.released++
	t.leases--
	held = max(now.Sub(l.granted), 0)
	fr := t.frames[l.frame]
	fr.leases--
	t.freeIfUnused(l.frame, fr)
	return l.frame, held, nil
}

// freeIfUnused forgets fr (the state of frame f) if its count is zero and
// then reports it to onFree. It must be the last state change of the caller.
func (t *Table) freeIfUnused(f FrameID, fr *frame) {
	if fr.count() > 0 {
		return
	}
	delete(t.frames, f)
	if t.onFree != nil {
		t.onFree(f)
	}
}

// Expired returns, sorted ascending, the consumers (with MaxHold > 0) that
// hold at least one lease whose deadline (grant time + MaxHold) is at or
// before now. The caller typically evicts each of them with RemoveConsumer.
// Consumers with MaxHold 0 never expire. Cost: O(live leases).
func (t *Table) Expired(now time.Time) []ConsumerID {
	var out []ConsumerID
	for c, cs := range t.consumers {
		if cs.lim.MaxHold <= 0 {
			continue
		}
		for _, l := range cs.leases {
			if !now.Before(l.granted.Add(cs.lim.MaxHold)) {
				out = append(out, c)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// NextDeadline returns the earliest deadline (grant time + MaxHold) over all
// live leases of consumers with MaxHold > 0, and false if there is none. A
// timer armed for that instant will find the consumer in Expired. Call it
// again after every Grant, Release or RemoveConsumer. Cost: O(live leases).
func (t *Table) NextDeadline() (time.Time, bool) {
	var next time.Time
	found := false
	for _, cs := range t.consumers {
		if cs.lim.MaxHold <= 0 {
			continue
		}
		for _, l := range cs.leases {
			d := l.granted.Add(cs.lim.MaxHold)
			if !found || d.Before(next) {
				next, found = d, true
			}
		}
	}
	return next, found
}

// InFlight returns the number of live leases of consumer c (0 if unknown).
func (t *Table) InFlight(c ConsumerID) int {
	if cs, ok := t.consumers[c]; ok {
		return len(cs.leases)
	}
	return 0
}

// AtBudget reports whether consumer c has MaxInFlight live leases, i.e.
// whether Grant to c would fail with ErrBudget. It is false for unknown
// consumers.
func (t *Table) AtBudget(c ConsumerID) bool {
	cs, ok := t.consumers[c]
	return ok && len(cs.leases) >= cs.lim.MaxInFlight
}

// Count returns the count of frame f (producer holds + live leases); 0 if f
// is unknown or already freed.
func (t *Table) Count(f FrameID) int {
	if fr, ok := t.frames[f]; ok {
		return fr.count()
	}
	return 0
}

// Holds returns the number of producer holds of frame f; 0 if f is unknown
// or already freed.
func (t *Table) Holds(f FrameID) int {
	if fr, ok := t.frames[f]; ok {
		return fr.holds
	}
	return 0
}

// Live reports whether frame f is live (added and not yet freed).
func (t *Table) Live(f FrameID) bool {
	_, ok := t.frames[f]
	return ok
}

// Consumers returns the number of consumers in the table.
func (t *Table) Consumers() int { return len(t.consumers) }

// Frames returns the number of live frames.
func (t *Table) Frames() int { return len(t.frames) }

// Leases returns the number of live leases over all consumers.
func (t *Table) Leases() int { return t.leases }

// Leased returns, sorted ascending, the frame of every live lease of consumer
// c, for diagnostics. A frame appears once per lease, so len(Leased(c)) ==
// InFlight(c). It returns nil if c is unknown or holds no lease. The slice is
// freshly allocated and owned by the caller.
func (t *Table) Leased(c ConsumerID) []FrameID {
	cs, ok := t.consumers[c]
	if !ok || len(cs.leases) == 0 {
		return nil
	}
	out := make([]FrameID, 0, len(cs.leases))
	for _, l := range cs.leases {
		out = append(out, l.frame)
	}
	slices.Sort(out)
	return out
}

// Has reports whether consumer c is in the table.
func (t *Table) Has(c ConsumerID) bool {
	_, ok := t.consumers[c]
	return ok
}

// ConsumerStats returns statistics of consumer c, and false if c is unknown.
func (t *Table) ConsumerStats(c ConsumerID) (ConsumerStats, bool) {
	cs, ok := t.consumers[c]
	if !ok {
		return ConsumerStats{}, false
	}
	st := ConsumerStats{InFlight: len(cs.leases), Granted: cs.granted, Released: cs.released}
	first := true
	for _, l := range cs.leases {
		if first || l.granted.Before(st.Oldest) {
			st.Oldest, first = l.granted, false
		}
	}
	return st, true
}
