// Command goconsumer is the floor of a Go consumer for bench/floor's fanout
// mode: a Go process that does per frame only what any Go consumer of a
// socket transport must do. It waits for the socket through Go's netpoller,
// receives the message with a non-blocking recvmsg through RawSyscall (no
// sysmon wake-up, as framehub's SDK does), closes the fd it carried if any
// (the first does) and releases the frame by incrementing its counter in
// shared memory.
//
// floor.c executes it with the socket on fd 3, the counters' memfd on fd 4
// and its counter's index in FLOOR_INDEX; it exits when the socket closes.
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "goconsumer:", err)
		os.Exit(1)
	}
}

func run() error {
	idx, err := strconv.Atoi(os.Getenv("FLOOR_INDEX"))
	if err != nil || idx < 0 || idx >= 64 {
		return fmt.Errorf("FLOOR_INDEX %q: want 0..63", os.Getenv("FLOOR_INDEX"))
	}
	counters, err := unix.Mmap(4, 0, 64*64, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap the counters (fd 4): %w", err)
	}
	released := (*uint64)(unsafe.Pointer(&counters[64*idx]))
	f := os.NewFile(3, "floor-socket")
	c, err := net.FileConn(f) // a dup, registered with the netpoller
	f.Close()
	if err != nil {
		return fmt.Errorf("socket on fd 3: %w", err)
	}
	defer c.Close()
	rc, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		return err
	}
	buf := make([]byte, 64)
	oob := make([]byte, unix.CmsgSpace(4))
	iov := unix.Iovec{Base: &buf[0]}
	iov.SetLen(len(buf))
	for {
		var n int
		var errno unix.Errno
		var oobn int
		err := rc.Read(func(fd uintptr) bool {
			msg := unix.Msghdr{Iov: &iov, Control: &oob[0]}
			msg.SetIovlen(1)
			msg.SetControllen(len(oob))
			r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&msg)), unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
			if e == unix.EAGAIN {
				return false
			}
			n, errno, oobn = int(r), e, int(msg.Controllen)
			return true
		})
		switch {
		case err != nil:
			return fmt.Errorf("wait for the socket: %w", err)
		case errno != 0:
			return fmt.Errorf("recvmsg: %w", errno)
		case n == 0:
			return nil // the producer closed
		}
		if oobn >= unix.CmsgSpace(4) {
			fd := *(*int32)(unsafe.Pointer(&oob[unix.CmsgSpace(0)]))
			unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
		}
		atomic.AddUint64(released, 1)
	}
}
