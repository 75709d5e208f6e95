// Package surface allocates the fd-backed memory that frames are rendered
// into and shared with consumer processes, and pools it.
//
// Three allocators exist:
//
//   - memfd (NewMemfd): anonymous shared memory. Consumers receive an
//     O_RDONLY reopen of the memfd, and the memfd is sealed so that nobody
//     but the producer's own mapping can ever write it (see NewMemfd).
//   - DMA-BUF heaps (NewHeap): /dev/dma_heap/NAME, memory devices (encoders,
//     GPUs, ISPs) can import.
//   - udmabuf (NewUdmabuf): a dma-buf wrapping a sealed memfd.
//
// The producer writes through Memory.Bytes, bracketed by BeginWrite and
// EndWrite (required for DMA-BUF on non-coherent SoCs, a no-op for memfd),
// and sends Memory.ShareFD to consumers. Pool recycles surfaces between
// frames.
//
// Memory on a GPU (package producer/surface/cudamem) has no CPU mapping:
// NewDeviceMemory wraps it, Bytes is nil, the producer writes it with the
// device (DevicePtr) and consumers learn from Device that they cannot mmap
// it either.
//
// The package is pure Go (no cgo) and Linux only. All fds it creates are
// close-on-exec.
package surface

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/internal/dmabuf"
	"github.com/framehub/framehub/ipc"
)

// Memory is one fd-backed allocation owned by the producer: a read-write fd,
// the producer's read-write MAP_SHARED mapping of it, and the fd handed to
// consumers. It is safe to call Close concurrently with the accessors; using
// the mapping after Close faults.
type Memory struct {
	kind        ipc.Kind
	size        int
	fd          int // read-write fd (memfd or dma-buf)
	shareFD     int // fd for consumers; == fd for DMA-BUF
	futureWrite bool
	devPtr      uint64       // device memory: the producer's device address
	device      *ipc.Device  // device memory: what consumers are told
	release     func() error // device memory: frees it, once, in Close
	// cpu maps DMA-BUF memory and syncs the producer's writes to it: the
	// kernel's, or in tests on a machine without a DMA-BUF exporter a
	// stand-in (dmabuftest.Fake) over a memfd. nil for memfd memory.
	cpu dmabuf.CPU

	mu     sync.Mutex
	data   []byte // nil once closed
	closed bool
}

// DeviceMemory describes memory on a device (a GPU) that the producer cannot
// map into its address space, for NewDeviceMemory.
type DeviceMemory struct {
	Kind ipc.Kind // ipc.KindCUDA, or ipc.KindDMABuf for a DMA-BUF export
	Size int      // bytes consumers map: the whole allocation
	// FD is what consumers receive. NewDeviceMemory takes it over: the
	// Memory closes it (also when NewDeviceMemory fails).
	FD int
	// Ptr is the producer's device address of the memory.
	Ptr uint64
	// Device names the device; NoCPUMap should be set unless the fd is
	// mmap-able.
	Device ipc.Device
	// Release frees the device memory. Close calls it once, after closing
	// FD; consumers' imports keep the memory alive beyond it.
	Release func() error
}

// NewDeviceMemory wraps device memory in a Memory: Bytes is nil, DevicePtr
// and Device describe it. The caller must Close the Memory (Pool does).
func NewDeviceMemory(d DeviceMemory) (*Memory, error) {
	switch {
	case d.Kind != ipc.KindCUDA && d.Kind != ipc.KindDMABuf:
		closeFD(d.FD)
		return nil, fmt.Errorf("surface: device memory of kind %v: want cuda or dmabuf", d.Kind)
	case d.Size <= 0 || d.FD < 0 || d.Release == nil:
		closeFD(d.FD)
		return nil, fmt.Errorf("surface: device memory: size %d, fd %d and a Release func are required", d.Size, d.FD)
	case len(d.Device.UUID) != ipc.DeviceUUIDSize:
		closeFD(d.FD)
		return nil, fmt.Errorf("surface: device memory: device UUID of %d bytes, want %d", len(d.Device.UUID), ipc.DeviceUUIDSize)
	}
	dev := d.Device
	dev.UUID = append([]byte(nil), d.Device.UUID...)
	return &Memory{kind: d.Kind, size: d.Size, fd: d.FD, shareFD: d.FD, devPtr: d.Ptr, device: &dev, release: d.Release}, nil
}

// DevicePtr returns the producer's device address of device memory, 0 for
// host memory.
func (m *Memory) DevicePtr() uint64 { return m.devPtr }

// Device describes the device that holds the memory (nil for host memory),
// as the Announce tells consumers. The caller must not modify it.
func (m *Memory) Device() *ipc.Device { return m.device }

// Kind reports what kind of memory this is (ipc.KindMemfd, ipc.KindDMABuf
// or ipc.KindCUDA).
func (m *Memory) Kind() ipc.Kind { return m.kind }

// Size is the size in bytes of the allocation (a multiple of the page size).
func (m *Memory) Size() int { return m.size }

// Bytes returns the producer's read-write MAP_SHARED mapping; len == Size().
// It returns nil after Close, and always for device memory. For DMA-BUF
// memory, bracket CPU writes with BeginWrite and EndWrite.
func (m *Memory) Bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data
}

// ShareFD returns the fd to send to consumers. It is borrowed: the Memory
// owns it and closes it in Close; senders dup it implicitly by passing it
// with SCM_RIGHTS.
//
// For memfd memory it is an O_RDONLY reopen of the memfd (made once at
// allocation through /proc/self/fd/N), so a consumer can only map it
// PROT_READ. For DMA-BUF memory it is the dma-buf fd itself: a dma-buf fd
// cannot be reopened read-only (the kernel refuses to open a dma-buf through
// its /proc/self/fd link, and a dma-buf's access mode is fixed when it is
// exported), so consumers receive an fd they could map writable; the
// producer has to trust them.
func (m *Memory) ShareFD() int { return m.shareFD }

// FD returns the read-write fd (the memfd or the dma-buf), owned by Memory.
func (m *Memory) FD() int { return m.fd }

// FutureWriteSealed reports whether the memfd carries F_SEAL_FUTURE_WRITE
// (Linux ≥ 5.1): no new writable mapping of it and no write(2) to it can be
// made by anyone, only the producer's own mapping (Bytes) can write. It is
// always false for DMA-BUF memory.
func (m *Memory) FutureWriteSealed() bool { return m.futureWrite }

// BeginWrite starts a CPU write to Bytes: DMA_BUF_IOCTL_SYNC(START|WRITE)
// for DMA-BUF memory, nothing for memfd and device memory. Pair it with
// EndWrite.
func (m *Memory) BeginWrite() error {
	if m.kind != ipc.KindDMABuf || m.device != nil {
		return nil
	}
	if err := m.cpu.BeginCPUAccess(m.fd, dmabuf.SyncWrite); err != nil {
		return fmt.Errorf("surface: begin write: %w", err)
	}
	return nil
}

// EndWrite ends a CPU write started by BeginWrite: DMA_BUF_IOCTL_SYNC
// (END|WRITE) for DMA-BUF memory, nothing for memfd memory.
func (m *Memory) EndWrite() error {
	if m.kind != ipc.KindDMABuf || m.device != nil {
		return nil
	}
	if err := m.cpu.EndCPUAccess(m.fd, dmabuf.SyncWrite); err != nil {
		return fmt.Errorf("surface: end write: %w", err)
	}
	return nil
}

// Close unmaps the memory and closes every fd it owns. It is idempotent:
// later calls return nil. Consumers that hold their own fd or mapping keep
// the memory alive in the kernel.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	var errs []error
	if m.data != nil {
		if m.cpu != nil {
			if err := m.cpu.Unmap(m.data); err != nil {
				errs = append(errs, fmt.Errorf("surface: %w", err))
			}
		} else if err := unix.Munmap(m.data); err != nil {
			errs = append(errs, fmt.Errorf("surface: munmap %d bytes: %w", m.size, os.NewSyscallError("munmap", err)))
		}
		m.data = nil
	}
	fds := []int{m.fd}
	if m.shareFD != m.fd {
		fds = append(fds, m.shareFD)
	}
	for _, fd := range fds {
		if fd < 0 {
			continue
		}
		if err := unix.Close(fd); err != nil {
			errs = append(errs, fmt.Errorf("surface: close fd %d: %w", fd, os.NewSyscallError("close", err)))
		}
	}
	if m.release != nil {
		if err := m.release(); err != nil {
			errs = append(errs, fmt.Errorf("surface: release %v memory of %d bytes: %w", m.kind, m.size, err))
		}
	}
	return errors.Join(errs...)
}

// Allocator allocates Memory of one kind.
type Allocator interface {
	// Alloc allocates size bytes, rounded up to the page size. The caller
	// owns the Memory and must Close it.
	Alloc(size int) (*Memory, error)
	// Kind is the kind of every Memory the allocator returns.
	Kind() ipc.Kind
	// Name identifies the allocator: "memfd",
	// "dma-heap:/dev/dma_heap/system", "udmabuf".
	Name() string
}

// DefaultHeap is the DMA-BUF heap used by the spec "dma-heap".
const DefaultHeap = "/dev/dma_heap/system"

// Open returns the allocator named by spec:
//
//	"", "memfd"            NewMemfd("framehub")
//	"dma-heap"             NewHeap(DefaultHeap)
//	"dma-heap:/dev/dma_heap/NAME"  NewHeap("/dev/dma_heap/NAME")
//	"udmabuf"              NewUdmabuf()
func Open(spec string) (Allocator, error) {
	switch {
	case spec == "" || spec == "memfd":
		return NewMemfd("framehub"), nil
	case spec == "dma-heap":
		return NewHeap(DefaultHeap)
	case strings.HasPrefix(spec, "dma-heap:"):
		path := strings.TrimPrefix(spec, "dma-heap:")
		if path == "" {
			return nil, fmt.Errorf("surface: allocator %q: empty heap path (want dma-heap:/dev/dma_heap/NAME)", spec)
		}
		return NewHeap(path)
	case spec == "udmabuf":
		return NewUdmabuf()
	}
	return nil, fmt.Errorf("surface: unknown allocator %q (valid: \"memfd\" (default), \"dma-heap\", \"dma-heap:/dev/dma_heap/NAME\", \"udmabuf\")", spec)
}

// roundSize validates an allocation size and rounds it up to the page size.
func roundSize(op string, size int) (int, error) {
	page := os.Getpagesize()
	if size <= 0 {
		return 0, fmt.Errorf("surface: %s: invalid size %d (must be > 0)", op, size)
	}
	if size > maxAlloc-page {
		return 0, fmt.Errorf("surface: %s: size %d too large (max %d)", op, size, maxAlloc-page)
	}
	return (size + page - 1) &^ (page - 1), nil
}

// maxAlloc caps one allocation (1 TiB on 64-bit, 1 GiB on 32-bit) so that
// rounding and offsets never overflow.
const maxAlloc = 1 << (30 + 10*(^uint(0)>>63))

// closeFD closes fd if it is valid; for error paths.
func closeFD(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}

// mapShared maps size bytes of fd PROT_READ|PROT_WRITE, MAP_SHARED.
func mapShared(op string, fd, size int) ([]byte, error) {
	b, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("surface: %s: mmap fd %d (%d bytes): %w", op, fd, size, os.NewSyscallError("mmap", err))
	}
	return b, nil
}
