package fanout

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/ipc"
)

// pool is a minimal stand-in for the producer's surface pool and source, to
// play the attacks of docs/PROTOCOL.md's "Fairness" against a core.
type pool struct {
	t     *testing.T
	c     *Core
	free  []uint32
	now   time.Time
	got   map[SubID][]ipc.Frame
	codes map[SubID]ipc.Code
	drops int
}

func newPool(t *testing.T, cfg Config, surfaces int) *pool {
	c, err := New(cfg)
	require.NoError(t, err)
	p := &pool{t: t, c: c, now: time.Unix(1_700_000_000, 0), got: map[SubID][]ipc.Frame{}, codes: map[SubID]ipc.Code{}}
	for i := surfaces; i > 0; i-- {
		p.free = append(p.free, uint32(i))
	}
	return p
}

func (p *pool) apply() {
	for _, a := range p.c.Actions() {
		switch a.Kind {
		case Free:
			a.Free()
		case Deliver:
			p.got[a.Sub] = append(p.got[a.Sub], a.Frame)
		case Close:
			p.codes[a.Sub] = a.Code
		}
	}
}

func (p *pool) attach(id SubID, params Params) (int, error) {
	b, err := p.c.Attach(id, params, nil, p.now)
	p.apply()
	return b, err
}

// frame is one frame period of the source: acquire like the producer does
// (shed, reclaim, drop), publish.
func (p *pool) frame() {
	p.now = p.now.Add(33 * time.Millisecond)
	p.c.Tick(p.now)
	p.apply()
	if len(p.free) == 0 && p.c.Shed() > 0 {
		p.apply()
	}
	if len(p.free) == 0 && p.c.Reclaim(p.now) {
		p.apply()
	}
	if len(p.free) == 0 {
		p.c.DropAtSource()
		p.drops++
		return
	}
	id := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	p.c.Publish(Surface{Info: ipc.Surface{ID: id, Gen: 1, Kind: ipc.KindMemfd, Size: 4096}, FDs: []int{3}},
		ipc.Frame{MonoNS: p.now.UnixNano()}, func() { p.free = append(p.free, id) }, p.now)
	p.apply()
}

// releaseAll releases every lease subscriber id was delivered and holds.
func (p *pool) releaseAll(id SubID) {
	var ls []uint64
	for _, f := range p.got[id] {
		ls = append(ls, f.Lease)
	}
	p.got[id] = nil
	if len(ls) > 0 {
		require.True(p.t, p.c.Released(id, ls, p.now))
		p.apply()
	}
}

// healthy asserts that subscriber id got every frame published since it
// attached: consecutive sequence numbers, nothing dropped.
func requireEveryFrame(t *testing.T, frames []ipc.Frame, want int) {
	t.Helper()
	require.Len(t, frames, want)
	for i, f := range frames {
		require.Zero(t, f.Dropped, "frame %d", i)
		require.Zero(t, f.Flags&ipc.FlagDiscont, "frame %d", i)
		if i > 0 {
			require.Equal(t, frames[i-1].Seq+1, f.Seq)
		}
	}
}

// The attacks the fairness rules answer (issue: "no consumer can cost
// another its frames"), each against a healthy subscriber that releases
// every frame at once.
func TestGreedyHolderCostsOnlyItself(t *testing.T) {
	// The old defaults: pool 32, max_in_flight 32. A consumer asking for
	// 2^32-1 frames and never releasing them.
	p := newPool(t, Config{Capacity: 32, Reserve: 4}, 32)
	b, err := p.attach(1, Params{Name: "healthy", Budget: 4})
	require.NoError(t, err)
	require.Equal(t, 4, b)
	b, err = p.attach(2, Params{Name: "greedy", Budget: 1<<31 - 1, MaxHold: time.Minute})
	require.NoError(t, err)
	require.Equal(t, 14, b, "at most half of the 28 shareable surfaces")
	var healthy []ipc.Frame
	for range 900 { // 30 s
		p.frame()
		healthy = append(healthy, p.got[1]...)
		p.releaseAll(1)
	}
	requireEveryFrame(t, healthy, 900)
	require.Zero(t, p.drops)
}

func TestManyHoldersCannotStarveTheHealthy(t *testing.T) {
	// 8 consumers with the default budget of 4 that hold what they get.
	p := newPool(t, Config{Capacity: 32, Reserve: 4}, 32)
	_, err := p.attach(1, Params{Name: "healthy", Budget: 4})
	require.NoError(t, err)
	refused := 0
	for i := range 8 {
		p.frame()
		p.releaseAll(1)
		_, err := p.attach(SubID(10+i), Params{Name: fmt.Sprintf("holder%d", i), UID: 1000, Budget: 4, MaxHold: 2 * time.Second})
		if errors.Is(err, ErrNoCapacity) {
			refused++
			require.ErrorContains(t, err, "the pool's 32 surfaces are promised (28 to 7 consumers, 4 kept for the source)")
			continue
		}
		require.NoError(t, err)
	}
	require.Equal(t, 2, refused, "7 budgets of 4 fill the 28 shareable surfaces")
	p.got[1] = nil
	var healthy []ipc.Frame
	for range 600 {
		p.frame()
		healthy = append(healthy, p.got[1]...)
		p.releaseAll(1)
	}
	requireEveryFrame(t, healthy, 600)
	require.Zero(t, p.drops)
	require.EqualValues(t, 6, p.c.Stats().Evictions, "the holders are evicted at max_hold")
}

func TestHoldEvictReconnectIsPenalised(t *testing.T) {
	p := newPool(t, Config{Capacity: 32, Reserve: 4, PenaltyWindow: time.Minute}, 32)
	_, err := p.attach(1, Params{Name: "healthy", Budget: 4})
	require.NoError(t, err)
	next := SubID(100)
	attach := func() int {
		next++
		b, err := p.attach(next, Params{Name: "looper", UID: 1000, Budget: 8, MaxHold: 3 * time.Second})
		require.NoError(t, err)
		return b
	}
	budgets := []int{attach()}
	var healthy []ipc.Frame
	for range 600 { // 20 s
		p.frame()
		healthy = append(healthy, p.got[1]...)
		p.releaseAll(1)
		if p.codes[next] == ipc.CodeMaxHold {
			budgets = append(budgets, attach())
		}
	}
	requireEveryFrame(t, healthy, 600)
	require.Equal(t, []int{8, 4, 2, 1, 1, 1, 1}, budgets, "each eviction within the window halves the next budget")
	require.Equal(t, 6, p.c.Penalty(1000, "looper", p.now))
}

func TestReclaimTakesFromTheWorstOffender(t *testing.T) {
	// The pool turns out smaller than the capacity admission went by (a
	// camera driver's pool, learnt from its first buffer): the promises
	// made stand, and the pool runs dry.
	p := newPool(t, Config{Capacity: 32, Reserve: 1}, 10)
	for id, name := range map[SubID]string{1: "healthy", 2: "holder", 3: "hog"} {
		_, err := p.attach(id, Params{Name: name, Budget: 8})
		require.NoError(t, err)
	}
	p.c.SetCapacity(10, 1)
	require.Equal(t, 3, p.c.FairShare())
	var healthy []ipc.Frame
	for range 300 {
		p.frame()
		healthy = append(healthy, p.got[1]...)
		p.releaseAll(1)
		if len(p.got[2]) > 3 { // the holder keeps 3 at most
			p.releaseAll(2)
		}
	}
	requireEveryFrame(t, healthy, 300)
	require.Zero(t, p.drops)
	require.Equal(t, ipc.CodeReclaimed, p.codes[3], "the hog held 8, its fair share is 3")
	require.NotContains(t, p.codes, SubID(1))
	require.NotContains(t, p.codes, SubID(2))
	require.EqualValues(t, 1, p.c.Stats().Reclaims)
}

func TestFloodClosesTheFlooder(t *testing.T) {
	p := newPool(t, Config{Capacity: 8, ControlRate: 50, ControlBurst: 100}, 8)
	_, err := p.attach(1, Params{Name: "pinger", Budget: 1, Policy: ipc.PolicyLatest})
	require.NoError(t, err)
	// 50 a second for 10 s is allowed...
	for range 500 {
		p.now = p.now.Add(20 * time.Millisecond)
		require.True(t, p.c.Control(1, p.now))
	}
	// ...a burst beyond 100 is not.
	p.now = p.now.Add(5 * time.Second)
	n := 0
	for p.c.Control(1, p.now) {
		n++
	}
	p.apply()
	require.Equal(t, 100, n)
	require.Equal(t, ipc.CodeRateLimit, p.codes[1])
	require.False(t, p.c.Has(1))
}

func TestLatestPendingIsPromised(t *testing.T) {
	p := newPool(t, Config{Capacity: 6, Reserve: 1}, 6)
	b, err := p.attach(1, Params{Name: "snap", Budget: 1, Policy: ipc.PolicyLatest})
	require.NoError(t, err)
	require.Equal(t, 1, b)
	require.Equal(t, 2, p.c.Stats().Promised, "budget 1 plus the pending frame")
	b, err = p.attach(2, Params{Name: "big", Budget: 8})
	require.NoError(t, err)
	require.Equal(t, 2, b, "half of 5 shareable")
	b, err = p.attach(3, Params{Name: "last", Budget: 8})
	require.NoError(t, err)
	require.Equal(t, 1, b, "what is left")
	_, err = p.attach(4, Params{Name: "late", Budget: 1})
	require.ErrorIs(t, err, ErrNoCapacity)
	var nce *NoCapacityError
	require.ErrorAs(t, err, &nce)
	require.Equal(t, NoCapacityError{Capacity: 6, Reserve: 1, Promised: 5, Subscribers: 3, Need: 1}, *nce)
}
