package producer

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/framehub/framehub/fdpass"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/lease"
)

// maxDrainPerService and maxDrainBytesPerService bound what is read from one
// consumer per service (per frame): a Release of 64 leases is ~600 bytes.
const (
	maxDrainPerService      = 64
	maxDrainBytesPerService = 16 << 10
)

// errSocketFull means a consumer's socket send buffer is full; the frame is
// skipped for that consumer, never waited for.
var errSocketFull = errors.New("consumer socket buffer full")

type sessionCounters struct {
	delivered, skippedBudget, skippedSocket, released atomic.Uint64
	evicted                                           atomic.Bool
}

// session is one consumer connection subscribed to one stream.
type session struct {
	cid        lease.ConsumerID
	srv        *Server
	st         *Stream
	conn       *fdpass.Conn
	cred       fdpass.Cred
	name       string
	policy     ipc.Policy
	lossless   bool
	budget     int
	maxHold    time.Duration
	log        *slog.Logger
	connected  time.Time
	ctr        sessionCounters
	ownReader  bool  // reads its own socket (readLoop) instead of being drained by the stream
	replayFrom int64 // Hello.ReplayFromNS

	// Guarded by st.mu.
	announced     map[uint32]uint32 // surface id → generation announced on this connection
	pending       *frame            // PolicyLatest: newest frame waiting for budget
	cursor        uint64            // replaying: seq of the next buffered frame to send; 0 = live
	extraFlags    uint32            // flags added to the Frame being sent (FlagReplay)
	discontNext   bool              // the next Frame sent says FlagDiscont
	sinceLast     uint32            // frames skipped since the last Frame sent
	detached      bool
	wbuf          []byte
	fdbuf         []int
	lastDropLog   time.Time
	dropsSinceLog uint64

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
	Delivered     uint64
	SkippedBudget uint64
	SkippedSocket uint64
	Released      uint64
}

func (ss *session) info() SessionInfo {
	inFlight := 0
	if ss.st != nil {
		ss.st.mu.Lock()
		inFlight = ss.st.table.InFlight(ss.cid)
		ss.st.mu.Unlock()
	}
	name := ""
	if ss.st != nil {
		name = ss.st.cfg.Name
	}
	return SessionInfo{
		ID: uint64(ss.cid), Name: ss.name, Stream: name, PID: ss.cred.PID, UID: ss.cred.UID, GID: ss.cred.GID,
		Policy: ss.policy, Budget: ss.budget, MaxHold: ss.maxHold, Connected: ss.connected, InFlight: inFlight,
		Delivered: ss.ctr.delivered.Load(), SkippedBudget: ss.ctr.skippedBudget.Load(),
		SkippedSocket: ss.ctr.skippedSocket.Load(), Released: ss.ctr.released.Load(),
	}
}

// sendLocked encodes m into the session's write buffer and sends it without
// waiting. fds are borrowed. Callers hold st.mu (or own the session
// exclusively, during the handshake).
func (ss *session) sendLocked(m ipc.Message, fds []int) error {
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

// announceLocked sends the fds of refs not yet announced (or announced with
// an older generation), batched at ipc.MaxFDsPerMessage fds per message.
func (ss *session) announceLocked(refs []SurfaceRef) error {
	var (
		msg   ipc.Announce
		batch []SurfaceRef
	)
	fds := ss.fdbuf[:0]
	flush := func() error {
		if len(msg.Surfaces) == 0 {
			return nil
		}
		if err := ss.sendLocked(&msg, fds); err != nil {
			return err
		}
		for _, r := range batch {
			ss.announced[r.ID] = r.Gen
		}
		msg.Surfaces, batch, fds = msg.Surfaces[:0], batch[:0], fds[:0]
		return nil
	}
	for _, r := range refs {
		if g, ok := ss.announced[r.ID]; ok && g == r.Gen {
			continue
		}
		if len(fds)+len(r.FDs) > ipc.MaxFDsPerMessage {
			if err := flush(); err != nil {
				return err
			}
		}
		msg.Surfaces = append(msg.Surfaces, ipc.Surface{ID: r.ID, Gen: r.Gen, Size: r.Size, Kind: r.Kind, NFDs: uint8(len(r.FDs)), Device: r.Device})
		batch = append(batch, r)
		fds = append(fds, r.FDs...)
	}
	err := flush()
	ss.fdbuf = fds[:0]
	return err
}

// sendFrameLocked announces fr's surface if needed and sends the Frame.
func (ss *session) sendFrameLocked(fr *frame, lid uint64) error {
	if g, ok := ss.announced[fr.surf.ID]; !ok || g != fr.surf.Gen {
		if err := ss.announceLocked([]SurfaceRef{fr.surf}); err != nil {
			return err
		}
	}
	msg := fr.msg
	msg.Lease = lid
	msg.Dropped = ss.sinceLast
	msg.Flags |= ss.extraFlags
	if ss.sinceLast > 0 || ss.discontNext {
		msg.Flags |= ipc.FlagDiscont
	}
	if err := ss.sendLocked(&msg, nil); err != nil {
		return err
	}
	ss.discontNext = false
	return nil
}

// skipLocked handles a frame published while ss is at its budget.
func (ss *session) skipLocked(st *Stream, fr *frame, now time.Time) {
	if ss.policy == ipc.PolicyLatest {
		if old := ss.pending; old != nil {
			st.unholdLocked(old.id)
			ss.countSkipLocked(st, now)
		}
		if err := st.table.Hold(fr.id); err != nil {
			panic(err)
		}
		ss.pending = fr
		return
	}
	ss.countSkipLocked(st, now)
}

func (ss *session) countSkipLocked(st *Stream, now time.Time) {
	ss.sinceLast++
	st.ctr.skippedBudget.Add(1)
	ss.ctr.skippedBudget.Add(1)
	ss.noteDropLocked(now, "at its budget (max_in_flight)")
}

// noteDropLocked logs skipped frames in batches, at most once a second.
func (ss *session) noteDropLocked(now time.Time, why string) {
	ss.dropsSinceLog++
	if now.Sub(ss.lastDropLog) < time.Second {
		return
	}
	ss.log.Info("consumer is too slow, skipping frames", "why", why, "skipped", ss.dropsSinceLog)
	ss.lastDropLog = now
	ss.dropsSinceLog = 0
}

// closeWith ends the session once: it leaves the stream (releasing every
// lease), tells the peer why with a Bye, and closes the socket. err, when
// set, is the local cause, logged beside the reason.
func (ss *session) closeWith(code ipc.Code, reason string, err error) {
	ss.closeOnce.Do(func() {
		released := 0
		if ss.st != nil {
			released = ss.st.detach(ss)
		}
		if code != ipc.CodeOK || reason != "" {
			if b, eerr := ss.srv.codec.Encode(&ipc.Bye{Code: code, Reason: reason}); eerr == nil {
				_ = ss.conn.TrySend(b, nil) // best effort: the peer may be gone
			}
		}
		_ = ss.conn.Close()
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
		ss.srv.removeSession(ss)
		ss.srv.ctr.conns.Add(-1)
	})
}

// drain handles every packet queued on the session's socket, without
// waiting. The socket is out of the netpoller, so a consumer's releases
// never wake the producer: they are read on the stream's frame clock (see
// Stream.service). buf is the stream's receive buffer.
func (ss *session) drain(buf []byte) {
	resetSeen := false
	// A consumer sends about one small Release per frame it got; anything
	// far beyond that is a flood, left queued (the flooder's own sends then
	// block) so that it costs the flooder, not the frame clock.
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
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrClosed),
				errors.Is(err, syscall.ECONNRESET):
				ss.closeWith(ipc.CodeOK, "", nil)
			case errors.Is(err, fdpass.ErrTruncated):
				ss.protocolError(fmt.Sprintf("message larger than %d bytes", ipc.MaxMessageSize), err)
			default:
				ss.closeWith(ipc.CodeProtocol, "receive failed", err)
			}
			return
		}
		if !ss.handle(buf[:n], fds) {
			return
		}
	}
}

// readLoop serves a session that reads its own socket (policy latest: a
// release must deliver the pending frame at once, not at the next frame).
// It blocks in the netpoller until the connection ends.
func (ss *session) readLoop() {
	buf := make([]byte, ipc.MaxMessageSize)
	for {
		n, fds, err := ss.conn.Recv(buf)
		if err != nil {
			switch {
			case errors.Is(err, syscall.ECONNRESET):
				continue // reported once, before the packets still queued
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrClosed):
				ss.closeWith(ipc.CodeOK, "", nil)
			case errors.Is(err, fdpass.ErrTruncated):
				ss.protocolError(fmt.Sprintf("message larger than %d bytes", ipc.MaxMessageSize), err)
			default:
				ss.closeWith(ipc.CodeProtocol, "receive failed", err)
			}
			return
		}
		if !ss.handle(buf[:n], fds) {
			return
		}
		ss.st.closeBroken() // a release may have delivered a pending frame that failed
	}
}

// handle processes one packet from the consumer. It reports false when the
// session was closed because of it.
func (ss *session) handle(p []byte, fds []int) bool {
	if len(fds) > 0 {
		fdpass.CloseFDs(fds)
		ss.protocolError(fmt.Sprintf("consumer sent %d file descriptors; consumers must not send fds", len(fds)), nil)
		return false
	}
	m, err := ss.srv.codec.Decode(p)
	if err != nil {
		ss.protocolError("malformed message", err)
		return false
	}
	switch m := m.(type) {
	case *ipc.Release:
		if err := ss.st.releaseFromPeer(ss, m.Leases); err != nil {
			ss.srv.ctr.protocolErrors.Add(1)
			ss.closeWith(ipc.CodeBadRelease, err.Error(), nil)
			return false
		}
	case *ipc.RequestKeyframe:
		ss.st.requestKeyframe()
	case *ipc.Ping:
		if b, err := ss.srv.codec.Encode(&ipc.Pong{Token: m.Token, MonoNS: m.MonoNS}); err == nil {
			_ = ss.conn.TrySend(b, nil)
		}
	case *ipc.Pong:
	case *ipc.Bye:
		ss.closeWith(ipc.CodeOK, "", fmt.Errorf("consumer said bye (%v: %s)", m.Code, m.Reason))
		return false
	case *ipc.Unknown:
		ss.log.Debug("ignoring unknown message type", "type", uint8(m.Tag))
	default:
		ss.protocolError(fmt.Sprintf("unexpected %v message from a consumer", m.Type()), nil)
		return false
	}
	return true
}

func (ss *session) protocolError(reason string, err error) {
	ss.srv.ctr.protocolErrors.Add(1)
	if err != nil {
		reason = reason + ": " + err.Error()
	}
	ss.closeWith(ipc.CodeProtocol, reason, nil)
}
