package gst

/*
#cgo pkg-config: gstreamer-1.0 gstreamer-app-1.0 gstreamer-video-1.0 gstreamer-allocators-1.0
#include <stdlib.h>
#include "fhgst.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime/cgo"
	"strings"
	"sync"
	"unsafe"

	"github.com/framehub/framehub/internal/rawio"
	gogst "github.com/go-gst/go-gst/gst"
	"golang.org/x/sys/unix"
)

// Memory kinds Describe reports; they equal the ipc.Kind values.
const (
	KindNone   = C.FH_KIND_NONE   // not shareable: no fd, or mixed kinds
	KindMemfd  = C.FH_KIND_MEMFD  // a memfd (ours, sealed) or another fd shared through a read-only reopen
	KindDMABuf = C.FH_KIND_DMABUF // a DMA-BUF, shared as it is
)

// MaxMemories is the most memories a shareable buffer may have.
const MaxMemories = C.FH_MAX_MEMS

// Init initialises GStreamer (through go-gst) and this package. It may be
// called any number of times.
func Init() {
	gogst.Init(nil)
	C.fh_init()
}

// ParseError is returned by ParseLaunch.
type ParseError struct {
	Desc    string   // the description that failed
	Msg     string   // GStreamer's message
	Missing []string // elements no installed plugin provides
}

// Error names the missing elements, if any, and GStreamer's message.
func (e *ParseError) Error() string {
	if len(e.Missing) > 0 {
		return fmt.Sprintf("parse pipeline: missing elements %s: %s", strings.Join(e.Missing, ", "), e.Msg)
	}
	return "parse pipeline: " + e.Msg
}

// Pipeline is a GstPipeline of which the Go value owns one reference; the
// caller must call Unref exactly once.
type Pipeline struct{ e *C.GstElement }

// ParseLaunch builds a pipeline from a gst-launch description; any error
// (a missing element, an unknown property, bad syntax) fails it.
func ParseLaunch(desc string) (*Pipeline, error) {
	cs := C.CString(desc)
	defer C.free(unsafe.Pointer(cs))
	var msg *C.char
	var missing **C.char
	e := C.fh_parse_launch(cs, &msg, &missing)
	if e == nil {
		perr := &ParseError{Desc: desc, Msg: C.GoString(msg)}
		C.g_free(C.gpointer(msg))
		if missing != nil {
			for p := missing; *p != nil; p = (**C.char)(unsafe.Add(unsafe.Pointer(p), unsafe.Sizeof(p))) {
				perr.Missing = append(perr.Missing, C.GoString(*p))
			}
			C.g_strfreev(missing)
		}
		return nil, perr
	}
	return &Pipeline{e: e}, nil
}

// Go returns a go-gst wrapper of the pipeline. The wrapper holds its own
// reference, which go-gst drops when the wrapper is garbage collected.
func (p *Pipeline) Go() *gogst.Pipeline {
	return gogst.FromGstPipelineUnsafeNone(unsafe.Pointer(p.e))
}

// Element returns the element named name, or nil. The caller owns the
// result and must Unref it.
func (p *Pipeline) Element(name string) *Element {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	e := C.fh_bin_get(p.e, cs)
	if e == nil {
		return nil
	}
	return &Element{e: e}
}

// MonoBase returns the pipeline's base time when its clock runs on
// CLOCK_MONOTONIC (base time + running time is then a capture time on that
// clock), or -1. Call it in PLAYING.
func (p *Pipeline) MonoBase() int64 { return int64(C.fh_mono_base(p.e)) }

// Dispose makes the pipeline, set to NULL before, release its elements at
// once (g_object_run_dispose): references that go-gst wrappers hold would
// otherwise keep them, and what they hold, alive until the garbage
// collector finalizes the wrappers.
func (p *Pipeline) Dispose() { C.fh_run_dispose(C.gpointer(p.e)) }

// Unref drops the reference. Set the pipeline to NULL before.
func (p *Pipeline) Unref() {
	C.fh_unref(C.gpointer(p.e))
	p.e = nil
}

// Element is a GstElement of which the Go value owns one reference; the
// caller must call Unref exactly once.
type Element struct{ e *C.GstElement }

// Go returns a go-gst wrapper of the element (its own reference, dropped by
// go-gst's finalizer).
func (e *Element) Go() *gogst.Element { return gogst.FromGstElementUnsafeNone(unsafe.Pointer(e.e)) }

// Dispose makes an element that has no parent any more (after
// Pipeline.Dispose) release what it holds now: an appsink keeps the last
// sample it handed out, whose buffer would keep a pool surface, and the
// whole pool, busy until the element is finalized.
func (e *Element) Dispose() { C.fh_run_dispose(C.gpointer(e.e)) }

// Unref drops the reference.
func (e *Element) Unref() {
	C.fh_unref(C.gpointer(e.e))
	e.e = nil
}

// InstallAllocationProbe makes the element's sink pad (an appsink's) answer
// the ALLOCATION query for system-memory video caps with a new memfd pool of
// min..max buffers, and GstVideoMeta support, for the element's life.
func (e *Element) InstallAllocationProbe(min, max int) error {
	_, err := e.AddAllocationProbe(min, max)
	return err
}

// AllocationProbe is an allocation probe on an element's sink pad.
type AllocationProbe struct {
	e  *Element
	id C.gulong
}

// AddAllocationProbe is InstallAllocationProbe for an element that outlives
// the probe (framehubsink's appsink, whose pool bounds may change between
// runs): the caller Removes it.
func (e *Element) AddAllocationProbe(min, max int) (*AllocationProbe, error) {
	if min < 0 || max < 1 || min > max {
		return nil, fmt.Errorf("gst: allocation probe: invalid pool bounds min %d max %d", min, max)
	}
	id := C.fh_install_alloc_probe(e.e, C.guint(min), C.guint(max))
	if id == 0 {
		return nil, errors.New("gst: allocation probe: element has no sink pad")
	}
	return &AllocationProbe{e: e, id: id}, nil
}

// Remove takes the probe off the pad.
func (p *AllocationProbe) Remove() { C.fh_remove_probe(p.e.e, p.id) }

// ElementFromPointer returns an Element for a GstElement that C code hands
// over (an element's own child, such as framehubsink's appsink), taking a
// new reference: the caller must Unref it.
func ElementFromPointer(p unsafe.Pointer) *Element {
	return &Element{e: (*C.GstElement)(C.gst_object_ref(C.gpointer(p)))}
}

// ForceKeyUnit sends an upstream force-key-unit event (all headers) to the
// element's src pad: a GstVideoEncoder makes its next frame a keyframe. It
// reports whether the event was handled.
func (e *Element) ForceKeyUnit() bool { return C.fh_force_key_unit(e.e) != 0 }

// RequestKeyUnit sends an upstream force-key-unit event from the element's
// sink pad (an appsink's): an encoder upstream makes its next frame a
// keyframe. It reports whether an element upstream handled the event.
func (e *Element) RequestKeyUnit() bool { return C.fh_request_key_unit(e.e) != 0 }

// MonoBase returns the base time of the pipeline the element is in when
// its clock runs on CLOCK_MONOTONIC (see Pipeline.MonoBase), or -1. Call
// it in PLAYING.
func (e *Element) MonoBase() int64 { return int64(C.fh_mono_base(e.e)) }

// IsEOS reports whether an appsink received EOS and has no sample queued.
func (e *Element) IsEOS() bool { return C.fh_appsink_is_eos(e.e) != 0 }

// SampleWatch wakes a goroutine when an appsink has queued a sample or
// reached EOS. The appsink's streaming thread only adds to an eventfd,
// which the goroutine waits on through Go's netpoller: GStreamer's threads
// never call into Go. (go-gst's appsink callbacks do, and each such call
// from a foreign thread wakes the Go runtime's sysmon, which then polls
// every 20 µs while the callback runs; with the producer publishing from
// the callback that cost more CPU per consumer than the fan-out itself.)
//
// While idle (SetIdle) the streaming thread drops the samples itself
// instead, as long as their caps stay those of the last sample Go handled,
// and counts them (TakeUnwatched): a producer with nobody to serve does
// not wake the Go runtime for each frame. It still wakes the waiting
// goroutine every 30 dropped samples, so that the count is taken, and at
// once for a sample with other caps, which ends idling and is the next
// Pull.
type SampleWatch struct {
	f  *os.File
	r  *rawio.File // reads f without waking the runtime's sysmon (package rawio)
	mu sync.Mutex
	w  *C.FhWatch // shared with the appsink's callbacks; nil once freed (Wait after Close)
}

// WatchSamples replaces an appsink's callbacks by a SampleWatch. The
// caller reads the samples with Pull after each Wait, and must Close the
// watch once the pipeline is in NULL (its streaming threads ended), never
// before: the streaming thread writes to the eventfd.
func (e *Element) WatchSamples() (*SampleWatch, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("gst: eventfd for an appsink: %w", err)
	}
	// Non-blocking: os.NewFile puts it in the netpoller, and Close wakes
	// a pending Wait.
	f := os.NewFile(uintptr(fd), "appsink-notify")
	r, err := rawio.NewFile(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("gst: eventfd for an appsink: %w", err)
	}
	return &SampleWatch{w: C.fh_watch_new(e.e, C.int(fd)), f: f, r: r}, nil
}

// free removes the appsink's callbacks, which frees what they shared with
// the watch (a sample that ended idling, the caps). The other methods do
// nothing after it.
func (w *SampleWatch) free() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w != nil {
		C.fh_watch_close(w.w)
		w.w = nil
	}
}

// Wait blocks until the appsink queued a sample or reached EOS since the
// previous Wait returned, the idle streaming thread has a count to take,
// or the watch was closed (an error wrapping os.ErrClosed). A Wait that
// returns nil may find nothing new to pull: the previous round pulled what
// this signal announced. After an error the watch's appsink callbacks are
// gone and Pull returns nil.
func (w *SampleWatch) Wait() error {
	var b [8]byte
	_, err := w.r.Read(b[:])
	if err != nil {
		w.free()
	}
	return err
}

// Pull takes the next sample, without waiting: the one that ended idling,
// else the appsink's; nil when none is queued. The caller owns the sample
// and must Unref it.
func (w *SampleWatch) Pull() *Sample {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil {
		return nil
	}
	s := C.fh_watch_pull(w.w)
	if s == nil {
		return nil
	}
	return &Sample{s: s}
}

// SetIdle starts idling with last, the sample just handled (its caps are
// those a sample may have to be dropped), or ends it when last is nil.
// The streaming thread may already have dropped the sample after last.
// It may be called from any goroutine, also after Close.
func (w *SampleWatch) SetIdle(last *Sample) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.w == nil:
	case last == nil:
		C.fh_watch_set_idle(w.w, nil)
	default:
		C.fh_watch_set_idle(w.w, last.s)
	}
}

// TakeUnwatched returns how many samples the streaming thread dropped
// while idle since the previous call.
func (w *SampleWatch) TakeUnwatched() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil {
		return 0
	}
	return uint64(C.fh_watch_take_unwatched(w.w))
}

// Close closes the eventfd: a pending Wait returns an error, and the
// goroutine that waits ends the watch (its next Wait does, if none is
// pending). Call it after the pipeline reached NULL, so that no streaming
// thread writes to the eventfd.
func (w *SampleWatch) Close() error { return w.f.Close() }

// PushSample queues s's buffer and caps on an appsrc (which takes its own
// reference to the buffer) and returns the GstFlowReturn.
func (e *Element) PushSample(s *Sample) int { return int(C.fh_appsrc_push(e.e, s.s)) }

// PushBytes queues a copy of data on an appsrc as one buffer with the
// given timestamps (ns; -1: unknown), flagged DELTA_UNIT when delta (not a
// keyframe), and returns the GstFlowReturn (0: OK). data is not retained.
func (e *Element) PushBytes(data []byte, pts, dts, dur int64, delta bool) int {
	if len(data) == 0 {
		return 0
	}
	d := 0
	if delta {
		d = 1
	}
	return int(C.fh_appsrc_push_bytes(e.e, (*C.guint8)(unsafe.Pointer(&data[0])), C.gsize(len(data)),
		C.int64_t(pts), C.int64_t(dts), C.int64_t(dur), C.int(d)))
}

// EndOfStream tells an appsrc that no more buffers follow.
func (e *Element) EndOfStream() { C.fh_appsrc_eos(e.e) }

// QueuedBuffers returns how many buffers wait in an appsrc's queue.
func (e *Element) QueuedBuffers() int { return int(C.fh_appsrc_queued(e.e)) }

// Sample is a GstSample of which the Go value owns one reference; the
// caller must call Unref exactly once.
type Sample struct{ s *C.GstSample }

// Unref drops the reference.
func (s *Sample) Unref() {
	C.fh_sample_unref(s.s)
	s.s = nil
}

// BufferRef returns a new reference to the sample's buffer, or nil. The
// caller must Unref it.
func (s *Sample) BufferRef() *Buffer {
	b := C.fh_sample_buffer_ref(s.s)
	if b == nil {
		return nil
	}
	return &Buffer{b: b}
}

// Extract copies the sample's bytes to dst when they fit and returns their
// size either way.
func (s *Sample) Extract(dst []byte) int {
	if len(dst) == 0 {
		return int(C.fh_extract(s.s, nil, 0))
	}
	return int(C.fh_extract(s.s, (*C.guint8)(unsafe.Pointer(&dst[0])), C.gsize(len(dst))))
}

// CopyFrame copies the sample's video frame (mapped as vi describes, or by
// its GstVideoMeta) into dst, plane p at offsets[p] with strides[p]. dst
// must not be Go-heap memory that moves (a mapped surface is fine).
func (s *Sample) CopyFrame(vi *VideoInfo, dst []byte, offsets, strides []uint32) error {
	if len(offsets) != len(strides) || len(offsets) == 0 || len(offsets) > 4 || len(dst) == 0 {
		return fmt.Errorf("gst: copy frame: %d offsets, %d strides, %d bytes", len(offsets), len(strides), len(dst))
	}
	var off, str [4]C.uint32_t
	for i := range offsets {
		off[i], str[i] = C.uint32_t(offsets[i]), C.uint32_t(strides[i])
	}
	if C.fh_copy_frame(s.s, vi.vi, (*C.guint8)(unsafe.Pointer(&dst[0])), C.gsize(len(dst)), &off[0], &str[0], C.int(len(offsets))) == 0 {
		return fmt.Errorf("gst: copy %s %dx%d frame into %d planes of %d bytes: layout does not fit", vi.Format(), vi.Width(), vi.Height(), len(offsets), len(dst))
	}
	return nil
}

// MediaType returns the media type of the sample's caps ("video/x-raw",
// "video/x-h264"), or "".
func (s *Sample) MediaType() string {
	if t := C.fh_sample_media_type(s.s); t != nil {
		return C.GoString(t)
	}
	return ""
}

// Geometry returns the width, height and frame rate of the sample's caps,
// raw or encoded: 0 for what they lack (a rate of 0/1).
func (s *Sample) Geometry() (width, height, fpsNum, fpsDen int) {
	var w, h, fn, fd C.int
	C.fh_sample_geometry(s.s, &w, &h, &fn, &fd)
	return int(w), int(h), int(fn), int(fd)
}

// WritablePlane is plane 0 of a sample's video frame mapped for writing;
// the caller must Unmap it exactly once, before the sample is
// unreferenced.
type WritablePlane struct {
	m      *C.FhPlaneMap
	Y      []byte // from plane 0's first byte to the end of its memory
	Stride int
}

// MapPlane0Writable maps plane 0 of the sample's video frame (where its
// GstVideoMeta, or vi, puts it) for writing; nil when its memory is
// read-only. It does not look at who else holds the buffer: call it only
// for buffers that are the caller's own (Desc.Ours: a tee never proposes a
// pool upstream, so no other branch can have one).
func (s *Sample) MapPlane0Writable(vi *VideoInfo) *WritablePlane {
	if vi == nil {
		return nil
	}
	m := C.fh_plane0_map_write(s.s, vi.vi)
	if m == nil {
		return nil
	}
	return &WritablePlane{m: m, Y: unsafe.Slice((*byte)(m.y), int(m.y_len)), Stride: int(m.stride)}
}

// Unmap ends the write mapping.
func (w *WritablePlane) Unmap() {
	C.fh_plane_unmap(w.m)
	w.m, w.Y = nil, nil
}

// VideoInfo returns the video info of the sample's caps, or nil. The caller
// must Free it.
func (s *Sample) VideoInfo() *VideoInfo {
	vi := C.fh_sample_video_info(s.s)
	if vi == nil {
		return nil
	}
	return &VideoInfo{vi: vi}
}

// Mem describes one memory of a buffer.
type Mem struct {
	FD     int    // fd to send to consumers; borrowed from the memory
	Fresh  bool   // registered with the Observer by this Describe
	Dev    uint64 // st_dev of FD
	Ino    uint64 // st_ino of FD: with Dev, the identity of the underlying buffer
	FDSize uint64 // bytes mappable from FD
	Offset uint64 // offset in the fd of the memory's first byte
	Size   uint64 // bytes of the memory
}

// Plane is where one video plane lies.
type Plane struct {
	Mem    int    // index into Desc.Mems
	Offset uint64 // offset in that memory's fd
	Stride int
	Size   uint64
}

// Desc describes a sample's buffer, as Describe found it.
type Desc struct {
	Kind            int // KindNone: copy it
	NMems           int
	Mems            [MaxMemories]Mem
	NPlanes         int
	Planes          [4]Plane
	PTS, DTS, Dur   int64 // ns, -1 when unknown
	Running         int64 // running time of PTS, -1 when unknown
	Delta           bool  // GST_BUFFER_FLAG_DELTA_UNIT: not a keyframe
	Ours            bool  // from a memfd pool of this package
	PoolOutstanding int   // Ours: buffers of the pool out now, this one included
	PoolMax         int   // max buffers of the buffer's pool; 0 when unknown or unlimited
	Pool            uintptr
}

// Describe describes the sample's buffer, registering every shareable
// memory with obs (nil: none) so that obs hears when it is freed. vi gives
// the plane layout of buffers without GstVideoMeta (nil for encoded data).
func (s *Sample) Describe(vi *VideoInfo, obs *Observer) Desc {
	var d C.FhBufDesc
	var cvi *C.GstVideoInfo
	if vi != nil {
		cvi = vi.vi
	}
	var h C.uintptr_t
	if obs != nil {
		h = C.uintptr_t(obs.h)
	}
	C.fh_describe(s.s, cvi, h, &d)
	out := descFromC(&d)
	for i := 0; i < out.NMems; i++ {
		m := &d.mems[i]
		out.Mems[i] = Mem{
			FD: int(m.share_fd), Fresh: m.fresh != 0, Dev: uint64(m.dev), Ino: uint64(m.ino),
			FDSize: uint64(m.fd_size), Offset: uint64(m.offset), Size: uint64(m.size),
		}
	}
	for i := 0; i < out.NPlanes && i < len(out.Planes); i++ {
		p := &d.planes[i]
		out.Planes[i] = Plane{Mem: int(p.mem), Offset: uint64(p.offset), Stride: int(p.stride), Size: uint64(p.size)}
	}
	return out
}

// Timing returns only the timestamps and the delta flag of the sample's
// buffer (Desc.Kind is KindNone): for encoded data, which is copied.
func (s *Sample) Timing() Desc {
	var d C.FhBufDesc
	C.fh_sample_timing(s.s, &d)
	return descFromC(&d)
}

func descFromC(d *C.FhBufDesc) Desc {
	return Desc{
		Kind: int(d.kind), NMems: int(d.n_mems), NPlanes: int(d.n_planes),
		PTS: int64(d.pts), DTS: int64(d.dts), Dur: int64(d.dur), Running: int64(d.running),
		Delta: d.delta != 0, Ours: d.ours != 0, PoolOutstanding: int(d.pool_outstanding),
		PoolMax: int(d.pool_max), Pool: uintptr(d.pool),
	}
}

// Buffer is a GstBuffer reference with one owner, who must Unref it exactly
// once.
type Buffer struct{ b *C.GstBuffer }

// Unref drops the reference.
func (b *Buffer) Unref() {
	C.fh_buffer_unref(b.b)
	b.b = nil
}

// RefCount returns the buffer's reference count, for tests.
func (b *Buffer) RefCount() int { return int(C.fh_test_refcount(b.b)) }

// CapsTracker remembers the last caps seen, to notice caps changes. Its
// zero value is ready; Release drops the caps it holds.
type CapsTracker struct{ last *C.GstCaps }

// Changed reports whether s's caps differ from the last ones seen, and
// remembers them.
func (t *CapsTracker) Changed(s *Sample) bool { return C.fh_sample_caps_changed(s.s, &t.last) != 0 }

// Release drops the caps reference.
func (t *CapsTracker) Release() { C.fh_sample_caps_changed(nil, &t.last) }

// VideoInfo is a GstVideoInfo owned by the Go value; Free it once.
type VideoInfo struct{ vi *C.GstVideoInfo }

// Free releases the info.
func (v *VideoInfo) Free() {
	if v != nil && v.vi != nil {
		C.gst_video_info_free(v.vi)
		v.vi = nil
	}
}

// Format is the video format's name ("NV12").
func (v *VideoInfo) Format() string { return C.GoString(v.vi.finfo.name) }

// Width is the frame width in pixels.
func (v *VideoInfo) Width() int { return int(v.vi.width) }

// Height is the frame height in pixels.
func (v *VideoInfo) Height() int { return int(v.vi.height) }

// FPS is the frame rate as a fraction (0/1 when variable).
func (v *VideoInfo) FPS() (num, den int) { return int(v.vi.fps_n), int(v.vi.fps_d) }

// MemoryObserver hears about finalized memories that Describe registered.
// MemoryFreed runs on whatever thread finalized the memory, possibly under
// a producer stream's lock: it must only record the fact.
type MemoryObserver interface {
	MemoryFreed(dev, ino uint64)
}

// Observer registers a MemoryObserver for Describe. Delete it only when no
// memory registered with it can still be finalized (the observer counts
// them): a handle deleted earlier could be reused by another observer.
type Observer struct{ h cgo.Handle }

// NewObserver registers o.
func NewObserver(o MemoryObserver) *Observer { return &Observer{h: cgo.NewHandle(o)} }

// Delete unregisters the observer.
func (o *Observer) Delete() { o.h.Delete() }
