package fanout

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/framehub/framehub/ipc"
)

// This file holds an independent reference model of the core — plain slices
// and linear scans, no code shared with the core — and a driver that applies
// random operations to both, through a small emulation of the producer's
// surface pool and source, and compares after every call: the actions of
// every subscriber (exactly, in order), the frames freed (as a set), the
// error of Attach, and the counters. On top of the comparison it checks the
// package's invariants directly (checkInvariants). TestModel and FuzzCore
// (core_test.go) run it.

type mFrame struct {
	seq       uint64
	surf, gen uint32
	flags     uint32
	mono      int64
	holds     int // the ring's and pending slots'
	freed     bool
}

type mLease struct {
	id      uint64
	seq     uint64
	granted time.Time
}

type mSub struct {
	id                 SubID
	uid                int
	name               string
	budget             int
	latest, lossless   bool
	maxHold            time.Duration
	leases             []mLease
	nextLease          uint64
	pending            uint64 // seq; 0 = none
	cursor             uint64
	lastSeq            uint64
	unsent             uint32
	discont            bool
	announced          map[uint32]uint32
	tokens             float64
	refilled, noticed  time.Time
	unnoticed          uint64
	delivered, skipped uint64
	socket, superseded uint64
	released           uint64
}

func (s *mSub) promise() int {
	if s.latest {
		return s.budget + 1
	}
	return s.budget
}

type mPenalty struct {
	count int
	until time.Time
}

// model is the reference: what the core must do, written the plain way.
type model struct {
	cfg       Config
	frames    map[uint64]*mFrame
	ring      []uint64
	subs      []*mSub // attach order
	seq       uint64
	promised  int
	penalties map[string]mPenalty
	lastKey   time.Time
	ctr       Stats
	out       map[SubID][]string // actions expected from the current call, per subscriber
}

func (m *model) emit(id SubID, format string, args ...any) {
	m.out[id] = append(m.out[id], fmt.Sprintf(format, args...))
}

func (m *model) sub(id SubID) *mSub {
	for _, s := range m.subs {
		if s.id == id {
			return s
		}
	}
	return nil
}

func (m *model) atBudget(s *mSub) bool { return len(s.leases) >= s.budget }

func penKey(uid int, name string) string { return fmt.Sprintf("%d/%s", uid, name) }

func (m *model) admit(uid int, name string, budget int, latest bool, now time.Time) (int, bool) {
	if p, ok := m.penalties[penKey(uid, name)]; ok && now.Before(p.until) {
		for range min(p.count, 30) {
			budget /= 2
		}
		if budget < 1 {
			budget = 1
		}
	}
	if m.cfg.Capacity == 0 {
		return budget, true
	}
	extra := 0
	if latest {
		extra = 1
	}
	shareable := m.cfg.Capacity - m.cfg.Reserve
	left := shareable - m.promised - extra
	if left < 1 {
		return 0, false
	}
	half := shareable/2 - extra
	if half < 1 {
		half = 1
	}
	return min(budget, left, half), true
}

func (m *model) attach(id SubID, uid int, name string, budget int, latest, lossless bool, hold time.Duration,
	replayFrom int64, surfaces []Surface, now time.Time) (int, bool) {
	b, ok := m.admit(uid, name, budget, latest, now)
	if !ok {
		return 0, false
	}
	s := &mSub{id: id, uid: uid, name: name, budget: b, latest: latest, lossless: lossless, maxHold: hold,
		announced: map[uint32]uint32{}, tokens: float64(m.cfg.ControlBurst), refilled: now, noticed: now}
	m.subs = append(m.subs, s)
	m.promised += s.promise()
	var ann []string
	for _, sf := range surfaces {
		ann = append(ann, fmt.Sprintf("%d/%d", sf.Info.ID, sf.Info.Gen))
		s.announced[sf.Info.ID] = sf.Info.Gen
	}
	if len(ann) > 0 {
		m.emit(id, "A %s", strings.Join(ann, " "))
	}
	if replayFrom > 0 && m.cfg.Replay > 0 && len(m.ring) > 0 {
		for i, seq := range m.ring {
			if m.frames[seq].mono > replayFrom {
				s.cursor = seq
				if i == 0 {
					s.discont = true
				}
				break
			}
		}
	}
	m.pump(s, now)
	return b, true
}

func (m *model) deliver(s *mSub, f *mFrame, now time.Time, flags uint32) {
	s.nextLease++
	s.leases = append(s.leases, mLease{id: s.nextLease, seq: f.seq, granted: now})
	if g, ok := s.announced[f.surf]; !ok || g != f.gen {
		m.emit(s.id, "A %d/%d", f.surf, f.gen)
		s.announced[f.surf] = f.gen
	}
	dropped := uint64(0)
	if s.lastSeq > 0 {
		dropped = f.seq - s.lastSeq - 1 + uint64(s.unsent)
	}
	fl := f.flags | flags
	if dropped > 0 || s.discont {
		fl |= ipc.FlagDiscont
	}
	m.emit(s.id, "D seq=%d lease=%d dropped=%d flags=%#x surf=%d/%d", f.seq, s.nextLease, dropped, fl, f.surf, f.gen)
	s.lastSeq, s.unsent, s.discont = f.seq, 0, false
	s.delivered++
	m.ctr.Delivered++
}

func (m *model) pump(s *mSub, now time.Time) {
	for s.cursor != 0 && !m.atBudget(s) {
		i := slices.IndexFunc(m.ring, func(seq uint64) bool { return seq >= s.cursor })
		if i < 0 {
			s.cursor = 0
			return
		}
		f := m.frames[m.ring[i]]
		if i == 0 && f.seq > s.cursor {
			s.discont = true
		}
		m.deliver(s, f, now, ipc.FlagReplay)
		m.ctr.Replayed++
		s.cursor = f.seq + 1
	}
}

func (m *model) notice(s *mSub, now time.Time, why string) {
	s.unnoticed++
	if now.Sub(s.noticed) < time.Second {
		return
	}
	m.emit(s.id, "N %d %s", s.unnoticed, why)
	s.noticed, s.unnoticed = now, 0
}

// publish mirrors Core.Publish; the publish hold is implicit (the frame is
// live throughout the call).
func (m *model) publish(surf, gen, flags uint32, now time.Time) int {
	m.seq++
	f := &mFrame{seq: m.seq, surf: surf, gen: gen, flags: flags, mono: now.UnixNano()}
	m.frames[f.seq] = f
	m.ctr.Published++
	for _, s := range m.subs {
		if s.lossless && m.atBudget(s) {
			m.ctr.DroppedLossless++
			return 0
		}
	}
	if m.cfg.Replay > 0 {
		f.holds++
		m.ring = append(m.ring, f.seq)
		cut := 0
		for cut < len(m.ring)-1 && time.Duration(f.mono-m.frames[m.ring[cut]].mono) > m.cfg.Replay {
			cut++
		}
		m.shed(cut)
	}
	sent := 0
	for _, s := range m.subs {
		switch {
		case s.cursor != 0:
			m.pump(s, now)
		case m.atBudget(s):
			if s.latest {
				if s.pending != 0 {
					m.frames[s.pending].holds--
					s.superseded++
					m.ctr.Superseded++
				}
				f.holds++
				s.pending = f.seq
			} else {
				s.skipped++
				m.ctr.SkippedBudget++
				m.notice(s, now, "at its budget (max_in_flight)")
			}
		default:
			if s.pending != 0 {
				m.frames[s.pending].holds--
				s.pending = 0
				s.superseded++
				m.ctr.Superseded++
			}
			m.deliver(s, f, now, 0)
			sent++
		}
	}
	return sent
}

func (m *model) shed(n int) {
	for _, seq := range m.ring[:n] {
		m.frames[seq].holds--
	}
	m.ring = slices.Clone(m.ring[n:])
}

func (m *model) remove(s *mSub) int {
	m.subs = slices.DeleteFunc(m.subs, func(o *mSub) bool { return o == s })
	m.promised -= s.promise()
	if s.pending != 0 {
		m.frames[s.pending].holds--
		s.pending = 0
	}
	n := len(s.leases)
	s.leases = nil
	m.ctr.ReleasedOnClose += uint64(n)
	return n
}

func (m *model) close(s *mSub, code ipc.Code, now time.Time, penalise bool) {
	n := m.remove(s)
	if penalise {
		k := penKey(s.uid, s.name)
		p := m.penalties[k]
		if !now.Before(p.until) {
			p.count = 0
		}
		p.count++
		p.until = now.Add(m.cfg.PenaltyWindow)
		m.penalties[k] = p
	}
	m.emit(s.id, "C %v n=%d", code, n)
}

func (m *model) released(s *mSub, ids []uint64, now time.Time) {
	if len(ids) == 0 {
		m.control(s, now)
		return
	}
	for _, id := range ids {
		i := slices.IndexFunc(s.leases, func(l mLease) bool { return l.id == id })
		if i < 0 {
			m.close(s, ipc.CodeBadRelease, now, false)
			return
		}
		s.leases = slices.Delete(s.leases, i, i+1)
		s.released++
		m.ctr.Released++
	}
	m.pump(s, now)
	if s.pending != 0 && !m.atBudget(s) {
		f := m.frames[s.pending]
		s.pending = 0
		m.deliver(s, f, now, 0)
		f.holds--
	}
}

func (m *model) unsent(s *mSub, id uint64, now time.Time) {
	i := slices.IndexFunc(s.leases, func(l mLease) bool { return l.id == id })
	if i < 0 {
		return
	}
	s.leases = slices.Delete(s.leases, i, i+1)
	s.unsent++
	s.delivered--
	m.ctr.Delivered--
	s.socket++
	m.ctr.SkippedSocket++
	m.notice(s, now, "socket buffer full")
}

func (m *model) control(s *mSub, now time.Time) bool {
	if dt := now.Sub(s.refilled); dt > 0 {
		s.tokens = min(float64(m.cfg.ControlBurst), s.tokens+dt.Seconds()*m.cfg.ControlRate)
		s.refilled = now
	}
	if s.tokens < 1 {
		m.ctr.RateLimited++
		m.close(s, ipc.CodeRateLimit, now, false)
		return false
	}
	s.tokens--
	return true
}

func (m *model) keyframe(s *mSub, now time.Time) bool {
	if !m.control(s, now) {
		return false
	}
	if !m.lastKey.IsZero() && now.Sub(m.lastKey) < m.cfg.KeyframeInterval {
		return false
	}
	m.lastKey = now
	m.ctr.KeyframeRequests++
	return true
}

func (m *model) tick(now time.Time) {
	byID := slices.Clone(m.subs)
	sort.Slice(byID, func(i, j int) bool { return byID[i].id < byID[j].id })
	for _, s := range byID {
		if s.maxHold <= 0 {
			continue
		}
		if slices.ContainsFunc(s.leases, func(l mLease) bool { return !now.Before(l.granted.Add(s.maxHold)) }) {
			m.ctr.Evictions++
			m.close(s, ipc.CodeMaxHold, now, true)
		}
	}
	for k, p := range m.penalties {
		if !now.Before(p.until) {
			delete(m.penalties, k)
		}
	}
}

func (m *model) pinned(s *mSub) int {
	seen := map[uint32]bool{}
	for _, l := range s.leases {
		seen[m.frames[l.seq].surf] = true
	}
	if s.pending != 0 {
		seen[m.frames[s.pending].surf] = true
	}
	return len(seen)
}

func (m *model) reclaim(now time.Time) bool {
	if len(m.subs) == 0 {
		return false
	}
	shareable := m.cfg.Capacity - m.cfg.Reserve
	if m.cfg.Capacity == 0 {
		shareable = 0
		for _, s := range m.subs {
			shareable += m.pinned(s)
		}
	}
	share := max(1, shareable/len(m.subs))
	var worst *mSub
	worstOver := 0
	var worstOldest time.Time
	for _, s := range m.subs {
		over := m.pinned(s) - share
		if over <= 0 {
			continue
		}
		var oldest time.Time
		for i, l := range s.leases {
			if i == 0 || l.granted.Before(oldest) {
				oldest = l.granted
			}
		}
		if worst == nil || over > worstOver || (over == worstOver && oldest.Before(worstOldest)) {
			worst, worstOver, worstOldest = s, over, oldest
		}
	}
	if worst == nil {
		return false
	}
	m.ctr.Reclaims++
	m.close(worst, ipc.CodeReclaimed, now, true)
	return true
}

func (m *model) eos() {
	for _, s := range m.subs {
		m.emit(s.id, "S eos")
		s.discont = true
	}
}

func (m *model) forget(s *mSub, ids []uint32) {
	var drop []string
	for _, id := range ids {
		if _, ok := s.announced[id]; ok {
			drop = append(drop, fmt.Sprint(id))
			delete(s.announced, id)
		}
	}
	if len(drop) > 0 {
		m.emit(s.id, "F %s", strings.Join(drop, " "))
	}
}

// live reports whether frame seq has a hold or a lease.
func (m *model) live(f *mFrame) bool {
	if f.holds > 0 {
		return true
	}
	for _, s := range m.subs {
		for _, l := range s.leases {
			if l.seq == f.seq {
				return true
			}
		}
	}
	return false
}

// settle marks the frames that are no longer live as freed and returns
// their sequence numbers, ascending: the frees the call must have made.
func (m *model) settle() []uint64 {
	var out []uint64
	for seq, f := range m.frames {
		if !f.freed && !m.live(f) {
			f.freed = true
			out = append(out, seq)
		}
	}
	slices.Sort(out)
	return out
}
