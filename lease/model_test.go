package lease

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/framehub/framehub/internal/modeltest"
)

// This file holds an independent reference model of the table (plain counts
// and sorted slices, no shared code with table.go) and a driver that applies
// random operations to both and compares them after every step (see check).
// TestProperty and FuzzTable (property_test.go) run it. The model keeps its
// own sorted id lists so that every choice the driver makes is deterministic
// for a given seed or fuzz input.

const (
	maxConsumerID = 6  // consumer ids are drawn from [0, maxConsumerID+1]
	maxLiveFrames = 16 // a pool has few surfaces: AddFrame turns into Unhold beyond this
	ms            = time.Millisecond
)

type mLease struct {
	frame   FrameID
	granted time.Time
}

type mConsumer struct {
	lim      Limits
	lastID   ID
	ids      []ID     // live lease ids, ascending
	ls       []mLease // ls[i] is lease ids[i]
	granted  uint64
	released uint64
}

type mFrame struct{ holds, leases int }

// op describes the current table call, formatted only on failure.
type op struct {
	name string
	a, b uint64
}

func (o op) String() string { return fmt.Sprintf("%s(%d, %d)", o.name, o.a, o.b) }

type harness struct {
	tab *Table
	src modeltest.Source
	now time.Time

	// model
	cons      [maxConsumerID + 2]*mConsumer
	consIDs   []ConsumerID // present consumers, ascending
	frames    []*mFrame    // by frame id; nil unless live
	live      []FrameID    // live frames, ascending
	nextFrame FrameID      // next fresh frame id; 1..nextFrame-1 have been added
	leases    int

	// onFree bookkeeping
	freed      []int     // onFree calls per frame id
	expectFree []FrameID // frees the model predicts for the current call
	gotFree    []FrameID // frees reported during the current call
	cbErr      error     // first inconsistency seen inside onFree
	steps      int
	cur        op
	touchC     int64          // consumer the current step touched, or -1
	touchF     FrameID        // frame the current step touched, or 0
	seen       map[string]int // outcomes, to check the driver's coverage
}

func newHarness(src modeltest.Source) *harness {
	h := &harness{
		src:       src,
		now:       time.Unix(1_700_000_000, 0),
		frames:    []*mFrame{nil},
		nextFrame: 1,
		freed:     []int{0},
		seen:      make(map[string]int),
	}
	h.tab = New(h.onFree)
	return h
}

// onFree is the table's callback. The model has already applied the current
// call, so the table must agree with the model's post-state here.
func (h *harness) onFree(f FrameID) {
	h.gotFree = append(h.gotFree, f)
	fail := func(format string, args ...any) {
		if h.cbErr == nil {
			h.cbErr = fmt.Errorf("onFree(%d) during %v: %s", f, h.cur, fmt.Sprintf(format, args...))
		}
	}
	if f == 0 || f >= h.nextFrame {
		fail("frame was never added")
		return
	}
	h.freed[f]++
	switch t := h.tab; {
	case h.freed[f] > 1:
		fail("frame freed %d times", h.freed[f])
	case h.frame(f) != nil:
		fail("model still has the frame live: %+v", *h.frame(f))
	case !slices.Contains(h.expectFree, f):
		fail("model did not expect this frame to be freed (expected %v)", h.expectFree)
	case t.Live(f) || t.Count(f) != 0:
		fail("table still reports frame live: count %d", t.Count(f))
	case t.Frames() != len(h.live) || t.Leases() != h.leases || t.Consumers() != len(h.consIDs):
		fail("table not consistent: Frames/Leases/Consumers %d/%d/%d, model %d/%d/%d",
			t.Frames(), t.Leases(), t.Consumers(), len(h.live), h.leases, len(h.consIDs))
	}
}

// frame returns the model of frame f, nil unless f is live.
func (h *harness) frame(f FrameID) *mFrame {
	if f < FrameID(len(h.frames)) {
		return h.frames[f]
	}
	return nil
}

// pickFrame returns a live frame most of the time, else any id (often
// unknown or already freed).
func (h *harness) pickFrame() FrameID {
	if len(h.live) > 0 && h.src.Intn(4) != 0 {
		return h.live[h.src.Intn(len(h.live))]
	}
	return FrameID(h.src.Intn(int(h.nextFrame) + 2))
}

// pickConsumer returns a present consumer most of the time, else any id
// (often unknown or removed).
func (h *harness) pickConsumer() ConsumerID {
	if len(h.consIDs) > 0 && h.src.Intn(4) != 0 {
		return h.consIDs[h.src.Intn(len(h.consIDs))]
	}
	return ConsumerID(h.src.Intn(maxConsumerID + 2))
}

// begin records the next table call and the frees the model expects from it.
func (h *harness) begin(name string, a, b uint64, expect ...FrameID) {
	h.cur = op{name, a, b}
	slices.Sort(expect)
	h.expectFree = expect
	h.gotFree = h.gotFree[:0]
}

// end checks the table call's error and reported frees.
func (h *harness) end(got, want error) error {
	if h.cbErr != nil {
		return h.cbErr
	}
	if want == nil {
		h.seen["ok"]++
	} else {
		h.seen[want.Error()]++
	}
	if len(h.expectFree) > 0 {
		h.seen["free"]++
	}
	if want == nil && got != nil {
		return fmt.Errorf("%v: unexpected error %v", h.cur, got)
	}
	if want != nil && !errors.Is(got, want) {
		return fmt.Errorf("%v: got error %v, want %v", h.cur, got, want)
	}
	if !slices.Equal(h.gotFree, h.expectFree) {
		return fmt.Errorf("%v: onFree calls %v, want %v", h.cur, h.gotFree, h.expectFree)
	}
	return nil
}

// dropRef updates the model after one lease or hold of f ended and reports
// whether f was freed.
func (h *harness) dropRef(f FrameID, lease bool) bool {
	fr := h.frames[f]
	if lease {
		fr.leases--
	} else {
		fr.holds--
	}
	if fr.holds+fr.leases > 0 {
		return false
	}
	h.frames[f] = nil
	i, _ := slices.BinarySearch(h.live, f)
	h.live = slices.Delete(h.live, i, i+1)
	return true
}

func (h *harness) removeConsumer(c ConsumerID) error {
	mc := h.cons[c]
	var want error
	var expect []FrameID
	wantN := 0
	if mc == nil {
		want = ErrUnknownConsumer
	} else {
		h.cons[c] = nil
		i, _ := slices.BinarySearch(h.consIDs, c)
		h.consIDs = slices.Delete(h.consIDs, i, i+1)
		wantN = len(mc.ids)
		h.leases -= wantN
		for _, l := range mc.ls {
			if h.dropRef(l.frame, true) {
				expect = append(expect, l.frame)
			}
		}
	}
	h.touchC = int64(c)
	h.begin("RemoveConsumer", uint64(c), 0, expect...)
	n, err := h.tab.RemoveConsumer(c)
	if e := h.end(err, want); e != nil {
		return e
	}
	if n != wantN {
		return fmt.Errorf("%v: released %d, want %d", h.cur, n, wantN)
	}
	return nil
}

func (h *harness) unhold(f FrameID) error {
	fr := h.frame(f)
	var want error
	var expect []FrameID
	switch {
	case fr == nil:
		want = ErrUnknownFrame
	case fr.holds == 0:
		want = ErrNotHeld
	case h.dropRef(f, false):
		expect = []FrameID{f}
	}
	h.touchF = f
	h.begin("Unhold", uint64(f), 0, expect...)
	return h.end(h.tab.Unhold(f), want)
}

// step performs one random operation on table and model, then checks them.
func (h *harness) step() error {
	h.steps++
	h.touchC, h.touchF = -1, 0
	if err := h.op(); err != nil {
		return err
	}
	return h.check(h.steps%8 == 0)
}

func (h *harness) op() error {
	switch r := h.src.Intn(100); {
	case r < 10: // AddConsumer, sometimes with invalid limits
		c := ConsumerID(h.src.Intn(maxConsumerID + 2))
		lim := Limits{MaxInFlight: 1 + h.src.Intn(5)}
		if h.src.Intn(12) == 0 {
			lim.MaxInFlight = -h.src.Intn(2)
		}
		switch h.src.Intn(12) {
		case 0, 1, 2, 3:
		case 4:
			lim.MaxHold = -ms
		default:
			lim.MaxHold = time.Duration(1+h.src.Intn(50)) * ms
		}
		var want error
		switch {
		case h.cons[c] != nil:
			want = ErrDuplicateConsumer
		case lim.MaxInFlight < 1 || lim.MaxHold < 0:
			want = ErrInvalidLimits
		default:
			h.cons[c] = &mConsumer{lim: lim}
			i, _ := slices.BinarySearch(h.consIDs, c)
			h.consIDs = slices.Insert(h.consIDs, i, c)
		}
		h.touchC = int64(c)
		h.begin("AddConsumer", uint64(c), uint64(lim.MaxInFlight))
		return h.end(h.tab.AddConsumer(c, lim), want)

	case r < 13: // RemoveConsumer (disconnect / crash)
		return h.removeConsumer(h.pickConsumer())

	case r < 28 && len(h.live) >= maxLiveFrames:
		return h.unhold(h.pickFrame())

	case r < 28: // AddFrame
		f := h.nextFrame
		var want error
		if len(h.live) > 0 && h.src.Intn(8) == 0 {
			f = h.live[h.src.Intn(len(h.live))]
			want = ErrDuplicateFrame
		} else {
			h.nextFrame++
			h.freed = append(h.freed, 0)
			h.frames = append(h.frames, &mFrame{holds: 1}) // index f
			h.live = append(h.live, f)                     // ids only grow: stays sorted
		}
		h.touchF = f
		h.begin("AddFrame", uint64(f), 0)
		return h.end(h.tab.AddFrame(f), want)

	case r < 35: // Hold
		f := h.pickFrame()
		var want error
		if fr := h.frame(f); fr == nil {
			want = ErrUnknownFrame
		} else {
			fr.holds++
		}
		h.touchF = f
		h.begin("Hold", uint64(f), 0)
		return h.end(h.tab.Hold(f), want)

	case r < 50: // Unhold
		return h.unhold(h.pickFrame())

	case r < 75: // Grant
		c, f := h.pickConsumer(), h.pickFrame()
		mc, fr := h.cons[c], h.frame(f)
		var want error
		var wantID ID
		switch {
		case mc == nil:
			want = ErrUnknownConsumer
		case fr == nil:
			want = ErrUnknownFrame
		case len(mc.ids) >= mc.lim.MaxInFlight:
			want = ErrBudget
		default:
			mc.lastID++
			wantID = mc.lastID
			mc.ids = append(mc.ids, wantID) // ids only grow: stays sorted
			mc.ls = append(mc.ls, mLease{frame: f, granted: h.now})
			mc.granted++
			fr.leases++
			h.leases++
		}
		h.touchC, h.touchF = int64(c), f
		h.begin("Grant", uint64(c), uint64(f))
		id, err := h.tab.Grant(c, f, h.now)
		if e := h.end(err, want); e != nil {
			return e
		}
		if id != wantID {
			return fmt.Errorf("%v: id %d, want %d", h.cur, id, wantID)
		}
		return nil

	case r < 93: // Release, including unknown and double releases
		c := h.pickConsumer()
		mc := h.cons[c]
		var id ID
		switch {
		case mc != nil && len(mc.ids) > 0 && h.src.Intn(3) != 0:
			id = mc.ids[h.src.Intn(len(mc.ids))]
		case mc != nil:
			id = ID(h.src.Intn(int(mc.lastID) + 2)) // 0, released, live or never granted
		default:
			id = ID(h.src.Intn(4))
		}
		var want error
		var expect []FrameID
		var l mLease
		i, live := 0, false
		if mc != nil {
			i, live = slices.BinarySearch(mc.ids, id)
		}
		switch {
		case mc == nil:
			want = ErrUnknownConsumer
		case !live:
			want = ErrUnknownLease
		default:
			l = mc.ls[i]
			mc.ids = slices.Delete(mc.ids, i, i+1)
			mc.ls = slices.Delete(mc.ls, i, i+1)
			mc.released++
			h.leases--
			if h.dropRef(l.frame, true) {
				expect = []FrameID{l.frame}
			}
		}
		h.touchC, h.touchF = int64(c), l.frame
		h.begin("Release", uint64(c), uint64(id), expect...)
		f, held, err := h.tab.Release(c, id, h.now)
		if e := h.end(err, want); e != nil {
			return e
		}
		if f != l.frame || held != h.now.Sub(l.granted) && want == nil || held != 0 && want != nil {
			return fmt.Errorf("%v: got frame %d held %v, want %d held %v", h.cur, f, held, l.frame, h.now.Sub(l.granted))
		}
		return nil

	default: // advance the clock, then evict every expired consumer
		h.now = h.now.Add(time.Duration(h.src.Intn(30)) * ms)
		h.cur = op{"Expired", 0, 0}
		got := h.tab.Expired(h.now)
		var want []ConsumerID
		for _, c := range h.consIDs {
			mc := h.cons[c]
			for _, l := range mc.ls {
				if mc.lim.MaxHold > 0 && h.now.Sub(l.granted) >= mc.lim.MaxHold {
					want = append(want, c)
					break
				}
			}
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("Expired(%v): got %v, want %v", h.now, got, want)
		}
		h.seen["evict"] += len(got)
		for _, c := range got {
			if err := h.removeConsumer(c); err != nil {
				return err
			}
		}
		return nil
	}
}

// check compares the table with the model. After every step it checks what
// the invariants need: the totals, InFlight and the budget of every consumer,
// Count of every live frame, and that no live frame was reported free (frees
// themselves are checked in onFree and end). The other observables (Has,
// AtBudget, ConsumerStats, Leased, Live, Holds, NextDeadline) and the model's
// own consistency are checked for what the step touched, and for everything
// if deep is set (every 8th step and throughout finish).
func (h *harness) check(deep bool) error {
	if h.cbErr != nil {
		return h.cbErr
	}
	t := h.tab
	if t.Consumers() != len(h.consIDs) || t.Frames() != len(h.live) || t.Leases() != h.leases {
		return fmt.Errorf("after %v: Consumers/Frames/Leases %d/%d/%d, model %d/%d/%d", h.cur,
			t.Consumers(), t.Frames(), t.Leases(), len(h.consIDs), len(h.live), h.leases)
	}
	for c, mc := range h.cons {
		c := ConsumerID(c)
		if mc == nil {
			if t.InFlight(c) != 0 {
				return fmt.Errorf("after %v: removed/unknown consumer %d has InFlight %d", h.cur, c, t.InFlight(c))
			}
			if !deep && int64(c) != h.touchC {
				continue
			}
			if _, ok := t.ConsumerStats(c); ok || t.Has(c) || t.AtBudget(c) || t.Leased(c) != nil {
				return fmt.Errorf("after %v: removed/unknown consumer %d still visible", h.cur, c)
			}
			continue
		}
		switch n := len(mc.ids); {
		case n > mc.lim.MaxInFlight || n != len(mc.ls) || uint64(n) != mc.granted-mc.released:
			return fmt.Errorf("after %v: model consumer %d broken: %d leases (%d), budget %d, granted %d, released %d",
				h.cur, c, n, len(mc.ls), mc.lim.MaxInFlight, mc.granted, mc.released)
		case t.InFlight(c) != n:
			return fmt.Errorf("after %v: InFlight(%d) = %d, model %d", h.cur, c, t.InFlight(c), n)
		}
		if deep || int64(c) == h.touchC {
			if err := h.checkConsumer(c, mc); err != nil {
				return err
			}
		}
	}
	for _, f := range h.live {
		fr := h.frames[f]
		switch {
		case fr == nil || fr.holds+fr.leases <= 0 || fr.holds < 0 || fr.leases < 0:
			return fmt.Errorf("after %v: model frame %d broken: %v", h.cur, f, fr)
		case h.freed[f] != 0:
			return fmt.Errorf("after %v: frame %d with count %d was reported free", h.cur, f, fr.holds+fr.leases)
		case t.Count(f) != fr.holds+fr.leases:
			return fmt.Errorf("after %v: Count(%d) = %d, model %+v", h.cur, f, t.Count(f), *fr)
		case (deep || f == h.touchF) && (!t.Live(f) || t.Holds(f) != fr.holds):
			return fmt.Errorf("after %v: frame %d: Live %v Holds %d, model %+v", h.cur, f, t.Live(f), t.Holds(f), *fr)
		}
	}
	if f := h.touchF; f != 0 && h.frame(f) == nil && (t.Live(f) || t.Count(f) != 0 || t.Holds(f) != 0) {
		return fmt.Errorf("after %v: dead frame %d still visible", h.cur, f)
	}
	if deep || h.touchC >= 0 {
		return h.checkLeases()
	}
	return nil
}

// checkConsumer compares the observables of present consumer c with model mc.
func (h *harness) checkConsumer(c ConsumerID, mc *mConsumer) error {
	t := h.tab
	n := len(mc.ids)
	var frames []FrameID
	var oldest time.Time
	for _, l := range mc.ls {
		frames = append(frames, l.frame)
		if oldest.IsZero() || l.granted.Before(oldest) {
			oldest = l.granted
		}
	}
	slices.Sort(frames)
	wantSt := ConsumerStats{InFlight: n, Granted: mc.granted, Released: mc.released, Oldest: oldest}
	st, ok := t.ConsumerStats(c)
	switch {
	case !t.Has(c) || !ok:
		return fmt.Errorf("after %v: consumer %d missing", h.cur, c)
	case t.AtBudget(c) != (n == mc.lim.MaxInFlight):
		return fmt.Errorf("after %v: AtBudget(%d) = %v with %d/%d", h.cur, c, t.AtBudget(c), n, mc.lim.MaxInFlight)
	case st != wantSt:
		return fmt.Errorf("after %v: ConsumerStats(%d) = %+v, model %+v", h.cur, c, st, wantSt)
	case !slices.Equal(t.Leased(c), frames):
		return fmt.Errorf("after %v: Leased(%d) = %v, model %v", h.cur, c, t.Leased(c), frames)
	}
	return nil
}

// checkLeases checks NextDeadline and that the model's per-frame lease counts
// agree with its per-consumer leases.
func (h *harness) checkLeases() error {
	perFrame := make([]int, len(h.live)) // by index in h.live
	var wantNext time.Time
	haveNext, total := false, 0
	for _, c := range h.consIDs {
		mc := h.cons[c]
		total += len(mc.ls)
		for j, l := range mc.ls {
			i, ok := slices.BinarySearch(h.live, l.frame)
			if !ok {
				return fmt.Errorf("after %v: model lease %d of consumer %d on dead frame %d", h.cur, mc.ids[j], c, l.frame)
			}
			perFrame[i]++
			if d := l.granted.Add(mc.lim.MaxHold); mc.lim.MaxHold > 0 && (!haveNext || d.Before(wantNext)) {
				wantNext, haveNext = d, true
			}
		}
	}
	if total != h.leases {
		return fmt.Errorf("after %v: model broken: %d leases vs %d", h.cur, total, h.leases)
	}
	for i, f := range h.live {
		if h.frames[f].leases != perFrame[i] {
			return fmt.Errorf("after %v: model frame %d has %d leases, consumers hold %d", h.cur, f, h.frames[f].leases, perFrame[i])
		}
	}
	next, ok := h.tab.NextDeadline()
	if ok != haveNext || !next.Equal(wantNext) {
		return fmt.Errorf("after %v: NextDeadline = %v %v, model %v %v", h.cur, next, ok, wantNext, haveNext)
	}
	return nil
}

// finish removes every consumer and drops every producer hold, then checks
// that every frame ever added was freed exactly once and nothing is left.
func (h *harness) finish() error {
	for _, c := range slices.Clone(h.consIDs) {
		if err := h.removeConsumer(c); err != nil {
			return err
		}
		if err := h.check(true); err != nil {
			return err
		}
	}
	for _, f := range slices.Clone(h.live) {
		for h.frames[f] != nil {
			if err := h.unhold(f); err != nil {
				return err
			}
		}
		if err := h.check(true); err != nil {
			return err
		}
	}
	for f := FrameID(1); f < h.nextFrame; f++ {
		if h.freed[f] != 1 {
			return fmt.Errorf("finish: frame %d freed %d times, want 1", f, h.freed[f])
		}
	}
	t := h.tab
	if t.Frames() != 0 || t.Leases() != 0 || t.Consumers() != 0 {
		return fmt.Errorf("finish: Frames %d Leases %d Consumers %d, want 0", t.Frames(), t.Leases(), t.Consumers())
	}
	if _, ok := t.NextDeadline(); ok {
		return fmt.Errorf("finish: NextDeadline reports a deadline on an empty table")
	}
	return nil
}

// run drives h until the source is exhausted or maxSteps steps were done.
func (h *harness) run(maxSteps int) error {
	for h.steps < maxSteps && h.src.More() {
		if err := h.step(); err != nil {
			return fmt.Errorf("step %d: %w", h.steps, err)
		}
	}
	return h.finish()
}
