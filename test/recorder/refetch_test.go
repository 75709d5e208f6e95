package recorder_test

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
)

// TestStoppedRecorderRefetches: a recorder stopped (SIGSTOP) long enough
// to exhaust its lease budget, but not for its max hold, has frames skipped
// by the producer; it fetches them again from the producer's replay buffer,
// so the recording has every frame, once, and no gap is counted, also when
// it is stopped again a few seconds later.
func TestStoppedRecorderRefetches(t *testing.T) {
	needGst(t)
	dir := testutil.ShortDir(t)
	p := startProducer(t, dir)
	ref := watch(t, p)
	// Max hold 4 s: each stop (until 10 frames were skipped: about 1.4 s)
	// runs past the budget of 32 frames without an eviction.
	r := startRecorder(t, p, dir, "-segment", "10s", "-max-hold", "4s")
	recDir := filepath.Join(dir, "rec")
	testutil.WaitUntil(t, waitTimeout, func() bool {
		segs := listSegments(t, recDir, true)
		return len(segs) == 1 && len(segs[0].seg.Fragments) >= 1
	}, "a fragment written")

	// Twice, the second soon after the first: each skip is fetched again.
	var stoppedAt, resumedAt uint64
	for i := range 2 {
		skipped := func() float64 {
			return sum(p.metrics(), "framehub_producer_consumer_skipped_total", `consumer="framehub-recorder"`)
		}
		skipped0 := skipped()
		require.NoError(t, syscall.Kill(r.Cmd.Process.Pid, syscall.SIGSTOP))
		if i == 0 {
			stoppedAt = ref.lastSeq()
		}
		// Stopped until the producer skipped it for 10 frames: its budget
		// ran out (after ~32 frames, about 1.1 s), well before its max hold.
		testutil.WaitUntil(t, waitTimeout, func() bool { return skipped() >= skipped0+10 }, "the producer to skip the stopped recorder")
		require.NoError(t, syscall.Kill(r.Cmd.Process.Pid, syscall.SIGCONT))
		resumedAt = ref.lastSeq()
		testutil.WaitUntil(t, waitTimeout, func() bool { return recordedPast(t, recDir, resumedAt+30) }, "recording live again")
	}
	rm := r.metrics()
	r.Stop(t)

	segs := listSegments(t, recDir, true)
	first, last := checkContinuous(t, ref, segs)
	t.Logf("frames %d..%d in %d segments; first stopped at %d, last resumed at %d", first, last, len(segs), stoppedAt, resumedAt)
	require.Less(t, first, stoppedAt)
	require.Greater(t, last, resumedAt)
	pm := p.metrics()
	require.Zero(t, sum(pm, "framehub_producer_evictions_total"))
	// A refetch happens only when the producer said it skipped frames.
	require.GreaterOrEqual(t, sum(rm, "framehub_recorder_refetches_total"), 1.0, "skipped frames fetched again")
	require.Zero(t, sum(rm, "framehub_recorder_gaps_total"))
	for _, s := range segs {
		checkPlays(t, s)
	}
}
