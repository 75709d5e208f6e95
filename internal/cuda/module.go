package cuda

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Module is a loaded module (CUmodule).
type Module uintptr

// Function is a kernel of a loaded module (CUfunction).
type Function uintptr

// LoadModule loads a module image (cuModuleLoadData): PTX text, which the
// driver compiles for this device, or a cubin/fatbin. Unload it with
// UnloadModule once its kernels are no longer launched.
func (c *Context) LoadModule(image []byte) (Module, error) {
	if len(image) == 0 {
		return 0, fmt.Errorf("cuda: load module: empty image")
	}
	// PTX is read as a C string: make sure it ends.
	img := make([]byte, len(image)+1)
	copy(img, image)
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return 0, err
	}
	var m uintptr
	if r := c.d.call(symModuleLoadData, uintptr(unsafe.Pointer(&m)), uintptr(unsafe.Pointer(&img[0]))); r != Success {
		return 0, c.d.err(r, fmt.Sprintf("cuModuleLoadData(%d bytes)", len(image)))
	}
	return Module(m), nil
}

// UnloadModule unloads a module loaded by LoadModule.
func (c *Context) UnloadModule(m Module) error {
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return err
	}
	if r := c.d.call(symModuleUnload, uintptr(m)); r != Success {
		return c.d.err(r, "cuModuleUnload")
	}
	return nil
}

// Function looks up kernel name in module m.
func (c *Context) Function(m Module, name string) (Function, error) {
	cname := append([]byte(name), 0)
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return 0, err
	}
	var f uintptr
	if r := c.d.call(symModuleGetFunction, uintptr(unsafe.Pointer(&f)), uintptr(m), uintptr(unsafe.Pointer(&cname[0]))); r != Success {
		return 0, c.d.err(r, fmt.Sprintf("cuModuleGetFunction(%q)", name))
	}
	return Function(f), nil
}

// Params are a kernel's arguments, laid out for cuLaunchKernel: one 8-byte
// slot per parameter (a 32-bit parameter is read from the low half, which
// is its address on little-endian machines, the only ones CUDA runs on) and
// the array of their addresses. Both live on the Go heap, which does not
// move, for as long as the Params; reuse one Params per launch site instead
// of allocating per frame. A Params is not safe for concurrent use.
type Params struct {
	vals []uint64
	ptrs []uintptr
}

// NewParams returns room for n parameters, all zero.
func NewParams(n int) *Params {
	p := &Params{vals: make([]uint64, n), ptrs: make([]uintptr, n)}
	for i := range p.vals {
		p.ptrs[i] = uintptr(unsafe.Pointer(&p.vals[i]))
	}
	return p
}

// Set sets parameter i to v (uint32, int32 and pointer parameters take
// their value zero-extended or sign-extended to 64 bits).
func (p *Params) Set(i int, v uint64) { p.vals[i] = v }

// Dim3 is a grid or block size.
type Dim3 struct{ X, Y, Z uint32 }

// Launch queues kernel f on stream s (cuLaunchKernel) with grid×block
// threads and no dynamic shared memory. It returns when the launch is
// queued, not when the kernel ran: synchronise s before reading its
// results.
func (c *Context) Launch(f Function, grid, block Dim3, s Stream, p *Params) error {
	var args uintptr
	if p != nil && len(p.ptrs) > 0 {
		args = uintptr(unsafe.Pointer(&p.ptrs[0]))
	}
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return err
	}
	r := c.d.call(symLaunchKernel, uintptr(f),
		uintptr(max(grid.X, 1)), uintptr(max(grid.Y, 1)), uintptr(max(grid.Z, 1)),
		uintptr(max(block.X, 1)), uintptr(max(block.Y, 1)), uintptr(max(block.Z, 1)),
		0, uintptr(s), args, 0)
	runtime.KeepAlive(p)
	if r != Success {
		return c.d.err(r, fmt.Sprintf("cuLaunchKernel(grid %d×%d×%d, block %d×%d×%d)", grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z))
	}
	return nil
}
