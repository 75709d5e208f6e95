// Package rawio reads and writes non-blocking descriptors with raw system
// calls, skipping the Go runtime's system-call hand-off.
//
// A Go program that sleeps between short bursts of I/O (a frame every
// 33 ms) pays for that hand-off far more than for the I/O: the first
// syscall.Syscall after an idle spell (entersyscall) wakes the runtime's
// sysmon thread out of its deep sleep, and sysmon then polls every 20 µs
// until every P is idle again — two or more extra thread wake-ups per burst
// on top of the one that delivered the data. A read or write of a
// non-blocking descriptor cannot block, so it needs no hand-off:
// unix.RawSyscall skips it. Waiting still goes through the netpoller
// (syscall.RawConn), so deadlines and Close behave as for any net.Conn or
// os.File.
//
// Only descriptors in non-blocking mode may go through this package: a raw
// system call that blocks holds its P and stalls the scheduler.
package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read reads once from rc's descriptor into p, waiting in the netpoller
// while nothing is there: like os.File.Read and net.Conn.Read, but through
// unix.RawSyscall. It returns io.EOF at the end of the stream, and rc's
// error (a deadline, net.ErrClosed or os.ErrClosed) when the wait ends
// without data.
func Read(rc syscall.RawConn, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			if e == unix.EINTR {
				continue
			}
			n, errno = int(r), e
			return e != unix.EAGAIN
		}
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p to rc's descriptor, waiting in the netpoller while
// its buffer is full, through unix.RawSyscall.
func Write(rc syscall.RawConn, p []byte) (int, error) {
	done := 0
	var errno syscall.Errno
	err := rc.Write(func(fd uintptr) bool {
		for done < len(p) {
			r, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[done])), uintptr(len(p)-done))
			switch e {
			case 0:
				done += int(r)
				continue
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			errno = e
			return true
		}
		return true
	})
	switch {
	case err != nil:
		return done, err
	case errno != 0:
		return done, os.NewSyscallError("write", errno)
	}
	return done, nil
}

// Conn is a net.Conn whose Read and Write go through this package; every
// other method is the wrapped connection's. Close it like the wrapped one.
type Conn struct {
	net.Conn
	rc syscall.RawConn
}

// Wrap returns c with reads and writes through raw system calls when c is
// a socket in the netpoller (*net.TCPConn, *net.UnixConn: anything with a
// SyscallConn), else c itself. The returned Conn owns c.
func Wrap(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &Conn{Conn: c, rc: rc}
}

// Read reads like net.Conn.Read; errors are *net.OpError, as the wrapped
// connection's would be (a deadline satisfies os.ErrDeadlineExceeded and
// net.Error's Timeout).
func (c *Conn) Read(p []byte) (int, error) {
	n, err := Read(c.rc, p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = c.opError("read", err)
	}
	return n, err
}

// Write writes like net.Conn.Write.
func (c *Conn) Write(p []byte) (int, error) {
	n, err := Write(c.rc, p)
	if err != nil {
		err = c.opError("write", err)
	}
	return n, err
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// File is an *os.File in non-blocking mode (os.NewFile of a non-blocking
// descriptor: an eventfd, a pipe) whose Read goes through this package.
// It does not own the file: close that as before; a pending Read then
// returns an error wrapping os.ErrClosed.
type File struct {
	f  *os.File
	rc syscall.RawConn
}

// NewFile returns f's raw reader.
func NewFile(f *os.File) (*File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &File{f: f, rc: rc}, nil
}

// Read reads like os.File.Read: errors are *os.PathError, and a read of a
// closed file (or one closed while it waited) wraps os.ErrClosed.
func (f *File) Read(p []byte) (int, error) {
	n, err := Read(f.rc, p)
	if err == nil || err == io.EOF {
		return n, err
	}
	var se *os.SyscallError
	if !errors.As(err, &se) && !errors.Is(err, os.ErrDeadlineExceeded) {
		// The netpoller's own error for a file being closed is internal
		// (poll.ErrFileClosing); os.File.Read reports it as os.ErrClosed.
		err = os.ErrClosed
	}
	return n, &os.PathError{Op: "read", Path: f.f.Name(), Err: err}
}
