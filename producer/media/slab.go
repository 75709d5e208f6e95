package media

import (
	"sync/atomic"

	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
)

// Access units are small (a P-frame at 4 Mbit/s and 30 fps is ~16 KiB) and
// the h264 stream keeps the last H264Replay seconds of them (900 at 30 s)
// for consumers that replay. One surface per access unit would pin 900
// surfaces, 900 fds per consumer and a pool sized for it; so access units
// are packed into slabs: one pool surface receives access units at
// increasing offsets until the next one does not fit, and goes back to the
// pool once every access unit in it has been freed (no lease, no replay
// hold) and it is no longer the one being filled. 30 s at 4 Mbit/s then
// pins ~8 slabs of 2 MiB.
//
// A slab's memory is written only past its last published access unit, so
// consumers mapping it (read-only, once per surface) never see bytes they
// were given change; a slab is rewritten from offset 0 only after it went
// back to the pool, that is when nobody holds any part of it.

// slab is one pool surface being filled with access units, or waiting for
// its access units to be freed.
type slab struct {
	surf *surface.Surface
	pool *surface.Pool
	ref  producer.SurfaceRef
	used int // bytes filled; the writer's thread only
	// refs counts the published access units not yet freed, plus one while
	// the slab is the writer's open slab. The stream frees access units
	// under its lock from any thread, hence the atomic; whoever drops it to
	// zero gives the surface back (Pool.Put neither blocks nor calls into
	// the stream, as a free callback must not).
	refs atomic.Int64
}

// unref drops one reference; the last one returns the surface to the pool.
func (s *slab) unref() {
	if s.refs.Add(-1) == 0 {
		s.pool.Put(s.surf)
	}
}

// slabWriter packs access units into the slabs of one stream's pool. It is
// used from one goroutine at a time (the H.264 sink's pump).
type slabWriter struct {
	open *slab
}

// reserve returns a slab with n free bytes and those bytes, starting a new
// slab (Stream.Acquire) when the open one is too full; n must not exceed
// the pool's surface size (handleH264 drops larger access units). When the pool is
// exhausted the stream has counted and logged a drop at the source and the
// error wraps surface.ErrExhausted. The caller fills the bytes and calls
// publish, or drops them (nothing to undo: the next reserve reuses them).
func (w *slabWriter) reserve(st *producer.Stream, n int) (*slab, []byte, error) {
	if o := w.open; o != nil && o.used+n <= len(o.surf.Mem.Bytes()) {
		return o, o.surf.Mem.Bytes()[o.used : o.used+n], nil
	}
	// Closing first lets a slab whose access units are all freed return to
	// the pool before Acquire looks for one.
	w.close()
	surf, err := st.Acquire()
	if err != nil {
		return nil, nil, err
	}
	s := &slab{surf: surf, pool: st.Pool(), ref: producer.SurfaceRef{
		ID: surf.ID, Gen: surf.Gen, Kind: surf.Mem.Kind(), Size: uint64(surf.Mem.Size()), FDs: []int{surf.Mem.ShareFD()},
	}}
	s.refs.Store(1)
	w.open = s
	return s, surf.Mem.Bytes()[:n], nil
}

// publish publishes the n bytes reserved last in s as one frame; fi's
// Offset and Size are set here.
func (w *slabWriter) publish(st *producer.Stream, s *slab, n int, fi producer.FrameInfo) {
	fi.Offset, fi.Size = uint32(s.used), uint32(n)
	s.used += n
	s.refs.Add(1)
	st.PublishRef(s.ref, fi, s.unref)
}

// close lets go of the open slab: it returns to the pool once its access
// units are freed. The writer must call it when it stops writing for good
// (end of a pipeline run).
func (w *slabWriter) close() {
	if w.open != nil {
		w.open.unref()
		w.open = nil
	}
}
