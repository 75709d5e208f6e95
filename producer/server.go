package producer

import (
	"cmp"
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
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/framehub/framehub/fdpass"
	"github.com/framehub/framehub/internal/ring"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer/fanout"
)

// ServerStats are the server's connection counters.
type ServerStats struct {
	Accepted       uint64 // connections accepted
	Rejected       uint64 // handshakes refused (Reject sent)
	ProtocolErrors uint64 // sessions closed for breaking the protocol (bad messages, bad releases, floods)
	Connections    int    // open now (handshaking or subscribed)
	Handshakes     int    // open now and not subscribed yet
}

type serverCounters struct {
	accepted, rejected, protocolErrors atomic.Uint64
}

// handshakes counts the connections that have not finished their
// handshake, in all and per peer uid and process: they have an allowance of
// their own (Config.MaxHandshakes...), so that silent connections of one
// process cannot keep another process out.
type handshakes struct {
	total int
	byUID map[int]int
	byPID map[int]int
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

	mu        sync.Mutex
	streams   map[string]*Stream
	sessions  map[fanout.SubID]*session
	pending   handshakes
	rejectLog map[ipc.Code]rejectLog
	nextID    fanout.SubID
	ln        *fdpass.Listener
	started   bool
	closed    bool
	holdObs   *prometheus.HistogramVec // lease hold times, when metrics are on
}

// New validates cfg and returns a server that is not listening yet.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		codec:     ipc.NewCodec(),
		ctx:       ctx,
		cancel:    cancel,
		streams:   make(map[string]*Stream),
		sessions:  make(map[fanout.SubID]*session),
		pending:   handshakes{byUID: make(map[int]int), byPID: make(map[int]int)},
		rejectLog: make(map[ipc.Code]rejectLog),
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
		st.setHoldObserver(s.holdObs.WithLabelValues(cfg.Name))
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

// streamListLocked returns the streams; call with s.mu held.
func (s *Server) streamListLocked() []*Stream {
	streams := make([]*Stream, 0, len(s.streams))
	for _, st := range s.streams {
		streams = append(streams, st)
	}
	return streams
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
	streams := s.streamListLocked()
	s.mu.Unlock()
	for _, st := range streams {
		st.dropReplay()
		st.close()
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
		cred, err := conn.PeerCred()
		if err != nil {
			s.reject(conn, cred, ipc.CodeDenied, "cannot read peer credentials")
			continue
		}
		if reason := s.beginHandshake(cred); reason != "" {
			s.reject(conn, cred, ipc.CodeTooMany, reason)
			continue
		}
		s.wg.Go(func() {
			s.serveConn(conn, cred)
		})
	}
}

// beginHandshake takes a handshake slot for a new connection from cred's
// process, or says which allowance it is over.
func (s *Server) beginHandshake(cred fdpass.Cred) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := &s.pending
	switch {
	case h.byPID[cred.PID] >= s.cfg.MaxHandshakesPerProcess:
		return fmt.Sprintf("process %d already has %d connections without a Hello (limit %d per process)",
			cred.PID, h.byPID[cred.PID], s.cfg.MaxHandshakesPerProcess)
	case h.byUID[cred.UID] >= s.cfg.MaxHandshakesPerUID:
		return fmt.Sprintf("uid %d already has %d connections without a Hello (limit %d per uid)",
			cred.UID, h.byUID[cred.UID], s.cfg.MaxHandshakesPerUID)
	case h.total >= s.cfg.MaxHandshakes:
		return fmt.Sprintf("%d connections are waiting to say Hello (limit %d)", h.total, s.cfg.MaxHandshakes)
	}
	h.total++
	h.byPID[cred.PID]++
	h.byUID[cred.UID]++
	return ""
}

// endHandshake gives a handshake slot back.
func (s *Server) endHandshake(cred fdpass.Cred) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := &s.pending
	h.total--
	if h.byPID[cred.PID]--; h.byPID[cred.PID] <= 0 {
		delete(h.byPID, cred.PID)
	}
	if h.byUID[cred.UID]--; h.byUID[cred.UID] <= 0 {
		delete(h.byUID, cred.UID)
	}
}

// reject refuses a connection before it became a session. Its log line is
// limited to one a second per code, with the count of those not logged, so
// that a peer opening connections in a loop cannot flood the log.
func (s *Server) reject(conn *fdpass.Conn, cred fdpass.Cred, code ipc.Code, reason string) {
	s.ctr.rejected.Add(1)
	if b, err := s.codec.Encode(&ipc.Reject{Code: code, Reason: reason}); err == nil {
		_ = conn.TrySend(b, nil)
	}
	_ = conn.Close()
	now := time.Now()
	s.mu.Lock()
	rl := s.rejectLog[code]
	logIt := now.Sub(rl.last) >= time.Second
	if logIt {
		s.rejectLog[code] = rejectLog{last: now}
	} else {
		rl.suppressed++
		s.rejectLog[code] = rl
	}
	s.mu.Unlock()
	if logIt {
		s.log.Warn("rejected consumer", "code", code.String(), "reason", reason, "pid", cred.PID, "uid", cred.UID,
			"not_logged_before", rl.suppressed)
	}
}

// rejectLog limits the log lines of rejects of one code.
type rejectLog struct {
	last       time.Time
	suppressed int
}

// serveConn runs the handshake, then subscribes the session (which reads
// its own socket from then on when its policy needs it).
func (s *Server) serveConn(conn *fdpass.Conn, cred fdpass.Cred) {
	ss := s.handshake(conn, cred)
	s.endHandshake(cred)
	if ss == nil {
		return
	}
	// From here on the stream reads this socket on its own schedule (see
	// Stream.service); taking it out of the netpoller keeps the consumer's
	// releases from waking the producer. A latest-policy consumer is the
	// exception: its release must deliver the pending frame at once, so it
	// keeps a reader of its own (such consumers are few and trigger-driven).
	// A replaying consumer too: its releases pace the catch-up.
	if !ss.ownReader {
		if err := conn.SetBlocking(true); err != nil {
			s.endSession(ss)
			s.log.Error("detach consumer socket from the netpoller", "err", err)
			_ = conn.Close()
			return
		}
	}
	if ss.wantRing {
		r, err := ring.Create("framehub-release-ring")
		if err != nil {
			s.log.Warn("no release ring for the consumer: it releases with messages", "consumer", ss.name, "err", err)
		}
		ss.ring = r
	}
	w := &ipc.Welcome{
		Major: ipc.VersionMajor, Minor: ipc.VersionMinor, Session: uint64(ss.id), Stream: ss.st.cfg.Name,
		MaxHoldMS: uint32(ss.params.MaxHold / time.Millisecond), Policy: ss.params.Policy,
	}
	if ss.params.Lossless {
		w.Flags |= ipc.HelloLossless
	}
	if ss.ring != nil {
		w.Flags |= ipc.HelloReleaseRing
	}
	if err := ss.st.subscribe(ss, w); err != nil {
		if ss.ring != nil {
			ss.ring.Close()
		}
		s.endSession(ss)
		if errors.Is(err, fanout.ErrNoCapacity) {
			s.reject(conn, cred, ipc.CodeNoCapacity, err.Error())
			return
		}
		s.log.Warn("subscribe failed", "consumer", ss.name, "err", err)
		_ = conn.Close()
		return
	}
	ss.log.Info("consumer subscribed", "budget", ss.budget, "asked", ss.params.Budget, "max_hold", ss.params.MaxHold,
		"policy", string(ss.params.Policy), "release_ring", ss.ring != nil)
	if ss.ownReader {
		ss.readLoop()
	}
}

// handshake reads and checks the Hello. It returns the session, not yet
// subscribed, or nil once it rejected or closed the connection.
func (s *Server) handshake(conn *fdpass.Conn, cred fdpass.Cred) *session {
	if !s.cfg.allowed(cred.UID, cred.GID) {
		s.reject(conn, cred, ipc.CodeDenied, fmt.Sprintf("uid %d gid %d not in the allow-list", cred.UID, cred.GID))
		return nil
	}
	buf := make([]byte, ipc.MaxMessageSize)
	_ = conn.SetReadDeadline(time.Now().Add(s.cfg.HelloTimeout))
	n, fds, err := conn.Recv(buf)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.reject(conn, cred, ipc.CodeProtocol, fmt.Sprintf("no Hello within %v", s.cfg.HelloTimeout))
		case errors.Is(err, fdpass.ErrTruncated):
			s.reject(conn, cred, ipc.CodeProtocol, fmt.Sprintf("first message larger than %d bytes", ipc.MaxMessageSize))
		default:
			s.log.Debug("connection closed before Hello", "pid", cred.PID, "err", err)
			_ = conn.Close()
		}
		return nil
	}
	if len(fds) > 0 {
		fdpass.CloseFDs(fds)
		s.reject(conn, cred, ipc.CodeProtocol, fmt.Sprintf("Hello carried %d file descriptors; consumers must not send fds", len(fds)))
		return nil
	}
	m, err := s.codec.Decode(buf[:n])
	if err != nil {
		code := ipc.CodeProtocol
		if errors.Is(err, ipc.ErrInvalid) && !errors.Is(err, ipc.ErrMalformed) && ipc.Type(buf[0]) == ipc.TypeHello {
			code = ipc.CodeInvalidArgument
		}
		s.reject(conn, cred, code, "malformed Hello: "+err.Error())
		return nil
	}
	hello, ok := m.(*ipc.Hello)
	if !ok {
		s.reject(conn, cred, ipc.CodeProtocol, fmt.Sprintf("first message must be Hello, got %v", m.Type()))
		return nil
	}
	_ = conn.SetReadDeadline(time.Time{})
	ss, code, reason := s.admit(conn, cred, hello)
	if ss == nil {
		s.reject(conn, cred, code, reason)
	}
	return ss
}

// MaxNameLen is the longest consumer name a Hello may carry, in bytes.
const MaxNameLen = 64

// checkName says what is wrong with a consumer name, or "" when nothing:
// names end up in logs, metrics labels and status output, so they must be
// short, valid UTF-8 and printable.
func checkName(name string) string {
	switch {
	case len(name) > MaxNameLen:
		return fmt.Sprintf("consumer name of %d bytes: at most %d", len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Sprintf("consumer name %+q is not valid UTF-8", name)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Sprintf("consumer name %+q has the unprintable character %U", name, r)
		}
	}
	return ""
}

// admit checks a Hello against the server's policy and builds the session.
func (s *Server) admit(conn *fdpass.Conn, cred fdpass.Cred, h *ipc.Hello) (*session, ipc.Code, string) {
	if h.Major != ipc.VersionMajor {
		return nil, ipc.CodeVersion, fmt.Sprintf("protocol version %d.%d not supported; this producer speaks %d.x",
			h.Major, h.Minor, ipc.VersionMajor)
	}
	if why := checkName(h.Name); why != "" {
		return nil, ipc.CodeInvalidArgument, why
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions) >= s.cfg.MaxConnections {
		// Consumers that left since the last frame are still counted until
		// a service reads their goodbyes: read them, then count again.
		streams := s.streamListLocked()
		s.mu.Unlock()
		for _, st := range streams {
			st.service()
		}
		s.mu.Lock()
	}
	if s.closed {
		return nil, ipc.CodeShutdown, "producer is stopping"
	}
	if len(s.sessions) >= s.cfg.MaxConnections {
		return nil, ipc.CodeTooMany, fmt.Sprintf("connection limit reached (%d consumers)", s.cfg.MaxConnections)
	}
	st := s.streams[h.Stream]
	if st == nil {
		return nil, ipc.CodeUnknownStream, fmt.Sprintf("no stream %q (streams: %v)", h.Stream, s.streamNames())
	}
	if h.Minor < 1 && st.cfg.Pool.Config().Allocator.Kind() == ipc.KindCUDA {
		// A 1.0 decoder rejects a surface kind it does not know (§10).
		return nil, ipc.CodeVersion, fmt.Sprintf("stream %q carries cuda surfaces: protocol 1.1 or later", h.Stream)
	}
	lossless := h.Flags&ipc.HelloLossless != 0
	if lossless && !s.cfg.AllowLossless {
		return nil, ipc.CodeLossless, "lossless delivery is not allowed by this producer's policy"
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
		id: s.nextID, srv: s, st: st, conn: conn, cred: cred, name: name, connected: time.Now(),
		params: fanout.Params{Name: name, UID: cred.UID, PID: cred.PID, Budget: budget, MaxHold: hold, Policy: policy,
			Lossless: lossless, ReplayFromNS: h.ReplayFromNS},
		ownReader: policy == ipc.PolicyLatest || h.ReplayFromNS > 0,
		wantRing:  h.Flags&ipc.HelloReleaseRing != 0 && policy == ipc.PolicyQueue && h.ReplayFromNS == 0,
		wbuf:      make([]byte, 0, 512),
	}
	ss.log = st.log.With("consumer", name, "session", uint64(ss.id), "pid", cred.PID)
	s.sessions[ss.id] = ss
	return ss, 0, ""
}

// endSession forgets a session that ended (or never subscribed).
func (s *Server) endSession(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss.id)
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
	slices.SortFunc(infos, func(a, b SessionInfo) int { return cmp.Compare(a.ID, b.ID) })
	return infos
}

// Stats returns the server's connection counters.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	open, pending := len(s.sessions), s.pending.total
	s.mu.Unlock()
	return ServerStats{
		Accepted: s.ctr.accepted.Load(), Rejected: s.ctr.rejected.Load(),
		ProtocolErrors: s.ctr.protocolErrors.Load(), Connections: open + pending, Handshakes: pending,
	}
}
