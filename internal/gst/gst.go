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
	"runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"sync/atomic"
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

// BusWatch takes the messages of the watched types posted on a pipeline's
// bus, and drops every other message as it is posted. Like SampleWatch,
// GStreamer's threads only queue and add to an eventfd, which Wait reads
// through the netpoller: a pipeline that posts nothing costs the waiting
// goroutine nothing, where polling the bus (TimedPopFiltered with a
// timeout) is a cgo call each time, and each wakes the Go runtime's sysmon.
type BusWatch struct {
	p  *Pipeline
	n  notifier
	mu sync.Mutex
	w  *C.FhBusWatch // owned by the bus; nil once Close removed it
}

// WatchBus installs the pipeline's bus sync handler (one per bus): types is
// a mask of GstMessageType values. The caller takes the messages with Pop
// after each Wait, and must Close the watch before it unrefs the pipeline.
func (p *Pipeline) WatchBus(types gogst.MessageType) (*BusWatch, error) {
	n, err := newNotifier("bus")
	if err != nil {
		return nil, err
	}
	return &BusWatch{p: p, n: n, w: C.fh_bus_watch(p.e, C.int(n.fd), C.guint(types))}, nil
}

// Wait blocks until a watched message was posted since the previous Wait
// returned (Pop may have taken it already), or the watch was closed (an
// error wrapping os.ErrClosed).
func (b *BusWatch) Wait() error { return b.n.wait() }

// Pop takes the oldest watched message, nil when none is queued or the
// watch is closed.
func (b *BusWatch) Pop() *gogst.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.w == nil {
		return nil
	}
	m := C.fh_bus_watch_pop(b.w)
	if m == nil {
		return nil
	}
	return gogst.FromGstMessageUnsafeFull(unsafe.Pointer(m))
}

// Close removes the sync handler (dropping the messages not popped), then
// closes the eventfd, which ends a pending Wait. Messages posted after it
// queue on the bus.
func (b *BusWatch) Close() error {
	b.mu.Lock()
	if b.w != nil {
		C.fh_bus_unwatch(b.p.e)
		b.w = nil
	}
	b.mu.Unlock()
	return b.n.f.Close()
}

// notifier is the eventfd through which GStreamer's threads wake a
// goroutine (SampleWatch, BusWatch). Non-blocking, so os.NewFile puts it
// in the netpoller and closing f ends a pending wait; read through rawio,
// which does not wake the runtime's sysmon.
type notifier struct {
	f  *os.File
	r  *rawio.File
	fd int // f's; f.Fd() would put it in blocking mode
}

// newNotifier makes the eventfd; name says for what ("bus", "appsink").
func newNotifier(name string) (notifier, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return notifier{}, fmt.Errorf("gst: eventfd for a %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name+"-notify")
	r, err := rawio.NewFile(f)
	if err != nil {
		f.Close()
		return notifier{}, fmt.Errorf("gst: eventfd for a %s: %w", name, err)
	}
	return notifier{f: f, r: r, fd: fd}, nil
}

// wait reads the eventfd's count, waiting in the netpoller while it is 0.
func (n notifier) wait() error {
	var v [8]byte
	_, err := n.r.Read(v[:])
	return err
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
//
// Prepare puts the watch in ring mode, where a frame in framehub's memfd
// pool costs the goroutine no cgo call at all: see Prepare.
type SampleWatch struct {
	n  notifier
	mu sync.Mutex
	w  *C.FhWatch // shared with the appsink's callbacks; nil once freed (Wait after Close)
	// Ring mode (Prepare): gen is the generation of the last Prepare.
	ring bool
	gen  uint64
}

// WatchSamples replaces an appsink's callbacks by a SampleWatch. The
// caller reads the samples with Pull after each Wait, and must Close the
// watch once the pipeline is in NULL (its streaming threads ended), never
// before: the streaming thread writes to the eventfd.
func (e *Element) WatchSamples() (*SampleWatch, error) {
	n, err := newNotifier("appsink")
	if err != nil {
		return nil, err
	}
	return &SampleWatch{w: C.fh_watch_new(e.e, C.int(n.fd)), n: n}, nil
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
	err := w.n.wait()
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
	if !w.ring {
		s := C.fh_watch_pull(w.w)
		if s == nil {
			return nil
		}
		return &Sample{s: s}
	}
	if s := w.take(); s != nil {
		return s
	}
	if atomic.LoadInt32((*int32)(unsafe.Pointer(&w.w.backlog))) == 0 {
		return nil
	}
	C.fh_watch_refill(w.w)
	return w.take()
}

// take returns the ring's next sample, or nil; w.mu held.
func (w *SampleWatch) take() *Sample {
	headp := (*uint64)(unsafe.Pointer(&w.w.ready_head))
	head := atomic.LoadUint64(headp)
	if head == atomic.LoadUint64((*uint64)(unsafe.Pointer(&w.w.ready_tail))) {
		return nil
	}
	r := &w.w.ready[head%C.FH_READY_CAP]
	s := &Sample{s: r.sample}
	if r.buffer != nil {
		s.buf, s.def = r.buffer, r.deferred
		s.sameCaps = uint64(r.gen) == w.gen
		s.desc = descOf(&r.desc)
	}
	atomic.StoreUint64(headp, head+1)
	return s
}

// Prepare puts the watch in ring mode, or changes what it prepares: the
// appsink's streaming thread then pulls every sample itself, and describes
// (with vi and obs, as Sample.Describe would) and references the buffer of
// each sample that has s's caps and lies in framehub's memfd pool. Pull
// returns those prepared: their Describe, BufferRef and Unref, and the
// Unref of that buffer, need no cgo call (the references go back through
// the pool, which takes them before it hands out a buffer or waits for
// one). Call it from the goroutine that pulls, with the sample whose caps
// it just accepted, or nil to prepare none. Each call starts a generation:
// PreparedCaps reports whether a sample was prepared in the latest.
//
// Why: every cgo call enters the Go runtime's system-call state, and the
// first after an idle spell wakes its sysmon thread, which then polls
// every 20 µs until the frame is handled. At 30 frames a second that
// costs more than the frame's fan-out.
func (w *SampleWatch) Prepare(s *Sample, vi *VideoInfo, obs *Observer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil {
		return
	}
	var cs *C.GstSample
	if s != nil {
		cs = s.s
	}
	w.gen = uint64(C.fh_watch_prepare(w.w, cs, vi.c(), obs.handle()))
	w.ring = true
}

// SawEOS reports whether the appsink received EOS (it may still have
// samples queued: Element.IsEOS says when it has none).
func (w *SampleWatch) SawEOS() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w != nil && atomic.LoadInt32((*int32)(unsafe.Pointer(&w.w.eos))) != 0
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
	// The streaming thread counts atomically: no cgo call.
	return atomic.SwapUint64((*uint64)(unsafe.Pointer(&w.w.unwatched)), 0)
}

// Close closes the eventfd: a pending Wait returns an error, and the
// goroutine that waits ends the watch (its next Wait does, if none is
// pending). Call it after the pipeline reached NULL, so that no streaming
// thread writes to the eventfd.
func (w *SampleWatch) Close() error { return w.n.f.Close() }

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
type Sample struct {
	s *C.GstSample
	// A sample the streaming thread prepared (SampleWatch.Prepare; def is
	// nil for the others): its buffer described, and a reference to it
	// (buf, until BufferRef takes it); def takes the references back.
	def      *C.FhDeferred
	buf      *C.GstBuffer
	desc     Desc
	sameCaps bool // prepared in the watch's latest generation
}

// Unref drops the reference.
func (s *Sample) Unref() {
	if s.def != nil {
		if s.buf != nil {
			giveBack(s.def, unsafe.Pointer(s.buf))
			s.buf = nil
		}
		giveBack(s.def, unsafe.Pointer(s.s))
		s.s = nil
		return
	}
	C.fh_sample_unref(s.s)
	s.s = nil
}

// PreparedCaps reports whether the streaming thread prepared the sample in
// its watch's latest Prepare generation: its caps are those of the sample
// given to that Prepare.
func (s *Sample) PreparedCaps() bool { return s.sameCaps }

// BufferRef returns a new reference to the sample's buffer, or nil. The
// caller must Unref it.
func (s *Sample) BufferRef() *Buffer {
	if s.buf != nil {
		b := &Buffer{b: s.buf, def: s.def}
		s.buf = nil
		return b
	}
	b := C.fh_sample_buffer_ref(s.s)
	if b == nil {
		return nil
	}
	return &Buffer{b: b}
}

// giveBack drops a reference (a sample's or a buffer's) of a buffer of
// framehub's memfd pool through the pool's FhDeferred, which the pool
// drains in C, without a cgo call; through cgo when the pool refuses
// (full, or it is flushing or waiting for a buffer: fhgst.h).
func giveBack(d *C.FhDeferred, obj unsafe.Pointer) {
	if !deferUnref(d, obj) {
		C.fh_mini_object_unref(obj)
	}
}

// deferUnref pushes obj into d; false when d refuses it (the protocol:
// fhgst.h). The caller holds obj's reference until the push published it,
// which keeps the pool, and so d, alive: after that d is not touched.
func deferUnref(d *C.FhDeferred, obj unsafe.Pointer) bool {
	tailp := (*uint64)(unsafe.Pointer(&d.tail))
	headp := (*uint64)(unsafe.Pointer(&d.head))
	var t uint64
	for {
		t = atomic.LoadUint64(tailp)
		switch {
		case t&C.FH_DEFER_BLOCKED != 0:
			return false
		case t&C.FH_DEFER_PUSHING != 0: // another goroutine's push
			runtime.Gosched()
			continue
		case t-atomic.LoadUint64(headp) >= C.FH_DEFER_CAP:
			return false
		}
		if atomic.CompareAndSwapUint64(tailp, t, t|C.FH_DEFER_PUSHING) {
			break
		}
	}
	// A uintptr store: the slot is C memory, no write barrier wanted.
	atomic.StoreUintptr((*uintptr)(unsafe.Pointer(&d.slots[t%C.FH_DEFER_CAP])), uintptr(obj))
	for {
		// C may have set FH_DEFER_BLOCKED meanwhile; it then waits for
		// FH_DEFER_PUSHING to clear and drains what this publishes.
		cur := atomic.LoadUint64(tailp)
		if atomic.CompareAndSwapUint64(tailp, cur, cur&^C.FH_DEFER_PUSHING+1) {
			return true
		}
	}
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
//
// A prepared sample (SampleWatch.Prepare) returns what the streaming thread
// found, with the vi and obs given to Prepare; buffers of framehub's pool
// carry a GstVideoMeta, which gives their layout whatever vi says.
func (s *Sample) Describe(vi *VideoInfo, obs *Observer) Desc {
	if s.def != nil {
		return s.desc
	}
	var d C.FhBufDesc
	C.fh_describe(s.s, vi.c(), obs.handle(), &d)
	return descOf(&d)
}

// descOf converts a C description, without a cgo call.
func descOf(d *C.FhBufDesc) Desc {
	out := descFromC(d)
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
type Buffer struct {
	b   *C.GstBuffer
	def *C.FhDeferred // a prepared sample's: Unref gives it back through its pool
}

// Unref drops the reference. It may run under a lock: it never calls back
// into Go code other than a MemoryObserver's.
func (b *Buffer) Unref() {
	if b.def != nil {
		giveBack(b.def, unsafe.Pointer(b.b))
	} else {
		C.fh_buffer_unref(b.b)
	}
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

// c is the C info, nil for a nil VideoInfo.
func (v *VideoInfo) c() *C.GstVideoInfo {
	if v == nil {
		return nil
	}
	return v.vi
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

// handle is the observer's handle for C, 0 (none) for a nil Observer.
func (o *Observer) handle() C.uintptr_t {
	if o == nil {
		return 0
	}
	return C.uintptr_t(o.h)
}

// Delete unregisters the observer.
func (o *Observer) Delete() { o.h.Delete() }
