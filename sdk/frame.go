package sdk

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/internal/dmabuf"
	"github.com/framehub/framehub/ipc"
)

// surf is a surface announced on one connection: its fds (owned by the SDK)
// and its read-only mappings, made on first use and kept for every later
// frame in the same surface.
type surf struct {
	id, gen uint32
	kind    Kind
	size    int
	info    Surface // the Announce entry
	fds     []int
	mem     [][]byte   // per fd; nil until mapped
	cpu     dmabuf.CPU // what mapped a DMA-BUF surface, and unmaps it
	refs    int        // frames held by the application
	retired bool       // forgotten, replaced or its connection ended
	closed  bool
	onClose []func() // SurfaceHandle.OnClose
}

// retire marks s as no longer announced; it is closed now or when its last
// frame is released. Callers hold Client.mu.
func (s *surf) retire() {
	s.retired = true
	if s.refs == 0 {
		s.close()
	}
}

func (s *surf) unref() {
	s.refs--
	if s.refs == 0 && s.retired {
		s.close()
	}
}

func (s *surf) close() {
	if s.closed {
		return
	}
	s.closed = true
	for i, m := range s.mem {
		if m == nil {
			continue
		}
		if s.cpu != nil {
			_ = s.cpu.Unmap(m)
		} else {
			_ = unix.Munmap(m)
		}
		s.mem[i] = nil
	}
	for _, fd := range s.fds {
		_ = unix.Close(fd)
	}
	for _, fn := range s.onClose {
		fn()
	}
	s.onClose = nil
}

// mapFD returns the read-only mapping of fd i, making it on first use; cpu
// maps DMA-BUF surfaces.
func (s *surf) mapFD(i int, cpu dmabuf.CPU) ([]byte, error) {
	if s.closed {
		return nil, ErrStale
	}
	if !s.info.CPUMappable() {
		return nil, fmt.Errorf("sdk: surface %d is %v memory on GPU %x, which the CPU cannot map (use sdk/cuda for cuda surfaces): %w",
			s.id, s.kind, s.info.Device.UUID, ErrNoCPUMapping)
	}
	if i < 0 || i >= len(s.fds) {
		return nil, fmt.Errorf("sdk: surface %d has %d fds, no fd %d", s.id, len(s.fds), i)
	}
	if s.mem[i] == nil {
		var m []byte
		var err error
		if s.kind == KindDMABuf {
			s.cpu = cpu
			m, err = cpu.Map(s.fds[i], s.size, unix.PROT_READ)
		} else {
			m, err = unix.Mmap(s.fds[i], 0, s.size, unix.PROT_READ, unix.MAP_SHARED)
		}
		if err != nil {
			return nil, fmt.Errorf("sdk: mmap surface %d fd %d (%d bytes): %w", s.id, i, s.size, err)
		}
		s.mem[i] = m
	}
	return s.mem[i], nil
}

// Frame is one received frame: a lease on a region of a shared surface. The
// application must call Release when done with it; its data must not be used
// after Release.
type Frame struct {
	c        *Client
	cn       *conn
	s        *surf
	msg      ipc.Frame
	planes   []Plane // the frame's own layout, else the stream's caps'
	received int64
	released bool
	synced   []bool // DMA-BUF fds bracketed with DMA_BUF_IOCTL_SYNC start
}

// Seq is the stream's sequence number of the frame; gaps mean frames this
// consumer did not get (skipped or dropped at the source).
func (f *Frame) Seq() uint64 { return f.msg.Seq }

// PTS, DTS and Duration are the pipeline timestamps in ns (-1: unknown).
func (f *Frame) PTS() int64 { return f.msg.PTS }

// DTS is the decoding timestamp in ns (-1: unknown).
func (f *Frame) DTS() int64 { return f.msg.DTS }

// Duration is the frame duration in ns (-1: unknown).
func (f *Frame) Duration() int64 { return f.msg.Dur }

// Capture is the capture time on CLOCK_MONOTONIC, in ns.
func (f *Frame) Capture() int64 { return f.msg.MonoNS }

// Realtime is the capture time on CLOCK_REALTIME.
func (f *Frame) Realtime() time.Time { return time.Unix(0, f.msg.RealNS) }

// Received is when the SDK received the frame, CLOCK_MONOTONIC ns.
func (f *Frame) Received() int64 { return f.received }

// Latency is the delivery latency: capture to receipt.
func (f *Frame) Latency() time.Duration { return time.Duration(f.received - f.msg.MonoNS) }

// Age is how long ago the frame was captured.
func (f *Frame) Age() time.Duration { return clock.Since(f.msg.MonoNS) }

// Keyframe reports an encoded keyframe (an IDR access unit).
func (f *Frame) Keyframe() bool { return f.msg.Flags&ipc.FlagKeyframe != 0 }

// Header reports an encoded access unit that carries the stream's
// parameter sets (H.264 SPS and PPS).
func (f *Frame) Header() bool { return f.msg.Flags&ipc.FlagHeader != 0 }

// Discont reports that frames are missing before this one (skipped for this
// consumer, a reconnect, or an end of stream).
func (f *Frame) Discont() bool { return f.msg.Flags&ipc.FlagDiscont != 0 }

// Replay reports a frame from the producer's replay buffer
// (Options.ReplayFrom), not a live one.
func (f *Frame) Replay() bool { return f.msg.Flags&ipc.FlagReplay != 0 }

// Dropped is how many frames the producer skipped for this consumer right
// before this one.
func (f *Frame) Dropped() uint32 { return f.msg.Dropped }

// Meta returns the frame's user metadata (may be nil). Do not modify it.
func (f *Frame) Meta() map[string][]byte { return f.msg.Meta }

// Planes returns the frame's plane layout (raw formats; nil for encoded
// ones). It must not be modified.
func (f *Frame) Planes() []Plane { return f.planes }

// Region returns where the frame's payload lies in its surface's first fd:
// the bytes Data returns, for code that reads the surface otherwise (a GPU
// import).
func (f *Frame) Region() (offset, size int) { return int(f.msg.Offset), int(f.msg.Size) }

// SurfaceID returns the id of the surface holding the frame.
func (f *Frame) SurfaceID() uint32 { return f.s.id }

// Kind returns the kind of memory behind the frame.
func (f *Frame) Kind() Kind { return f.s.kind }

// FDs returns the surface's fds. They are owned by the SDK: do not close
// them, and do not use them after Release.
func (f *Frame) FDs() []int { return f.s.fds }

// Surface describes the frame's surface: its size, kind and, for GPU
// memory, the device that holds it. Device.UUID must not be modified.
func (f *Frame) Surface() Surface { return f.s.info }

// SurfaceHandle identifies the frame's surface: every frame in the same
// announced surface memory of the same connection has an equal handle, and
// no other surface ever has. Code that keeps per-surface state (sdk/cuda's
// imports) uses it as a map key.
func (f *Frame) SurfaceHandle() SurfaceHandle { return SurfaceHandle{c: f.c, s: f.s} }

// SurfaceHandle identifies an announced surface; see Frame.SurfaceHandle.
// The zero value identifies none.
type SurfaceHandle struct {
	c *Client
	s *surf
}

// Closed reports whether the SDK has closed the surface (its fds are
// gone): the frames in it were all released after the producer forgot or
// replaced it, or after its connection ended.
func (h SurfaceHandle) Closed() bool {
	if h.s == nil {
		return true
	}
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	return h.s.closed
}

// OnClose arranges for fn to run once, when the SDK closes the surface: the
// producer forgot or replaced it, or its connection ended, and the
// application released every frame in it. If the surface is closed
// already, fn runs now. fn runs with the Client's lock held: it must not
// call the Client or its Frames, nor block; it should only record the
// event (sdk/cuda queues an unmap for its next call).
func (h SurfaceHandle) OnClose(fn func()) {
	if h.s == nil {
		return
	}
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	if h.s.closed {
		fn()
		return
	}
	h.s.onClose = append(h.s.onClose, fn)
}

// Data returns the frame's payload region (for raw video the whole frame,
// for encoded streams the access unit), read-only. For surfaces the CPU
// cannot map (Surface().CPUMappable() is false: GPU memory) it returns an
// error wrapping ErrNoCPUMapping.
func (f *Frame) Data() ([]byte, error) {
	m, err := f.mapped(0)
	if err != nil {
		return nil, err
	}
	end := int(f.msg.Offset) + int(f.msg.Size)
	if end > len(m) {
		return nil, fmt.Errorf("sdk: frame %d region %d+%d exceeds surface %d size %d", f.msg.Seq, f.msg.Offset, f.msg.Size, f.s.id, len(m))
	}
	return m[f.msg.Offset:end:end], nil
}

// Plane returns plane i of a raw frame, read-only. Like Data, it fails with
// ErrNoCPUMapping for GPU memory.
func (f *Frame) Plane(i int) ([]byte, error) {
	if i < 0 || i >= len(f.planes) {
		return nil, fmt.Errorf("sdk: frame %d has %d planes, no plane %d", f.msg.Seq, len(f.planes), i)
	}
	p := f.planes[i]
	m, err := f.mapped(p.FD)
	if err != nil {
		return nil, err
	}
	end := p.Offset + p.Size
	if end > len(m) {
		return nil, fmt.Errorf("sdk: frame %d plane %d region %d+%d exceeds surface %d size %d", f.msg.Seq, i, p.Offset, p.Size, f.s.id, len(m))
	}
	return m[p.Offset:end:end], nil
}

func (f *Frame) mapped(i int) ([]byte, error) {
	c := f.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.released || f.cn.dead {
		return nil, ErrStale
	}
	m, err := f.s.mapFD(i, c.cpu)
	if err != nil {
		return nil, err
	}
	if f.s.kind == KindDMABuf {
		if f.synced == nil {
			f.synced = make([]bool, len(f.s.fds))
		}
		if !f.synced[i] {
			if err := c.cpu.BeginCPUAccess(f.s.fds[i], dmabuf.SyncRead); err != nil {
				return nil, fmt.Errorf("sdk: frame %d: %w", f.msg.Seq, err)
			}
			f.synced[i] = true
		}
	}
	return m, nil
}

// Valid reports whether the frame's lease is still live: not released, and
// its connection not ended (eviction, producer restart).
func (f *Frame) Valid() bool {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	return !f.released && !f.cn.dead
}

// Release ends the frame's lease. It is idempotent and does not block on the
// producer: releases are batched (see Client.Flush).
func (f *Frame) Release() {
	c := f.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.released {
		return
	}
	f.released = true
	for i, on := range f.synced {
		if on && !f.s.closed {
			_ = c.cpu.EndCPUAccess(f.s.fds[i], dmabuf.SyncRead)
		}
	}
	if _, ok := f.cn.frames[f]; !ok {
		return // dropped by Close
	}
	c.releaseLocked(f)
	if f.cn.dead && len(f.cn.frames) == 0 {
		delete(c.conns, f.cn)
	}
}
