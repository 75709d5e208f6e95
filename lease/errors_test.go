package lease

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var allSentinels = []error{
	ErrUnknownConsumer, ErrDuplicateConsumer, ErrInvalidLimits, ErrUnknownFrame,
	ErrDuplicateFrame, ErrBudget, ErrUnknownLease, ErrNotHeld,
}

// requireErr checks that err wraps want (and no other sentinel) and has
// exactly the message msg.
func requireErr(t *testing.T, err, want error, msg string) {
	t.Helper()
	require.ErrorIs(t, err, want)
	require.EqualError(t, err, msg)
	for _, other := range allSentinels {
		if other != want {
			require.False(t, errors.Is(err, other), "%v also matches %v", err, other)
		}
	}
}

func TestSentinelsDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range allSentinels {
		require.Regexp(t, `^lease: `, e.Error())
		require.False(t, seen[e.Error()], "duplicate message %q", e.Error())
		seen[e.Error()] = true
	}
}

func TestErrorMessages(t *testing.T) {
	// Shared setup: consumer 7 (budget 1) holds lease 1 on frame 100, which
	// has no producer hold left; consumer 8 is unknown, frame 101 unknown.
	setup := func(t *testing.T) *Table {
		tab, _ := newTable(t)
		mustAddConsumer(t, tab, 7, 1, 0)
		mustAddFrames(t, tab, 100)
		require.Equal(t, ID(1), mustGrant(t, tab, 7, 100, t0))
		require.NoError(t, tab.Unhold(100))
		return tab
	}
	release := func(c ConsumerID, id ID) func(*Table) error {
		return func(tab *Table) error {
			f, held, err := tab.Release(c, id, t0)
			if f != 0 || held != 0 {
				return errors.New("failed release returned values")
			}
			return err
		}
	}
	grant := func(c ConsumerID, f FrameID) func(*Table) error {
		return func(tab *Table) error {
			id, err := tab.Grant(c, f, t0)
			if id != 0 {
				return errors.New("failed grant returned an id")
			}
			return err
		}
	}
	tests := []struct {
		name string
		call func(*Table) error
		want error
		msg  string
	}{
		{"AddConsumer duplicate", func(tab *Table) error { return tab.AddConsumer(7, Limits{MaxInFlight: 5}) },
			ErrDuplicateConsumer, "lease: add consumer 7: lease: duplicate consumer"},
		{"AddConsumer duplicate beats invalid", func(tab *Table) error { return tab.AddConsumer(7, Limits{}) },
			ErrDuplicateConsumer, "lease: add consumer 7: lease: duplicate consumer"},
		{"AddConsumer MaxInFlight 0", func(tab *Table) error { return tab.AddConsumer(8, Limits{}) },
			ErrInvalidLimits, "lease: add consumer 8: max in-flight 0, want >= 1: lease: invalid limits"},
		{"AddConsumer MaxInFlight negative", func(tab *Table) error { return tab.AddConsumer(8, Limits{MaxInFlight: -3, MaxHold: time.Second}) },
			ErrInvalidLimits, "lease: add consumer 8: max in-flight -3, want >= 1: lease: invalid limits"},
		{"AddConsumer MaxHold negative", func(tab *Table) error { return tab.AddConsumer(8, Limits{MaxInFlight: 1, MaxHold: -time.Millisecond}) },
			ErrInvalidLimits, "lease: add consumer 8: max hold -1ms, want >= 0: lease: invalid limits"},
		{"RemoveConsumer unknown", func(tab *Table) error {
			n, err := tab.RemoveConsumer(8)
			if n != 0 {
				return errors.New("released leases of unknown consumer")
			}
			return err
		}, ErrUnknownConsumer, "lease: remove consumer 8: lease: unknown consumer"},
		{"AddFrame duplicate", func(tab *Table) error { return tab.AddFrame(100) },
			ErrDuplicateFrame, "lease: add frame 100: lease: duplicate frame"},
		{"Hold unknown", func(tab *Table) error { return tab.Hold(101) },
			ErrUnknownFrame, "lease: hold frame 101: lease: unknown frame"},
		{"Unhold unknown", func(tab *Table) error { return tab.Unhold(101) },
			ErrUnknownFrame, "lease: unhold frame 101: lease: unknown frame"},
		{"Unhold not held", func(tab *Table) error { return tab.Unhold(100) },
			ErrNotHeld, "lease: unhold frame 100: held only by 1 lease(s): lease: frame has no producer hold"},
		{"Grant unknown consumer", grant(8, 100),
			ErrUnknownConsumer, "lease: grant frame 100 to consumer 8: lease: unknown consumer"},
		{"Grant unknown consumer and frame", grant(8, 101),
			ErrUnknownConsumer, "lease: grant frame 101 to consumer 8: lease: unknown consumer"},
		{"Grant unknown frame", grant(7, 101),
			ErrUnknownFrame, "lease: grant frame 101 to consumer 7: lease: unknown frame"},
		{"Grant over budget", grant(7, 100),
			ErrBudget, "lease: grant frame 100 to consumer 7: 1 of 1 in flight: lease: consumer at in-flight budget"},
		{"Release unknown consumer", release(8, 1),
			ErrUnknownConsumer, "lease: release 1 for consumer 8: lease: unknown consumer"},
		{"Release never granted", release(7, 5),
			ErrUnknownLease, "lease: release 5 for consumer 7: lease: unknown lease"},
		{"Release zero id", release(7, 0),
			ErrUnknownLease, "lease: release 0 for consumer 7: lease: unknown lease"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := setup(t)
			requireErr(t, tc.call(tab), tc.want, tc.msg)
			// A failed call changes nothing.
			require.Equal(t, 1, tab.Consumers())
			require.Equal(t, 1, tab.Frames())
			require.Equal(t, 1, tab.Leases())
			require.Equal(t, 1, tab.Count(100))
			require.Zero(t, tab.Holds(100))
			require.Equal(t, 1, tab.InFlight(7))
			st, ok := tab.ConsumerStats(7)
			require.True(t, ok)
			require.Equal(t, ConsumerStats{InFlight: 1, Granted: 1, Oldest: t0}, st)
			require.False(t, tab.Has(8))
			require.False(t, tab.Live(101))
		})
	}
}
