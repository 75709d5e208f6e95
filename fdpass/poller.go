package fdpass

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Poller tells which of a set of blocking-mode Conns have something to read
// (a packet, an end of stream, an error), with one epoll_wait for all of
// them: a producer that reads its consumers' sockets on its frame clock
// asks it once per frame instead of trying every socket. It can also wait,
// with a timeout, and be woken early (Wake) by another goroutine.
//
// Add, Remove and Wake may be called from any goroutine; Wait from one at a
// time (it owns the event buffer). Close waits for a Wait in progress.
type Poller struct {
	// mu is read-held by every use of the descriptors (epoll_wait,
	// epoll_ctl, the eventfd), write-held by Close: no descriptor number
	// is closed, and maybe reused, while a call still uses it.
	mu     sync.RWMutex
	ep     int
	wake   int // eventfd; key wakeKey
	events []unix.EpollEvent
	closed bool
}

// wakeKey is the key of the Poller's own eventfd; Conns' keys must differ.
const wakeKey = ^uint64(0)

// NewPoller returns an empty Poller. The caller must Close it.
func NewPoller() (*Poller, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fdpass: new poller: %w", os.NewSyscallError("epoll_create1", err))
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(ep)
		return nil, fmt.Errorf("fdpass: new poller: %w", os.NewSyscallError("eventfd", err))
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setKey(&ev, wakeKey)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(wake)
		unix.Close(ep)
		return nil, fmt.Errorf("fdpass: new poller: %w", os.NewSyscallError("epoll_ctl", err))
	}
	return &Poller{ep: ep, wake: wake, events: make([]unix.EpollEvent, 64)}, nil
}

// setKey stores key in the event's 64 data bits (Fd and Pad).
func setKey(ev *unix.EpollEvent, key uint64) {
	ev.Fd, ev.Pad = int32(uint32(key)), int32(uint32(key>>32))
}

func eventKey(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// Add watches c, which must be in blocking mode (SetBlocking), for input;
// Wait reports it by key (any value but ^0). A Conn is watched level-
// triggered: it is reported as long as something is left to read. Remove
// it before closing c.
func (p *Poller) Add(c *Conn, key uint64) error {
	if !c.blocking.Load() {
		return errors.New("fdpass: poller add: the Conn is not in blocking mode")
	}
	if key == wakeKey {
		return errors.New("fdpass: poller add: key ^0 is reserved")
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP}
	setKey(&ev, key)
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return fmt.Errorf("fdpass: poller add: %w", net.ErrClosed)
	}
	var cerr error
	if err := c.bl.do(nil, func(fd int) bool {
		cerr = unix.EpollCtl(p.ep, unix.EPOLL_CTL_ADD, fd, &ev)
		return true
	}); err != nil {
		return fmt.Errorf("fdpass: poller add: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("fdpass: poller add: %w", os.NewSyscallError("epoll_ctl", cerr))
	}
	return nil
}

// Remove stops watching c. A closed c is no longer watched anyway (the
// kernel drops a closed descriptor from the set); Remove of a Conn that is
// not watched does nothing.
func (p *Poller) Remove(c *Conn) {
	if !c.blocking.Load() {
		return
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return
	}
	_ = c.bl.do(nil, func(fd int) bool {
		_ = unix.EpollCtl(p.ep, unix.EPOLL_CTL_DEL, fd, nil)
		return true
	})
}

// Wait returns the keys of the watched Conns that have something to read,
// appended to keys[:0]: at once when timeout is 0, else after waiting up to
// timeout for one (or for Wake). After Close it returns an error wrapping
// net.ErrClosed.
func (p *Poller) Wait(keys []uint64, timeout time.Duration) ([]uint64, error) {
	keys = keys[:0]
	ms := 0
	if timeout > 0 {
		ms = max(1, int(timeout/time.Millisecond))
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return keys, fmt.Errorf("fdpass: poller wait: %w", net.ErrClosed)
	}
	ep, events := p.ep, p.events
	var (
		n   int
		err error
	)
	if ms == 0 {
		// Cannot block: no need to tell the runtime (see raw.go).
		r, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
		n = int(r)
		if errno != 0 {
			err = errno
		}
	} else {
		n, err = unix.EpollWait(ep, events, ms)
	}
	if errors.Is(err, unix.EINTR) {
		return keys, nil
	}
	if err != nil {
		return keys, fmt.Errorf("fdpass: poller wait: %w", os.NewSyscallError("epoll_wait", err))
	}
	for i := range n {
		if k := eventKey(&events[i]); k != wakeKey {
			keys = append(keys, k)
			continue
		}
		var b [8]byte
		_, _ = unix.Read(p.wake, b[:])
	}
	return keys, nil
}

// Wake makes a Wait in progress (or the next one) return.
func (p *Poller) Wake() {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if !p.closed {
		one := [8]byte{1}
		_, _ = unix.Write(p.wake, one[:])
	}
}

// Close releases the Poller's descriptors. It is idempotent; the Conns it
// watched are not affected.
func (p *Poller) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	unix.Close(p.wake)
	unix.Close(p.ep)
}
