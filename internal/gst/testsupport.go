package gst

// #include <stdlib.h>
// #include "fhgst.h"
import "C"

import (
	"errors"
	"sync/atomic"
	"unsafe"
)

// This file builds buffers shaped like those real sources produce, for the
// tests of this package and of producer/media (this machine has no camera,
// no DMA-BUF heap and no udmabuf).

// NewTestDMABufBuffer wraps a dup of fd, size bytes, in a GstDmaBufMemory
// whose data starts at offset: what v4l2src io-mode=dmabuf pushes. GStreamer
// does not check that fd is a real dma-buf, so a memfd stands in for one.
// The caller owns the buffer.
func NewTestDMABufBuffer(fd, size, offset int) (*Buffer, error) {
	b := C.fh_test_wrap_dmabuf(C.int(fd), C.gsize(size), C.gsize(offset))
	if b == nil {
		return nil, errors.New("gst: wrap fd as dmabuf memory failed")
	}
	return &Buffer{b: b}, nil
}

// NewTestSample makes a sample of b (the sample takes its own reference)
// with caps parsed from a string. The caller owns the sample.
func NewTestSample(b *Buffer, caps string) *Sample {
	cs := C.CString(caps)
	defer C.free(unsafe.Pointer(cs))
	return &Sample{s: C.fh_test_sample(b.b, cs)}
}

// TestPool is an active memfd pool outside any pipeline.
type TestPool struct{ p *C.GstBufferPool }

// NewTestPool makes and activates a memfd pool for caps with min..max
// buffers and video meta. Free it once.
func NewTestPool(caps string, min, max int) (*TestPool, error) {
	cs := C.CString(caps)
	defer C.free(unsafe.Pointer(cs))
	p := C.fh_test_pool(cs, C.guint(min), C.guint(max))
	if p == nil {
		return nil, errors.New("gst: memfd test pool refused its config")
	}
	return &TestPool{p: p}, nil
}

// Acquire takes a buffer without waiting; nil when all max are out.
func (t *TestPool) Acquire() *Buffer {
	b := C.fh_test_acquire(t.p)
	if b == nil {
		return nil
	}
	return &Buffer{b: b}
}

// Free deactivates the pool and drops its reference; buffers still out are
// freed when released.
func (t *TestPool) Free() { C.fh_test_pool_free(t.p) }

// NewTestSystemBuffer copies data into a buffer of plain system memory (no
// fd): what a source that ignores framehub's pool pushes. The caller owns
// it.
func NewTestSystemBuffer(data []byte) *Buffer {
	if len(data) == 0 {
		return nil
	}
	return &Buffer{b: C.fh_test_system_buffer(unsafe.Pointer(&data[0]), C.gsize(len(data)))}
}

// TestRingLen returns how many samples the streaming thread has put in the
// watch's ring (Prepare) that Pull has not taken yet; 0 when closed.
func (w *SampleWatch) TestRingLen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil {
		return 0
	}
	return int(atomic.LoadUint64((*uint64)(unsafe.Pointer(&w.w.ready_tail))) - atomic.LoadUint64((*uint64)(unsafe.Pointer(&w.w.ready_head))))
}
