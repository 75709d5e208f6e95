package surface

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/internal/dmabuf"
	"github.com/framehub/framehub/ipc"
)

// dmaHeapIoctlAlloc is DMA_HEAP_IOCTL_ALLOC =
// _IOWR('H', 0, struct dma_heap_allocation_data) (24 bytes) = 0xc0184800.
const dmaHeapIoctlAlloc = 3<<30 | 24<<16 | 'H'<<8 | 0

// dmaHeapAllocationData mirrors struct dma_heap_allocation_data
// (include/uapi/linux/dma-heap.h).
type dmaHeapAllocationData struct {
	len       uint64
	fd        uint32
	fdFlags   uint32
	heapFlags uint64
}

// heapAllocator allocates dma-bufs from a DMA-BUF heap device.
type heapAllocator struct {
	path string
}

// NewHeap returns an allocator of dma-bufs from the DMA-BUF heap device at
// path, e.g. DefaultHeap ("/dev/dma_heap/system"). It checks that the device
// exists and can be opened; if not, the error names the device and what to
// do (the error wraps fs.ErrNotExist when it is missing).
//
// Each Alloc opens the device, issues DMA_HEAP_IOCTL_ALLOC (fd_flags
// O_RDWR|O_CLOEXEC) and maps the dma-buf read-write, MAP_SHARED. The
// device is not kept open between allocations. The dma-buf fd is also the
// ShareFD (dma-bufs cannot be reopened read-only).
func NewHeap(path string) (Allocator, error) {
	if path == "" {
		return nil, fmt.Errorf("surface: dma-heap: empty device path (e.g. %s)", DefaultHeap)
	}
	fd, err := openHeap(path)
	if err != nil {
		return nil, err
	}
	unix.Close(fd)
	return &heapAllocator{path: path}, nil
}

// openHeap opens a heap device and explains failures.
func openHeap(path string) (int, error) {
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		return err
	})
	if err == nil {
		return fd, nil
	}
	perr := &fs.PathError{Op: "open", Path: path, Err: err}
	switch {
	case errors.Is(err, unix.ENOENT):
		hint := "the kernel has no DMA-BUF heaps (CONFIG_DMABUF_HEAPS)"
		if path == DefaultHeap {
			hint = "kernel built without CONFIG_DMABUF_HEAPS_SYSTEM (needs CONFIG_DMABUF_HEAPS)"
		} else if _, serr := os.Stat("/dev/dma_heap"); serr == nil {
			hint = "no such heap; list /dev/dma_heap for the available ones"
		}
		return -1, fmt.Errorf("surface: dma-heap device %s absent: %s; use the memfd allocator instead: %w", path, hint, perr)
	case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
		return -1, fmt.Errorf("surface: dma-heap device %s: permission denied (grant the user access to it, e.g. a udev rule): %w", path, perr)
	}
	return -1, fmt.Errorf("surface: dma-heap device %s: %w", path, perr)
}

// Kind implements Allocator.
func (a *heapAllocator) Kind() ipc.Kind { return ipc.KindDMABuf }

// Name implements Allocator.
func (a *heapAllocator) Name() string { return "dma-heap:" + a.path }

// Alloc implements Allocator.
func (a *heapAllocator) Alloc(size int) (*Memory, error) {
	size, err := roundSize("dma-heap alloc", size)
	if err != nil {
		return nil, err
	}
	heap, err := openHeap(a.path)
	if err != nil {
		return nil, err
	}
	defer unix.Close(heap)

	data := dmaHeapAllocationData{
		len:     uint64(size),
		fdFlags: unix.O_RDWR | unix.O_CLOEXEC,
	}
	err = ignoringEINTR(func() error {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(heap), dmaHeapIoctlAlloc, uintptr(unsafe.Pointer(&data)))
		if errno != 0 {
			return errno
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("surface: dma-heap %s: alloc %d bytes: %w", a.path, size, os.NewSyscallError("ioctl DMA_HEAP_IOCTL_ALLOC", err))
	}
	fd := int(data.fd)
	return newDMABufMemory("dma-heap "+a.path, fd, size, dmabuf.Kernel{})
}

// newDMABufMemory maps the dma-buf fd read-write, MAP_SHARED, through cpu
// (dmabuf.Kernel{} but in tests) and wraps it into a Memory whose writes
// cpu syncs. On error it closes fd.
func newDMABufMemory(op string, fd, size int, cpu dmabuf.CPU) (*Memory, error) {
	b, err := cpu.Map(fd, size, unix.PROT_READ|unix.PROT_WRITE)
	if err != nil {
		closeFD(fd)
		return nil, fmt.Errorf("surface: %s: %w", op, err)
	}
	return &Memory{
		kind:    ipc.KindDMABuf,
		size:    size,
		fd:      fd,
		shareFD: fd,
		data:    b,
		cpu:     cpu,
	}, nil
}
