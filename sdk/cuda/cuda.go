// Package cuda gives a consumer device pointers to frames in cuda surfaces:
// GPU memory the producer allocated with the CUDA driver and shares by file
// descriptor (see docs/SDK.md, "GPU frames"). It does not use cgo: it loads
// the driver's libcuda.so.1 at run time (NewImporter), so a consumer that
// imports it builds with CGO_ENABLED=0 but needs the dynamic loader, libc
// and the NVIDIA driver where it runs.
//
//	c, _ := sdk.Dial(ctx, addr, sdk.Options{Stream: "raw"})
//	im, _ := cuda.NewImporter(cuda.Options{})
//	defer im.Close() // after c.Close
//	for {
//		f, _ := c.Next(ctx)
//		d, _ := im.Map(f) // imports the surface on its first frame
//		launch(d.Planes[0].Ptr, d.Planes[0].Pitch, ...)
//		waitForTheKernel()
//		f.Release()
//	}
//
// # Import once per surface
//
// The first frame of each surface imports it: the fd the producer
// announced goes to cuMemImportFromShareableHandle on the GPU whose UUID the
// Announce names (not an ordinal: CUDA_VISIBLE_DEVICES renumbers), is mapped
// at a new device address (cuMemAddressReserve, cuMemMap) and made
// accessible to that GPU (cuMemSetAccess, read-only by default). Later frames
// in the same surface cost a map lookup. When the SDK closes the surface
// (the producer forgot or replaced it, or the connection ended) and no frame
// in it is held, the mapping is unmapped at the importer's next call.
//
// # Synchronisation
//
// The producer publishes a Frame only after the GPU finished writing it (it
// synchronises its stream before sending the Frame message), so a kernel
// the consumer launches after Next returned sees the whole frame, on any
// stream, without waiting on anything. In the other direction, the consumer
// must have finished every GPU access to a frame (cuStreamSynchronize, or
// an event it waited on) before it calls Release: after Release the
// producer may render the next frame into the same memory.
//
// # Lifetimes
//
// Device pointers are valid until the frame is released. The mapping
// itself outlives the producer: if the producer dies while the consumer
// holds a frame, the memory stays mapped and readable until the frame is
// released (the SDK reports the disconnect from Next meanwhile).
//
// # Threads
//
// The mapping is made in the device's primary context, the one the CUDA
// runtime API uses, so device pointers work in the consumer's own
// runtime-API code on that device (cudaSetDevice(Frame.Ordinal)). The
// Importer makes the context current on whatever OS thread it runs on; an
// application that calls the driver API itself must make the primary
// context current on its own threads.
package cuda

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	icuda "github.com/framehub/framehub/internal/cuda"
	"github.com/framehub/framehub/sdk"
)

// ErrNotCUDA is returned by Map for a frame whose surface is not a cuda
// surface.
var ErrNotCUDA = errors.New("sdk/cuda: not a cuda surface")

// Options configure NewImporter.
type Options struct {
	// Library is the CUDA driver library. It defaults to $FRAMEHUB_LIBCUDA,
	// else libcuda.so.1.
	Library string
	// Writable maps surfaces read-write instead of read-only. A read-only
	// mapping makes the GPU fault on writes: it protects the frames other
	// consumers see from this consumer's bugs (not from a hostile
	// consumer, which could map the fd read-write itself).
	Writable bool
	// Blocking makes this process's threads sleep while they wait for the
	// GPU in synchronising calls (a StampVerifier's Verify, the
	// application's own synchronisation in the device's primary context)
	// instead of spinning a core: a wake-up's latency more, no CPU while
	// waiting. It applies to every user of the device's primary context in
	// the process, from the importer's first frame on that device.
	Blocking bool
}

// Plane is one plane of a frame on the device.
type Plane struct {
	Ptr   uint64 // device address of the plane's first row
	Pitch int    // bytes from one row to the next
	Size  int    // bytes of the plane (Pitch × rows)
}

// Frame is where a frame lies in this process's GPU address space. It is
// valid until the sdk.Frame it came from is released.
type Frame struct {
	Ptr     uint64   // device address of the surface's first byte
	Size    int      // bytes mapped (the whole surface)
	Ordinal int      // the GPU's ordinal in this process
	UUID    [16]byte // the GPU's UUID
	Planes  []Plane  // the frame's planes (raw video)
	Offset  int      // the frame's payload region inside the surface (encoded data)
	Length  int      //
}

// Stats are an importer's counters.
type Stats struct {
	Imported int // surfaces imported
	Unmapped int // surfaces unmapped again
	Mapped   int // surfaces mapped now
	// ImportTimes are how long each import took (import, reserve, map, set
	// access), oldest first, at most the last 1024.
	ImportTimes []time.Duration
}

// imported is one surface's mapping.
type imported struct {
	ctx  *icuda.Context
	ptr  icuda.DevPtr
	size int
}

// Importer imports the cuda surfaces of the frames it is given. It is safe
// for concurrent use. Close it after the sdk.Client whose frames it mapped.
type Importer struct {
	drv      *icuda.Driver
	access   icuda.Access
	blocking bool

	mu     sync.Mutex
	ctxs   map[icuda.UUID]*icuda.Context
	surfs  map[sdk.SurfaceHandle]*imported
	stats  Stats
	closed bool

	unmapErr error // the first failed unmap, reported by Close

	deadMu sync.Mutex // a leaf lock: taken inside the SDK's lock by OnClose callbacks
	dead   []sdk.SurfaceHandle
}

// NewImporter loads the CUDA driver (cuInit). Retaining a device's context
// happens on the first frame of that device and costs 100-250 ms on a
// data-centre GPU: call Warm with the stream's device first if the first
// frame must not wait.
func NewImporter(opts Options) (*Importer, error) {
	d, err := icuda.Load(icuda.Options{Library: opts.Library})
	if err != nil {
		return nil, fmt.Errorf("sdk/cuda: %w", err)
	}
	access := icuda.ReadOnly
	if opts.Writable {
		access = icuda.ReadWrite
	}
	return &Importer{drv: d, access: access, blocking: opts.Blocking, ctxs: make(map[icuda.UUID]*icuda.Context),
		surfs: make(map[sdk.SurfaceHandle]*imported)}, nil
}

// Warm retains the primary context of the GPU with this UUID (16 bytes, as
// sdk.Device carries it), so that the first frame does not pay for it.
func (im *Importer) Warm(uuid []byte) error {
	u, err := icuda.ParseUUID(uuid)
	if err != nil {
		return fmt.Errorf("sdk/cuda: %w", err)
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.closed {
		return errors.New("sdk/cuda: importer closed")
	}
	_, err = im.contextLocked(u)
	return err
}

func (im *Importer) contextLocked(u icuda.UUID) (*icuda.Context, error) {
	if c := im.ctxs[u]; c != nil {
		return c, nil
	}
	dev, err := im.drv.DeviceByUUID(u)
	if err != nil {
		return nil, fmt.Errorf("sdk/cuda: %w", err)
	}
	if im.blocking {
		if err := im.drv.SetSched(dev, icuda.SchedBlocking); err != nil {
			return nil, fmt.Errorf("sdk/cuda: %w", err)
		}
	}
	c, err := im.drv.Retain(dev)
	if err != nil {
		return nil, fmt.Errorf("sdk/cuda: %w", err)
	}
	im.ctxs[u] = c
	return c, nil
}

// Map returns where frame f lies on the GPU, importing its surface if this
// is the surface's first frame. f must not have been released. It fails with an error wrapping ErrNotCUDA
// for other kinds of surface, and with the driver's error when the import
// fails (the UUID names no GPU of this process, the driver refuses the fd).
func (im *Importer) Map(f *sdk.Frame) (Frame, error) {
	info := f.Surface()
	if info.Kind != sdk.KindCUDA || info.Device == nil {
		return Frame{}, fmt.Errorf("sdk/cuda: frame %d: surface %d is %v memory: %w", f.Seq(), info.ID, info.Kind, ErrNotCUDA)
	}
	im.unmapDead()
	h := f.SurfaceHandle()
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.closed {
		return Frame{}, errors.New("sdk/cuda: importer closed")
	}
	s := im.surfs[h]
	if s == nil {
		// A released frame's fds may be closed, their numbers reused.
		if h.Closed() {
			return Frame{}, fmt.Errorf("sdk/cuda: frame %d: %w", f.Seq(), sdk.ErrStale)
		}
		var err error
		if s, err = im.importLocked(f, info); err != nil {
			return Frame{}, err
		}
		im.surfs[h] = s
		h.OnClose(func() {
			im.deadMu.Lock()
			im.dead = append(im.dead, h)
			im.deadMu.Unlock()
		})
	}
	u := icuda.UUID(info.Device.UUID)
	out := Frame{Ptr: uint64(s.ptr), Size: s.size, Ordinal: s.ctx.Device().Ordinal, UUID: u}
	out.Offset, out.Length = f.Region()
	planes := f.Planes()
	out.Planes = make([]Plane, len(planes))
	for i, p := range planes {
		if p.FD != 0 || p.Offset+p.Size > s.size {
			return Frame{}, fmt.Errorf("sdk/cuda: frame %d plane %d (fd %d, %d+%d) outside surface %d of %d bytes", f.Seq(), i, p.FD, p.Offset, p.Size, info.ID, s.size)
		}
		out.Planes[i] = Plane{Ptr: uint64(s.ptr) + uint64(p.Offset), Pitch: p.Stride, Size: p.Size}
	}
	return out, nil
}

func (im *Importer) importLocked(f *sdk.Frame, info sdk.Surface) (*imported, error) {
	fds := f.FDs()
	if len(fds) != 1 {
		return nil, fmt.Errorf("sdk/cuda: surface %d has %d fds, want 1", info.ID, len(fds))
	}
	u, err := icuda.ParseUUID(info.Device.UUID)
	if err != nil {
		return nil, fmt.Errorf("sdk/cuda: surface %d: %w", info.ID, err)
	}
	ctx, err := im.contextLocked(u)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	h, err := ctx.Import(fds[0])
	if err != nil {
		return nil, fmt.Errorf("sdk/cuda: import surface %d (%d bytes): %w", info.ID, info.Size, err)
	}
	ptr, err := ctx.Map(h, int(info.Size), im.access)
	// The mapping holds the memory from now on: the handle can go.
	rerr := ctx.Release(h)
	if err != nil {
		return nil, fmt.Errorf("sdk/cuda: map surface %d (%d bytes): %w", info.ID, info.Size, errors.Join(err, rerr))
	}
	if rerr != nil {
		_ = ctx.Unmap(ptr, int(info.Size))
		return nil, fmt.Errorf("sdk/cuda: surface %d: %w", info.ID, rerr)
	}
	im.stats.Imported++
	im.stats.ImportTimes = append(im.stats.ImportTimes, time.Since(t0))
	if n := len(im.stats.ImportTimes); n > 1024 {
		im.stats.ImportTimes = slices.Delete(im.stats.ImportTimes, 0, n-1024)
	}
	return &imported{ctx: ctx, ptr: ptr, size: int(info.Size)}, nil
}

// unmapDead unmaps the surfaces the SDK closed since the last call.
func (im *Importer) unmapDead() {
	im.deadMu.Lock()
	dead := im.dead
	im.dead = nil
	im.deadMu.Unlock()
	if len(dead) == 0 {
		return
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	for _, h := range dead {
		if s := im.surfs[h]; s != nil {
			delete(im.surfs, h)
			im.unmapLocked(s)
		}
	}
}

func (im *Importer) unmapLocked(s *imported) {
	if err := s.ctx.Unmap(s.ptr, s.size); err != nil {
		if im.unmapErr == nil {
			im.unmapErr = fmt.Errorf("sdk/cuda: unmap %#x (%d bytes): %w", s.ptr, s.size, err)
		}
		return
	}
	im.stats.Unmapped++
}

// Stats returns the importer's counters. Closed surfaces are unmapped (and
// counted) at the importer's next Map or Stats call.
func (im *Importer) Stats() Stats {
	im.unmapDead()
	im.mu.Lock()
	defer im.mu.Unlock()
	st := im.stats
	st.Mapped = len(im.surfs)
	st.ImportTimes = slices.Clone(im.stats.ImportTimes)
	return st
}

// Close unmaps every surface and releases the device contexts. Frames
// still held lose their device memory: close the sdk.Client (or release
// every frame) first. It is idempotent.
func (im *Importer) Close() error {
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.closed {
		return nil
	}
	im.closed = true
	for h, s := range im.surfs {
		delete(im.surfs, h)
		im.unmapLocked(s)
	}
	errs := []error{im.unmapErr}
	for u, c := range im.ctxs {
		delete(im.ctxs, u)
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
