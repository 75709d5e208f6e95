package fdpass

import (
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// blockingFD is a Conn's socket in blocking mode: a plain descriptor outside
// the netpoller. The in-flight count makes Close safe against a Recv blocked
// in another goroutine: Close shuts the socket down (which wakes it) and the
// last operation to leave closes the descriptor, so the number is never
// closed while a system call may still use it (or its reuse).
type blockingFD struct {
	rmu, wmu sync.Mutex // serialise Recvs and Sends (they share control buffers)

	mu       sync.Mutex
	fd       int
	inflight int
	closed   bool
}

func (b *blockingFD) acquire() (int, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return -1, false
	}
	b.inflight++
	return b.fd, true
}

func (b *blockingFD) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inflight--
	if b.closed && b.inflight == 0 {
		_ = unix.Close(b.fd)
	}
}

// do runs f under lock (if any) until it returns true; f returning false
// means the socket's SO_RCVTIMEO/SO_SNDTIMEO deadline passed.
func (b *blockingFD) do(lock *sync.Mutex, f func(fd int) bool) error {
	if lock != nil {
		lock.Lock()
		defer lock.Unlock()
	}
	fd, ok := b.acquire()
	if !ok {
		return net.ErrClosed
	}
	defer b.release()
	if !f(fd) {
		return os.ErrDeadlineExceeded
	}
	return nil
}

func (b *blockingFD) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	_ = unix.Shutdown(b.fd, unix.SHUT_RDWR)
	if b.inflight == 0 {
		_ = unix.Close(b.fd)
	}
}

// setDeadline maps a deadline onto SO_RCVTIMEO / SO_SNDTIMEO. A deadline in
// the past becomes the smallest timeout (1 µs); the zero time clears it.
func (b *blockingFD) setDeadline(t time.Time, read, write bool) error {
	var tv unix.Timeval
	if !t.IsZero() {
		d := max(time.Until(t), time.Microsecond)
		tv = unix.NsecToTimeval(d.Nanoseconds())
	}
	return b.do(nil, func(fd int) bool {
		if read {
			if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
				panic(fmt.Sprintf("fdpass: SO_RCVTIMEO on a socket: %v", err))
			}
		}
		if write {
			if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
				panic(fmt.Sprintf("fdpass: SO_SNDTIMEO on a socket: %v", err))
			}
		}
		return true
	})
}

// file returns a duplicate of the descriptor, owned by the caller.
func (b *blockingFD) file() (*os.File, error) {
	var (
		nfd  int
		serr error
	)
	if err := b.do(nil, func(fd int) bool {
		nfd, serr = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		return true
	}); err != nil {
		return nil, fmt.Errorf("fdpass: file: %w", err)
	}
	if serr != nil {
		return nil, fmt.Errorf("fdpass: file: %w", os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", serr))
	}
	return os.NewFile(uintptr(nfd), "fdpass-socket"), nil
}

// WaitReadable waits until at least one of conns has a packet (or an end of
// stream, or an error) to read, or timeout passes. It reports whether any is
// readable. It is for callers that drain sockets with TryRecv and have
// nothing else to wait on (a producer waiting for a released surface).
func WaitReadable(conns []*Conn, timeout time.Duration) (bool, error) {
	pfds := make([]unix.PollFd, 0, len(conns))
	var held []*Conn
	defer func() {
		for _, c := range held {
			c.bl.release()
		}
	}()
	for _, c := range conns {
		if c.blocking.Load() {
			fd, ok := c.bl.acquire()
			if !ok {
				continue
			}
			held = append(held, c)
			pfds = append(pfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
			continue
		}
		_ = c.rc.Control(func(fd uintptr) {
			pfds = append(pfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
		})
	}
	if len(pfds) == 0 {
		time.Sleep(timeout)
		return false, nil
	}
	ms := int(timeout / time.Millisecond)
	for {
		n, err := unix.Poll(pfds, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("fdpass: wait readable: %w", os.NewSyscallError("poll", err))
		}
		return n > 0, nil
	}
}
