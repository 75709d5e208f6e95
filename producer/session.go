package producer

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/framehub/framehub/fdpass"
	"github.com/framehub/framehub/internal/ring"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer/fanout"
)

// maxDrainPerService and maxDrainBytesPerService bound what is read from one
// consumer per service (per frame): a Release of 64 leases is ~600 bytes.
const (
	maxDrainPerService      = 64
	maxDrainBytesPerService = 16 << 10
)

// maxBacklog bounds the messages other than frames (announces, caps, EOS,
// forgets, pongs) queued for a consumer that stopped reading its socket;
// past it the consumer is closed.
const maxBacklog = 256

// errSocketFull means a consumer's socket send buffer is full: a frame is
// skipped for that consumer, never waited for.
var errSocketFull = errors.New("consumer socket buffer full")

// session is one consumer connection subscribed to one stream. It encodes
// and sends what the stream's fan-out core decided (its outbox), and reads
// what the consumer sends (drain or readLoop); every decision is the
// core's. Its fields are its own: immutable after the handshake, or guarded
// by its own mutexes.
type session struct {
	id        fanout.SubID
	srv       *Server
	st        *Stream
	conn      *fdpass.Conn
	cred      fdpass.Cred
	name      string
	params    fanout.Params
	log       *slog.Logger
	connected time.Time
	ownReader bool       // reads its own socket (readLoop) instead of being drained by the stream
	wantRing  bool       // asked for a release ring and may have one (queue policy, no replay)
	ring      *ring.Ring // its release ring (set before subscribe, closed by finish), or nil
	budget    int        // granted; set by subscribe under the stream's mutex, read by its caller

	outMu  sync.Mutex
	out    []fanout.Action // to send, in order; Deliver, Announce, Forget, Send, Close
	spare  []fanout.Action
	closed bool // no more sends: finished, or its Close was taken

	sendMu sync.Mutex // serialises flush: one sender at a time keeps the outbox's order
	wbuf   []byte
	fdbuf  []int
	// told is the plane layout of the caps this consumer was last sent
	// (Welcome, then each Caps). A frame of that layout goes without its
	// planes, which then default to the caps' (PROTOCOL.md §6): a queued
	// frame of the old layout sent after a Caps still carries its own.
	told []ipc.Plane

	closeOnce sync.Once
}

// SessionInfo describes a connected consumer, for status and metrics.
type SessionInfo struct {
	ID            uint64
	Name          string
	Stream        string
	PID, UID, GID int
	Policy        ipc.Policy
	Budget        int
	MaxHold       time.Duration
	Connected     time.Time
	InFlight      int
	Pinned        int // distinct surfaces its leases (and pending frame) keep out of the pool
	Delivered     uint64
	SkippedBudget uint64
	SkippedSocket uint64
	Superseded    uint64 // latest policy: pending frames replaced by newer ones (not drops)
	Released      uint64
}

func (ss *session) info() SessionInfo {
	si := SessionInfo{
		ID: uint64(ss.id), Name: ss.name, Stream: ss.st.cfg.Name, PID: ss.cred.PID, UID: ss.cred.UID, GID: ss.cred.GID,
		Policy: ss.params.Policy, Budget: ss.params.Budget, MaxHold: ss.params.MaxHold, Connected: ss.connected,
	}
	ss.st.mu.Lock()
	s, ok := ss.st.core.SubStats(ss.id)
	ss.st.mu.Unlock()
	if ok {
		si.Budget, si.InFlight, si.Pinned = s.Budget, s.InFlight, s.Pinned
		si.Delivered, si.SkippedBudget, si.SkippedSocket = s.Delivered, s.SkippedBudget, s.SkippedSocket
		si.Superseded, si.Released = s.Superseded, s.Released
	}
	return si
}

// enqueue adds an action to the outbox. It reports false when the session
// takes no more (closed).
func (ss *session) enqueue(a fanout.Action) bool {
	ss.outMu.Lock()
	defer ss.outMu.Unlock()
	if ss.closed {
		return false
	}
	ss.out = append(ss.out, a)
	return true
}

// backlogged reports whether messages wait in the outbox (the socket was
// full at the last flush).
func (ss *session) backlogged() bool {
	ss.outMu.Lock()
	defer ss.outMu.Unlock()
	return len(ss.out) > 0
}

// flushResult is what a flush could not do, for the stream to settle with
// the core: frames not sent (their leases go back), or a broken socket.
type flushResult struct {
	unsent []uint64
	broken error
}

// flush sends what the outbox holds, in order, without waiting. When the
// socket is full, frames are skipped (returned as unsent, for the core to
// take their leases back) and every other message stays queued, in order,
// for the next flush: a consumer never gets a frame whose announce or caps
// it missed. A Close action sends the Bye, closes the connection and ends
// the session.
func (ss *session) flush() flushResult {
	var res flushResult
	ss.sendMu.Lock()
	defer ss.sendMu.Unlock()
	for {
		ss.outMu.Lock()
		items := ss.out
		ss.out, ss.spare = ss.spare[:0], nil
		ss.outMu.Unlock()
		if len(items) == 0 {
			return res
		}
		var keep []fanout.Action
		for i := range items {
			a := &items[i]
			if a.Kind == fanout.Close {
				ss.finish(a.Code, a.Reason, nil, int(a.Count))
				return res
			}
			if keep != nil {
				if a.Kind == fanout.Deliver {
					res.unsent = append(res.unsent, a.Frame.Lease)
				} else {
					keep = append(keep, *a)
				}
				continue
			}
			err := ss.send(a)
			switch {
			case err == nil:
			case errors.Is(err, errSocketFull):
				if a.Kind == fanout.Deliver {
					res.unsent = append(res.unsent, a.Frame.Lease)
					keep = []fanout.Action{}
				} else {
					keep = append(make([]fanout.Action, 0, len(items)-i), *a)
				}
			default:
				res.broken = err
				return res
			}
		}
		clear(items)
		ss.outMu.Lock()
		ss.spare = items[:0]
		if keep != nil {
			ss.out = append(keep, ss.out...)
			if len(ss.out) > maxBacklog {
				res.broken = fmt.Errorf("consumer stopped reading its socket: %d messages queued", len(ss.out))
			}
			ss.outMu.Unlock()
			return res
		}
		ss.outMu.Unlock()
	}
}

// send encodes one action into the session's write buffer and sends it
// without waiting. Announced fds are borrowed. Called under sendMu.
func (ss *session) send(a *fanout.Action) error {
	var m ipc.Message
	var fds []int
	switch a.Kind {
	case fanout.Deliver:
		if len(a.Frame.Planes) > 0 && slices.Equal(a.Frame.Planes, ss.told) {
			a.Frame.Planes = nil // a is this session's copy
		}
		m = &a.Frame
	case fanout.Announce:
		msg := &ipc.Announce{Surfaces: make([]ipc.Surface, len(a.Surfaces))}
		fds = ss.fdbuf[:0]
		for i, s := range a.Surfaces {
			msg.Surfaces[i] = s.Info
			fds = append(fds, s.FDs...)
		}
		ss.fdbuf = fds
		m = msg
	case fanout.Forget:
		m = &ipc.Forget{IDs: a.IDs}
	case fanout.Send:
		m = a.Msg
		if _, ok := m.(*ipc.Ring); ok {
			fds = []int{ss.ring.FD()}
		}
	default:
		return fmt.Errorf("producer: session cannot send a %v action", a.Kind)
	}
	if err := ss.sendMsg(m, fds); err != nil {
		return err
	}
	switch m := m.(type) {
	case *ipc.Welcome:
		ss.told = m.Caps.Planes
	case *ipc.Caps:
		ss.told = m.Planes
	}
	return nil
}

// sendMsg encodes m and sends it without waiting; fds are borrowed. Called
// under sendMu, or before the session is shared (the handshake).
func (ss *session) sendMsg(m ipc.Message, fds []int) error {
	b, err := ss.srv.codec.Append(ss.wbuf[:0], m)
	if err != nil {
		return err
	}
	ss.wbuf = b
	if err := ss.conn.TrySend(b, fds); err != nil {
		if errors.Is(err, fdpass.ErrWouldBlock) {
			return errSocketFull
		}
		return err
	}
	return nil
}

// closeWith ends the session on its own account (the consumer left, broke
// the protocol or its socket, the server is stopping): it leaves the
// stream's fan-out, releasing every lease, then says why with a Bye and
// closes the socket. err, when set, is the local cause, logged beside the
// reason.
func (ss *session) closeWith(code ipc.Code, reason string, err error) {
	released := ss.st.detach(ss)
	ss.sendMu.Lock()
	defer ss.sendMu.Unlock()
	ss.finish(code, reason, err, released)
}

// finish sends the Bye (best effort: the peer may be gone or not reading),
// closes the socket, logs, and gives the connection slot back, once. Called
// under sendMu, after the core detached the session.
func (ss *session) finish(code ipc.Code, reason string, err error, released int) {
	ss.closeOnce.Do(func() {
		ss.outMu.Lock()
		ss.closed, ss.out = true, nil
		ss.outMu.Unlock()
		switch code {
		case ipc.CodeProtocol, ipc.CodeBadRelease, ipc.CodeRateLimit:
			ss.srv.ctr.protocolErrors.Add(1) // before the Bye: its reader may look at once
		}
		if code != ipc.CodeOK || reason != "" {
			_ = ss.sendMsg(&ipc.Bye{Code: code, Reason: reason}, nil)
		}
		ss.st.poller.Remove(ss.conn)
		_ = ss.conn.Close()
		if ss.ring != nil {
			ss.ring.Close() // the stream reads it under sendMu too (popRing)
		}
		attrs := []any{"code", code.String(), "reason", reason, "leases_released", released}
		if err != nil {
			attrs = append(attrs, "err", err)
		}
		switch code {
		case ipc.CodeOK, ipc.CodeShutdown:
			ss.log.Info("consumer disconnected", attrs...)
		default:
			ss.log.Warn("consumer disconnected", attrs...)
		}
		ss.srv.endSession(ss)
	})
}

// setKick asks the consumer to release with Release messages (on) rather
// than in its ring, while the producer waits for a free surface.
func (ss *session) setKick(on bool) {
	ss.sendMu.Lock()
	defer ss.sendMu.Unlock()
	ss.outMu.Lock()
	closed := ss.closed
	ss.outMu.Unlock()
	if !closed && ss.ring != nil {
		ss.ring.SetKick(on)
	}
}

// popRing reads up to maxDrainPerService lease ids the consumer wrote into
// its release ring, appended to dst. A ring the consumer broke is an error.
// Called by the stream's service (one at a time).
func (ss *session) popRing(dst []uint64) ([]uint64, error) {
	ss.sendMu.Lock() // finish closes the ring under it
	defer ss.sendMu.Unlock()
	ss.outMu.Lock()
	closed := ss.closed
	ss.outMu.Unlock()
	if closed || ss.ring == nil {
		return dst, nil
	}
	return ss.ring.Pop(dst, maxDrainPerService)
}

// drain handles the packets queued on the session's socket, without
// waiting and within a bound. The socket is out of the netpoller, so a
// consumer's releases never wake the producer: they are read on the
// stream's frame clock (see Stream.service). buf is the stream's receive
// buffer.
func (ss *session) drain(buf []byte) {
	resetSeen := false
	// A consumer sends about one small Release per frame it got; anything
	// far beyond that is a flood, left queued (the flooder's own sends then
	// block) so that it costs the flooder, not the frame clock; its control
	// messages draw on its allowance (fanout.Core.Control).
	budget := maxDrainBytesPerService
	for range maxDrainPerService {
		if budget <= 0 {
			return
		}
		n, fds, err := ss.conn.TryRecv(buf)
		budget -= n
		if err != nil {
			switch {
			case errors.Is(err, syscall.ECONNRESET) && !resetSeen:
				// The consumer closed with our frames unread: the kernel
				// reports the reset once, before the packets it queued for
				// us (its releases, its Bye). Read them, then the EOF.
				resetSeen = true
				continue
			case errors.Is(err, fdpass.ErrWouldBlock):
			default:
				ss.recvFailed(err)
			}
			return
		}
		if !ss.handle(buf[:n], fds) {
			return
		}
	}
}

// readLoop serves a session that reads its own socket (policy latest: a
// release must deliver the pending frame at once, not at the next frame;
// replay: releases pace the catch-up). It blocks in the netpoller until the
// connection ends.
func (ss *session) readLoop() {
	buf := make([]byte, ipc.MaxMessageSize)
	for {
		n, fds, err := ss.conn.Recv(buf)
		if err != nil {
			if errors.Is(err, syscall.ECONNRESET) {
				continue // reported once, before the packets still queued
			}
			ss.recvFailed(err)
			return
		}
		if !ss.handle(buf[:n], fds) {
			return
		}
	}
}

func (ss *session) recvFailed(err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrClosed), errors.Is(err, syscall.ECONNRESET):
		ss.closeWith(ipc.CodeOK, "", nil)
	case errors.Is(err, fdpass.ErrTruncated):
		ss.closeWith(ipc.CodeProtocol, fmt.Sprintf("message larger than %d bytes", ipc.MaxMessageSize), err)
	default:
		ss.closeWith(ipc.CodeProtocol, "receive failed", err)
	}
}

// handle processes one packet from the consumer. It reports false when the
// session ended because of it.
func (ss *session) handle(p []byte, fds []int) bool {
	if len(fds) > 0 {
		fdpass.CloseFDs(fds)
		ss.closeWith(ipc.CodeProtocol, fmt.Sprintf("consumer sent %d file descriptors; consumers must not send fds", len(fds)), nil)
		return false
	}
	m, err := ss.srv.codec.Decode(p)
	if err != nil {
		ss.closeWith(ipc.CodeProtocol, "malformed message: "+err.Error(), nil)
		return false
	}
	switch m := m.(type) {
	case *ipc.Release:
		return ss.st.released(ss, m.Leases)
	case *ipc.RequestKeyframe:
		return ss.st.requestKeyframe(ss)
	case *ipc.Ping:
		return ss.st.control(ss, &ipc.Pong{Token: m.Token, MonoNS: m.MonoNS})
	case *ipc.Pong:
		return ss.st.control(ss, nil)
	case *ipc.Unknown:
		ss.log.Debug("ignoring unknown message type", "type", uint8(m.Tag))
		return ss.st.control(ss, nil)
	case *ipc.Bye:
		ss.closeWith(ipc.CodeOK, "", fmt.Errorf("consumer said bye (%v: %s)", m.Code, m.Reason))
		return false
	default:
		ss.closeWith(ipc.CodeProtocol, fmt.Sprintf("unexpected %v message from a consumer", m.Type()), nil)
		return false
	}
}
