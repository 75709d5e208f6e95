package fanout

import (
	"fmt"
	"time"

	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/lease"
)

// admit decides the budget of a new subscriber: the asked budget, halved per
// recent eviction of the same uid and name, then within what the capacity
// can back (at most half of the shareable surfaces, at most what is not
// promised yet).
func (c *Core) admit(p Params, now time.Time) (int, error) {
	budget := p.Budget
	if pen, ok := c.penalties[penaltyKey{p.UID, p.Name}]; ok && now.Before(pen.until) {
		budget = max(1, budget>>min(pen.count, 30))
	}
	if c.cfg.Capacity == 0 {
		return budget, nil
	}
	extra := 0
	if p.Policy == ipc.PolicyLatest {
		extra = 1 // the pending frame
	}
	shareable := c.cfg.Capacity - c.cfg.Reserve
	left := shareable - c.promised - extra
	if left < 1 {
		return 0, &NoCapacityError{Capacity: c.cfg.Capacity, Reserve: c.cfg.Reserve, Promised: c.promised,
			Subscribers: len(c.order), Need: 1 + extra}
	}
	return min(budget, left, max(1, shareable/2-extra)), nil
}

// penalise remembers that s was evicted, for the budget of its next attach.
func (c *Core) penalise(s *sub, now time.Time) {
	k := penaltyKey{s.p.UID, s.p.Name}
	p := c.penalties[k]
	if !now.Before(p.until) {
		p.count = 0
	}
	p.count++
	p.until = now.Add(c.cfg.PenaltyWindow)
	c.penalties[k] = p
	if len(c.penalties) > maxPenalties {
		var oldest penaltyKey
		first := true
		for k, p := range c.penalties {
			if first || p.until.Before(c.penalties[oldest].until) {
				oldest, first = k, false
			}
		}
		delete(c.penalties, oldest)
	}
}

// Penalty returns how many evictions of the subscriber with uid and name
// count against its next attach at now (each halves its budget).
func (c *Core) Penalty(uid int, name string, now time.Time) int {
	if p, ok := c.penalties[penaltyKey{uid, name}]; ok && now.Before(p.until) {
		return p.count
	}
	return 0
}

// pinned is how many distinct surfaces s keeps out of the pool: those of
// its leases and of its pending frame.
func (c *Core) pinned(s *sub) int {
	seen := make(map[uint32]struct{})
	for _, f := range c.table.Leased(lease.ConsumerID(s.id)) {
		seen[c.frames[f].surf.Info.ID] = struct{}{}
	}
	if s.pending != nil {
		seen[s.pending.surf.Info.ID] = struct{}{}
	}
	return len(seen)
}

// FairShare is how many surfaces each subscriber may pin before Reclaim
// takes them back: the shareable capacity (capacity minus reserve; when the
// capacity is unknown, what all subscribers pin now) divided by the number
// of subscribers, at least 1.
func (c *Core) FairShare() int {
	n := len(c.order)
	if n == 0 {
		return 0
	}
	shareable := c.cfg.Capacity - c.cfg.Reserve
	if c.cfg.Capacity == 0 {
		shareable = 0
		for _, s := range c.order {
			shareable += c.pinned(s)
		}
	}
	return max(1, shareable/n)
}

// Reclaim is called when the source found no free surface. It evicts the
// subscriber pinning the most surfaces beyond its fair share (FairShare),
// with ipc.CodeReclaimed — ties go to the one whose oldest lease is oldest,
// then to the first attached — and remembers it for the reconnect penalty.
// It reports whether it evicted one; if nobody is beyond the fair share the
// pool ran dry for other reasons (the source's own holds) and the caller
// drops the frame.
func (c *Core) Reclaim(now time.Time) bool {
	share := c.FairShare()
	var (
		worst              *sub
		worstOver, worstPn int
		worstOldest        time.Time
	)
	for _, s := range c.order {
		p := c.pinned(s)
		over := p - share
		if over <= 0 {
			continue
		}
		st, _ := c.table.ConsumerStats(lease.ConsumerID(s.id))
		if worst == nil || over > worstOver || (over == worstOver && st.Oldest.Before(worstOldest)) {
			worst, worstOver, worstPn, worstOldest = s, over, p, st.Oldest
		}
	}
	if worst == nil {
		return false
	}
	c.ctr.Reclaims++
	c.close(worst, ipc.CodeReclaimed, fmt.Sprintf("the stream's pool ran dry and this consumer pinned %d surfaces, "+
		"beyond its fair share of %d; release frames sooner or ask for a smaller max_in_flight", worstPn, share), now, true)
	return true
}
