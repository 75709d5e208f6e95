package gst_test

import (
	"errors"
	"os"
	"testing"

	gogst "github.com/go-gst/go-gst/gst"
	"github.com/stretchr/testify/require"

	fhgst "github.com/framehub/framehub/internal/gst"
)

// watchRig is appsrc ! appsink with a SampleWatch on the appsink: the test
// pushes samples of chosen caps and content, the watch sees them on the
// appsink's streaming thread.
type watchRig struct {
	t    *testing.T
	pipe *fhgst.Pipeline
	src  *fhgst.Element
	sink *fhgst.Element
	w    *fhgst.SampleWatch
}

func newWatchRig(t *testing.T) *watchRig {
	t.Helper()
	fhgst.Init()
	pipe, err := fhgst.ParseLaunch("appsrc name=src format=time ! appsink name=sink sync=false max-buffers=0")
	require.NoError(t, err)
	r := &watchRig{t: t, pipe: pipe, src: pipe.Element("src"), sink: pipe.Element("sink")}
	require.NotNil(t, r.src)
	require.NotNil(t, r.sink)
	r.w, err = r.sink.WatchSamples()
	require.NoError(t, err)
	require.NoError(t, pipe.Go().SetState(gogst.StatePlaying))
	t.Cleanup(r.close)
	return r
}

func (r *watchRig) close() {
	_ = r.pipe.Go().SetState(gogst.StateNull)
	require.NoError(r.t, r.w.Close())
	require.ErrorIs(r.t, r.w.Wait(), os.ErrClosed)
	r.src.Unref()
	r.sink.Unref()
	r.pipe.Dispose()
	r.pipe.Unref()
}

// push queues a one-byte buffer holding v, with caps.
func (r *watchRig) push(v byte, caps string) {
	b := fhgst.NewTestSystemBuffer([]byte{v})
	s := fhgst.NewTestSample(b, caps)
	b.Unref()
	require.Equal(r.t, 0, r.src.PushSample(s), "GST_FLOW_OK")
	s.Unref()
}

// pull waits for the watch and returns the content of the next sample, or
// -1 when there is none; the sample stays with the caller for SetIdle.
func (r *watchRig) pull() (int, *fhgst.Sample) {
	require.NoError(r.t, r.w.Wait())
	s := r.w.Pull()
	if s == nil {
		return -1, nil
	}
	var b [1]byte
	require.Equal(r.t, 1, s.Extract(b[:]))
	return int(b[0]), s
}

const (
	capsA = "video/x-raw,format=NV12,width=64,height=48,framerate=30/1"
	capsB = "video/x-raw,format=NV12,width=32,height=24,framerate=30/1"
)

// TestWatchIdle checks what lets a producer at rest stay asleep: while
// idle, the streaming thread drops samples with the caps Go saw last and
// counts them, waking the waiting goroutine only every 30; a sample with
// other caps ends idling and is the next one pulled; SetIdle(nil) ends it
// from another goroutine; and the watch is harmless once closed.
func TestWatchIdle(t *testing.T) {
	r := newWatchRig(t)

	r.push(1, capsA)
	v, s := r.pull()
	require.Equal(t, 1, v)
	r.w.SetIdle(s)
	s.Unref()

	// 29 dropped without a wake-up; the 30th wakes, with nothing to pull.
	for i := range 30 {
		r.push(byte(10+i), capsA)
	}
	v, _ = r.pull()
	require.Equal(t, -1, v, "dropped samples are not pulled")
	require.Equal(t, uint64(30), r.w.TakeUnwatched())
	require.Zero(t, r.w.TakeUnwatched(), "a count is taken once")

	// Other caps: kept for Go, and idling ends.
	r.push(2, capsB)
	v, s = r.pull()
	require.Equal(t, 2, v, "the sample with new caps is pulled")
	s.Unref()
	r.push(3, capsB)
	v, s = r.pull()
	require.Equal(t, 3, v, "not idle any more: the appsink queues it")
	require.Zero(t, r.w.TakeUnwatched())

	// Idle again (30 dropped: the wake-up says the streaming thread is
	// through them), then ended from another goroutine, as a consumer's
	// subscription does: the next sample reaches Go.
	r.w.SetIdle(s)
	s.Unref()
	for i := range 30 {
		r.push(byte(40+i), capsB)
	}
	v, _ = r.pull()
	require.Equal(t, -1, v)
	done := make(chan struct{})
	go func() {
		r.w.SetIdle(nil)
		close(done)
	}()
	<-done
	r.push(5, capsB)
	v, s = r.pull()
	require.Equal(t, 5, v)
	s.Unref()
	require.Equal(t, uint64(30), r.w.TakeUnwatched())
}

// TestWatchClosed: after Close the waiting goroutine's Wait fails, and the
// watch's other methods do nothing (another goroutine may still call
// SetIdle on the watch of a pipeline run that ended).
func TestWatchClosed(t *testing.T) {
	fhgst.Init()
	pipe, err := fhgst.ParseLaunch("appsrc name=src ! appsink name=sink")
	require.NoError(t, err)
	sink := pipe.Element("sink")
	src := pipe.Element("src")
	w, err := sink.WatchSamples()
	require.NoError(t, err)
	require.NoError(t, w.Close())
	err = w.Wait()
	require.True(t, errors.Is(err, os.ErrClosed), "Wait after Close: %v", err)
	require.Nil(t, w.Pull())
	w.SetIdle(nil)
	require.Zero(t, w.TakeUnwatched())
	src.Unref()
	sink.Unref()
	pipe.Dispose()
	pipe.Unref()
}
