package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/framehub/framehub/fdpass"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/lease"
)

// ServerStats are the server's connection counters.
type ServerStats struct {
	Accepted       uint64 // connections accepted
	Rejected       uint64 // handshakes refused (Reject sent)
	ProtocolErrors uint64 // sessions closed for breaking the protocol
	Connections    int    // open now (handshaking or subscribed)
}

type serverCounters struct {
	accepted, rejected, protocolErrors atomic.Uint64
	conns                              atomic.Int64
}

// Server accepts consumer connections and serves its streams. Create it with
// New, add streams with AddStream, then Start (or Run) it; Close stops it.
type Server struct {
	cfg   Config
	log   *slog.Logger
	codec *ipc.Codec
	ctr   serverCounters

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	streams  map[string]*Stream
	sessions map[lease.ConsumerID]*session
	nextID   lease.ConsumerID
	ln       *fdpass.Listener
	started  bool
	closed   bool
	holdObs  *prometheus.HistogramVec // lease hold times, when metrics are on
}

// New validates cfg and returns a server that is not listening yet.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		codec:    ipc.NewCodec(),
		ctx:      ctx,
		cancel:   cancel,
		streams:  make(map[string]*Stream),
		sessions: make(map[lease.ConsumerID]*session),
	}, nil
}

// AddStream creates a stream. Streams may be added before or after Start.
func (s *Server) AddStream(cfg StreamConfig) (*Stream, error) {
	st, err := newStream(s, cfg)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("producer: add stream %q: server closed", cfg.Name)
	}
	if _, dup := s.streams[cfg.Name]; dup {
		return nil, fmt.Errorf("producer: add stream %q: a stream of that name exists", cfg.Name)
	}
	s.streams[cfg.Name] = st
	if s.holdObs != nil {
		st.holdObs = s.holdObs.WithLabelValues(cfg.Name)
	}
	if s.started {
		s.startEvictions(st)
	}
	return st, nil
}

// Stream returns the named stream, or nil.
func (s *Server) Stream(name string) *Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[name]
}

func (s *Server) streamNames() []string {
	names := make([]string, 0, len(s.streams))
	for n := range s.streams {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s *Server) startEvictions(st *Stream) {
	s.wg.Go(func() { st.runService(s.ctx, s.cfg.EvictInterval) })
}

// Addr returns the socket address the server listens on.
func (s *Server) Addr() string { return s.cfg.Addr }

// Start listens on the socket and serves connections in the background.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.started {
		return errors.New("producer: start: server already started or closed")
	}
	lc := fdpass.ListenConfig{Mode: s.cfg.SocketMode}
	if s.cfg.SetSocketGID {
		lc.GID = s.cfg.SocketGID
		lc.SetGID = true
	}
	ln, err := fdpass.Listen(s.cfg.Addr, lc)
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	s.ln = ln
	s.started = true
	for _, st := range s.streams {
		s.startEvictions(st)
	}
	s.wg.Go(s.acceptLoop)
	s.log.Info("listening", "addr", s.cfg.Addr, "streams", s.streamNames())
	return nil
}

// Run starts the server and serves until ctx is done, then closes it.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
	return s.Close()
}

// Close stops accepting, says Bye (shutdown) to every consumer, releases
// their leases and the streams' replay buffers, and waits for the server's
// goroutines. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	s.cancel()
	ln := s.ln
	sessions := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	for _, ss := range sessions {
		ss.closeWith(ipc.CodeShutdown, "producer is stopping", nil)
	}
	s.wg.Wait()
	// The replay buffers' holds are the last references to their frames:
	// without this their surfaces would never return to their pools.
	s.mu.Lock()
	streams := make([]*Stream, 0, len(s.streams))
	for _, st := range s.streams {
		streams = append(streams, st)
	}
	s.mu.Unlock()
	for _, st := range streams {
		st.dropReplay()
	}
	return err
}

func (s *Server) acceptLoop() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			// EMFILE and friends: back off instead of spinning.
			s.log.Error("accept failed", "err", err)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		s.ctr.accepted.Add(1)
		if n := s.ctr.conns.Add(1); n > int64(s.cfg.MaxConnections) {
			s.ctr.conns.Add(-1)
			s.reject(conn, ipc.CodeTooMany, fmt.Sprintf("connection limit reached (%d)", s.cfg.MaxConnections))
			continue
		}
		s.wg.Go(func() {
			if !s.serveConn(conn) {
				s.ctr.conns.Add(-1) // a session gives its slot back when it closes
			}
		})
	}
}

// reject refuses a connection before it became a session.
func (s *Server) reject(conn *fdpass.Conn, code ipc.Code, reason string) {
	s.ctr.rejected.Add(1)
	cred, _ := conn.PeerCred()
	s.log.Warn("rejected consumer", "code", code.String(), "reason", reason, "pid", cred.PID, "uid", cred.UID)
	if b, err := s.codec.Encode(&ipc.Reject{Code: code, Reason: reason}); err == nil {
		_ = conn.TrySend(b, nil)
	}
	_ = conn.Close()
}

// serveConn runs the handshake. It reports whether the connection became a
// session (which then owns its connection slot until it closes).
func (s *Server) serveConn(conn *fdpass.Conn) bool {
	cred, err := conn.PeerCred()
	if err != nil {
		s.reject(conn, ipc.CodeDenied, "cannot read peer credentials")
		return false
	}
	if !s.cfg.allowed(cred.UID, cred.GID) {
		s.reject(conn, ipc.CodeDenied, fmt.Sprintf("uid %d gid %d not in the allow-list", cred.UID, cred.GID))
		return false
	}
	buf := make([]byte, ipc.MaxMessageSize)
	_ = conn.SetReadDeadline(time.Now().Add(s.cfg.HelloTimeout))
	n, fds, err := conn.Recv(buf)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.reject(conn, ipc.CodeProtocol, fmt.Sprintf("no Hello within %v", s.cfg.HelloTimeout))
		case errors.Is(err, fdpass.ErrTruncated):
			s.reject(conn, ipc.CodeProtocol, fmt.Sprintf("first message larger than %d bytes", ipc.MaxMessageSize))
		default:
			s.log.Debug("connection closed before Hello", "pid", cred.PID, "err", err)
			_ = conn.Close()
		}
		return false
	}
	if len(fds) > 0 {
		fdpass.CloseFDs(fds)
		s.reject(conn, ipc.CodeProtocol, fmt.Sprintf("Hello carried %d file descriptors; consumers must not send fds", len(fds)))
		return false
	}
	m, err := s.codec.Decode(buf[:n])
	if err != nil {
		code := ipc.CodeProtocol
		if errors.Is(err, ipc.ErrInvalid) && !errors.Is(err, ipc.ErrMalformed) && ipc.Type(buf[0]) == ipc.TypeHello {
			code = ipc.CodeInvalidArgument
		}
		s.reject(conn, code, "malformed Hello: "+err.Error())
		return false
	}
	hello, ok := m.(*ipc.Hello)
	if !ok {
		s.reject(conn, ipc.CodeProtocol, fmt.Sprintf("first message must be Hello, got %v", m.Type()))
		return false
	}
	_ = conn.SetReadDeadline(time.Time{})
	ss, welcome, code, reason := s.admit(conn, cred, hello)
	if ss == nil {
		s.reject(conn, code, reason)
		return false
	}
	// From here on the stream reads this socket on its own schedule (see
	// Stream.service); taking it out of the netpoller keeps the consumer's
	// releases from waking the producer. A latest-policy consumer is the
	// exception: its release must deliver the pending frame at once, so it
	// keeps a reader of its own (such consumers are few and trigger-driven).
	// A replaying consumer too: its releases pace the catch-up.
	ss.ownReader = ss.policy == ipc.PolicyLatest || ss.replayFrom > 0
	if ss.ownReader {
		if err := ss.st.subscribe(ss, welcome); err != nil {
			s.removeSession(ss)
			s.log.Warn("subscribe failed", "consumer", ss.name, "err", err)
			_ = conn.Close()
			return false
		}
		ss.log.Info("consumer subscribed", "budget", ss.budget, "max_hold", ss.maxHold, "policy", string(ss.policy))
		ss.readLoop()
		return true
	}
	if err := conn.SetBlocking(true); err != nil {
		s.removeSession(ss)
		s.log.Error("detach consumer socket from the netpoller", "err", err)
		_ = conn.Close()
		return false
	}
	if err := ss.st.subscribe(ss, welcome); err != nil {
		s.removeSession(ss)
		s.log.Warn("subscribe failed", "consumer", ss.name, "err", err)
		_ = conn.Close()
		return false
	}
	ss.log.Info("consumer subscribed", "budget", ss.budget, "max_hold", ss.maxHold, "policy", string(ss.policy))
	return true
}

// admit checks a Hello against the server's policy and builds the session.
func (s *Server) admit(conn *fdpass.Conn, cred fdpass.Cred, h *ipc.Hello) (*session, *ipc.Welcome, ipc.Code, string) {
	if h.Major != ipc.VersionMajor {
		return nil, nil, ipc.CodeVersion, fmt.Sprintf("protocol version %d.%d not supported; this producer speaks %d.x",
			h.Major, h.Minor, ipc.VersionMajor)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, ipc.CodeShutdown, "producer is stopping"
	}
	st := s.streams[h.Stream]
	if st == nil {
		return nil, nil, ipc.CodeUnknownStream, fmt.Sprintf("no stream %q (streams: %v)", h.Stream, s.streamNames())
	}
	lossless := h.Flags&ipc.HelloLossless != 0
	if lossless && !s.cfg.AllowLossless {
		return nil, nil, ipc.CodeLossless, "lossless delivery is not allowed by this producer's policy"
	}
	budget := int(h.MaxInFlight)
	if budget == 0 {
		budget = s.cfg.DefaultInFlight
	}
	budget = min(budget, s.cfg.MaxInFlight)
	hold := time.Duration(h.MaxHoldMS) * time.Millisecond
	if hold == 0 {
		hold = s.cfg.DefaultMaxHold
	}
	hold = min(hold, s.cfg.MaxHold)
	policy := h.Policy
	if policy == "" {
		policy = ipc.PolicyQueue
	}
	name := h.Name
	if name == "" {
		name = fmt.Sprintf("pid%d", cred.PID)
	}
	s.nextID++
	ss := &session{
		cid: s.nextID, srv: s, st: st, conn: conn, cred: cred, name: name, policy: policy,
		lossless: lossless, budget: budget, maxHold: hold, connected: time.Now(),
		announced: make(map[uint32]uint32), wbuf: make([]byte, 0, 512), replayFrom: h.ReplayFromNS,
	}
	ss.log = st.log.With("consumer", name, "session", uint64(ss.cid), "pid", cred.PID)
	s.sessions[ss.cid] = ss
	var flags uint32
	if lossless {
		flags |= ipc.HelloLossless
	}
	w := &ipc.Welcome{
		Major: ipc.VersionMajor, Minor: ipc.VersionMinor, Session: uint64(ss.cid), Stream: st.cfg.Name,
		MaxInFlight: uint32(budget), MaxHoldMS: uint32(hold / time.Millisecond), Policy: policy, Flags: flags,
	}
	return ss, w, 0, ""
}

func (s *Server) removeSession(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss.cid)
	s.mu.Unlock()
}

// Sessions describes the connected consumers, ordered by session id.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		list = append(list, ss)
	}
	s.mu.Unlock()
	infos := make([]SessionInfo, 0, len(list))
	for _, ss := range list {
		infos = append(infos, ss.info())
	}
	slices.SortFunc(infos, func(a, b SessionInfo) int { return int(a.ID) - int(b.ID) })
	return infos
}

// Stats returns the server's connection counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{
		Accepted: s.ctr.accepted.Load(), Rejected: s.ctr.rejected.Load(),
		ProtocolErrors: s.ctr.protocolErrors.Load(), Connections: int(s.ctr.conns.Load()),
	}
}
