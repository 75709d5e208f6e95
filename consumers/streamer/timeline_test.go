package streamer

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const frame = int64(time.Second / 30)

func TestTimelineContinuousAcrossRestarts(t *testing.T) {
	var tl timeline
	var outs []int64
	emit := func(pts, clock int64) {
		p, d := tl.next(frameTimes{pts: pts, dts: pts, dur: frame, clock: clock})
		require.Equal(t, p, d)
		outs = append(outs, p)
	}
	// A producer whose PTS start at 1000 h (x264's offset).
	base := int64(3600e9 * 1000)
	clock := int64(50e9)
	for i := range int64(10) {
		emit(base+i*frame, clock+i*frame)
	}
	require.Equal(t, int64(0), outs[0], "the timeline starts at 0")
	require.Equal(t, 9*frame, outs[9])
	require.Equal(t, 1, tl.anchors)

	// Frames the producer skipped (Discont, PTS continuous): the offset
	// stays, the gap shows.
	emit(base+15*frame, clock+15*frame)
	require.Equal(t, 15*frame, outs[10])
	require.Equal(t, 1, tl.anchors)

	// The producer restarts 3 s later with PTS from 0: re-anchored at the
	// wall-clock gap, never backwards.
	clock2 := clock + 15*frame + 3e9
	emit(0, clock2)
	require.Equal(t, 15*frame+3e9, outs[11])
	emit(frame, clock2+frame)
	require.Equal(t, 16*frame+3e9, outs[12])
	require.Equal(t, 2, tl.anchors)

	// A restart with a PTS far ahead (another pipeline clock): re-anchored.
	clock3 := clock2 + frame + 500e6
	emit(base*2, clock3)
	require.Equal(t, outs[12]+500e6, outs[13])
	require.Equal(t, 3, tl.anchors)

	for i := 1; i < len(outs); i++ {
		require.Greater(t, outs[i], outs[i-1], "output %d not after %d: %v", i, i-1, outs)
	}
}

func TestTimelineUnknownTimes(t *testing.T) {
	var tl timeline
	// No PTS, no DTS, no duration: the clock is used.
	p0, _ := tl.next(frameTimes{pts: -1, dts: -1, dur: -1, clock: 10e9})
	p1, _ := tl.next(frameTimes{pts: -1, dts: -1, dur: -1, clock: 10e9 + frame})
	require.Equal(t, frame, p1-p0)
	// Two frames with the same clock and PTS: still strictly increasing.
	p2, _ := tl.next(frameTimes{pts: -1, dts: -1, dur: -1, clock: 10e9 + frame})
	require.Greater(t, p2, p1)
}

func TestTimelineBFrames(t *testing.T) {
	var tl timeline
	// Decode order I P B with PTS I=0 P=2 B=1 (frames), DTS increasing.
	p0, d0 := tl.next(frameTimes{pts: 1 * frame, dts: 0, dur: frame, clock: 1e9})
	p1, d1 := tl.next(frameTimes{pts: 3 * frame, dts: frame, dur: frame, clock: 1e9 + frame})
	p2, d2 := tl.next(frameTimes{pts: 2 * frame, dts: 2 * frame, dur: frame, clock: 1e9 + 2*frame})
	require.Equal(t, []int64{0, frame, 2 * frame}, []int64{d0, d1, d2})
	require.Equal(t, []int64{frame, 3 * frame, 2 * frame}, []int64{p0, p1, p2}, "PTS keep their order relative to DTS")
	require.Equal(t, 1, tl.anchors)
}
