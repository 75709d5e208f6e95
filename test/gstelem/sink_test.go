package gstelem_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
)

// summary is examples/consumer-go's -json output.
type summary struct {
	Frames     uint64  `json:"frames"`
	Mismatches uint64  `json:"mismatches"`
	Dropped    uint64  `json:"dropped"`
	FPS        float64 `json:"fps"`
	Stamped    bool    `json:"stamped"`
}

// consumeGo runs consumer-go on sock until it got frames frames and
// returns its summary.
func consumeGo(t *testing.T, sock string, frames int) summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "consumer-go"), "-socket", sock, "-frames", fmt.Sprint(frames),
		"-json", "-reconnect=false")
	var stderr testutil.LockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "consumer-go: %s", stderr.String())
	testutil.CheckNoRace(t, "consumer-go", stderr.String())
	var s summary
	require.NoError(t, json.Unmarshal(out, &s), "consumer-go output %q", out)
	return s
}

const nv12 = "video/x-raw,format=NV12,width=640,height=480,framerate=30/1"

// TestSinkFeedsConsumerGo: videotestsrc ! framehubsink stamp=true serves a
// producer that examples/consumer-go subscribes to. videotestsrc writes
// into the memfd pool framehubsink proposes (no copy), and every frame
// carries the stamp framehubsink wrote with the frame's sequence number,
// which consumer-go verifies on receipt.
func TestSinkFeedsConsumerGo(t *testing.T) {
	dir := testutil.ShortDir(t)
	sock := filepath.Join(dir, "s.sock")
	p := launch(t, fmt.Sprintf("videotestsrc is-live=true ! %s ! framehubsink socket=%s stamp=true", nv12, sock), true)
	waitSocket(t, p, sock)
	w := testutil.StartCPUWindow(t)
	s := consumeGo(t, sock, 90)
	starved := w.Starved()
	require.Equal(t, uint64(90), s.Frames)
	require.True(t, s.Stamped, "consumer-go found no stamp")
	require.Zero(t, s.Mismatches)
	p.stop()
	_, stats := p.traced("")
	frames := stat(t, stats, "framehubsink0", "frames")
	require.GreaterOrEqual(t, frames, float64(90))
	require.Equal(t, frames, stat(t, stats, "framehubsink0", "zero-copy"), "every frame in framehubsink's memfd pool")
	require.Zero(t, stat(t, stats, "framehubsink0", "copied"))
	require.Equal(t, frames, stat(t, stats, "framehubsink0", "stamped"))
	require.Zero(t, stat(t, stats, "framehubsink0", "held-buffers"), "buffers leased after the pipeline stopped")
	t.Logf("consumer-go: %d frames at %.1f fps, %d dropped", s.Frames, s.FPS, s.Dropped)
	if s.FPS < 27 {
		testutil.SkipUnjudged(t, starved, "consumer-go's rate, %.1f fps against videotestsrc's 30", s.FPS)
	}
	require.GreaterOrEqual(t, s.FPS, 27.0)
}

// TestSinkIdlesWithoutConsumer: while nobody is subscribed to its raw
// stream, framehubsink's streaming thread drops the frames itself instead
// of handing each to Go (counted in stats' unwatched); a consumer that
// subscribes ends the idling and gets stamped frames, and when it leaves
// the idling starts again. Every buffer videotestsrc made is accounted
// for: published, dropped, or unwatched.
func TestSinkIdlesWithoutConsumer(t *testing.T) {
	const buffers = 150 // 5 s at 30 fps
	dir := testutil.ShortDir(t)
	sock := filepath.Join(dir, "s.sock")
	p := launch(t, fmt.Sprintf("videotestsrc is-live=true num-buffers=%d ! %s ! framehubsink socket=%s stamp=true", buffers, nv12, sock), true)
	waitSocket(t, p, sock)
	time.Sleep(1500 * time.Millisecond) // nobody subscribed: ~45 frames to drop
	s := consumeGo(t, sock, 30)
	require.Equal(t, uint64(30), s.Frames)
	require.True(t, s.Stamped)
	require.Zero(t, s.Mismatches)
	require.NoError(t, p.wait(), "the pipeline ends at videotestsrc's last buffer:\n%s", testutil.Tail(p.out.String(), 2000))
	_, stats := p.traced("")
	frames, unwatched := stat(t, stats, "framehubsink0", "frames"), stat(t, stats, "framehubsink0", "unwatched")
	dropped := stat(t, stats, "framehubsink0", "dropped")
	t.Logf("published %v, unwatched %v, dropped %v of %d", frames, unwatched, dropped, buffers)
	require.GreaterOrEqual(t, frames, float64(30), "the consumer's frames were published")
	require.GreaterOrEqual(t, unwatched, float64(30), "frames nobody was subscribed to never entered Go")
	require.Equal(t, float64(buffers), frames+unwatched+dropped, "every buffer published, dropped or unwatched")
	require.Equal(t, frames, stat(t, stats, "framehubsink0", "stamped"), "only published frames are stamped")
	require.Zero(t, stat(t, stats, "framehubsink0", "held-buffers"))
}

// TestSinkCopiesBehindTee: behind a tee, upstream never sees framehubsink's
// pool (a tee proposes none), so the frames arrive in videotestsrc's own
// memory: framehubsink copies each once into its copy pool, counts it,
// and consumers get stamped frames all the same.
func TestSinkCopiesBehindTee(t *testing.T) {
	dir := testutil.ShortDir(t)
	sock := filepath.Join(dir, "s.sock")
	p := launch(t, fmt.Sprintf("videotestsrc is-live=true ! %s ! tee name=t ! queue ! framehubsink socket=%s stamp=true  t. ! queue ! fakesink",
		nv12, sock), true)
	waitSocket(t, p, sock)
	s := consumeGo(t, sock, 60)
	require.Equal(t, uint64(60), s.Frames)
	require.True(t, s.Stamped)
	require.Zero(t, s.Mismatches)
	p.stop()
	_, stats := p.traced("")
	frames := stat(t, stats, "framehubsink0", "frames")
	require.GreaterOrEqual(t, frames, float64(60))
	require.Equal(t, frames, stat(t, stats, "framehubsink0", "copied"), "every frame copied once")
	require.Zero(t, stat(t, stats, "framehubsink0", "zero-copy"))
}

// TestSinkRawAndH264OneSocket: two framehubsinks of one pipeline serve two
// streams on one socket, raw NV12 and H.264 (x264enc), named after their
// caps; consumer-go reads the raw one, framehubsrc the H.264 one, which
// avdec_h264 decodes without an error. A consumer's keyframe request
// reaches x264enc as a force-key-unit event.
func TestSinkRawAndH264OneSocket(t *testing.T) {
	dir := testutil.ShortDir(t)
	sock := filepath.Join(dir, "s.sock")
	p := launch(t, fmt.Sprintf("videotestsrc is-live=true ! %s ! framehubsink name=raw socket=%s stamp=true "+
		"videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 "+
		"! x264enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max=300 ! h264parse ! framehubsink name=h264 socket=%s",
		nv12, sock, sock), true)
	waitSocket(t, p, sock)
	s := consumeGo(t, sock, 30)
	require.Equal(t, uint64(30), s.Frames)
	require.True(t, s.Stamped)
	require.Zero(t, s.Mismatches)

	const n = 45
	dec := launch(t, fmt.Sprintf("framehubsrc socket=%s stream=h264 num-buffers=%d ! h264parse ! avdec_h264 ! fakesink name=sink", sock, n), true)
	require.NoError(t, dec.wait(), "the H.264 consumer")
	require.NotContains(t, dec.out.String(), "WARNING")
	bufs, dstats := dec.traced("sink")
	require.Len(t, bufs, n, "decoded frames")
	// x264enc makes a keyframe every 300 frames of its own accord: one
	// within a few frames was asked for.
	waited := stat(t, dstats, "framehubsrc0", "waited-for-keyframe")
	t.Logf("framehubsrc passed over %v access units before a keyframe", waited)
	require.Less(t, waited, float64(15), "access units passed over before a keyframe")
	p.stop()
	_, stats := p.traced("")
	require.Equal(t, "raw", stats["raw"]["stream"])
	require.Equal(t, "h264", stats["h264"]["stream"])
	require.GreaterOrEqual(t, stat(t, stats, "h264", "frames"), float64(n))
}
