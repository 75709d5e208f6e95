package fanout

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/framehub/framehub/internal/modeltest"
	"github.com/framehub/framehub/ipc"
)

// The driver: random operations on a Core and the model, through an
// emulated pool (one frame per surface, like the raw stream) and the
// producer's acquire sequence (shed the replay buffer, then reclaim, then
// drop at the source).

type slotState uint8

const (
	slotEmpty slotState = iota
	slotFree
	slotInUse
)

type slot struct {
	gen   uint32
	state slotState
	seq   uint64 // frame in it while in use
	stale bool   // forgotten by a caps change while in use: emptied when freed
}

type harness struct {
	src   modeltest.Source
	core  *Core
	m     *model
	now   time.Time
	slots []slot // slot i is surface id i+1
	next  SubID

	// what the core told each subscriber, checked across calls
	closed    map[SubID]bool
	lastSeq   map[SubID]uint64
	announced map[SubID]map[uint32]uint32

	freed []uint64 // frames freed by the current call's Free actions
	steps int
	cur   string
	seen  map[string]int // outcomes, to check the driver's coverage
}

func newHarness(src modeltest.Source) (*harness, error) {
	cfg := Config{
		Reserve:          1 + src.Intn(2),
		KeyframeInterval: 100 * time.Millisecond,
		PenaltyWindow:    2 * time.Second,
		ControlRate:      20,
		ControlBurst:     10,
	}
	nslots := 4 + src.Intn(9)
	if src.Intn(3) != 0 {
		cfg.Capacity = nslots
	}
	switch src.Intn(3) {
	case 1:
		cfg.Replay = 150 * time.Millisecond
	case 2:
		cfg.Replay = time.Second
	}
	core, err := New(cfg)
	if err != nil {
		return nil, err
	}
	h := &harness{
		src: src, core: core, now: time.Unix(1_700_000_000, 0), slots: make([]slot, nslots),
		closed: map[SubID]bool{}, lastSeq: map[SubID]uint64{}, announced: map[SubID]map[uint32]uint32{},
		seen: map[string]int{},
	}
	h.m = &model{cfg: core.cfg, frames: map[uint64]*mFrame{}, penalties: map[string]mPenalty{}}
	return h, nil
}

func (h *harness) run(steps int) error {
	for h.steps = 0; h.steps < steps && h.src.More(); h.steps++ {
		if err := h.step(); err != nil {
			return fmt.Errorf("step %d (%s): %w", h.steps, h.cur, err)
		}
	}
	// Everyone leaves and the buffer goes: every frame must be freed.
	for _, s := range slices.Clone(h.m.subs) {
		id := s.id
		if err := h.call("final detach", func() error {
			got, want := h.core.Detach(id), h.m.remove(s)
			if got != want {
				return fmt.Errorf("Detach released %d leases, model %d", got, want)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if err := h.call("final drop replay", func() error { h.core.DropReplay(); h.m.shed(len(h.m.ring)); return nil }); err != nil {
		return err
	}
	for i, sl := range h.slots {
		if sl.state == slotInUse {
			return fmt.Errorf("at the end surface %d still in use by frame %d", i+1, sl.seq)
		}
	}
	if st := h.core.Stats(); st.Frames != 0 || st.Leases != 0 || st.Promised != 0 {
		return fmt.Errorf("at the end the core has %d frames, %d leases, %d promised", st.Frames, st.Leases, st.Promised)
	}
	return nil
}

// call runs one core call (and the model's mirror of it, inside f), then
// carries out the actions and compares them with the model's.
func (h *harness) call(name string, f func() error) error {
	h.cur = name
	h.m.out = map[SubID][]string{}
	h.freed = h.freed[:0]
	if err := f(); err != nil {
		return err
	}
	got := map[SubID][]string{}
	for _, a := range h.core.Actions() {
		if a.Kind == Free {
			a.Free()
			continue
		}
		if h.closed[a.Sub] {
			return fmt.Errorf("%v action for subscriber %d after its Close", a.Kind, a.Sub)
		}
		s, err := h.describe(a)
		if err != nil {
			return err
		}
		got[a.Sub] = append(got[a.Sub], s)
		h.seen[a.Kind.String()]++
	}
	for id := range got {
		if !slices.Equal(got[id], h.m.out[id]) {
			return fmt.Errorf("subscriber %d actions:\n  core  %q\n  model %q", id, got[id], h.m.out[id])
		}
	}
	for id := range h.m.out {
		if _, ok := got[id]; !ok {
			return fmt.Errorf("subscriber %d: core sent nothing, model %q", id, h.m.out[id])
		}
	}
	want := h.m.settle()
	slices.Sort(h.freed)
	if !slices.Equal(h.freed, want) {
		return fmt.Errorf("frames freed %v, model %v", h.freed, want)
	}
	if len(want) > 0 {
		h.seen["free"]++
	}
	return h.checkInvariants()
}

// describe renders a core action like the model's, checking on the way
// what the model does not track: announce-before-use, order, fds.
func (h *harness) describe(a Action) (string, error) {
	switch a.Kind {
	case Announce:
		ann := h.announced[a.Sub]
		if ann == nil {
			ann = map[uint32]uint32{}
			h.announced[a.Sub] = ann
		}
		var parts []string
		nfds := 0
		for _, sf := range a.Surfaces {
			if int(sf.Info.NFDs) != len(sf.FDs) || len(sf.FDs) != 1 || sf.FDs[0] != fdOf(sf.Info.ID) {
				return "", fmt.Errorf("announce of surface %d: NFDs %d, fds %v", sf.Info.ID, sf.Info.NFDs, sf.FDs)
			}
			nfds += len(sf.FDs)
			ann[sf.Info.ID] = sf.Info.Gen
			parts = append(parts, fmt.Sprintf("%d/%d", sf.Info.ID, sf.Info.Gen))
		}
		if nfds > ipc.MaxFDsPerMessage {
			return "", fmt.Errorf("announce of %d fds", nfds)
		}
		return "A " + strings.Join(parts, " "), nil
	case Deliver:
		fr := a.Frame
		if g, ok := h.announced[a.Sub][fr.Surface]; !ok || g != fr.Gen {
			return "", fmt.Errorf("frame %d to subscriber %d in surface %d/%d, not announced to it", fr.Seq, a.Sub, fr.Surface, fr.Gen)
		}
		if fr.Seq <= h.lastSeq[a.Sub] {
			return "", fmt.Errorf("frame %d to subscriber %d after frame %d", fr.Seq, a.Sub, h.lastSeq[a.Sub])
		}
		h.lastSeq[a.Sub] = fr.Seq
		sl := h.slots[fr.Surface-1]
		if sl.state != slotInUse || sl.seq != fr.Seq || sl.gen != fr.Gen {
			return "", fmt.Errorf("frame %d delivered in surface %d, which holds frame %d gen %d (state %d): invariant 1",
				fr.Seq, fr.Surface, sl.seq, sl.gen, sl.state)
		}
		if (fr.Dropped > 0) && fr.Flags&ipc.FlagDiscont == 0 {
			return "", fmt.Errorf("frame %d says %d dropped without FlagDiscont", fr.Seq, fr.Dropped)
		}
		return fmt.Sprintf("D seq=%d lease=%d dropped=%d flags=%#x surf=%d/%d", fr.Seq, fr.Lease, fr.Dropped, fr.Flags,
			fr.Surface, fr.Gen), nil
	case Forget:
		var parts []string
		for _, id := range a.IDs {
			delete(h.announced[a.Sub], id)
			parts = append(parts, fmt.Sprint(id))
		}
		return "F " + strings.Join(parts, " "), nil
	case Send:
		switch a.Msg.(type) {
		case *ipc.EOS:
			return "S eos", nil
		case *ipc.Caps:
			return "S caps", nil
		}
		return "", fmt.Errorf("send of %T", a.Msg)
	case Close:
		h.closed[a.Sub] = true
		h.seen["close "+a.Code.String()]++
		return fmt.Sprintf("C %v n=%d", a.Code, a.Count), nil
	case Notice:
		return fmt.Sprintf("N %d %s", a.Count, a.Why), nil
	}
	return "", fmt.Errorf("unknown action %v", a.Kind)
}

func fdOf(id uint32) int { return 100 + int(id) }

// checkInvariants checks the package's invariants on the core's own
// answers after every call.
func (h *harness) checkInvariants() error {
	st := h.core.Stats()
	if c := st.Capacity; c > 0 && st.Promised > c-st.Reserve && st.Subscribers > 0 {
		return fmt.Errorf("promised %d surfaces with capacity %d and reserve %d", st.Promised, c, st.Reserve)
	}
	leases := 0
	for _, s := range h.m.subs {
		ss, ok := h.core.SubStats(s.id)
		if !ok {
			return fmt.Errorf("subscriber %d attached in the model, not in the core", s.id)
		}
		if ss.InFlight > ss.Budget || ss.InFlight != len(s.leases) || ss.Budget != s.budget {
			return fmt.Errorf("subscriber %d: %d in flight, budget %d; model %d, %d", s.id, ss.InFlight, ss.Budget, len(s.leases), s.budget)
		}
		if ss.Delivered != s.delivered || ss.SkippedBudget != s.skipped || ss.SkippedSocket != s.socket ||
			ss.Superseded != s.superseded || ss.Released != s.released {
			return fmt.Errorf("subscriber %d stats %+v, model delivered %d skipped %d socket %d superseded %d released %d",
				s.id, ss, s.delivered, s.skipped, s.socket, s.superseded, s.released)
		}
		leases += len(s.leases)
	}
	want := h.m.ctr
	want.ReplayFrames, want.Subscribers, want.Leases, want.Promised = len(h.m.ring), len(h.m.subs), leases, h.m.promised
	want.Capacity, want.Reserve = st.Capacity, st.Reserve
	got := st
	got.HoldNanos, got.MaxHoldNanos, got.Frames = 0, 0, 0
	if got != want {
		return fmt.Errorf("stats\n  core  %+v\n  model %+v", got, want)
	}
	return nil
}

// get emulates Pool.Get: the lowest free surface, else new memory in the
// lowest empty slot.
func (h *harness) get() (uint32, bool) {
	for _, want := range []slotState{slotFree, slotEmpty} {
		for i := range h.slots {
			if sl := &h.slots[i]; sl.state == want {
				if want == slotEmpty {
					sl.gen++
				}
				sl.state = slotInUse
				return uint32(i + 1), true
			}
		}
	}
	return 0, false
}

// surfaces emulates Pool.Surfaces: every surface with memory.
func (h *harness) surfaces() []Surface {
	var out []Surface
	for i, sl := range h.slots {
		if sl.state != slotEmpty {
			id := uint32(i + 1)
			out = append(out, Surface{Info: ipc.Surface{ID: id, Gen: sl.gen, Size: 4096, Kind: ipc.KindMemfd}, FDs: []int{fdOf(id)}})
		}
	}
	return out
}

// pickSub returns an attached subscriber's id most of the time, else one
// that is not (closed, or never seen).
func (h *harness) pickSub() (SubID, *mSub) {
	if len(h.m.subs) > 0 && h.src.Intn(8) != 0 {
		s := h.m.subs[h.src.Intn(len(h.m.subs))]
		return s.id, s
	}
	id := SubID(h.src.Intn(int(h.next) + 2))
	return id, h.m.sub(id)
}

func (h *harness) advance(maxMS int) {
	h.now = h.now.Add(time.Duration(h.src.Intn(maxMS)+1) * time.Millisecond)
}

func (h *harness) step() error {
	switch op := h.src.Intn(100); {
	case op < 35:
		return h.publish()
	case op < 55:
		return h.release()
	case op < 63:
		return h.attach()
	case op < 66:
		id, s := h.pickSub()
		return h.call(fmt.Sprintf("detach %d", id), func() error {
			got := h.core.Detach(id)
			want := 0
			if s != nil {
				want = h.m.remove(s)
			}
			if got != want {
				return fmt.Errorf("Detach released %d leases, model %d", got, want)
			}
			return nil
		})
	case op < 76:
		h.advance(400)
		return h.call("tick", func() error { h.core.Tick(h.now); h.m.tick(h.now); return nil })
	case op < 79:
		id, s := h.pickSub()
		if s == nil || len(s.leases) == 0 {
			return nil
		}
		l := s.leases[len(s.leases)-1].id
		return h.call(fmt.Sprintf("unsent %d lease %d", id, l), func() error {
			h.core.Unsent(id, l, h.now)
			h.m.unsent(s, l, h.now)
			return nil
		})
	case op < 83:
		id, s := h.pickSub()
		n := 1 + h.src.Intn(16)
		return h.call(fmt.Sprintf("control %d ×%d", id, n), func() error {
			for range n {
				got := h.core.Control(id, h.now)
				want := s != nil && h.m.sub(id) != nil && h.m.control(s, h.now)
				if got != want {
					return fmt.Errorf("Control %v, model %v", got, want)
				}
				if !got {
					break
				}
			}
			return nil
		})
	case op < 86:
		id, s := h.pickSub()
		return h.call(fmt.Sprintf("keyframe %d", id), func() error {
			got := h.core.RequestKeyframe(id, h.now)
			want := s != nil && h.m.keyframe(s, h.now)
			if got != want {
				return fmt.Errorf("RequestKeyframe %v, model %v", got, want)
			}
			if got {
				h.seen["keyframe"]++
			}
			return nil
		})
	case op < 88:
		return h.call("eos", func() error { h.core.EndOfStream("test"); h.m.eos(); return nil })
	case op < 90:
		return h.caps()
	case op < 92:
		var ids []uint32
		for i := range h.slots {
			if h.src.Intn(3) == 0 {
				ids = append(ids, uint32(i+1))
			}
		}
		return h.call(fmt.Sprintf("forget %v", ids), func() error {
			h.core.Forget(ids)
			for _, s := range h.m.subs {
				h.m.forget(s, ids)
			}
			return nil
		})
	case op < 95:
		return h.call("reclaim", func() error {
			got, want := h.core.Reclaim(h.now), h.m.reclaim(h.now)
			if got != want {
				return fmt.Errorf("Reclaim %v, model %v", got, want)
			}
			return nil
		})
	default:
		h.advance(30)
		return nil
	}
}

// publish emulates the producer's source: acquire (shed, reclaim, drop
// when the pool is dry), then publish.
func (h *harness) publish() error {
	h.advance(40)
	id, ok := h.get()
	if !ok {
		if err := h.call("shed", func() error {
			got := h.core.Shed()
			want := (len(h.m.ring) + 3) / 4
			h.m.shed(want)
			h.m.ctr.ReplayShed += uint64(want)
			if got != want {
				return fmt.Errorf("Shed let %d go, model %d", got, want)
			}
			return nil
		}); err != nil {
			return err
		}
		id, ok = h.get()
	}
	if !ok {
		if err := h.call("reclaim (dry pool)", func() error {
			got, want := h.core.Reclaim(h.now), h.m.reclaim(h.now)
			if got != want {
				return fmt.Errorf("Reclaim %v, model %v", got, want)
			}
			if got {
				h.seen["reclaimed for the pool"]++
			}
			return nil
		}); err != nil {
			return err
		}
		id, ok = h.get()
	}
	if !ok {
		h.seen["dropped at the source"]++
		return h.call("drop at source", func() error {
			h.core.DropAtSource()
			h.m.seq++
			h.m.ctr.DroppedExhausted++
			return nil
		})
	}
	sl := &h.slots[id-1]
	flags := uint32(0)
	if h.src.Intn(4) == 0 {
		flags = ipc.FlagKeyframe
	}
	seq := h.m.seq + 1
	sl.seq = seq
	gen := sl.gen
	surf := Surface{Info: ipc.Surface{ID: id, Gen: gen, Size: 4096, Kind: ipc.KindMemfd}, FDs: []int{fdOf(id)}}
	free := func() {
		h.freed = append(h.freed, seq)
		s := &h.slots[id-1]
		if s.state != slotInUse || s.seq != seq {
			panic(fmt.Sprintf("free of frame %d in surface %d, which holds frame %d (state %d)", seq, id, s.seq, s.state))
		}
		if s.stale {
			s.state, s.stale = slotEmpty, false
		} else {
			s.state = slotFree
		}
	}
	return h.call(fmt.Sprintf("publish %d in %d/%d", seq, id, gen), func() error {
		got := h.core.Publish(surf, ipc.Frame{Flags: flags, MonoNS: h.now.UnixNano()}, free, h.now)
		if want := h.m.publish(id, gen, flags, h.now); got != want {
			return fmt.Errorf("Publish delivered to %d, model %d", got, want)
		}
		return nil
	})
}

func (h *harness) release() error {
	id, s := h.pickSub()
	var ids []uint64
	if s != nil {
		for _, l := range s.leases {
			if h.src.Intn(2) == 0 {
				ids = append(ids, l.id)
			}
		}
	}
	switch h.src.Intn(25) {
	case 0:
		ids = append(ids, 1000+uint64(h.src.Intn(3))) // never granted
	case 1:
		if len(ids) > 0 {
			ids = append(ids, ids[0]) // twice in one message
		}
	case 2:
		ids = nil // an empty Release
	}
	return h.call(fmt.Sprintf("release %d %v", id, ids), func() error {
		got := h.core.Released(id, ids, h.now)
		want := false
		if s != nil {
			h.m.released(s, ids, h.now)
			want = h.m.sub(id) != nil
		}
		if got != want {
			return fmt.Errorf("Released %v, model %v", got, want)
		}
		return nil
	})
}

func (h *harness) attach() error {
	h.next++
	id := h.next
	uid := 1000 + h.src.Intn(2)
	name := string(rune('a' + h.src.Intn(3)))
	budget := 1 + h.src.Intn(6)
	latest := h.src.Intn(3) == 0
	lossless := h.src.Intn(12) == 0
	hold := []time.Duration{0, 60 * time.Millisecond, 300 * time.Millisecond}[h.src.Intn(3)]
	var from int64
	if n := len(h.m.ring); n > 0 {
		switch h.src.Intn(4) {
		case 1:
			from = h.m.frames[h.m.ring[h.src.Intn(n)]].mono - 1
		case 2:
			from = h.m.frames[h.m.ring[0]].mono - int64(time.Hour)
		case 3:
			from = h.m.frames[h.m.ring[n-1]].mono + 1
		}
	}
	policy := ipc.PolicyQueue
	if latest {
		policy = ipc.PolicyLatest
	}
	surfaces := h.surfaces()
	return h.call(fmt.Sprintf("attach %d budget %d latest %v lossless %v hold %v from %d", id, budget, latest, lossless, hold, from), func() error {
		got, err := h.core.Attach(id, Params{Name: name, UID: uid, Budget: budget, MaxHold: hold, Policy: policy,
			Lossless: lossless, ReplayFromNS: from}, surfaces, h.now)
		want, ok := h.m.attach(id, uid, name, budget, latest, lossless, hold, from, surfaces, h.now)
		switch {
		case !ok && !errors.Is(err, ErrNoCapacity):
			return fmt.Errorf("Attach: %v, model refuses for capacity", err)
		case ok && err != nil:
			return fmt.Errorf("Attach: %v, model grants %d", err, want)
		case ok && got != want:
			return fmt.Errorf("Attach granted %d, model %d", got, want)
		}
		if ok {
			h.seen["attach"]++
			if want < budget {
				h.seen["attach reduced"]++
			}
		} else {
			h.seen["no capacity"]++
		}
		return nil
	})
}

// caps emulates a caps change: Pool.Resize forgets the free surfaces (their
// slots get new memory, a new generation, when used next) and marks those
// in use stale.
func (h *harness) caps() error {
	var forgotten []uint32
	for i := range h.slots {
		switch sl := &h.slots[i]; sl.state {
		case slotFree:
			sl.state = slotEmpty
			forgotten = append(forgotten, uint32(i+1))
		case slotInUse:
			sl.stale = true
		}
	}
	return h.call(fmt.Sprintf("caps, forget %v", forgotten), func() error {
		h.core.SetCaps(ipc.Caps{Format: "NV12"}, forgotten)
		for _, s := range h.m.subs {
			h.m.emit(s.id, "S caps")
			h.m.forget(s, forgotten)
		}
		return nil
	})
}
