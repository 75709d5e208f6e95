package fdpass

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawRecvmsg and rawSendmsg are recvmsg(2) and sendmsg(2) through
// RawSyscall, for calls that cannot block (non-blocking socket or
// MSG_DONTWAIT). unix.Recvmsg goes through Syscall, whose entersyscall wakes
// the runtime's sysmon thread from its idle sleep: for a process that wakes
// 30 times a second for one packet, that is two extra thread wake-ups and
// several short sleeps per packet, more CPU than the packet itself. A call
// that cannot block does not need the runtime's hand-off, so it skips it.
// Blocking sockets in blocking mode keep using Syscall, which lets the
// runtime run other goroutines while the thread waits.
func rawRecvmsg(fd int, p, oob []byte, flags int) (n, oobn, recvflags int, err error) {
	msg := &unix.Msghdr{}
	iov := &unix.Iovec{Base: &p[0]}
	iov.SetLen(len(p))
	msg.Iov = iov
	msg.SetIovlen(1)
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(msg)), uintptr(flags))
	if e != 0 {
		return 0, 0, 0, e
	}
	return int(r), int(msg.Controllen), int(msg.Flags), nil
}

func rawSendmsg(fd int, p, oob []byte, flags int) (int, error) {
	msg := &unix.Msghdr{}
	iov := &unix.Iovec{Base: &p[0]}
	iov.SetLen(len(p))
	msg.Iov = iov
	msg.SetIovlen(1)
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	r, _, e := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(msg)), uintptr(flags))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
