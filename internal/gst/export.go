package gst

// #include <stdint.h>
import "C"

import "runtime/cgo"

// fhMemFreed is called by fhgst.c when a memory registered with an Observer
// is finalized, from whatever thread dropped the last reference (a
// streaming thread, or a lease's free under a stream's lock).
//
//export fhMemFreed
func fhMemFreed(h C.uintptr_t, dev, ino C.uint64_t) {
	if o, ok := cgo.Handle(h).Value().(MemoryObserver); ok {
		o.MemoryFreed(uint64(dev), uint64(ino))
	}
}
