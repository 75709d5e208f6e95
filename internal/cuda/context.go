package cuda

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// Context is a device's primary context, retained by this process. Its
// methods make it current on the calling goroutine's OS thread for the
// length of each call (see the package documentation), so they may be called
// from any goroutine, concurrently.
type Context struct {
	d   *Driver
	dev Device
	ctx uintptr

	mu       sync.Mutex
	released bool
}

// Sched is how a host thread waits for the GPU in a synchronising call
// (CU_CTX_SCHED_*).
type Sched uint32

// Sched values.
const (
	// SchedAuto lets the driver choose: it spins when the machine has more
	// CPU cores than GPUs, which costs a core while waiting.
	SchedAuto Sched = 0
	// SchedSpin busy-waits: the lowest latency, a whole core while waiting.
	SchedSpin Sched = 1
	// SchedYield spins but yields the core between checks.
	SchedYield Sched = 2
	// SchedBlocking sleeps on an OS primitive: no CPU while waiting, a
	// wake-up's latency more.
	SchedBlocking Sched = 4
)

// ParseSched parses "auto", "spin", "yield" or "blocking".
func ParseSched(s string) (Sched, error) {
	for _, c := range []struct {
		name string
		v    Sched
	}{{"auto", SchedAuto}, {"spin", SchedSpin}, {"yield", SchedYield}, {"blocking", SchedBlocking}} {
		if s == c.name {
			return c.v, nil
		}
	}
	return 0, fmt.Errorf("cuda: unknown scheduling %q (auto, spin, yield, blocking)", s)
}

func (s Sched) String() string {
	switch s {
	case SchedAuto:
		return "auto"
	case SchedSpin:
		return "spin"
	case SchedYield:
		return "yield"
	case SchedBlocking:
		return "blocking"
	}
	return fmt.Sprintf("sched(%d)", uint32(s))
}

// SetSched sets how threads of this process wait for dev in synchronising
// calls (cuDevicePrimaryCtxSetFlags_v2). It applies to the primary context
// of every user of dev in the process; set it before the first Retain.
func (d *Driver) SetSched(dev Device, s Sched) error {
	if r := d.call(symDevicePrimaryCtxSetFlags, uintptr(dev.Ordinal), uintptr(s)); r != Success {
		return d.err(r, fmt.Sprintf("cuDevicePrimaryCtxSetFlags_v2(device %d, %v)", dev.Ordinal, s))
	}
	return nil
}

// Retain retains dev's primary context (cuDevicePrimaryCtxRetain, which
// initialises the device on first use: 100-250 ms on an H100, so do it
// before the first frame). The caller must Close it.
func (d *Driver) Retain(dev Device) (*Context, error) {
	var ctx uintptr
	if r := d.call(symDevicePrimaryCtxRetain, uintptr(unsafe.Pointer(&ctx)), uintptr(dev.Ordinal)); r != Success {
		return nil, d.err(r, fmt.Sprintf("cuDevicePrimaryCtxRetain(device %d, %v)", dev.Ordinal, dev.UUID))
	}
	return &Context{d: d, dev: dev, ctx: ctx}, nil
}

// Driver returns the driver the context belongs to.
func (c *Context) Driver() *Driver { return c.d }

// Device returns the context's device.
func (c *Context) Device() Device { return c.dev }

// Close releases the retained primary context. The context's memory,
// modules and streams must have been released first. It is idempotent.
func (c *Context) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return nil
	}
	c.released = true
	if r := c.d.call(symDevicePrimaryCtxRelease, uintptr(c.dev.Ordinal)); r != Success {
		return c.d.err(r, fmt.Sprintf("cuDevicePrimaryCtxRelease_v2(device %d)", c.dev.Ordinal))
	}
	return nil
}

// bind locks the calling goroutine to its OS thread and makes the context
// current there. The caller must runtime.UnlockOSThread when done, also
// when bind fails.
func (c *Context) bind() error {
	runtime.LockOSThread()
	if r := c.d.call(symCtxSetCurrent, c.ctx); r != Success {
		return c.d.err(r, fmt.Sprintf("cuCtxSetCurrent(device %d)", c.dev.Ordinal))
	}
	return nil
}

// Do runs fn with the context current on a locked OS thread: for sequences
// of calls that must not be interleaved with another goroutine's (fn may
// call the context's methods; the lock nests).
func (c *Context) Do(fn func() error) error {
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return err
	}
	return fn()
}

// DevPtr is a device address (CUdeviceptr).
type DevPtr uint64

// Stream is a CUDA stream (CUstream).
type Stream uintptr

// NewStream creates a non-blocking stream (CU_STREAM_NON_BLOCKING: it does
// not synchronise with the legacy default stream). Destroy it with
// DestroyStream.
func (c *Context) NewStream() (Stream, error) {
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return 0, err
	}
	var s uintptr
	if r := c.d.call(symStreamCreate, uintptr(unsafe.Pointer(&s)), streamNonBlocking); r != Success {
		return 0, c.d.err(r, "cuStreamCreate")
	}
	return Stream(s), nil
}

// Synchronize waits until all work queued on s has completed.
func (c *Context) Synchronize(s Stream) error {
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return err
	}
	if r := c.d.call(symStreamSynchronize, uintptr(s)); r != Success {
		return c.d.err(r, "cuStreamSynchronize")
	}
	return nil
}

// DestroyStream destroys s (work queued on it still completes).
func (c *Context) DestroyStream(s Stream) error {
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return err
	}
	if r := c.d.call(symStreamDestroy, uintptr(s)); r != Success {
		return c.d.err(r, "cuStreamDestroy_v2")
	}
	return nil
}

// Alloc allocates size bytes of ordinary device memory (cuMemAlloc_v2),
// not shareable. Free it with Free.
func (c *Context) Alloc(size int) (DevPtr, error) {
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return 0, err
	}
	var p uint64
	if r := c.d.call(symMemAlloc, uintptr(unsafe.Pointer(&p)), uintptr(size)); r != Success {
		return 0, c.d.err(r, fmt.Sprintf("cuMemAlloc_v2(%d bytes)", size))
	}
	return DevPtr(p), nil
}

// Free frees memory from Alloc.
func (c *Context) Free(p DevPtr) error {
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return err
	}
	if r := c.d.call(symMemFree, uintptr(p)); r != Success {
		return c.d.err(r, fmt.Sprintf("cuMemFree_v2(%#x)", p))
	}
	return nil
}

// CopyToHost copies len(dst) bytes from device address src into dst
// (cuMemcpyDtoH_v2). It is synchronous: it returns once the bytes are in
// dst, after work queued before it on the legacy default stream; work on
// other streams must be synchronised first.
func (c *Context) CopyToHost(dst []byte, src DevPtr) error {
	if len(dst) == 0 {
		return nil
	}
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return err
	}
	if r := c.d.call(symMemcpyDtoH, uintptr(unsafe.Pointer(&dst[0])), uintptr(src), uintptr(len(dst))); r != Success {
		return c.d.err(r, fmt.Sprintf("cuMemcpyDtoH_v2(%d bytes from %#x)", len(dst), src))
	}
	return nil
}

// CopyToDevice copies src to device address dst (cuMemcpyHtoD_v2),
// synchronously.
func (c *Context) CopyToDevice(dst DevPtr, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return err
	}
	if r := c.d.call(symMemcpyHtoD, uintptr(dst), uintptr(unsafe.Pointer(&src[0])), uintptr(len(src))); r != Success {
		return c.d.err(r, fmt.Sprintf("cuMemcpyHtoD_v2(%d bytes to %#x)", len(src), dst))
	}
	return nil
}
