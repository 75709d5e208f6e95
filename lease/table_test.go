package lease

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Unix(1_700_000_000, 0)

// newTable returns a table whose onFree appends to the returned slice.
func newTable(t *testing.T) (*Table, *[]FrameID) {
	t.Helper()
	var freed []FrameID
	return New(func(f FrameID) { freed = append(freed, f) }), &freed
}

func mustAddConsumer(t *testing.T, tab *Table, c ConsumerID, maxInFlight int, maxHold time.Duration) {
	t.Helper()
	require.NoError(t, tab.AddConsumer(c, Limits{MaxInFlight: maxInFlight, MaxHold: maxHold}))
}

func mustAddFrames(t *testing.T, tab *Table, fs ...FrameID) {
	t.Helper()
	for _, f := range fs {
		require.NoError(t, tab.AddFrame(f))
	}
}

func mustGrant(t *testing.T, tab *Table, c ConsumerID, f FrameID, now time.Time) ID {
	t.Helper()
	id, err := tab.Grant(c, f, now)
	require.NoError(t, err)
	return id
}

func TestNewEmpty(t *testing.T) {
	for _, tab := range []*Table{New(nil), New(func(FrameID) { panic("no frame to free") })} {
		require.Zero(t, tab.Consumers())
		require.Zero(t, tab.Frames())
		require.Zero(t, tab.Leases())
		require.Empty(t, tab.Expired(t0.Add(1000*time.Hour)))
		_, ok := tab.NextDeadline()
		require.False(t, ok)
	}
}

func TestQueriesOnUnknown(t *testing.T) {
	tab, _ := newTable(t)
	require.False(t, tab.Has(1))
	require.Zero(t, tab.InFlight(1))
	require.False(t, tab.AtBudget(1))
	require.Nil(t, tab.Leased(1))
	st, ok := tab.ConsumerStats(1)
	require.False(t, ok)
	require.Zero(t, st)
	require.False(t, tab.Live(1))
	require.Zero(t, tab.Count(1))
	require.Zero(t, tab.Holds(1))
}

func TestAddConsumer(t *testing.T) {
	tab, _ := newTable(t)
	mustAddConsumer(t, tab, 1, 1, 0)
	mustAddConsumer(t, tab, 2, 300, time.Hour)
	mustAddConsumer(t, tab, 0, 1, 1) // zero id is an ordinary id
	require.Equal(t, 3, tab.Consumers())
	for _, c := range []ConsumerID{0, 1, 2} {
		require.True(t, tab.Has(c))
		require.Zero(t, tab.InFlight(c))
		require.False(t, tab.AtBudget(c))
		st, ok := tab.ConsumerStats(c)
		require.True(t, ok)
		require.Zero(t, st)
	}
	// A rejected duplicate keeps the original limits.
	require.ErrorIs(t, tab.AddConsumer(1, Limits{MaxInFlight: 10}), ErrDuplicateConsumer)
	mustAddFrames(t, tab, 5)
	mustGrant(t, tab, 1, 5, t0)
	require.True(t, tab.AtBudget(1))
}

func TestRemoveConsumer(t *testing.T) {
	tab, freed := newTable(t)
	mustAddConsumer(t, tab, 1, 10, time.Second)
	mustAddConsumer(t, tab, 2, 10, 0)
	mustAddFrames(t, tab, 30, 10, 20, 40)
	for _, f := range []FrameID{30, 20, 10, 20, 40} { // two leases on 20
		mustGrant(t, tab, 1, f, t0)
	}
	mustGrant(t, tab, 2, 40, t0)
	for _, f := range []FrameID{30, 10, 20, 40} { // drop every producer hold...
		require.NoError(t, tab.Unhold(f))
	}
	require.NoError(t, tab.Hold(10)) // ...but take a new one on 10
	require.Empty(t, *freed)
	require.Equal(t, 6, tab.Leases())

	n, err := tab.RemoveConsumer(1)
	require.NoError(t, err)
	require.Equal(t, 5, n)
	require.Equal(t, []FrameID{20, 30}, *freed, "freed once each, ascending; 10 held, 40 leased by 2")
	require.False(t, tab.Has(1))
	require.Zero(t, tab.InFlight(1))
	require.Equal(t, 1, tab.Consumers())
	require.Equal(t, 2, tab.Frames())
	require.Equal(t, 1, tab.Leases())
	require.Equal(t, 1, tab.Count(10))
	require.Equal(t, 1, tab.Count(40))
	_, ok := tab.NextDeadline()
	require.False(t, ok, "the only deadline belonged to consumer 1")

	n, err = tab.RemoveConsumer(1)
	require.ErrorIs(t, err, ErrUnknownConsumer)
	require.Zero(t, n)

	n, err = tab.RemoveConsumer(2)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []FrameID{20, 30, 40}, *freed)

	// A consumer without leases is removed with 0 released.
	mustAddConsumer(t, tab, 3, 1, 0)
	n, err = tab.RemoveConsumer(3)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Zero(t, tab.Consumers())
	require.Zero(t, tab.Leases())
	require.Equal(t, 1, tab.Frames())
}

func TestRemoveConsumerThenReAdd(t *testing.T) {
	tab, _ := newTable(t)
	mustAddConsumer(t, tab, 1, 5, 0)
	mustAddFrames(t, tab, 1)
	mustGrant(t, tab, 1, 1, t0)
	mustGrant(t, tab, 1, 1, t0)
	_, err := tab.RemoveConsumer(1)
	require.NoError(t, err)
	mustAddConsumer(t, tab, 1, 5, 0)
	require.Zero(t, tab.InFlight(1))
	st, _ := tab.ConsumerStats(1)
	require.Zero(t, st, "a re-added consumer starts fresh")
	require.Equal(t, ID(1), mustGrant(t, tab, 1, 1, t0), "a new life starts at id 1")
	_, _, err = tab.Release(1, 2, t0)
	require.ErrorIs(t, err, ErrUnknownLease, "leases of the previous life are gone")
}

func TestFrameLifecycle(t *testing.T) {
	tab, freed := newTable(t)
	mustAddFrames(t, tab, 9)
	require.True(t, tab.Live(9))
	require.Equal(t, 1, tab.Count(9))
	require.Equal(t, 1, tab.Holds(9))
	require.Equal(t, 1, tab.Frames())

	require.ErrorIs(t, tab.AddFrame(9), ErrDuplicateFrame)
	require.Equal(t, 1, tab.Count(9), "duplicate AddFrame adds no hold")

	require.NoError(t, tab.Hold(9))
	require.NoError(t, tab.Hold(9))
	require.Equal(t, 3, tab.Count(9))
	require.Equal(t, 3, tab.Holds(9))
	require.NoError(t, tab.Unhold(9))
	require.NoError(t, tab.Unhold(9))
	require.Empty(t, *freed)
	require.NoError(t, tab.Unhold(9))
	require.Equal(t, []FrameID{9}, *freed)
	require.False(t, tab.Live(9))
	require.Zero(t, tab.Count(9))
	require.Zero(t, tab.Frames())

	require.ErrorIs(t, tab.Unhold(9), ErrUnknownFrame, "double free is refused")
	require.ErrorIs(t, tab.Hold(9), ErrUnknownFrame, "a freed frame cannot be revived")
	require.Equal(t, []FrameID{9}, *freed)

	// The table forgets freed frames: re-adding the id starts a new frame.
	mustAddFrames(t, tab, 9)
	require.Equal(t, 1, tab.Count(9))
	require.NoError(t, tab.Unhold(9))
	require.Equal(t, []FrameID{9, 9}, *freed)
}

func TestFrameKeptByLeasesOnly(t *testing.T) {
	tab, freed := newTable(t)
	mustAddConsumer(t, tab, 1, 4, 0)
	mustAddConsumer(t, tab, 2, 4, 0)
	mustAddFrames(t, tab, 5)
	a := mustGrant(t, tab, 1, 5, t0)
	require.NoError(t, tab.Unhold(5))
	require.True(t, tab.Live(5))
	require.Equal(t, 1, tab.Count(5))
	require.Zero(t, tab.Holds(5))
	require.ErrorIs(t, tab.Unhold(5), ErrNotHeld)
	require.Equal(t, 1, tab.Count(5))

	// A frame live only through leases can still be granted and held.
	b := mustGrant(t, tab, 2, 5, t0)
	require.NoError(t, tab.Hold(5))
	require.Equal(t, 3, tab.Count(5))

	f, _, err := tab.Release(1, a, t0)
	require.NoError(t, err)
	require.Equal(t, FrameID(5), f)
	require.NoError(t, tab.Unhold(5))
	require.Empty(t, *freed)
	_, _, err = tab.Release(2, b, t0)
	require.NoError(t, err)
	require.Equal(t, []FrameID{5}, *freed)

	_, err = tab.Grant(1, 5, t0)
	require.ErrorIs(t, err, ErrUnknownFrame, "a freed frame cannot be granted")
}

func TestGrant(t *testing.T) {
	tab, _ := newTable(t)
	mustAddConsumer(t, tab, 1, 10, 0)
	mustAddFrames(t, tab, 1, 2)
	// Several leases of one consumer on one frame are allowed.
	require.Equal(t, ID(1), mustGrant(t, tab, 1, 1, t0))
	require.Equal(t, ID(2), mustGrant(t, tab, 1, 1, t0.Add(time.Second)))
	require.Equal(t, ID(3), mustGrant(t, tab, 1, 2, t0))
	require.Equal(t, 3, tab.Count(1))
	require.Equal(t, 2, tab.Count(2))
	require.Equal(t, 3, tab.InFlight(1))
	require.Equal(t, 3, tab.Leases())
	require.Equal(t, []FrameID{1, 1, 2}, tab.Leased(1))

	// Failed grants neither change counts nor consume ids.
	_, err := tab.Grant(2, 1, t0)
	require.ErrorIs(t, err, ErrUnknownConsumer)
	_, err = tab.Grant(1, 3, t0)
	require.ErrorIs(t, err, ErrUnknownFrame)
	require.Equal(t, 3, tab.Count(1))
	require.Equal(t, 3, tab.Leases())
	st, _ := tab.ConsumerStats(1)
	require.Equal(t, uint64(3), st.Granted)
	require.Equal(t, ID(4), mustGrant(t, tab, 1, 2, t0))
}

func TestBudget(t *testing.T) {
	tab, _ := newTable(t)
	mustAddConsumer(t, tab, 1, 2, time.Second)
	mustAddConsumer(t, tab, 2, 1, 0)
	mustAddFrames(t, tab, 1, 2)
	a := mustGrant(t, tab, 1, 1, t0)
	require.False(t, tab.AtBudget(1))
	mustGrant(t, tab, 1, 2, t0.Add(time.Millisecond))
	require.True(t, tab.AtBudget(1))
	deadline, ok := tab.NextDeadline()
	require.True(t, ok)

	for range 3 {
		id, err := tab.Grant(1, 2, t0.Add(-time.Hour))
		require.ErrorIs(t, err, ErrBudget)
		require.Zero(t, id)
	}
	// Nothing changed.
	require.Equal(t, 2, tab.InFlight(1))
	require.Equal(t, 2, tab.Count(1))
	require.Equal(t, 2, tab.Count(2))
	require.Equal(t, 2, tab.Leases())
	require.Equal(t, []FrameID{1, 2}, tab.Leased(1))
	st, _ := tab.ConsumerStats(1)
	require.Equal(t, ConsumerStats{InFlight: 2, Granted: 2, Oldest: t0}, st)
	d, _ := tab.NextDeadline()
	require.Equal(t, deadline, d, "a refused grant adds no deadline")

	// Another consumer's budget is independent.
	mustGrant(t, tab, 2, 2, t0)
	require.True(t, tab.AtBudget(2))
	require.True(t, tab.AtBudget(1))

	// After a release the next grant succeeds, with the next unused id.
	_, _, err := tab.Release(1, a, t0)
	require.NoError(t, err)
	require.False(t, tab.AtBudget(1))
	require.Equal(t, ID(3), mustGrant(t, tab, 1, 2, t0))
	require.True(t, tab.AtBudget(1))
}

func TestLeaseIDs(t *testing.T) {
	tab, _ := newTable(t)
	mustAddConsumer(t, tab, 1, 3, 0)
	mustAddConsumer(t, tab, 2, 3, 0)
	mustAddFrames(t, tab, 1)
	var live []ID
	var last ID
	for i := range 100 {
		if len(live) == 3 { // at budget: release one, alternating oldest and newest
			j := (i % 2) * 2
			id := live[j]
			live = append(live[:j], live[j+1:]...)
			_, _, err := tab.Release(1, id, t0)
			require.NoError(t, err)
			_, _, err = tab.Release(1, id, t0)
			require.ErrorIs(t, err, ErrUnknownLease, "double release of %d", id)
		}
		id := mustGrant(t, tab, 1, 1, t0)
		require.Equal(t, last+1, id, "ids start at 1 and increase by one, never reused")
		last = id
		live = append(live, id)
	}
	require.Equal(t, ID(100), last)
	_, _, err := tab.Release(1, last+1, t0)
	require.ErrorIs(t, err, ErrUnknownLease, "not yet granted")
	// Ids are per consumer: consumer 2 starts at 1.
	require.Equal(t, ID(1), mustGrant(t, tab, 2, 1, t0))
	_, _, err = tab.Release(2, live[0], t0)
	require.ErrorIs(t, err, ErrUnknownLease, "consumer 1's ids mean nothing for consumer 2")
	require.Equal(t, 3, tab.InFlight(1))
}

func TestRelease(t *testing.T) {
	tab, freed := newTable(t)
	mustAddConsumer(t, tab, 1, 5, 0)
	mustAddConsumer(t, tab, 2, 5, 0)
	mustAddFrames(t, tab, 7, 8)
	a := mustGrant(t, tab, 1, 7, t0)
	b := mustGrant(t, tab, 1, 8, t0.Add(time.Second))
	require.NoError(t, tab.Unhold(7))

	f, held, err := tab.Release(1, b, t0.Add(1500*time.Millisecond))
	require.NoError(t, err)
	require.Equal(t, FrameID(8), f)
	require.Equal(t, 500*time.Millisecond, held)
	require.Empty(t, *freed, "frame 8 still has its producer hold")

	// Double release.
	f, held, err = tab.Release(1, b, t0.Add(2*time.Second))
	requireErr(t, err, ErrUnknownLease, "lease: release 2 for consumer 1: lease: unknown lease")
	require.Zero(t, f)
	require.Zero(t, held)
	require.Equal(t, 1, tab.InFlight(1))
	st, _ := tab.ConsumerStats(1)
	require.Equal(t, uint64(1), st.Released, "a refused release is not counted")

	// Another consumer cannot release consumer 1's lease.
	_, _, err = tab.Release(2, a, t0)
	require.ErrorIs(t, err, ErrUnknownLease)
	require.Equal(t, 1, tab.Count(7))

	// Releasing the last reference frees the frame; held is clamped at 0
	// when the clock reads earlier than the grant.
	f, held, err = tab.Release(1, a, t0.Add(-time.Second))
	require.NoError(t, err)
	require.Equal(t, FrameID(7), f)
	require.Zero(t, held)
	require.Equal(t, []FrameID{7}, *freed)
	require.False(t, tab.Live(7))
	require.Zero(t, tab.Leases())
	require.Zero(t, tab.InFlight(1))
	st, _ = tab.ConsumerStats(1)
	require.Equal(t, ConsumerStats{Granted: 2, Released: 2}, st)
}

func TestDeadlines(t *testing.T) {
	tab, _ := newTable(t)
	const hold = 100 * time.Millisecond
	mustAddConsumer(t, tab, 3, 10, hold)
	mustAddConsumer(t, tab, 1, 10, 0) // never expires
	mustAddConsumer(t, tab, 2, 10, 2*hold)
	mustAddFrames(t, tab, 1)

	_, ok := tab.NextDeadline()
	require.False(t, ok, "no leases")
	mustGrant(t, tab, 1, 1, t0)
	_, ok = tab.NextDeadline()
	require.False(t, ok, "only leases without a deadline")
	require.Empty(t, tab.Expired(t0.Add(1000*time.Hour)), "MaxHold 0 never expires")

	l3 := mustGrant(t, tab, 3, 1, t0.Add(50*time.Millisecond))  // deadline t0+150ms
	mustGrant(t, tab, 3, 1, t0.Add(80*time.Millisecond))        // deadline t0+180ms
	l2 := mustGrant(t, tab, 2, 1, t0.Add(-60*time.Millisecond)) // deadline t0+140ms
	mustGrant(t, tab, 2, 1, t0.Add(10*time.Millisecond))        // deadline t0+210ms
	d, ok := tab.NextDeadline()
	require.True(t, ok)
	require.Equal(t, t0.Add(140*time.Millisecond), d)

	require.Empty(t, tab.Expired(t0))
	require.Empty(t, tab.Expired(t0.Add(140*time.Millisecond-1)))
	require.Equal(t, []ConsumerID{2}, tab.Expired(t0.Add(140*time.Millisecond)), "a lease expires at its deadline")
	require.Equal(t, []ConsumerID{2, 3}, tab.Expired(t0.Add(150*time.Millisecond)), "sorted ascending")
	require.Equal(t, []ConsumerID{2, 3}, tab.Expired(t0.Add(1000*time.Hour)))
	require.Equal(t, 5, tab.Leases(), "Expired changes nothing")

	// Releasing the earliest lease moves the deadline.
	_, _, err := tab.Release(2, l2, t0.Add(100*time.Millisecond))
	require.NoError(t, err)
	d, _ = tab.NextDeadline()
	require.Equal(t, t0.Add(150*time.Millisecond), d)
	require.Equal(t, []ConsumerID{3}, tab.Expired(t0.Add(150*time.Millisecond)))
	_, _, err = tab.Release(3, l3, t0.Add(100*time.Millisecond))
	require.NoError(t, err)
	d, _ = tab.NextDeadline()
	require.Equal(t, t0.Add(180*time.Millisecond), d)

	// Evicting the expired consumers, as the producer does, clears them.
	now := t0.Add(250 * time.Millisecond)
	for _, c := range tab.Expired(now) {
		_, err := tab.RemoveConsumer(c)
		require.NoError(t, err)
	}
	require.Empty(t, tab.Expired(now))
	require.True(t, tab.Has(1))
	require.False(t, tab.Has(2))
	require.False(t, tab.Has(3))
	_, ok = tab.NextDeadline()
	require.False(t, ok)
}

func TestDeadlineWithMonotonicTimes(t *testing.T) {
	// time.Now carries a monotonic reading; deadlines must work with it.
	tab, _ := newTable(t)
	mustAddConsumer(t, tab, 1, 1, time.Hour)
	mustAddFrames(t, tab, 1)
	now := time.Now()
	mustGrant(t, tab, 1, 1, now)
	d, ok := tab.NextDeadline()
	require.True(t, ok)
	require.True(t, d.Equal(now.Add(time.Hour)))
	require.Empty(t, tab.Expired(now.Add(time.Hour-1)))
	require.Equal(t, []ConsumerID{1}, tab.Expired(d))
}

func TestConsumerStatsAndLeased(t *testing.T) {
	tab, _ := newTable(t)
	mustAddConsumer(t, tab, 1, 10, 0)
	mustAddFrames(t, tab, 4, 2, 3)
	a := mustGrant(t, tab, 1, 4, t0.Add(2*time.Second))
	b := mustGrant(t, tab, 1, 2, t0.Add(time.Second)) // granted "earlier": oldest
	mustGrant(t, tab, 1, 4, t0.Add(3*time.Second))
	st, ok := tab.ConsumerStats(1)
	require.True(t, ok)
	require.Equal(t, ConsumerStats{InFlight: 3, Granted: 3, Oldest: t0.Add(time.Second)}, st)

	leased := tab.Leased(1)
	require.Equal(t, []FrameID{2, 4, 4}, leased, "one entry per lease, sorted")
	require.Len(t, leased, tab.InFlight(1))
	leased[0] = 99
	require.Equal(t, []FrameID{2, 4, 4}, tab.Leased(1), "the result is a copy")

	_, _, err := tab.Release(1, b, t0)
	require.NoError(t, err)
	_, _, err = tab.Release(1, a, t0)
	require.NoError(t, err)
	st, _ = tab.ConsumerStats(1)
	require.Equal(t, ConsumerStats{InFlight: 1, Granted: 3, Released: 2, Oldest: t0.Add(3 * time.Second)}, st)
	require.Equal(t, []FrameID{4}, tab.Leased(1))
}

func TestOnFreeSeesConsistentTable(t *testing.T) {
	tab := New(nil)
	var calls []FrameID
	mustAddConsumer(t, tab, 1, 10, 0)
	mustAddFrames(t, tab, 1, 2, 3)
	mustGrant(t, tab, 1, 1, t0)
	id := mustGrant(t, tab, 1, 2, t0)
	mustGrant(t, tab, 1, 3, t0)
	for _, f := range []FrameID{1, 2, 3} {
		require.NoError(t, tab.Unhold(f))
	}

	tab.onFree = func(f FrameID) {
		calls = append(calls, f)
		require.Equal(t, 2, tab.Leases(), "released lease already gone")
		require.Equal(t, 2, tab.InFlight(1))
		require.Equal(t, 2, tab.Frames())
		require.False(t, tab.Live(f))
		require.Zero(t, tab.Count(f))
		require.ErrorIs(t, tab.Hold(f), ErrUnknownFrame)
		_, err := tab.Grant(1, f, t0)
		require.ErrorIs(t, err, ErrUnknownFrame)
		st, _ := tab.ConsumerStats(1)
		require.Equal(t, uint64(1), st.Released)
	}
	_, _, err := tab.Release(1, id, t0)
	require.NoError(t, err)
	require.Equal(t, []FrameID{2}, calls)

	// During RemoveConsumer the consumer and every freed frame are gone
	// before the first callback.
	tab.onFree = func(f FrameID) {
		calls = append(calls, f)
		require.False(t, tab.Has(1))
		require.Zero(t, tab.Leases())
		require.Zero(t, tab.Frames())
		require.False(t, tab.Live(1))
		require.False(t, tab.Live(3))
	}
	n, err := tab.RemoveConsumer(1)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, []FrameID{2, 1, 3}, calls)
}

func TestOnFreeMayMutate(t *testing.T) {
	var tab *Table
	var calls []FrameID
	tab = New(func(f FrameID) {
		calls = append(calls, f)
		switch f {
		case 1:
			// Recycle the surface as a new frame, and drop a consumer,
			// which frees frame 2 from inside this callback (nested).
			require.NoError(t, tab.AddFrame(100))
			n, err := tab.RemoveConsumer(2)
			require.NoError(t, err)
			require.Equal(t, 1, n)
		case 2:
			require.Equal(t, []FrameID{1, 2}, calls, "nested call")
			require.True(t, tab.Live(100))
		}
	})
	mustAddConsumer(t, tab, 1, 1, 0)
	mustAddConsumer(t, tab, 2, 1, 0)
	mustAddFrames(t, tab, 1, 2)
	id := mustGrant(t, tab, 1, 1, t0)
	mustGrant(t, tab, 2, 2, t0)
	require.NoError(t, tab.Unhold(1))
	require.NoError(t, tab.Unhold(2))

	f, _, err := tab.Release(1, id, t0)
	require.NoError(t, err)
	require.Equal(t, FrameID(1), f)
	require.Equal(t, []FrameID{1, 2}, calls)
	require.Equal(t, 1, tab.Frames())
	require.True(t, tab.Live(100))
	require.Zero(t, tab.Leases())
	require.Equal(t, 1, tab.Consumers())
}

func TestNilOnFree(t *testing.T) {
	tab := New(nil)
	mustAddConsumer(t, tab, 1, 2, 0)
	mustAddFrames(t, tab, 1, 2, 3)
	id := mustGrant(t, tab, 1, 1, t0)
	mustGrant(t, tab, 1, 2, t0)
	for _, f := range []FrameID{1, 2, 3} {
		require.NoError(t, tab.Unhold(f))
	}
	_, _, err := tab.Release(1, id, t0)
	require.NoError(t, err)
	_, err = tab.RemoveConsumer(1)
	require.NoError(t, err)
	require.Zero(t, tab.Frames())
}

func TestTablesAreIndependent(t *testing.T) {
	a, fa := newTable(t)
	b, fb := newTable(t)
	mustAddConsumer(t, a, 1, 1, 0)
	mustAddFrames(t, a, 1)
	require.False(t, b.Has(1))
	require.False(t, b.Live(1))
	mustAddConsumer(t, b, 1, 1, 0)
	mustAddFrames(t, b, 1)
	require.Equal(t, ID(1), mustGrant(t, a, 1, 1, t0))
	require.Equal(t, ID(1), mustGrant(t, b, 1, 1, t0))
	require.NoError(t, a.Unhold(1))
	_, err := a.RemoveConsumer(1)
	require.NoError(t, err)
	require.Equal(t, []FrameID{1}, *fa)
	require.Empty(t, *fb)
	require.Equal(t, 1, b.Leases())
}
