package cuda

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Handle is a VMM allocation handle (CUmemGenericAllocationHandle).
type Handle uint64

// Access is what a mapping permits the device to do (CUmemAccess_flags).
type Access uint32

// Access values.
const (
	ReadOnly  Access = 1 // CU_MEM_ACCESS_FLAGS_PROT_READ
	ReadWrite Access = 3 // CU_MEM_ACCESS_FLAGS_PROT_READWRITE
)

func (a Access) String() string {
	switch a {
	case ReadOnly:
		return "read-only"
	case ReadWrite:
		return "read-write"
	}
	return fmt.Sprintf("access(%d)", uint32(a))
}

// prop is the allocation property every framehub allocation uses: pinned
// device memory on the context's device, exportable as a POSIX fd.
func (c *Context) prop() memAllocationProp {
	return memAllocationProp{
		typ:                  memAllocationTypePinned,
		requestedHandleTypes: memHandleTypePosixFD,
		locationType:         memLocationTypeDevice,
		locationID:           int32(c.dev.Ordinal),
	}
}

// Granularity returns the size every shareable allocation on this device is
// a multiple of (cuMemGetAllocationGranularity, minimum; 2 MiB on current
// GPUs). An importer cannot query it, which is why exporters send sizes.
func (c *Context) Granularity() (int, error) {
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return 0, err
	}
	p := c.prop()
	var g uintptr
	if r := c.d.call(symMemGetAllocationGranularity, uintptr(unsafe.Pointer(&g)), uintptr(unsafe.Pointer(&p)), memAllocGranularityMinimum); r != Success {
		return 0, c.d.err(r, fmt.Sprintf("cuMemGetAllocationGranularity(device %d)", c.dev.Ordinal))
	}
	return int(g), nil
}

// Create allocates size bytes of device memory exportable as a POSIX fd
// (cuMemCreate with CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR requested:
// the handle type cannot be added later). size must be a multiple of
// Granularity. The caller must Release the handle.
func (c *Context) Create(size int) (Handle, error) {
	if size <= 0 {
		return 0, fmt.Errorf("cuda: create allocation: invalid size %d", size)
	}
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return 0, err
	}
	p := c.prop()
	var h uint64
	if r := c.d.call(symMemCreate, uintptr(unsafe.Pointer(&h)), uintptr(size), uintptr(unsafe.Pointer(&p)), 0); r != Success {
		return 0, c.d.err(r, fmt.Sprintf("cuMemCreate(%d bytes on device %d)", size, c.dev.Ordinal))
	}
	return Handle(h), nil
}

// Release releases an allocation handle (cuMemRelease). The memory lives
// on while any mapping of it or any other process's handle exists.
func (c *Context) Release(h Handle) error {
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return err
	}
	if r := c.d.call(symMemRelease, uintptr(h)); r != Success {
		return c.d.err(r, "cuMemRelease")
	}
	return nil
}

// Export returns a POSIX fd for h (cuMemExportToShareableHandle), set
// close-on-exec. The caller owns it; another process that receives it (over
// SCM_RIGHTS) can Import it. The fd grants read-write access to the memory.
func (c *Context) Export(h Handle) (int, error) {
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return -1, err
	}
	fd := int32(-1)
	if r := c.d.call(symMemExportToShareableHandle, uintptr(unsafe.Pointer(&fd)), uintptr(h), memHandleTypePosixFD, 0); r != Success {
		return -1, c.d.err(r, "cuMemExportToShareableHandle(POSIX fd)")
	}
	if err := setCloexec(int(fd)); err != nil {
		unix.Close(int(fd))
		return -1, err
	}
	return int(fd), nil
}

// Import returns an allocation handle for an fd made by Export in any
// process (cuMemImportFromShareableHandle). The fd stays the caller's: it
// may be closed right after. The caller must Release the handle.
func (c *Context) Import(fd int) (Handle, error) {
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return 0, err
	}
	var h uint64
	if r := c.d.call(symMemImportFromShareableHandle, uintptr(unsafe.Pointer(&h)), uintptr(fd), memHandleTypePosixFD); r != Success {
		return 0, c.d.err(r, fmt.Sprintf("cuMemImportFromShareableHandle(fd %d)", fd))
	}
	return Handle(h), nil
}

// Map reserves size bytes of the process's unified address space, maps
// allocation h there and grants this context's device access
// (cuMemAddressReserve, cuMemMap, cuMemSetAccess). size must be the
// allocation's whole size. On error nothing stays reserved or mapped. The
// caller must Unmap the address.
//
// ReadOnly makes the device fault on writes through this mapping: it guards
// a consumer against its own bugs, not against a hostile one, which could
// map the same fd read-write.
func (c *Context) Map(h Handle, size int, access Access) (DevPtr, error) {
	if size <= 0 {
		return 0, fmt.Errorf("cuda: map allocation: invalid size %d", size)
	}
	if access != ReadOnly && access != ReadWrite {
		return 0, fmt.Errorf("cuda: map allocation: invalid access %v", access)
	}
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return 0, err
	}
	var p uint64
	if r := c.d.call(symMemAddressReserve, uintptr(unsafe.Pointer(&p)), uintptr(size), 0, 0, 0); r != Success {
		return 0, c.d.err(r, fmt.Sprintf("cuMemAddressReserve(%d bytes)", size))
	}
	if r := c.d.call(symMemMap, uintptr(p), uintptr(size), 0, uintptr(h), 0); r != Success {
		err := c.d.err(r, fmt.Sprintf("cuMemMap(%d bytes)", size))
		c.d.call(symMemAddressFree, uintptr(p), uintptr(size))
		return 0, err
	}
	desc := memAccessDesc{locationType: memLocationTypeDevice, locationID: int32(c.dev.Ordinal), flags: uint32(access)}
	if r := c.d.call(symMemSetAccess, uintptr(p), uintptr(size), uintptr(unsafe.Pointer(&desc)), 1); r != Success {
		err := c.d.err(r, fmt.Sprintf("cuMemSetAccess(%d bytes, %v)", size, access))
		c.d.call(symMemUnmap, uintptr(p), uintptr(size))
		c.d.call(symMemAddressFree, uintptr(p), uintptr(size))
		return 0, err
	}
	return DevPtr(p), nil
}

// Unmap unmaps a mapping made by Map and frees its address range.
func (c *Context) Unmap(p DevPtr, size int) error {
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return err
	}
	var errs []error
	if r := c.d.call(symMemUnmap, uintptr(p), uintptr(size)); r != Success {
		errs = append(errs, c.d.err(r, fmt.Sprintf("cuMemUnmap(%#x, %d bytes)", p, size)))
	}
	if r := c.d.call(symMemAddressFree, uintptr(p), uintptr(size)); r != Success {
		errs = append(errs, c.d.err(r, fmt.Sprintf("cuMemAddressFree(%#x, %d bytes)", p, size)))
	}
	return errors.Join(errs...)
}

// DMABufFD exports size bytes of mapped device memory at p as a DMA-BUF
// (cuMemGetHandleForAddressRange with CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD),
// set close-on-exec. The caller owns the fd. Other devices (a NIC, a video
// engine) can import it; a CPU mmap of it fails on discrete GPUs (the
// nvidia driver's exporter answers ENOTSUPP, errno 524).
func (c *Context) DMABufFD(p DevPtr, size int) (int, error) {
	defer runtime.UnlockOSThread()
	if err := c.bind(); err != nil {
		return -1, err
	}
	fd := int32(-1)
	if r := c.d.call(symMemGetHandleForAddressRange, uintptr(unsafe.Pointer(&fd)), uintptr(p), uintptr(size), memRangeHandleTypeDMABufFD, 0); r != Success {
		return -1, c.d.err(r, fmt.Sprintf("cuMemGetHandleForAddressRange(%d bytes, DMA-BUF)", size))
	}
	if err := setCloexec(int(fd)); err != nil {
		unix.Close(int(fd))
		return -1, err
	}
	return int(fd), nil
}

// setCloexec marks an fd the driver made close-on-exec: the driver does
// not promise it, and a leaked allocation fd would keep GPU memory alive in
// every child.
func setCloexec(fd int) error {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return fmt.Errorf("cuda: set close-on-exec on fd %d: %w", fd, os.NewSyscallError("fcntl", err))
	}
	return nil
}
