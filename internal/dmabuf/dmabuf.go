// Package dmabuf brackets CPU access to DMA-BUF memory with
// DMA_BUF_IOCTL_SYNC and recognises dma-buf file descriptors.
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

// syncArg mirrors struct dma_buf_sync.
type syncArg struct {
	flags uint64
}

// BeginCPUAccess starts CPU access to the dma-buf fd; flags is SyncRead,
// SyncWrite or SyncRW. Every successful call must be matched by an
// EndCPUAccess with the same flags. The ioctl is retried on EINTR and EAGAIN.
// On an fd that is not a dma-buf the error wraps unix.ENOTTY.
func BeginCPUAccess(fd int, flags uint64) error {
	return syncCPU(fd, flags, SyncStart, "start")
}

// EndCPUAccess ends a CPU access started by BeginCPUAccess with the same
// flags. The ioctl is retried on EINTR and EAGAIN.
func EndCPUAccess(fd int, flags uint64) error {
	return syncCPU(fd, flags, SyncEnd, "end")
}

func syncCPU(fd int, flags, phase uint64, name string) error {
	if flags == 0 || flags&^SyncRW != 0 {
		return fmt.Errorf("dmabuf: sync %s fd %d: invalid flags %#x (want SyncRead, SyncWrite or SyncRW): %w",
			name, fd, flags, unix.EINVAL)
	}
	arg := syncArg{flags: phase | flags}
	eagain := 0
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), IoctlSync, uintptr(unsafe.Pointer(&arg)))
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
