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

// UdmabufDevice is the udmabuf device node.
const UdmabufDevice = "/dev/udmabuf"

// udmabufCreate is UDMABUF_CREATE = _IOW('u', 0x42, struct udmabuf_create)
// (24 bytes) = 0x40187542.
const udmabufCreate = 1<<30 | 24<<16 | 'u'<<8 | 0x42

// udmabufFlagsCloexec is UDMABUF_FLAGS_CLOEXEC.
const udmabufFlagsCloexec = 0x01

// udmabufCreateArg mirrors struct udmabuf_create
// (include/uapi/linux/udmabuf.h).
type udmabufCreateArg struct {
	memfd  uint32
	flags  uint32
	offset uint64
	size   uint64
}

// udmabufAllocator wraps sealed memfds into dma-bufs with /dev/udmabuf.
type udmabufAllocator struct{}

// NewUdmabuf returns an allocator of dma-bufs made by /dev/udmabuf from
// memfds. It checks that the device exists and can be opened; if not, the
// error names /dev/udmabuf and the kernel option (CONFIG_UDMABUF) and wraps
// fs.ErrNotExist when it is missing.
//
// Each Alloc creates a memfd (MFD_ALLOW_SEALING), sets its size, seals it
// with F_SEAL_SHRINK (required by udmabuf; F_SEAL_WRITE and
// F_SEAL_FUTURE_WRITE are refused by udmabuf, so consumers are not kept from
// writing), wraps it with UDMABUF_CREATE (UDMABUF_FLAGS_CLOEXEC), closes the
// memfd (the dma-buf holds its pages) and maps the dma-buf read-write,
// MAP_SHARED. The device is not kept open between allocations.
func NewUdmabuf() (Allocator, error) {
	fd, err := openUdmabuf()
	if err != nil {
		return nil, err
	}
	unix.Close(fd)
	return udmabufAllocator{}, nil
}

// openUdmabuf opens /dev/udmabuf and explains failures.
func openUdmabuf() (int, error) {
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Open(UdmabufDevice, unix.O_RDWR|unix.O_CLOEXEC, 0)
		return err
	})
	if err == nil {
		return fd, nil
	}
	perr := &fs.PathError{Op: "open", Path: UdmabufDevice, Err: err}
	switch {
	case errors.Is(err, unix.ENOENT):
		return -1, fmt.Errorf("surface: udmabuf device %s absent: kernel built without CONFIG_UDMABUF (or module udmabuf not loaded: modprobe udmabuf); use the memfd allocator instead: %w", UdmabufDevice, perr)
	case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
		return -1, fmt.Errorf("surface: udmabuf device %s: permission denied (grant the user access to it, e.g. a udev rule): %w", UdmabufDevice, perr)
	}
	return -1, fmt.Errorf("surface: udmabuf device %s: %w", UdmabufDevice, perr)
}

// Kind implements Allocator.
func (udmabufAllocator) Kind() ipc.Kind { return ipc.KindDMABuf }

// Name implements Allocator.
func (udmabufAllocator) Name() string { return "udmabuf" }

// Alloc implements Allocator.
func (udmabufAllocator) Alloc(size int) (*Memory, error) {
	size, err := roundSize("udmabuf alloc", size)
	if err != nil {
		return nil, err
	}
	dev, err := openUdmabuf()
	if err != nil {
		return nil, err
	}
	defer unix.Close(dev)

	memfd, err := createMemfd("framehub-udmabuf", size)
	if err != nil {
		return nil, err
	}
	defer unix.Close(memfd) // the dma-buf keeps the pages
	if err := AddSeals(memfd, unix.F_SEAL_SHRINK); err != nil {
		return nil, fmt.Errorf("surface: udmabuf: seal memfd shrink: %w", err)
	}

	arg := udmabufCreateArg{
		memfd: uint32(memfd),
		flags: udmabufFlagsCloexec,
		size:  uint64(size),
	}
	var fd uintptr
	err = ignoringEINTR(func() error {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(dev), udmabufCreate, uintptr(unsafe.Pointer(&arg)))
		if errno != 0 {
			return errno
		}
		fd = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("surface: udmabuf: create %d bytes: %w", size, os.NewSyscallError("ioctl UDMABUF_CREATE", err))
	}
	return newDMABufMemory("udmabuf", int(fd), size, dmabuf.Kernel{})
}
