package streamer

import "time"

// maxJump is how far a frame's timestamp may stray from where the
// wall-clock time since the previous frame puts it before the timeline is
// re-anchored: beyond it the producer's clock is not the one we followed
// (the producer restarted, or its pipeline did).
const maxJump = int64(time.Second)

// defaultFrameDur is assumed when the producer gives no duration.
const defaultFrameDur = int64(time.Second / 30)

// frameTimes are a frame's times as the producer gave them, in ns: pts and
// dts on the pipeline clock (-1: unknown), dur (-1: unknown) and clock, a
// CLOCK_MONOTONIC time of the frame (its capture, else its receipt).
type frameTimes struct {
	pts, dts, dur, clock int64
}

// timeline maps producer timestamps onto the streamer's own timeline, which
// never goes backwards and keeps advancing with real time across producer
// restarts. Viewers' RTP timestamps come from it, so a viewer that stays
// connected while the producer restarts sees one continuous stream: its RTP
// clock jumps forward by the outage, as if frames had simply not been sent,
// and never back.
//
// The mapping is an offset added to the producer's timestamps. It is chosen
// once at the first frame, and again whenever a frame's decode time is not
// after the previous one or is more than maxJump away from where the
// CLOCK_MONOTONIC interval since the previous frame puts it; then the frame
// is placed at that interval (at least one frame duration) after the
// previous frame. Frames the producer skipped for us (a discontinuity with
// continuous PTS) keep the offset.
type timeline struct {
	started bool
	shift   int64 // added to producer PTS/DTS
	lastDTS int64 // output decode time of the previous frame
	lastClk int64 // clock of the previous frame
	lastDur int64 // duration of the previous frame
	anchors int   // how often the offset was chosen (for logs and tests)
}

// next returns the output PTS and DTS of a frame.
func (t *timeline) next(ft frameTimes) (pts, dts int64) {
	pts, dts = ft.pts, ft.dts
	if pts < 0 {
		pts = ft.clock
	}
	if dts < 0 {
		dts = pts
	}
	dur := ft.dur
	if dur <= 0 {
		dur = t.lastDur
	}
	if dur <= 0 {
		dur = defaultFrameDur
	}
	switch {
	case !t.started:
		t.started = true
		t.shift = -dts
		t.anchors++
	default:
		elapsed := ft.clock - t.lastClk
		if ft.clock <= 0 || t.lastClk <= 0 || elapsed <= 0 {
			elapsed = dur
		}
		expected := t.lastDTS + elapsed
		out := dts + t.shift
		if out <= t.lastDTS || out-expected > maxJump || expected-out > maxJump {
			if elapsed < dur {
				expected = t.lastDTS + dur
			}
			t.shift = expected - dts
			t.anchors++
		}
	}
	t.lastDTS = dts + t.shift
	t.lastClk = ft.clock
	t.lastDur = dur
	return pts + t.shift, dts + t.shift
}
