// Package fdpass sends packets with attached file descriptors between
// processes over SOCK_SEQPACKET Unix domain sockets (SCM_RIGHTS).
//
// A [Conn] wraps one end of a connected SOCK_SEQPACKET socket. Every Send is
// one packet: the payload (at least one byte) and up to [MaxFDs] file
// descriptors arrive together in a single Recv, or not at all.
//
// # File descriptor ownership
//
// Descriptors passed to [Conn.Send] and [Conn.TrySend] are borrowed: the
// caller keeps ownership, they stay open in the sender and the receiver gets
// its own duplicates. Descriptors returned by [Conn.Recv] are owned by the
// caller, which must close them (for example with [CloseFDs]). On every error
// path Recv closes whatever descriptors arrived and returns none, so a failed
// Recv never leaks. Received descriptors carry FD_CLOEXEC.
//
// The socket inside a Conn is owned by the Conn and is released by
// [Conn.Close]. [Conn.File] returns a duplicate owned by the caller.
//
// The package knows nothing about what the payload means; framing and
// message types belong to higher layers.
package fdpass

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// MaxFDs is the largest number of file descriptors one packet can carry
// (the kernel's SCM_MAX_FD).
const MaxFDs = 253

var (
	// ErrTruncated reports that a received packet's payload (MSG_TRUNC) or
	// control data (MSG_CTRUNC) did not fit and was cut off. The rest of the
	// packet is lost; any descriptors that did arrive have been closed.
	ErrTruncated = errors.New("fdpass: packet truncated")
	// ErrWouldBlock reports that TrySend found the socket send buffer full.
	// Nothing was sent.
	ErrWouldBlock = errors.New("fdpass: send would block")
	// ErrTooManyFDs reports an attempt to send more than MaxFDs descriptors
	// in one packet. Nothing was sent.
	ErrTooManyFDs = errors.New("fdpass: too many file descriptors")
)

// Conn is a connected SOCK_SEQPACKET Unix socket carrying packets with
// attached file descriptors.
//
// One Send may run concurrently with one Recv; concurrent Sends (or Recvs)
// are serialised. The socket is owned by the Conn and closed by Close.
type Conn struct {
	uc *net.UnixConn
	rc syscall.RawConn

	blocking atomic.Bool
	bl       blockingFD // the socket once detached from the netpoller (SetBlocking)

	roob []byte // receive control buffer; used only under the read lock
	woob []byte // send control buffer; used only under the write lock

	closeOnce sync.Once
}

// New wraps uc, which must be a SOCK_SEQPACKET Unix socket ("unixpacket").
// New takes ownership of uc: it belongs to the returned Conn, and on error
// uc is closed.
func New(uc *net.UnixConn) (*Conn, error) {
	if uc == nil {
		return nil, errors.New("fdpass: new: nil *net.UnixConn")
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		uc.Close()
		return nil, fmt.Errorf("fdpass: new: syscall conn: %w", err)
	}
	var typ int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		typ, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
	}); err != nil {
		uc.Close()
		return nil, fmt.Errorf("fdpass: new: %w", err)
	}
	if serr != nil {
		uc.Close()
		return nil, fmt.Errorf("fdpass: new: %w", os.NewSyscallError("getsockopt SO_TYPE", serr))
	}
	if typ != unix.SOCK_SEQPACKET {
		uc.Close()
		return nil, fmt.Errorf("fdpass: new: socket type is %d, want SOCK_SEQPACKET (%d)", typ, unix.SOCK_SEQPACKET)
	}
	return &Conn{
		uc:   uc,
		rc:   rc,
		roob: make([]byte, oobSize()),
		woob: make([]byte, oobSize()),
	}, nil
}

// FromFile makes a Conn from f, typically a socket inherited from a parent
// process (e.g. os.NewFile(3, "fdpass") for the first of exec.Cmd.ExtraFiles).
// FromFile takes ownership of f and always closes it; the Conn holds its own
// duplicate of the descriptor.
func FromFile(f *os.File) (*Conn, error) {
	if f == nil {
		return nil, errors.New("fdpass: from file: nil *os.File")
	}
	name := f.Name()
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("fdpass: from file %q: %w", name, err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("fdpass: from file %q: not a Unix socket (%T)", name, c)
	}
	return New(uc)
}

// Pair returns two connected Conns made with
// socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC). The caller owns both and
// must Close them.
func Pair() (a, b *Conn, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("fdpass: pair: %w", os.NewSyscallError("socketpair", err))
	}
	fb := os.NewFile(uintptr(fds[1]), "fdpass-pair-b")
	a, err = FromFile(os.NewFile(uintptr(fds[0]), "fdpass-pair-a"))
	if err != nil {
		fb.Close()
		return nil, nil, err
	}
	b, err = FromFile(fb)
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// Send sends one packet consisting of p and the descriptors fds. len(p) must
// be at least 1 and len(fds) at most MaxFDs. The descriptors are borrowed:
// the caller keeps ownership and they stay open.
//
// Send waits for buffer space. In non-blocking mode (the default) it waits in
// the netpoller and honours the write deadline; in blocking mode (see
// SetBlocking) it blocks the calling thread in sendmsg and deadlines do not
// apply.
func (c *Conn) Send(p []byte, fds []int) error {
	return c.send(p, fds, true)
}

// TrySend is like Send but never waits: if the socket send buffer is full it
// returns an error wrapping ErrWouldBlock and nothing is sent. This holds in
// both blocking and non-blocking mode (it uses MSG_DONTWAIT). The descriptors
// are borrowed as in Send.
func (c *Conn) TrySend(p []byte, fds []int) error {
	return c.send(p, fds, false)
}

func (c *Conn) send(p []byte, fds []int, wait bool) error {
	if len(p) == 0 {
		return errors.New("fdpass: send: empty payload (need at least 1 byte)")
	}
	if len(fds) > MaxFDs {
		return fmt.Errorf("fdpass: send %d fds (max %d): %w", len(fds), MaxFDs, ErrTooManyFDs)
	}
	flags := unix.MSG_NOSIGNAL
	if !wait {
		flags |= unix.MSG_DONTWAIT
	}
	var n int
	var serr error
	err := c.write(func(fd int) bool {
		var oob []byte
		if len(fds) > 0 {
			oob = putRights(c.woob, fds)
		}
		blocking := wait && c.blocking.Load()
		for {
			if blocking {
				n, serr = unix.SendmsgN(fd, p, oob, nil, flags)
			} else {
				n, serr = rawSendmsg(fd, p, oob, flags)
			}
			if serr != unix.EINTR {
				break
			}
		}
		// EAGAIN only happens with a non-blocking socket or MSG_DONTWAIT:
		// Send waits in the netpoller, TrySend reports it.
		return !(wait && serr == unix.EAGAIN)
	})
	if err != nil {
		return fmt.Errorf("fdpass: send: %w", err)
	}
	if serr == unix.EAGAIN {
		return fmt.Errorf("fdpass: send %d bytes, %d fds: %w", len(p), len(fds), ErrWouldBlock)
	}
	if serr != nil {
		return fmt.Errorf("fdpass: send %d bytes, %d fds: %w", len(p), len(fds), os.NewSyscallError("sendmsg", serr))
	}
	if n != len(p) {
		return fmt.Errorf("fdpass: send: short write %d of %d bytes", n, len(p))
	}
	return nil
}

// Recv receives one packet into buf and returns the payload length and the
// attached descriptors (received with MSG_CMSG_CLOEXEC). The returned
// descriptors are owned by the caller, which must close them (see CloseFDs).
//
// If the payload did not fit in buf (MSG_TRUNC) or the control data was
// truncated (MSG_CTRUNC), Recv returns an error wrapping ErrTruncated; the
// rest of the packet is discarded. On every error no descriptors are
// returned and all that arrived have been closed.
//
// An orderly close by the peer (a zero-length read without descriptors)
// returns io.EOF. buf must not be empty. In non-blocking mode (the default)
// Recv honours the read deadline (os.ErrDeadlineExceeded); in blocking mode
// it blocks the calling thread in recvmsg and deadlines do not apply.
func (c *Conn) Recv(buf []byte) (n int, fds []int, err error) {
	return c.recvFlags(buf, nil, 0)
}

// TryRecv is like Recv but never waits: when no packet is queued it returns
// an error wrapping ErrWouldBlock. It lets a caller drain a socket on its own
// schedule (the producer reads releases on its frame clock) without the
// socket waking anyone.
func (c *Conn) TryRecv(buf []byte) (n int, fds []int, err error) {
	return c.recvFlags(buf, nil, unix.MSG_DONTWAIT)
}

// recv receives into buf using oob as control buffer, or c.roob if oob is nil.
func (c *Conn) recv(buf, oob []byte) (n int, fds []int, err error) {
	return c.recvFlags(buf, oob, 0)
}

func (c *Conn) recvFlags(buf, oob []byte, extra int) (n int, fds []int, err error) {
	if len(buf) == 0 {
		return 0, nil, errors.New("fdpass: recv: empty buffer")
	}
	var rflags int
	var rerr, perr error
	err = c.read(func(fd int) bool {
		if oob == nil {
			oob = c.roob
		}
		var oobn int
		blocking := extra&unix.MSG_DONTWAIT == 0 && c.blocking.Load()
		for {
			if blocking {
				n, oobn, rflags, _, rerr = unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC|extra)
			} else {
				n, oobn, rflags, rerr = rawRecvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC|extra)
			}
			if rerr != unix.EINTR {
				break
			}
		}
		if rerr == unix.EAGAIN {
			// TryRecv: report it. Non-blocking mode: wait in the netpoller.
			// Blocking mode: the SO_RCVTIMEO deadline passed.
			return extra&unix.MSG_DONTWAIT != 0
		}
		if oobn > 0 {
			fds, perr = parseRights(oob[:oobn])
		}
		return true
	})
	switch {
	case err != nil:
		err = fmt.Errorf("fdpass: recv: %w", err)
	case rerr == unix.EAGAIN && extra&unix.MSG_DONTWAIT != 0:
		err = ErrWouldBlock
	case rerr != nil:
		err = fmt.Errorf("fdpass: recv: %w", os.NewSyscallError("recvmsg", rerr))
	case perr != nil:
		err = fmt.Errorf("fdpass: recv: %w", perr)
	case rflags&unix.MSG_TRUNC != 0:
		err = fmt.Errorf("fdpass: recv: payload larger than %d-byte buffer (MSG_TRUNC), %d fds closed: %w", len(buf), len(fds), ErrTruncated)
	case rflags&unix.MSG_CTRUNC != 0:
		err = fmt.Errorf("fdpass: recv: control data truncated (MSG_CTRUNC), %d fds closed: %w", len(fds), ErrTruncated)
	case n == 0 && len(fds) == 0:
		err = io.EOF
	}
	if err != nil {
		CloseFDs(fds)
		return 0, nil, err
	}
	return n, fds, nil
}

// SetDeadline sets the read and write deadlines. Deadlines apply only in
// non-blocking mode; see SetBlocking.
func (c *Conn) SetDeadline(t time.Time) error {
	if c.blocking.Load() {
		return c.bl.setDeadline(t, true, true)
	}
	if err := c.uc.SetDeadline(t); err != nil {
		return fmt.Errorf("fdpass: set deadline: %w", err)
	}
	return nil
}

// SetReadDeadline sets the deadline for Recv. A Recv that reaches it returns
// an error wrapping os.ErrDeadlineExceeded. It applies only in non-blocking
// mode; see SetBlocking.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.blocking.Load() {
		return c.bl.setDeadline(t, true, false)
	}
	if err := c.uc.SetReadDeadline(t); err != nil {
		return fmt.Errorf("fdpass: set read deadline: %w", err)
	}
	return nil
}

// SetWriteDeadline sets the deadline for Send. A Send that reaches it
// returns an error wrapping os.ErrDeadlineExceeded. It applies only in
// non-blocking mode; see SetBlocking.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.blocking.Load() {
		return c.bl.setDeadline(t, false, true)
	}
	if err := c.uc.SetWriteDeadline(t); err != nil {
		return fmt.Errorf("fdpass: set write deadline: %w", err)
	}
	return nil
}

// File returns a duplicate of the socket descriptor, e.g. to hand to a child
// process through exec.Cmd.ExtraFiles. The caller owns the returned file and
// must close it; c is unaffected by closing it.
//
// The duplicate shares the open file description with c, including the
// O_NONBLOCK flag. os/exec (through os.File.Fd) switches it to blocking
// mode, which then also affects c, so the intended use is to pass the file
// to another process and close c in this one.
func (c *Conn) File() (*os.File, error) {
	if c.blocking.Load() {
		return c.bl.file()
	}
	f, err := c.uc.File()
	if err != nil {
		return nil, fmt.Errorf("fdpass: file: %w", err)
	}
	return f, nil
}

// SetBlocking(true) switches the socket to blocking mode, for good.
//
// Blocking mode is for latency-critical receivers that dedicate a goroutine
// (best locked to its OS thread) to Recv: the socket is taken out of Go's
// netpoller (it is duplicated and the netpoller's registration closed), and
// Recv and Send call recvmsg and sendmsg as blocking system calls. An idle
// consumer then costs one thread wake-up per message instead of the
// netpoller's wake-up plus the goroutine hand-off. Deadlines still work,
// through SO_RCVTIMEO and SO_SNDTIMEO. TrySend never blocks in either mode.
// Unix returns nil in blocking mode.
//
// SetBlocking(false) on a Conn in non-blocking mode does nothing; leaving
// blocking mode is not supported. SetBlocking must not be called while a
// Send or Recv is in progress.
func (c *Conn) SetBlocking(on bool) error {
	if !on {
		if c.blocking.Load() {
			return errors.New("fdpass: set blocking false: a Conn cannot leave blocking mode")
		}
		return nil
	}
	if c.blocking.Load() {
		return nil
	}
	var (
		nfd  int
		serr error
	)
	if err := c.rc.Control(func(fd uintptr) {
		nfd, serr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return fmt.Errorf("fdpass: set blocking: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("fdpass: set blocking: %w", os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", serr))
	}
	if err := unix.SetNonblock(nfd, false); err != nil {
		unix.Close(nfd)
		return fmt.Errorf("fdpass: set blocking: %w", os.NewSyscallError("fcntl", err))
	}
	// Closing the net.UnixConn removes the socket from the netpoller's epoll
	// set (EPOLL_CTL_DEL); the duplicate keeps the socket itself open.
	if err := c.uc.Close(); err != nil {
		unix.Close(nfd)
		return fmt.Errorf("fdpass: set blocking: close netpoller conn: %w", err)
	}
	c.bl.fd = nfd
	c.blocking.Store(true)
	return nil
}

// read runs f with the socket fd under the read lock until f returns true:
// in the netpoller, or (blocking mode) directly, where f returning false
// means the SO_RCVTIMEO deadline passed.
func (c *Conn) read(f func(fd int) bool) error {
	if c.blocking.Load() {
		return c.bl.do(&c.bl.rmu, f)
	}
	return c.rc.Read(func(fd uintptr) bool { return f(int(fd)) })
}

// write is read's twin for sending.
func (c *Conn) write(f func(fd int) bool) error {
	if c.blocking.Load() {
		return c.bl.do(&c.bl.wmu, f)
	}
	return c.rc.Write(func(fd uintptr) bool { return f(int(fd)) })
}

// control runs f with the socket fd, for socket options.
func (c *Conn) control(f func(fd int)) error {
	if c.blocking.Load() {
		return c.bl.do(nil, func(fd int) bool { f(fd); return true })
	}
	return c.rc.Control(func(fd uintptr) { f(int(fd)) })
}

// Close closes the socket. It is safe to call more than once; later calls
// return nil. In blocking mode Close first shuts the socket down
// (shutdown(SHUT_RDWR), which also affects duplicates from File) so that a
// Recv or Send blocked in another goroutine returns (io.EOF or an error
// wrapping net.ErrClosed), and closes the descriptor once they have.
// Descriptors previously returned by Recv are not affected.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		if c.blocking.Load() {
			c.bl.close()
			return
		}
		if cerr := c.uc.Close(); cerr != nil {
			err = fmt.Errorf("fdpass: close: %w", cerr)
		}
	})
	return err
}

// CloseWrite shuts down the sending side (shutdown(SHUT_WR)). The peer's
// Recv then returns io.EOF once it has read the packets already sent.
func (c *Conn) CloseWrite() error {
	if c.blocking.Load() {
		var serr error
		if err := c.control(func(fd int) { serr = unix.Shutdown(fd, unix.SHUT_WR) }); err != nil {
			return fmt.Errorf("fdpass: close write: %w", err)
		}
		if serr != nil {
			return fmt.Errorf("fdpass: close write: %w", os.NewSyscallError("shutdown", serr))
		}
		return nil
	}
	if err := c.uc.CloseWrite(); err != nil {
		return fmt.Errorf("fdpass: close write: %w", err)
	}
	return nil
}

// Unix returns the underlying connection, or nil in blocking mode. It is
// still owned by c: do not close it or read from or write to it directly.
func (c *Conn) Unix() *net.UnixConn {
	if c.blocking.Load() {
		return nil
	}
	return c.uc
}

// CloseFDs closes each descriptor in fds, ignoring errors. It is for callers
// that own descriptors, such as those returned by Recv.
func CloseFDs(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}
