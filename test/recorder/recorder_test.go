package recorder_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/internal/testutil"
)

// checkContinuous checks that segs hold the producer's frames from the
// first recorded to the last, each exactly once, in order, with the
// producer's timestamps (from the reference consumer, which saw them all),
// and that every segment starts with a keyframe.
func checkContinuous(t *testing.T, ref *reference, segs []segFile) (first, last uint64) {
	t.Helper()
	var prev uint64
	for _, s := range segs {
		require.True(t, s.seg.Fragments[0].Samples[0].Sync, "%s starts with a keyframe", s.path)
		base := s.seg.Info.BaseNS
		i := 0
		for _, f := range s.seg.Fragments {
			for j, smp := range f.Samples {
				seq := f.Info.FirstSeq + uint64(j)
				if prev != 0 {
					require.Equal(t, prev+1, seq, "%s: frame %d follows %d: no gap, no duplicate", s.path, seq, prev)
				} else {
					first = seq
				}
				prev = seq
				rf, ok := ref.get(seq)
				require.True(t, ok, "the reference consumer saw frame %d", seq)
				require.Equal(t, rf.key, smp.Sync, "%s frame %d: keyframe flag", s.path, seq)
				// The file's times are ticks of 90 kHz from the segment's
				// origin, each rounded down.
				pts := base + int64(smp.DTS+uint64(smp.CTO))*int64(time.Second)/90000
				require.InDelta(t, rf.pts, pts, float64(2*time.Second/90000), "%s frame %d: PTS", s.path, seq)
				i++
			}
		}
	}
	return first, prev
}

// TestSegmentsPlay: segments of 2 s (a keyframe every second) each start
// on a keyframe, last 2 s, play end to end, and follow each other without
// a gap or an overlap.
func TestSegmentsPlay(t *testing.T) {
	needGst(t)
	dir := testutil.ShortDir(t)
	p := startProducer(t, dir)
	ref := watch(t, p)
	r := startRecorder(t, p, dir, "-segment", "2s")
	recDir := filepath.Join(dir, "rec")
	testutil.WaitUntil(t, waitTimeout, func() bool { return len(listSegments(t, recDir, false)) >= 3 }, "3 closed segments")
	// The recorder counts a segment just after renaming it to .mp4: the
	// third file can be seen before it is counted.
	var m map[string]float64
	testutil.WaitUntil(t, waitTimeout, func() bool {
		m = r.metrics()
		return sum(m, "framehub_recorder_segments_total") >= 3
	}, "3 segments counted")
	require.Zero(t, sum(m, "framehub_recorder_dropped_gops_total"))
	require.Zero(t, sum(m, "framehub_recorder_gaps_total"))
	r.Stop(t)

	segs := listSegments(t, recDir, true)
	require.GreaterOrEqual(t, len(segs), 4, "the 3 full ones, and the one closed at stop")
	for _, s := range segs {
		require.True(t, strings.HasSuffix(s.path, ".mp4"), "%s: everything closed at stop", s.path)
		name := filepath.Base(s.path)
		start := time.Unix(0, s.seg.Info.StartReal).UTC()
		require.Equal(t, start.Format("2006-01-02T15-04-05.000Z")+".mp4", name, "named by its first frame's capture time")
		require.Equal(t, start.Format("2006-01-02"), filepath.Base(filepath.Dir(s.path)))
	}
	checkContinuous(t, ref, segs)
	late := 0
	for i, s := range segs[:3] {
		checkPlays(t, s)
		// Each lasts 2 s: it ends at the first keyframe at or after 2 s. The
		// encoder's keyframes come every 30 frames, 1 s; when it dropped an
		// input frame (a busy machine) they come that much later, and the
		// recorder asks for one when it is two frames late.
		span := time.Duration(segs[i+1].seg.Info.BaseNS - s.seg.Info.BaseNS)
		n := len(s.seqs())
		t.Logf("%s: %d frames, %v", filepath.Base(s.path), n, span)
		require.GreaterOrEqual(t, span, 2*time.Second-frame/2, "%s", s.path)
		require.LessOrEqual(t, n, 60+4, "%s: %v", s.path, span)
		for j, smp := range s.seg.Samples() {
			if j > 0 && smp.Sync {
				require.Less(t, time.Duration(smp.DTS)*time.Second/90000, 2*time.Second-frame/2, "%s: cut at the first keyframe after 2 s", s.path)
			}
		}
		if span > 2*time.Second+frame/2 {
			late++
		}
		// Timestamps are monotonic across the boundary.
		require.Greater(t, segs[i+1].seg.Info.BaseNS, s.lastDTS())
	}
	t.Logf("%d of 3 segments longer than 2 s because the encoder dropped input frames", late)
}

// TestKillRecoversSegment: a recorder killed with SIGKILL mid-segment
// leaves a segment that plays up to its last fragment; the producer only
// sees a consumer go (no eviction, the other consumer loses nothing); a
// restarted recorder finalises the segment and starts the next one on a
// keyframe. The producer keeps no replay buffer here, so the restart
// cannot resume the segment (TestZeroGapRestart does).
func TestKillRecoversSegment(t *testing.T) {
	needGst(t)
	dir := testutil.ShortDir(t)
	p := startProducer(t, dir, "-h264-replay", "0")
	ref := watch(t, p)
	r := startRecorder(t, p, dir, "-segment", "60s", "-fragment", "500ms")
	recDir := filepath.Join(dir, "rec")
	testutil.WaitUntil(t, waitTimeout, func() bool {
		segs := listSegments(t, recDir, true)
		return len(segs) == 1 && len(segs[0].seg.Fragments) >= 4
	}, "4 fragments written")
	r.Kill()

	segs := listSegments(t, recDir, true)
	require.Len(t, segs, 1)
	crashed := segs[0]
	require.True(t, strings.HasSuffix(crashed.path, ".mp4.part"))
	// The crashed segment, as the crash left it, plays up to its last
	// fragment, and knows its duration.
	d := discover(t, crashed.path)
	require.InDelta(t, (time.Duration(crashed.seg.End()) * time.Second / 90000).Seconds(), d.duration.Seconds(), frame.Seconds())
	require.Equal(t, len(crashed.seqs()), decodeFrames(t, crashed.path, 320, 240))

	// The producer saw a consumer go, nothing else.
	testutil.WaitUntil(t, waitTimeout, func() bool { return sum(p.metrics(), "framehub_producer_consumers", `stream="h264"`) == 1 }, "recorder gone")
	pm := p.metrics()
	require.Zero(t, sum(pm, "framehub_producer_evictions_total"))
	require.Zero(t, sum(pm, "framehub_producer_dropped_total", `reason="pool_exhausted"`), "no frame dropped at the source")

	r = startRecorder(t, p, dir, "-segment", "60s", "-fragment", "500ms")
	final := strings.TrimSuffix(crashed.path, ".part")
	testutil.WaitUntil(t, waitTimeout, func() bool {
		segs := listSegments(t, recDir, true)
		return len(segs) == 2 && len(segs[1].seg.Fragments) >= 2
	}, "the crashed segment finalised and a new one written")
	r.Stop(t)

	segs = listSegments(t, recDir, true)
	require.Len(t, segs, 2)
	require.Equal(t, final, segs[0].path)
	require.Equal(t, crashed.seqs(), segs[0].seqs(), "every durable frame kept")
	require.Equal(t, segs[0].seg.End(), segs[0].seg.Duration)
	checkPlays(t, segs[0])
	next := segs[1]
	require.True(t, next.seg.Fragments[0].Samples[0].Sync, "the next segment starts on a keyframe")
	require.Greater(t, next.seqs()[0], crashed.seqs()[len(crashed.seqs())-1])
	checkPlays(t, next)
	require.Contains(t, r.Log.String(), "interrupted segment finalised")

	ref.mu.Lock()
	defer ref.mu.Unlock()
	require.NoError(t, ref.err)
	require.Zero(t, ref.disconts, "the other consumer lost nothing")
	require.Zero(t, ref.gaps)
}

// TestZeroGapRestart: a recorder killed with SIGKILL and restarted 3 s
// later resumes exactly after the last frame it made durable: every frame
// the producer encoded meanwhile is recorded, once, with its timestamps;
// the interrupted segment simply goes on.
func TestZeroGapRestart(t *testing.T) {
	needGst(t)
	dir := testutil.ShortDir(t)
	p := startProducer(t, dir)
	ref := watch(t, p)
	r := startRecorder(t, p, dir, "-segment", "4s")
	recDir := filepath.Join(dir, "rec")
	testutil.WaitUntil(t, waitTimeout, func() bool {
		segs := listSegments(t, recDir, true)
		return len(segs) == 2 && len(segs[1].seg.Fragments) >= 1
	}, "a segment closed and the next one written to")
	r.Kill()
	killedAt := ref.lastSeq()
	testutil.WaitUntil(t, waitTimeout, func() bool { return ref.lastSeq() >= killedAt+90 }, "3 s of frames without the recorder")

	r = startRecorder(t, p, dir, "-segment", "4s")
	restartedAt := ref.lastSeq()
	testutil.WaitUntil(t, waitTimeout, func() bool { return recordedPast(t, recDir, restartedAt+30) }, "recording live again")
	r.Stop(t)

	segs := listSegments(t, recDir, true)
	first, last := checkContinuous(t, ref, segs)
	t.Logf("frames %d..%d in %d segments; killed at %d, restarted at %d", first, last, len(segs), killedAt, restartedAt)
	require.Less(t, first, killedAt)
	require.Greater(t, last, restartedAt)
	require.Contains(t, r.Log.String(), "resuming the segment interrupted by a crash")
	pm := p.metrics()
	require.Zero(t, sum(pm, "framehub_producer_dropped_total", `stream="h264"`, `reason="pool_exhausted"`))
	require.Zero(t, sum(pm, "framehub_producer_evictions_total"))
	for _, s := range segs {
		checkPlays(t, s)
	}
}

// TestEventMode: an event records the pre-event seconds kept in memory and
// the post-event seconds; nothing else is recorded.
func TestEventMode(t *testing.T) {
	needGst(t)
	dir := testutil.ShortDir(t)
	p := startProducer(t, dir)
	ref := watch(t, p)
	r := startRecorder(t, p, dir, "-mode", "event", "-pre", "2s", "-post", "2s")
	from := ref.lastSeq()
	testutil.WaitUntil(t, waitTimeout, func() bool { return ref.lastSeq() >= from+75 }, "2.5 s of frames for the pre-event buffer")

	// The event happens between before and after, on CLOCK_MONOTONIC: the
	// producer's capture clock too.
	// Without the admin token (another local user, a web page) the event
	// is refused.
	event := []byte(`{"label": "test", "pre_seconds": 2}`)
	code, body, err := postAuth(r.admin, "/record/event", "", event)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, code, "%s", body)
	at, before := time.Now(), clock.Mono()
	code, body, err = postAuth(r.admin, "/record/event", filepath.Join(dir, "admin.token"), event)
	after := clock.Mono()
	require.NoError(t, err)
	require.Equal(t, 200, code, "%s", body)
	var resp struct {
		File        string    `json:"file"`
		Start       time.Time `json:"start"`
		PreSeconds  float64   `json:"pre_seconds"`
		PostSeconds float64   `json:"post_seconds"`
	}
	require.NoError(t, json.Unmarshal(body, &resp), "%s", body)
	require.Contains(t, resp.File, "-event-test.mp4")
	require.InDelta(t, 2.0, resp.PreSeconds, 1.1, "%s", body)
	require.Equal(t, 2.0, resp.PostSeconds)
	require.WithinDuration(t, at.Add(-2*time.Second), resp.Start, 1500*time.Millisecond)

	testutil.WaitUntil(t, waitTimeout, func() bool { _, err := os.Stat(resp.File); return err == nil }, "event file closed")
	segs := listSegments(t, filepath.Join(dir, "rec"), true)
	require.Len(t, segs, 1, "only the event is recorded")
	s := segs[0]
	require.Equal(t, resp.File, s.path)
	frags := s.seg.Fragments
	firstMono := frags[0].Info.FirstMono
	lastMono := frags[len(frags)-1].Info.LastMono
	gop := int64(time.Second)
	pre, post := int64(2*time.Second), int64(2*time.Second)
	t.Logf("event at %.3f..%.3f s, recorded %.3f..%.3f s", float64(before)/1e9, float64(after)/1e9, float64(firstMono)/1e9, float64(lastMono)/1e9)
	require.LessOrEqual(t, firstMono, after-pre, "the pre-event seconds are recorded")
	require.GreaterOrEqual(t, firstMono, before-pre-gop-int64(frame), "from the keyframe just before them")
	require.GreaterOrEqual(t, lastMono, before+post-int64(3*frame), "the post-event seconds are recorded")
	require.LessOrEqual(t, lastMono, after+post)
	checkContinuous(t, ref, segs)
	checkPlays(t, s)
	r.Stop(t)
}

// TestProducerRestart: when the producer restarts, the recorder redials and
// asks for every frame captured after the last one it received: the new
// producer's frames from its very first one are recorded (replayed from its
// buffer when the recorder comes back after they were published), in a new
// segment (the timeline restarted).
func TestProducerRestart(t *testing.T) {
	needGst(t)
	dir := testutil.ShortDir(t)
	p := startProducer(t, dir)
	r := startRecorder(t, p, dir, "-segment", "60s", "-fragment", "500ms")
	recDir := filepath.Join(dir, "rec")
	testutil.WaitUntil(t, waitTimeout, func() bool {
		segs := listSegments(t, recDir, true)
		return len(segs) == 1 && len(segs[0].seg.Fragments) >= 2
	}, "recording")
	p.Stop(t)
	p = startProducer(t, dir)
	testutil.WaitUntil(t, waitTimeout, func() bool {
		segs := listSegments(t, recDir, true)
		return len(segs) == 2 && len(segs[1].seg.Fragments) >= 2
	}, "recording from the new producer")
	m := r.metrics()
	require.GreaterOrEqual(t, sum(m, "framehub_recorder_reconnects_total"), 1.0)
	r.Stop(t)

	segs := listSegments(t, recDir, true)
	require.Len(t, segs, 2)
	require.True(t, strings.HasSuffix(segs[0].path, ".mp4"))
	got := segs[1].seqs()
	require.Equal(t, uint64(1), got[0], "from the new producer's first frame")
	for i, s := range got {
		require.Equal(t, uint64(i+1), s)
	}
	for _, s := range segs {
		require.True(t, s.seg.Fragments[0].Samples[0].Sync)
		checkPlays(t, s)
	}
}
