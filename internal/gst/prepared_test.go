package gst_test

import (
	"errors"
	"os"
	"testing"
	"time"

	gogst "github.com/go-gst/go-gst/gst"
	"github.com/stretchr/testify/require"

	fhgst "github.com/framehub/framehub/internal/gst"
)

// poolRig is videotestsrc ! NV12 caps ! appsink, the appsink answering the
// ALLOCATION query with framehub's memfd pool of min..max buffers, and a
// SampleWatch on it.
type poolRig struct {
	t    *testing.T
	pipe *fhgst.Pipeline
	sink *fhgst.Element
	w    *fhgst.SampleWatch
	done bool
}

func newPoolRig(t *testing.T, src string, min, max int) *poolRig {
	t.Helper()
	fhgst.Init()
	pipe, err := fhgst.ParseLaunch(src + " ! video/x-raw,format=NV12,width=64,height=48,framerate=30/1" +
		" ! appsink name=sink sync=false max-buffers=0 enable-last-sample=false")
	require.NoError(t, err)
	r := &poolRig{t: t, pipe: pipe, sink: pipe.Element("sink")}
	require.NotNil(t, r.sink)
	require.NoError(t, r.sink.InstallAllocationProbe(min, max))
	r.w, err = r.sink.WatchSamples()
	require.NoError(t, err)
	require.NoError(t, pipe.Go().SetState(gogst.StatePlaying))
	t.Cleanup(r.stop)
	return r
}

// stop tears the pipeline down as producer/media's run does.
func (r *poolRig) stop() {
	if r.done {
		return
	}
	r.done = true
	_ = r.pipe.Go().SetState(gogst.StateNull)
	require.NoError(r.t, r.w.Close())
	require.ErrorIs(r.t, r.w.Wait(), os.ErrClosed)
	r.pipe.Dispose()
	r.sink.Dispose()
	r.sink.Unref()
	r.pipe.Unref()
}

// next returns the next sample, failing the test when none comes within
// 5 s (a source stuck waiting for a buffer).
func (r *poolRig) next() *fhgst.Sample {
	r.t.Helper()
	got := make(chan *fhgst.Sample, 1)
	go func() {
		for {
			if s := r.w.Pull(); s != nil {
				got <- s
				return
			}
			if r.w.Wait() != nil {
				got <- nil
				return
			}
		}
	}()
	select {
	case s := <-got:
		require.NotNil(r.t, s, "watch closed")
		return s
	case <-time.After(5 * time.Second):
		r.t.Fatal("no sample within 5 s: the source is stuck")
		return nil
	}
}

// TestWatchPrepared: once prepared, the streaming thread pulls, describes
// and references every sample of framehub's pool with the prepared caps,
// in order, also those left in the appsink while the ring was full; the
// descriptions are those Describe gives; and every reference given back
// through the pool (the samples', the buffers') is dropped, at the latest
// when the pipeline stops, so that each memory is finalized.
func TestWatchPrepared(t *testing.T) {
	const frames = 12
	log := &freedLog{}
	obs := fhgst.NewObserver(log)
	defer obs.Delete()
	// Not live: the source runs ahead and queues every frame in the
	// appsink, more than the ring holds. A pool of frames+2 never blocks
	// it.
	r := newPoolRig(t, "videotestsrc num-buffers=12", 2, frames+2)

	first := r.next()
	require.False(t, first.PreparedCaps(), "before Prepare, samples are plain")
	vi := first.VideoInfo()
	defer vi.Free()
	d := first.Describe(vi, obs)
	require.True(t, d.Ours)
	require.True(t, d.Mems[0].Fresh)
	require.Equal(t, fhgst.KindMemfd, d.Kind)
	fresh := 1
	r.w.Prepare(first, vi, obs)
	first.Unref()

	last := d.PTS
	var held []*fhgst.Buffer
	for i := 1; i < frames; i++ {
		s := r.next()
		require.True(t, s.PreparedCaps(), "sample %d was prepared", i)
		d := s.Describe(nil, nil) // a prepared sample's own description
		require.True(t, d.Ours, "sample %d", i)
		require.Equal(t, fhgst.KindMemfd, d.Kind)
		require.Equal(t, 2, d.NPlanes)
		require.Equal(t, frames+2, d.PoolMax)
		require.Greater(t, d.PTS, last, "sample %d in order", i)
		last = d.PTS
		if d.Mems[0].Fresh {
			fresh++
		}
		// Half the buffers stay leased past their sample, as consumers do.
		if i%2 == 0 {
			held = append(held, s.BufferRef())
		}
		s.Unref()
	}
	r.stop()
	for _, b := range held {
		b.Unref()
	}
	require.Len(t, log.list(), fresh, "every memory registered was finalized: nothing stayed in the pool's ring")
}

// TestPreparedPoolNeverStuck: when every buffer of the pool is held the
// source waits in the pool's acquire; a buffer given back then goes
// straight to the pool (the ring is blocked while someone waits), so the
// source goes on. Without that it would wait for a drain that only its
// next acquire makes.
func TestPreparedPoolNeverStuck(t *testing.T) {
	r := newPoolRig(t, "videotestsrc", 2, 3)
	first := r.next()
	vi := first.VideoInfo()
	defer vi.Free()
	r.w.Prepare(first, vi, nil)
	var held []*fhgst.Buffer
	held = append(held, first.BufferRef())
	first.Unref()
	for i := 0; i < 60; i++ {
		s := r.next()
		held = append(held, s.BufferRef())
		s.Unref() // the sample's reference goes back through the ring
		if len(held) == 3 {
			// The pool is empty now: let the source block in acquire,
			// then give back the oldest.
			time.Sleep(20 * time.Millisecond)
			held[0].Unref()
			held = held[1:]
		}
	}
	for _, b := range held {
		b.Unref()
	}
}

// TestBusWatch: the watch wakes for a watched message, which Pop then
// has; the others do not stay on the bus; Close ends a pending Wait.
func TestBusWatch(t *testing.T) {
	fhgst.Init()
	pipe, err := fhgst.ParseLaunch("videotestsrc num-buffers=3 ! fakesink")
	require.NoError(t, err)
	defer pipe.Unref()
	bw, err := pipe.WatchBus(gogst.MessageEOS | gogst.MessageError)
	require.NoError(t, err)
	gp := pipe.Go()
	require.NoError(t, gp.SetState(gogst.StatePlaying))

	woke := make(chan error, 1)
	go func() { woke <- bw.Wait() }()
	select {
	case err := <-woke:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("no wake-up for EOS")
	}
	msg := bw.Pop()
	require.NotNil(t, msg, "queued before the wake-up")
	require.Equal(t, gogst.MessageEOS, msg.Type())
	require.Nil(t, bw.Pop())
	require.Nil(t, gp.GetPipelineBus().TimedPopFiltered(0, gogst.MessageAny),
		"the other messages (state changes, stream-start) were dropped as posted")

	go func() { woke <- bw.Wait() }()
	time.Sleep(10 * time.Millisecond)
	require.NoError(t, bw.Close())
	select {
	case err := <-woke:
		require.True(t, errors.Is(err, os.ErrClosed), "Wait after Close: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end Wait")
	}
	require.NoError(t, gp.SetState(gogst.StateNull))
	pipe.Dispose()
}

// TestPreparedCapsChange: only samples with the prepared caps are
// prepared; a caps change reaches Go as a plain sample (which Go then
// prepares for); and a sample prepared before the latest Prepare is not
// reported as having its caps.
func TestPreparedCapsChange(t *testing.T) {
	r := newWatchRig(t)
	pool, err := fhgst.NewTestPool(capsA, 1, 8)
	require.NoError(t, err)
	defer pool.Free()
	push := func(caps string) {
		b := pool.Acquire()
		require.NotNil(t, b)
		s := fhgst.NewTestSample(b, caps)
		b.Unref()
		require.Equal(t, 0, r.src.PushSample(s), "GST_FLOW_OK")
		s.Unref()
	}
	next := func() *fhgst.Sample {
		for {
			if s := r.w.Pull(); s != nil {
				return s
			}
			require.NoError(t, r.w.Wait())
		}
	}

	push(capsA)
	s := next()
	require.False(t, s.PreparedCaps())
	r.w.Prepare(s, nil, nil)
	s.Unref()

	push(capsA)
	s = next()
	require.True(t, s.PreparedCaps(), "the prepared caps")
	require.True(t, s.Describe(nil, nil).Ours)
	s.Unref()

	push(capsB)
	s = next()
	require.False(t, s.PreparedCaps(), "other caps: plain")
	r.w.Prepare(s, nil, nil)
	s.Unref()

	push(capsB)
	push(capsB)
	// Both are prepared (the streaming thread pulled them) before this
	// Prepare starts another generation.
	require.Eventually(t, func() bool { return r.w.TestRingLen() == 2 }, 5*time.Second, time.Millisecond)
	r.w.Prepare(nil, nil, nil)
	for range 2 {
		s = next()
		require.False(t, s.PreparedCaps(), "prepared in an older generation")
		require.True(t, s.Describe(nil, nil).Ours, "its description still holds")
		s.Unref()
	}
	push(capsB)
	s = next()
	require.False(t, s.PreparedCaps(), "nothing prepared after Prepare(nil)")
	s.Unref()
}
