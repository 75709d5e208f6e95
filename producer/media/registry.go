package media

import (
	"sync"

	fhgst "github.com/framehub/framehub/internal/gst"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
)

// firstSurfaceID is the first id given to GStreamer-owned surfaces: the copy
// pool's ids are 1..RawPoolMax (< 1<<16), so the two never collide.
const firstSurfaceID = 1 << 16

// fdIdent identifies the memory behind an fd: its inode. Every GstMemory
// wrapping the same memfd or dma-buf, whatever its fd number, has it.
type fdIdent struct{ dev, ino uint64 }

// regSurface is a GStreamer-owned surface as consumers know it: an id, a
// generation, and the fds (by identity) announced for it.
type regSurface struct {
	id, gen uint32
	n       int
	idents  [fhgst.MaxMemories]fdIdent
}

// registry gives GStreamer-owned buffers (our memfd pool's, adopted
// DMA-BUFs) stable surface ids, and tells when consumers must forget them.
//
// A surface is keyed by the inode of its first fd, so a buffer re-wrapped
// in a new GstMemory every frame (same dma-buf, new fd number) keeps its id
// and is announced once. internal/gst tags every memory it describes and
// reports its finalization (MemoryFreed); when the last tagged memory of an
// inode is gone, so is any lease on it, and the surface id is queued for a
// Forget, sent by whoever calls takeDead outside any stream lock.
type registry struct {
	obs *fhgst.Observer

	mu     sync.Mutex
	next   uint32
	live   map[fdIdent]int // tagged GstMemory objects alive, per inode
	total  int             // sum of live
	surfs  map[fdIdent]*regSurface
	dead   []uint32
	closed bool
	// freed has a value once a surface died since it was last received:
	// whoever receives it calls takeDead (Pipeline.flushForgets).
	freed chan struct{}
}

func newRegistry() *registry {
	r := &registry{
		next:  firstSurfaceID,
		live:  make(map[fdIdent]int),
		surfs: make(map[fdIdent]*regSurface),
		freed: make(chan struct{}, 1),
	}
	r.obs = fhgst.NewObserver(r)
	return r
}

// MemoryFreed implements fhgst.MemoryObserver. It runs on the thread that
// finalized the memory, possibly under a stream's lock: it only records.
func (r *registry) MemoryFreed(dev, ino uint64) {
	k := fdIdent{dev, ino}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live[k]--; r.live[k] <= 0 {
		delete(r.live, k)
		if s := r.surfs[k]; s != nil {
			delete(r.surfs, k)
			r.dead = append(r.dead, s.id)
			select {
			case r.freed <- struct{}{}:
			default:
			}
		}
	}
	r.total--
	if r.closed && r.total == 0 {
		r.obs.Delete()
	}
}

// surfaces is how many GStreamer-owned surfaces are alive now.
func (r *registry) surfaces() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.surfs)
}

// noteFresh counts the memories Describe registered.
func (r *registry) noteFresh(d *fhgst.Desc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i < d.NMems; i++ {
		if m := &d.Mems[i]; m.Fresh {
			r.live[fdIdent{m.Dev, m.Ino}]++
			r.total++
		}
	}
}

// surface returns the SurfaceRef and the plane layout of a shareable buffer.
// The fds are borrowed from the buffer's memories: the caller keeps a
// reference to the buffer for as long as the stream may announce them.
func (r *registry) surface(d *fhgst.Desc) (producer.SurfaceRef, []ipc.Plane) {
	var (
		idents [fhgst.MaxMemories]fdIdent
		fdOf   [fhgst.MaxMemories]int // memory index → fd index
		n      int
	)
	fds := make([]int, 0, d.NMems)
	var size uint64
	for i := 0; i < d.NMems; i++ {
		m := &d.Mems[i]
		k := fdIdent{m.Dev, m.Ino}
		j := 0
		for j < n && idents[j] != k {
			j++
		}
		if j == n {
			idents[n] = k
			n++
			fds = append(fds, m.FD)
			size = max(size, m.FDSize)
		}
		fdOf[i] = j
	}
	planes := make([]ipc.Plane, d.NPlanes)
	for i := range planes {
		p := &d.Planes[i]
		planes[i] = ipc.Plane{Offset: uint32(p.Offset), Stride: uint32(p.Stride), Size: uint32(p.Size), FD: uint8(fdOf[p.Mem])}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.surfs[idents[0]]
	switch {
	case s == nil:
		s = &regSurface{id: r.next, gen: 1, n: n, idents: idents}
		r.next++
		r.surfs[idents[0]] = s
	case s.n != n || s.idents != idents:
		// Same first fd, other planes' fds changed: a new generation makes
		// the stream announce the new set before its first use.
		s.gen++
		s.n, s.idents = n, idents
	}
	kind := ipc.KindMemfd
	if d.Kind == fhgst.KindDMABuf {
		kind = ipc.KindDMABuf
	}
	return producer.SurfaceRef{ID: s.id, Gen: s.gen, Kind: kind, Size: size, FDs: fds}, planes
}

// takeDead returns the ids of surfaces whose memory is gone.
func (r *registry) takeDead() []uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.dead
	r.dead = nil
	return d
}

// close unregisters the observer as soon as no registered memory is alive
// (now, or when the last one is finalized). It is idempotent.
func (r *registry) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	if r.total == 0 {
		r.obs.Delete()
	}
}

func (r *registry) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}
