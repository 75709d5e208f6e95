// Command framehubsink is not a program: built with -buildmode=c-shared it
// is the GStreamer plugin of the framehubsink element (libgstframehubsink.so,
// `make gst`), which makes any pipeline a framehub producer:
//
//	gst-launch-1.0 v4l2src ! videoconvert ! video/x-raw,format=NV12 ! framehubsink socket=/run/framehub/cam.sock
//
// The element is C (element.c: a GstBin around an appsink, its properties
// and state changes); the producer behind it is framehub's own Go runtime
// (producer.Server, and producer/media's Sink, which publishes exactly as
// framehub-producer's GStreamer pipeline does), so leases, fan-out,
// admission control and the fairness rules are the same code, not a copy
// in C. docs/GSTREAMER.md says why it is Go while framehubsrc is C.
//
// Go is entered only at state changes (fhsStart, fhsStop), for the "stats"
// property and at the element's finalization: frames go from the appsink's
// streaming thread to a goroutine through an eventfd (internal/gst
// SampleWatch), because every call from a GStreamer thread into Go costs a
// wake-up of the Go runtime per frame.
//
// One Go runtime per process: a Go program that uses GStreamer through
// go-gst cannot also load this plugin; it uses producer/media directly.
package main

/*
#cgo pkg-config: gstreamer-1.0
#include <stdlib.h>
#include "element.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/cgo"
	"strings"
	"sync"
	"time"
	"unsafe"

	fhgst "github.com/framehub/framehub/internal/gst"
	"github.com/framehub/framehub/internal/rundir"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/media"
)

// main is never called: a c-shared library needs one.
func main() {}

// hub owns the producer servers of the framehubsink elements of this
// process, one per socket address, each shared by the elements started on
// it and closed when the last of them stops. It is the Go side of the
// element class: made once, at the first start (element.c get_hub), and
// never freed (GStreamer never unloads a plugin).
type hub struct {
	log     *slog.Logger
	mu      sync.Mutex
	servers map[string]*server
}

// server is one producer.Server and the sinks publishing on it.
type server struct {
	addr    string
	srv     *producer.Server
	users   int // elements started on it now
	started bool
	closed  bool
	sinks   []*media.Sink
}

// element is the Go side of one framehubsink element, from its first start
// to its finalization.
type element struct {
	hub     *hub
	self    *C.GstElement  // the element; it owns this value, so it outlives it
	appsink *fhgst.Element // its child, referenced
	probe   *fhgst.AllocationProbe
	srv     *server // while started
	sinkSrv *server

	// mu guards sink, which the "stats" property reads from the
	// application's thread while a state change may replace it.
	mu   sync.Mutex
	sink *media.Sink // publishes on sinkSrv; kept across runs while sinkSrv lives
}

//export fhsHubNew
func fhsHubNew() C.uintptr_t {
	return C.uintptr_t(cgo.NewHandle(&hub{log: slog.New(gstHandler{}), servers: make(map[string]*server)}))
}

//export fhsStart
func fhsStart(hubH C.uintptr_t, goH *C.uintptr_t, self, appsink *C.GstElement, s *C.FhsSettings, errBuf *C.char, errLen C.size_t) C.int {
	h := cgo.Handle(hubH).Value().(*hub)
	if *goH == 0 {
		e := &element{hub: h, self: self, appsink: fhgst.ElementFromPointer(unsafe.Pointer(appsink))}
		*goH = C.uintptr_t(cgo.NewHandle(e))
	}
	e := cgo.Handle(*goH).Value().(*element)
	if err := e.start(settingsFromC(s)); err != nil {
		msg := err.Error()
		n := min(len(msg), int(errLen)-1)
		dst := unsafe.Slice((*byte)(unsafe.Pointer(errBuf)), int(errLen))
		copy(dst, msg[:n])
		dst[n] = 0
		return 0
	}
	return 1
}

//export fhsStop
func fhsStop(goH C.uintptr_t) {
	if goH != 0 {
		cgo.Handle(goH).Value().(*element).stop()
	}
}

//export fhsFree
func fhsFree(goH C.uintptr_t) {
	e := cgo.Handle(goH).Value().(*element)
	e.stop()
	if e.probe != nil {
		e.probe.Remove()
	}
	e.appsink.Unref()
	cgo.Handle(goH).Delete()
}

//export fhsStats
func fhsStats(goH C.uintptr_t, out *C.FhsStats) {
	if goH == 0 {
		return
	}
	e := cgo.Handle(goH).Value().(*element)
	e.mu.Lock()
	sink := e.sink
	e.mu.Unlock()
	if sink == nil {
		return
	}
	st := sink.Stats()
	name := unsafe.Slice((*byte)(unsafe.Pointer(&out.stream[0])), len(out.stream))
	name[copy(name[:len(name)-1], st.Stream)] = 0
	out.frames, out.zero_copy, out.adopted, out.copied = C.uint64_t(st.Frames), C.uint64_t(st.ZeroCopyFrames), C.uint64_t(st.AdoptedFrames), C.uint64_t(st.CopiedFrames)
	out.dropped, out.stamped, out.unstamped, out.held = C.uint64_t(st.Dropped), C.uint64_t(st.Stamped), C.uint64_t(st.Unstamped), C.uint64_t(st.HeldBuffers)
	out.unwatched, out.consumers = C.uint64_t(st.Unwatched), C.int(st.Consumers)
}

// settings are an element's properties at one start.
type settings struct {
	socket, stream            string
	poolMin, poolMax, reserve int
	maxInFlight               int
	maxHold                   time.Duration
	h264PoolMax, h264SlabSize int
	h264Replay                time.Duration
	stamp                     bool
}

func settingsFromC(s *C.FhsSettings) settings {
	str := func(p *C.char) string {
		if p == nil {
			return ""
		}
		return C.GoString(p)
	}
	replay := time.Duration(s.h264_replay_ms) * time.Millisecond
	if replay == 0 {
		replay = -1 // media: negative keeps none
	}
	return settings{
		socket: str(s.socket), stream: str(s.stream),
		poolMin: int(s.pool_min), poolMax: int(s.pool_max), reserve: int(s.pool_reserve),
		maxInFlight: int(s.max_in_flight), maxHold: time.Duration(s.max_hold_ms) * time.Millisecond,
		h264PoolMax: int(s.h264_pool_max), h264SlabSize: int(s.h264_slab_size), h264Replay: replay,
		stamp: s.stamp != 0,
	}
}

// defaultAddr is the producer socket when the element names none: the
// same rule as framehub-producer's -socket (rundir.DefaultSocket,
// PROTOCOL.md §2), with an error that names the element's property.
func defaultAddr() (string, error) {
	if a := os.Getenv(rundir.SocketEnv); a != "" {
		return a, nil
	}
	dir, err := rundir.Default()
	if err != nil {
		return "", fmt.Errorf("no default socket: %w; set the socket property, or %s or XDG_RUNTIME_DIR", err, rundir.SocketEnv)
	}
	return filepath.Join(dir, rundir.SocketName), nil
}

// start attaches the element's appsink to its stream's sink, on the
// socket's server (made now if the element is its first user).
func (e *element) start(s settings) error {
	if s.poolMin > s.poolMax || s.reserve >= s.poolMax {
		return fmt.Errorf("pool-min %d, pool-max %d and pool-reserve %d must satisfy pool-min ≤ pool-max and pool-reserve < pool-max", s.poolMin, s.poolMax, s.reserve)
	}
	addr := s.socket
	if addr == "" {
		var err error
		if addr, err = defaultAddr(); err != nil {
			return err
		}
	}
	srv, err := e.hub.acquire(addr, s)
	if err != nil {
		return err
	}
	if e.sink == nil || e.sinkSrv != srv {
		sink, err := media.NewSink(media.SinkConfig{
			Stream: s.stream, RawPoolMax: s.poolMax, RawReserve: s.reserve,
			H264PoolMax: s.h264PoolMax, H264SlabSize: s.h264SlabSize, H264Replay: s.h264Replay, Stamp: s.stamp,
			OnStream: func(string) { e.hub.listen(srv) },
			OnError:  e.postError,
			Logger:   e.hub.log.With("socket", addr),
		}, srv.srv)
		if err != nil {
			e.hub.release(srv)
			return err
		}
		e.hub.addSink(srv, sink)
		e.mu.Lock()
		e.sink, e.sinkSrv = sink, srv
		e.mu.Unlock()
	}
	// A new probe each run: pool-min and pool-max may have changed.
	if e.probe != nil {
		e.probe.Remove()
		e.probe = nil
	}
	if e.probe, err = e.appsink.AddAllocationProbe(s.poolMin, s.poolMax); err != nil {
		e.hub.release(srv)
		return err
	}
	if err := e.sink.Attach(e.appsink); err != nil {
		e.hub.release(srv)
		return err
	}
	e.srv = srv
	return nil
}

// stop detaches the appsink (its streaming thread ended) and lets go of
// the server.
func (e *element) stop() {
	if e.srv == nil {
		return
	}
	e.sink.Detach()
	e.hub.release(e.srv)
	e.srv = nil
}

// postError reports on the element's bus that its sink cannot publish.
func (e *element) postError(err error) {
	msg := C.CString(err.Error())
	defer C.free(unsafe.Pointer(msg))
	C.fhs_post_error(e.self, msg)
}

// acquire returns the server of addr, made on first use with s's producer
// settings, and counts the caller as its user until release.
func (h *hub) acquire(addr string, s settings) (*server, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if sv := h.servers[addr]; sv != nil {
		sv.users++
		return sv, nil
	}
	if !strings.HasPrefix(addr, "@") {
		if err := rundir.Ensure(filepath.Dir(addr), -1); err != nil {
			return nil, fmt.Errorf("socket directory of %s: %w", addr, err)
		}
	}
	cfg := producer.Config{Addr: addr, MaxInFlight: s.maxInFlight, MaxHold: s.maxHold, Logger: h.log.With("socket", addr)}
	if s.maxHold < producer.Defaults().DefaultMaxHold {
		cfg.DefaultMaxHold = s.maxHold
	}
	srv, err := producer.New(cfg)
	if err != nil {
		return nil, err
	}
	sv := &server{addr: addr, srv: srv, users: 1}
	h.servers[addr] = sv
	return sv, nil
}

// listen starts sv's listener, once its first stream exists: a consumer
// that connects as soon as the socket appears finds its stream.
func (h *hub) listen(sv *server) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if sv.started || sv.closed {
		return
	}
	sv.started = true
	if err := sv.srv.Start(); err != nil {
		h.log.Error("listen", "socket", sv.addr, "err", err)
	}
}

func (h *hub) addSink(sv *server, s *media.Sink) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sv.sinks = append(sv.sinks, s)
}

// release counts a user of sv out; the last one closes the server (every
// consumer gets Bye shutdown) and then its sinks' pools.
func (h *hub) release(sv *server) {
	h.mu.Lock()
	sv.users--
	if sv.users > 0 {
		h.mu.Unlock()
		return
	}
	sv.closed = true
	delete(h.servers, sv.addr)
	sinks := sv.sinks
	h.mu.Unlock()
	errs := []error{sv.srv.Close()}
	for _, s := range sinks {
		errs = append(errs, s.Close())
	}
	if err := errors.Join(errs...); err != nil {
		h.log.Error("close the producer", "socket", sv.addr, "err", err)
	}
}
