package media

import (
	"testing"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/stretchr/testify/require"
)

// The ledger settles each access unit against the raw frames pushed
// before it: those without one were never encoded, counted busy when a
// newer push replaced them in the full queue, else skipped by the encoder.
func TestEncoderLedger(t *testing.T) {
	var l encoderLedger
	const cap1 = 1
	ms := func(n int64) int64 { return n * 33_333_333 }
	l.pushed(ms(0), 0, cap1)
	l.encoded(ms(0))
	l.pushed(ms(1), 0, cap1) // taken by the encoder...
	l.pushed(ms(2), 0, cap1) // ...queued...
	l.pushed(ms(3), 1, cap1) // ...and replaced by this one: busy
	l.pushed(ms(4), 0, cap1)
	l.encoded(ms(1))
	l.encoded(ms(3))
	busy, skipped, off := l.counts()
	require.Equal(t, [2]uint64{1, 0}, [2]uint64{busy, skipped}, "frame 2 was replaced in the queue")
	require.Empty(t, off)
	// 4 and 5 went in; the encoder gave only 5: 4 was skipped by it.
	l.pushed(ms(5), 0, cap1)
	l.encoded(ms(5))
	busy, skipped, _ = l.counts()
	require.Equal(t, [2]uint64{1, 1}, [2]uint64{busy, skipped})
	require.Empty(t, l.pending)

	// Frames in flight at the end of a run are not counted.
	l.pushed(ms(6), 0, cap1)
	l.reset()
	l.pushed(ms(0), 0, cap1) // a new run's timestamps start over
	l.encoded(ms(0))
	busy, skipped, _ = l.counts()
	require.Equal(t, [2]uint64{1, 1}, [2]uint64{busy, skipped})

	// An encoder that does not keep timestamps cannot be followed:
	// counting stops, with why, rather than count wrong.
	l.pushed(ms(1), 0, cap1)
	l.encoded(ms(1) + 5)
	_, _, off = l.counts()
	require.Contains(t, off, "does not keep timestamps")
	l.pushed(ms(2), 0, cap1)
	l.encoded(ms(9))
	busy, skipped, _ = l.counts()
	require.Equal(t, [2]uint64{1, 1}, [2]uint64{busy, skipped}, "nothing counted once off")
	l.reset()
	_, _, off = l.counts()
	require.Empty(t, off, "a new run counts again")

	// Raw frames without timestamps, or an encoder that gives nothing.
	var n encoderLedger
	n.pushed(-1, 0, cap1)
	_, _, off = n.counts()
	require.Equal(t, "raw frames without a timestamp", off)
	var m encoderLedger
	for i := range int64(maxUnmatched + 1) {
		m.pushed(ms(i), 0, cap1)
	}
	_, _, off = m.counts()
	require.Equal(t, "no access unit for the last 256 raw frames", off)
}

// TestEncoderDropsCounted: a source faster than the encoder (not live:
// frames come as fast as videotestsrc makes them) loses frames in the
// encoder's leaky input queue; each raw frame published is accounted for:
// encoded (an access unit), or counted by reason, but for the few in
// flight when the pipeline stops.
func TestEncoderDropsCounted(t *testing.T) {
	h := newHarness(t, Config{Width: 1280, Height: 720, Source: "launch:videotestsrc pattern=smpte"})
	h.run()
	testutil.WaitUntil(t, waitTimeout, func() bool { st := h.p.Stats(); return st.H264Frames >= 60 && st.EncoderBusy > 0 },
		"the encoder falls behind a source that is not live, have %+v", h.p.Stats())
	h.stop()
	st := h.p.Stats()
	require.Empty(t, st.EncoderUncounted)
	h264 := h.srv.Stream(StreamH264).Stats()
	accounted := st.H264Frames + st.EncoderBusy + st.EncoderSkipped + st.H264Dropped + h264.DroppedExhausted
	t.Logf("raw %d = h264 %d + encoder_busy %d + encoder_skipped %d + too_large %d + h264 pool_exhausted %d + in flight %d",
		st.RawFrames, st.H264Frames, st.EncoderBusy, st.EncoderSkipped, st.H264Dropped, h264.DroppedExhausted, st.RawFrames-accounted)
	require.LessOrEqual(t, accounted, st.RawFrames)
	// In flight at the stop: the encoder's queue, the frame it encodes,
	// one in h264parse and the access units in the H.264 appsink's queue
	// (max-buffers=4) that its pump had not taken.
	const inFlight = encSrcQueue + 1 + 1 + 4
	require.LessOrEqual(t, st.RawFrames-accounted, uint64(inFlight), "only frames in flight at the stop are not accounted for")
}
