package fanout

import (
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/lease"
)

// Stats are a core's counters since it was created, and its gauges now.
type Stats struct {
	Published        uint64 // frames handed to Publish
	Delivered        uint64 // Deliver actions not taken back by Unsent
	DroppedExhausted uint64 // frames the source dropped: no free surface (DropAtSource)
	DroppedLossless  uint64 // frames dropped for everyone: a lossless subscriber was at its budget
	SkippedBudget    uint64 // frames a queue subscriber missed at its budget
	SkippedSocket    uint64 // frames taken back because a subscriber's socket was full (Unsent)
	Superseded       uint64 // pending frames of latest subscribers replaced by a newer one (a skip by policy, not a drop)
	Evictions        uint64 // subscribers closed for holding a lease past max_hold
	Reclaims         uint64 // subscribers closed because the pool ran dry and they held most beyond their share
	RateLimited      uint64 // subscribers closed for overdrawing their control-message allowance
	Released         uint64 // leases released by subscribers
	ReleasedOnClose  uint64 // leases released because their subscriber left or was closed
	HoldNanos        uint64 // total hold time of released leases
	MaxHoldNanos     uint64 // longest hold of a released lease
	KeyframeRequests uint64 // keyframe requests let through
	Replayed         uint64 // frames delivered from the replay buffer
	ReplayShed       uint64 // buffered frames let go early (Shed)

	ReplayFrames int // frames in the replay buffer now
	Subscribers  int // attached now
	Leases       int // live leases now
	Frames       int // frames with a live hold or lease now
	Promised     int // surfaces promised to subscribers (budgets, plus one per latest subscriber)
	Capacity     int // Config.Capacity (SetCapacity)
	Reserve      int // Config.Reserve (SetCapacity)
}

// Stats returns the core's counters and gauges.
func (c *Core) Stats() Stats {
	s := c.ctr
	s.ReplayFrames, s.Subscribers, s.Leases, s.Frames = len(c.ring), len(c.order), c.table.Leases(), c.table.Frames()
	s.Promised, s.Capacity, s.Reserve = c.promised, c.cfg.Capacity, c.cfg.Reserve
	return s
}

// SubStats describe one subscriber.
type SubStats struct {
	Budget        int        // granted max_in_flight
	Policy        ipc.Policy // queue or latest
	InFlight      int        // live leases
	Pinned        int        // distinct surfaces its leases and pending frame keep out of the pool
	Delivered     uint64     // frames delivered (not taken back by Unsent)
	SkippedBudget uint64     // frames missed at its budget (queue policy)
	SkippedSocket uint64     // frames taken back: its socket was full
	Superseded    uint64     // pending frames replaced by newer ones (latest policy)
	Released      uint64     // leases it released
}

// SubStats returns subscriber id's statistics, and false if it is not
// attached.
func (c *Core) SubStats(id SubID) (SubStats, bool) {
	s := c.subs[id]
	if s == nil {
		return SubStats{}, false
	}
	st := s.ctr
	st.Budget, st.Policy = s.budget, s.p.Policy
	st.InFlight = c.table.InFlight(lease.ConsumerID(id))
	st.Pinned = c.pinned(s)
	return st, true
}
