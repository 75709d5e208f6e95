package gstelem_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/cuda/standin"
	"github.com/framehub/framehub/internal/testutil"
)

// TestSrcZeroCopy: framehubsrc ! fakesink at 30 fps copies nothing. Every
// buffer fakesink gets is fd memory whose fd is one of the producer's
// memfd surfaces, read through a mapping of that same memfd (the bytes are
// the producer's pages), and carries the frame the producer stamped under
// that sequence number; framehubsrc's stats count no copy. Its PTS is the
// frame's capture time in the pipeline's running time: a little before
// fakesink gets it.
func TestSrcZeroCopy(t *testing.T) {
	dir := testutil.ShortDir(t)
	sock := filepath.Join(dir, "p.sock")
	prod := startProducer(t, sock, "-source", "synthetic", "-width", "640", "-height", "480", "-fps", "30")
	const n = 90
	w := testutil.StartCPUWindow(t)
	p := launch(t, fmt.Sprintf("framehubsrc socket=%s num-buffers=%d ! fakesink name=sink", sock, n), true)
	require.NoError(t, p.wait(), "gst-launch-1.0")
	starved := w.Starved()
	bufs, stats := p.traced("sink")
	require.Len(t, bufs, n)

	surfaces := memfdInodes(t, prod.Cmd.Process.Pid, "framehub")
	require.NotEmpty(t, surfaces, "the producer holds no memfd surface")
	for _, b := range bufs {
		require.Equal(t, "video/x-raw", b.Caps)
		require.NotEmpty(t, b.Mems, "seq %d", b.Seq)
		for _, m := range b.Mems {
			require.True(t, m.FD, "seq %d: not fd memory", b.Seq)
			require.True(t, surfaces[m.Ino], "seq %d: fd inode %d is none of the producer's surfaces %v", b.Seq, m.Ino, surfaces)
			require.Equal(t, m.Ino, m.MapIno, "seq %d: the bytes are not read from the surface's memfd", b.Seq)
		}
		require.Equal(t, "ok", b.Stamp, "seq %d", b.Seq)
		require.GreaterOrEqual(t, b.PTS, int64(0), "seq %d: no PTS", b.Seq)
		// Captured (published) before fakesink got it, and within the
		// producer's publish-to-receipt time, generously bounded.
		age := time.Duration(b.RT - b.PTS)
		require.True(t, age >= 0 && age < 200*time.Millisecond, "seq %d: PTS %v, running time at the sink %v", b.Seq, time.Duration(b.PTS), time.Duration(b.RT))
	}
	require.True(t, bufs[0].Discont, "the first buffer follows a gap")
	require.Zero(t, stat(t, stats, "framehubsrc0", "copies"))
	require.Equal(t, float64(n), stat(t, stats, "framehubsrc0", "frames"))
	require.Zero(t, stat(t, stats, "framehubsrc0", "leases-held"), "buffers still alive after the pipeline stopped")

	fps := rate(bufs)
	t.Logf("%d buffers at %.1f fps, %v dropped by the producer", len(bufs), fps, stat(t, stats, "framehubsrc0", "dropped"))
	if fps < 27 || fps > 33 {
		testutil.SkipUnjudged(t, starved, "framehubsrc's rate, %.1f fps against the producer's 30", fps)
	}
	require.InDelta(t, 30, fps, 3)
}

// TestSrcH264Decodes: framehubsrc stream=h264 ! h264parse ! avdec_h264
// decodes every access unit without an error or a warning: the element
// starts at a keyframe (it asks the producer for one) and marks the first
// buffer DISCONT.
func TestSrcH264Decodes(t *testing.T) {
	dir := testutil.ShortDir(t)
	sock := filepath.Join(dir, "p.sock")
	startProducer(t, sock, "-source", "test", "-encoder", "x264enc", "-width", "320", "-height", "240", "-fps", "30", "-gop", "60")
	const n = 60
	p := launch(t, fmt.Sprintf("framehubsrc socket=%s stream=h264 num-buffers=%d ! h264parse ! avdec_h264 ! fakesink name=sink", sock, n), true)
	require.NoError(t, p.wait(), "gst-launch-1.0")
	out := p.out.String()
	require.NotContains(t, out, "WARNING")
	require.NotContains(t, out, "ERROR")
	bufs, stats := p.traced("sink")
	require.Len(t, bufs, n, "decoded frames")
	for _, b := range bufs {
		require.Equal(t, "video/x-raw", b.Caps)
	}
	require.Equal(t, float64(n), stat(t, stats, "framehubsrc0", "frames"))
	t.Logf("passed over %v access units waiting for a keyframe", stat(t, stats, "framehubsrc0", "waited-for-keyframe"))
}

// TestSrcTeeHoldsLease: with a tee after framehubsrc, a buffer's lease
// lasts until both branches dropped it. One branch drops each buffer at
// once, the other holds four in a queue; the producer reuses a released
// surface for its very next frame (its pool is a LIFO stack), so a lease
// ended when the fast branch dropped the buffer would show at the slow
// sink as a stamp of another frame. None does, and framehubsrc counts the
// buffers the queue holds among its leases.
func TestSrcTeeHoldsLease(t *testing.T) {
	dir := testutil.ShortDir(t)
	sock := filepath.Join(dir, "p.sock")
	startProducer(t, sock, "-source", "synthetic", "-width", "640", "-height", "480", "-fps", "30", "-pool-max", "14")
	const n = 60
	p := launch(t, fmt.Sprintf("framehubsrc socket=%s num-buffers=%d max-in-flight=6 ! tee name=t "+
		"t. ! queue ! fakesink name=fast "+
		"t. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 min-threshold-buffers=4 ! fakesink name=slow", sock, n), true)
	require.NoError(t, p.wait(), "gst-launch-1.0")
	fast, _ := p.traced("fast")
	slow, stats := p.traced("slow")
	require.Len(t, fast, n)
	require.Len(t, slow, n)
	var maxHeld int64
	for _, b := range slow {
		require.Equal(t, "ok", b.Stamp, "seq %d at the slow branch: its surface was reused while the queue held it", b.Seq)
		maxHeld = max(maxHeld, b.Held)
	}
	require.GreaterOrEqual(t, maxHeld, int64(4), "leases held while the slow queue holds 4 buffers")
	require.Equal(t, float64(6), stat(t, stats, "framehubsrc0", "max-in-flight"), "budget granted")
	require.Zero(t, stat(t, stats, "framehubsrc0", "leases-held"))
}

// TestSrcProducerKilled: a producer killed mid-stream ends the stream
// (EOS, a clean exit of gst-launch) with reconnect=false; with
// reconnect=true the element waits for the next producer on the socket and
// goes on, the first buffer from it marked DISCONT.
func TestSrcProducerKilled(t *testing.T) {
	t.Run("eos", func(t *testing.T) {
		dir := testutil.ShortDir(t)
		sock := filepath.Join(dir, "p.sock")
		prod := startProducer(t, sock, "-source", "synthetic", "-width", "320", "-height", "240", "-fps", "30")
		p := launch(t, fmt.Sprintf("framehubsrc socket=%s ! fakesink name=sink", sock), true)
		p.waitBuffers("sink", 15)
		prod.Kill()
		require.NoError(t, p.wait(), "gst-launch-1.0 after the producer was killed")
		require.Contains(t, p.out.String(), "Got EOS from element")
		require.Contains(t, p.out.String(), "The framehub producer went away: end of stream.")
	})
	t.Run("reconnect", func(t *testing.T) {
		dir := testutil.ShortDir(t)
		sock := filepath.Join(dir, "p.sock")
		args := []string{"-source", "synthetic", "-width", "320", "-height", "240", "-fps", "30"}
		prod := startProducer(t, sock, args...)
		p := launch(t, fmt.Sprintf("framehubsrc socket=%s reconnect=true ! fakesink name=sink", sock), true)
		before := len(p.waitBuffers("sink", 15))
		prod.Kill()
		// The socket file stays behind a killed producer; the next one
		// replaces it.
		prod = startProducer(t, sock, args...)
		bufs := p.waitBuffers("sink", before+30)
		// The first producer's surfaces are closed: every memfd surface
		// gst-launch holds now is the second producer's.
		held := memfdInodes(t, p.cmd.Process.Pid, "framehub")
		current := memfdInodes(t, prod.Cmd.Process.Pid, "framehub")
		require.NotEmpty(t, held)
		for ino := range held {
			require.True(t, current[ino], "gst-launch still holds surface %d of the killed producer", ino)
		}
		first := -1
		for i := 1; i < len(bufs); i++ {
			if bufs[i].Seq < bufs[i-1].Seq { // the new producer counts from 1 again
				first = i
				break
			}
		}
		require.Positive(t, first, "no buffer of the second producer")
		require.True(t, bufs[first].Discont, "the first buffer after the reconnection is DISCONT")
		for _, b := range bufs {
			require.Equal(t, "ok", b.Stamp, "seq %d", b.Seq)
		}
		p.stop()
		_, stats := p.traced("sink")
		require.Equal(t, float64(1), stat(t, stats, "framehubsrc0", "reconnects"))
		require.Contains(t, p.out.String(), "Lost the framehub producer; reconnecting.")
	})
}

// TestSrcErrors: what the producer refuses, and why, reaches the bus as an
// error naming the code and the producer's reason; so does an eviction.
func TestSrcErrors(t *testing.T) {
	dir := testutil.ShortDir(t)
	sock := filepath.Join(dir, "p.sock")
	startProducer(t, sock, "-source", "synthetic", "-width", "320", "-height", "240", "-fps", "30")
	cases := []struct {
		name, desc, want string
	}{
		{"unknown stream", "framehubsrc socket=%s stream=depth ! fakesink",
			`unknown_stream (code 2): no stream "depth" (streams: [raw])`},
		{"bad name", "framehubsrc socket=%s consumer-name=" + strings.Repeat("n", 65) + " ! fakesink",
			"must be at most 64 bytes of printable UTF-8"},
		{"no producer", "framehubsrc socket=" + filepath.Join(dir, "none.sock") + "%.0s ! fakesink",
			"connect to " + filepath.Join(dir, "none.sock") + ": No such file or directory"},
		// A queue that holds 10 buffers of a budget of 4 keeps every lease
		// past max-hold: the producer evicts the consumer.
		{"evicted", "framehubsrc socket=%s max-in-flight=4 max-hold=300 ! queue min-threshold-buffers=10 ! fakesink",
			"max_hold (code 6): a lease was held longer than max_hold"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := launch(t, fmt.Sprintf(c.desc, sock), false)
			err := p.wait()
			require.Error(t, err, "gst-launch-1.0 must fail")
			require.Contains(t, p.out.String(), c.want)
		})
	}
}

// TestSrcRefusesCUDA: a stream of cuda surfaces (GPU memory, here the
// stand-in libcuda's) is refused with a bus error that says so.
func TestSrcRefusesCUDA(t *testing.T) {
	standin.Use(t)
	dir := testutil.ShortDir(t)
	sock := filepath.Join(dir, "p.sock")
	startProducer(t, sock, "-source", "gpu", "-width", "320", "-height", "240", "-fps", "30", "-pool-max", "8")
	p := launch(t, fmt.Sprintf("framehubsrc socket=%s ! fakesink", sock), false)
	require.Error(t, p.wait())
	require.Contains(t, p.out.String(), "cuda surfaces")
	require.Contains(t, p.out.String(), "framehubsrc takes CPU memory only")
}
