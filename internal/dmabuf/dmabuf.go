// Package dmabuf brackets CPU access to DMA-BUF memory with
// DMA_BUF_IOCTL_SYNC, maps it (CPU, Kernel) and recognises dma-buf file
// descriptors.
//
// On cache-coherent machines (x86) the sync ioctl is cheap and mostly a
// no-op; on non-coherent SoCs (Jetson, many ARM boards) it is what makes CPU
// writes visible to devices and device writes visible to the CPU, so every CPU
// access to a mapped dma-buf must sit between BeginCPUAccess and
// EndCPUAccess with the same flags.
//
// The package is pure Go (no cgo) and Linux only.
package dmabuf

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Flags of struct dma_buf_sync (include/uapi/linux/dma-buf.h).
const (
	// SyncRead declares that the CPU reads the buffer (DMA_BUF_SYNC_READ).
	SyncRead uint64 = 1 << 0
	// SyncWrite declares that the CPU writes the buffer (DMA_BUF_SYNC_WRITE).
	SyncWrite uint64 = 2 << 0
	// SyncRW declares that the CPU reads and writes the buffer (DMA_BUF_SYNC_RW).
	SyncRW = SyncRead | SyncWrite
	// SyncStart starts a CPU access (DMA_BUF_SYNC_START); added by BeginCPUAccess.
	SyncStart uint64 = 0 << 2
	// SyncEnd ends a CPU access (DMA_BUF_SYNC_END); added by EndCPUAccess.
	SyncEnd uint64 = 1 << 2
)

// IoctlSync is DMA_BUF_IOCTL_SYNC = _IOW('b', 0, struct dma_buf_sync), where
// struct dma_buf_sync is a single __u64 (8 bytes):
// dir write (1)<<30 | size 8<<16 | type 'b' (0x62)<<8 | nr 0 = 0x40086200.
const IoctlSync = 1<<30 | 8<<16 | 'b'<<8 | 0

// maxEAGAIN bounds how often a sync is retried after EAGAIN before the
// error is returned, so that a misbehaving driver cannot hang the caller.
const maxEAGAIN = 1000

// CPU is how a process reaches the memory of a dma-buf from the CPU: it
// maps the fd, and brackets every access with DMA_BUF_IOCTL_SYNC. Kernel is
// the real one. Code that touches DMA-BUF memory takes a CPU, so that its
// DMA-BUF path runs in tests on machines without a DMA-BUF exporter (no
// /dev/dma_heap, no /dev/udmabuf, no camera or GPU), where dmabuftest.Fake
// stands in for the kernel over memfds and checks what it was asked.
type CPU interface {
	// Map maps size bytes of fd from offset 0, MAP_SHARED, with prot
	// (unix.PROT_*). The caller unmaps the result with Unmap.
	Map(fd, size, prot int) ([]byte, error)
	// Unmap unmaps a mapping Map returned.
	Unmap(b []byte) error
	// BeginCPUAccess and EndCPUAccess bracket a CPU access to fd's memory;
	// see the functions of the same names.
	BeginCPUAccess(fd int, flags uint64) error
	EndCPUAccess(fd int, flags uint64) error
}

// Kernel is the CPU the kernel provides: mmap(2) and DMA_BUF_IOCTL_SYNC.
// Its zero value makes the system calls.
type Kernel struct {
	// Ioctl, when not nil, is called instead of the ioctl(2) system call,
	// with its request (IoctlSync) and the struct dma_buf_sync's flags; it
	// returns the call's errno (0 for success). Tests use it to exercise
	// the retries.
	Ioctl func(fd int, req uintptr, flags uint64) unix.Errno
}

// Map implements CPU with mmap(2).
func (Kernel) Map(fd, size, prot int) ([]byte, error) {
	b, err := unix.Mmap(fd, 0, size, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("dmabuf: mmap fd %d (%d bytes, prot %#x): %w", fd, size, prot, os.NewSyscallError("mmap", err))
	}
	return b, nil
}

// Unmap implements CPU with munmap(2).
func (Kernel) Unmap(b []byte) error {
	if err := unix.Munmap(b); err != nil {
		return fmt.Errorf("dmabuf: munmap %d bytes: %w", len(b), os.NewSyscallError("munmap", err))
	}
	return nil
}

// BeginCPUAccess implements CPU (see the function BeginCPUAccess).
func (k Kernel) BeginCPUAccess(fd int, flags uint64) error {
	return k.sync(fd, flags, SyncStart, "start")
}

// EndCPUAccess implements CPU (see the function EndCPUAccess).
func (k Kernel) EndCPUAccess(fd int, flags uint64) error {
	return k.sync(fd, flags, SyncEnd, "end")
}

// BeginCPUAccess starts CPU access to the dma-buf fd; flags is SyncRead,
// SyncWrite or SyncRW. Every successful call must be matched by an
// EndCPUAccess with the same flags. The ioctl is retried on EINTR and EAGAIN.
// On an fd that is not a dma-buf the error wraps unix.ENOTTY.
func BeginCPUAccess(fd int, flags uint64) error {
	return Kernel{}.BeginCPUAccess(fd, flags)
}

// EndCPUAccess ends a CPU access started by BeginCPUAccess with the same
// flags. The ioctl is retried on EINTR and EAGAIN.
func EndCPUAccess(fd int, flags uint64) error {
	return Kernel{}.EndCPUAccess(fd, flags)
}

func (k Kernel) sync(fd int, flags, phase uint64, name string) error {
	if flags == 0 || flags&^SyncRW != 0 {
		return fmt.Errorf("dmabuf: sync %s fd %d: invalid flags %#x (want SyncRead, SyncWrite or SyncRW): %w",
			name, fd, flags, unix.EINVAL)
	}
	ioctl := k.Ioctl
	if ioctl == nil {
		ioctl = ioctlSync
	}
	eagain := 0
	for {
		errno := ioctl(fd, IoctlSync, phase|flags)
		switch {
		case errno == 0:
			return nil
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN && eagain < maxEAGAIN:
			eagain++
			runtime.Gosched()
			continue
		}
		return fmt.Errorf("dmabuf: sync %s fd %d flags %#x: %w",
			name, fd, flags, os.NewSyscallError("ioctl DMA_BUF_IOCTL_SYNC", errno))
	}
}

// ioctlSync is the system call: ioctl(fd, req, &struct dma_buf_sync{flags}).
func ioctlSync(fd int, req uintptr, flags uint64) unix.Errno {
	arg := struct{ flags uint64 }{flags} // struct dma_buf_sync
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&arg)))
	return errno
}

// cpuKey is the context key of NewContext.
type cpuKey struct{}

// NewContext returns a copy of ctx that carries cpu, for code that takes
// its CPU from a context (the SDK takes it from Dial's): tests substitute
// a fake there. Being internal, it is out of reach of applications.
func NewContext(ctx context.Context, cpu CPU) context.Context {
	return context.WithValue(ctx, cpuKey{}, cpu)
}

// FromContext returns the CPU ctx carries (NewContext), or Kernel{}.
func FromContext(ctx context.Context) CPU {
	if cpu, ok := ctx.Value(cpuKey{}).(CPU); ok {
		return cpu
	}
	return Kernel{}
}

// IsDMABuf reports whether fd refers to a dma-buf.
//
// The check is, in order:
//  1. fstat(fd) must succeed (otherwise fd is not open: false);
//  2. fstatfs(fd) reports the dma-buf pseudo file system (f_type ==
//     DMA_BUF_MAGIC, "DMAB"), which is where every dma-buf lives since
//     Linux 5.3: true;
//  3. otherwise the link /proc/self/fd/N is read: it is "/dmabuf:NAME" on
//     current kernels and "anon_inode:dmabuf" on kernels before 5.3, which
//     allocated dma-bufs as anonymous inodes: true if it starts with either.
func IsDMABuf(fd int) bool {
	if fd < 0 {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err == nil && uint64(fs.Type) == unix.DMA_BUF_MAGIC {
		return true
	}
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return false
	}
	return strings.HasPrefix(link, "anon_inode:dmabuf") || strings.HasPrefix(link, "/dmabuf:")
}
