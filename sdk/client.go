package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/framehub/framehub/fdpass"
	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/internal/dmabuf"
	"github.com/framehub/framehub/internal/ring"
	"github.com/framehub/framehub/ipc"
)

// Options configure a subscription. Zero values take the defaults given.
type Options struct {
	// Stream is the stream to subscribe to. It defaults to "raw".
	Stream string
	// Name identifies the consumer in the producer's logs and metrics. It
	// defaults to the program's name.
	Name string
	// MaxInFlight is the budget: how many frames this consumer may hold at
	// once. 0 takes the producer's default; the producer may grant less
	// (see Client.Subscription).
	MaxInFlight int
	// MaxHold is the longest this consumer will hold one frame. Past it the
	// producer evicts the consumer. 0 takes the producer's default.
	MaxHold time.Duration
	// Policy is the delivery policy: PolicyQueue (default) or
	// PolicyLatest.
	Policy Policy
	// Lossless asks the producer not to skip frames for this consumer. The
	// producer must allow it, or Dial fails with a *RejectError.
	Lossless bool
	// NoReleaseRing keeps releases in Release messages. By default a
	// queue-policy consumer that does not replay asks the producer for a
	// release ring (docs/PROTOCOL.md §4.15) and, if granted, releases by
	// writing into memory shared with the producer: no system call per
	// release, and one wake-up per frame instead of two.
	NoReleaseRing bool
	// ReplayFrom asks for frames of the producer's replay buffer captured
	// after this CLOCK_MONOTONIC time (ns), before live frames. 0: live only.
	ReplayFrom int64
	// StartAtKeyframe, for encoded streams (caps without planes: "H264"),
	// makes Next return no frame before a keyframe: at the start (a new
	// subscription or replay begins mid-GOP) and after every
	// discontinuity (frames skipped, a reconnect, an EOS). Next releases
	// the frames it passes over at once (Stats.WaitedForKeyframe counts
	// them), asks the producer for a keyframe once per wait, and returns
	// the keyframe with Discont set when it passed over any. Without it a
	// decoder must do that itself (docs/PROTOCOL.md §7, "Encoded
	// streams").
	StartAtKeyframe bool
	// Reconnect makes Next redial, with exponential backoff between
	// ReconnectMin (default 100 ms) and ReconnectMax (default 5 s), when the
	// connection to the producer ends. Frames held from the old connection
	// become invalid; the first frame after a reconnect has Discont set.
	// When the producer closed this consumer for breaking its rules (Bye
	// rate_limit, protocol or bad_release), Next waits ReconnectMax before
	// the first attempt.
	Reconnect                  bool
	ReconnectMin, ReconnectMax time.Duration
	// Blocking receives with blocking syscalls instead of Go's netpoller.
	// It saves the runtime's park/unpark of an idle consumer (see
	// docs/SDK.md for measurements); it suits a consumer that calls Next
	// from a goroutine locked to its OS thread. With Blocking, cancelling
	// the context given to Next closes the connection.
	Blocking bool
	// Conn, when set, is an already connected socket to use instead of
	// dialling (a socketpair end handed to a plugin). The Client owns it.
	// Reconnect does not apply to it, nor ProducerUIDs: whoever made it
	// chose the peer.
	Conn *fdpass.Conn
	// ProducerUIDs are the uids the producer may run as. Before it sends
	// anything on a connection it dialled, the Client reads the peer's
	// credentials (SO_PEERCRED) and refuses any other uid with an error
	// wrapping ErrUntrustedProducer that names the uid and pid it found: a
	// socket path or abstract name can be taken by another local user. Empty
	// takes $FRAMEHUB_PRODUCER_UID (uids or user names, comma-separated),
	// else root and the consumer's own effective uid.
	ProducerUIDs []int
	// Logger receives the SDK's logs. It defaults to slog.Default().
	Logger *slog.Logger
}

// Stats are a client's counters.
type Stats struct {
	Received   uint64 `json:"received"`    // frames received
	Released   uint64 `json:"released"`    // frames released by the application
	RingWrites uint64 `json:"ring_writes"` // releases written into the release ring (the rest went in Release messages)
	Dropped    uint64 `json:"dropped"`     // frames the producer skipped for this consumer
	Reconnects uint64 `json:"reconnects"`  // connections to the producer after the first
	Evictions  uint64 `json:"evictions"`   // times the producer evicted it
	Unreleased int    `json:"unreleased"`  // frames held by the application now
	// WaitedForKeyframe are frames Next released unseen, waiting for a
	// keyframe (Options.StartAtKeyframe).
	WaitedForKeyframe uint64 `json:"waited_for_keyframe"`
}

// Client is a subscription to one stream of a producer. Next must not be
// called from more than one goroutine at a time; Release, Flush, Stats and
// Close may be called from any goroutine.
type Client struct {
	addr  string
	opts  Options
	log   *slog.Logger
	codec *ipc.Codec
	rbuf  []byte  // receive buffer, used by Next only
	key   keyWait // Options.StartAtKeyframe's state, used by Next only
	// producerUIDs is Options.ProducerUIDs, resolved once by Dial.
	producerUIDs []int

	received, released, dropped, reconnects, evictions, ringWrites atomic.Uint64
	holdOff                                                        time.Duration // under mu: wait this long before reconnecting

	mu        sync.Mutex
	cn        *conn // nil while disconnected (Reconnect)
	conns     map[*conn]struct{}
	pending   []uint64 // releases not yet sent on cn
	waiting   bool     // Next is blocked receiving: send releases at once
	closed    bool
	discont   bool // next frame follows a gap (reconnect, EOS)
	warnedOld map[*Frame]bool
	// cpu maps DMA-BUF surfaces and brackets reads of them with
	// DMA_BUF_IOCTL_SYNC (frame.go): the kernel's, unless Dial's context
	// carries a substitute (internal/dmabuf.NewContext), which only
	// framehub's own tests can put there.
	cpu dmabuf.CPU
}

// conn is one connection's state: its surfaces and frames.
type conn struct {
	fc       *fdpass.Conn
	sub      Subscription
	caps     Caps
	surfaces map[uint32]*surf
	frames   map[*Frame]struct{} // held by the application
	ring     *ring.Ring          // the release ring, once the producer sent it; nil without
	dead     bool
}

// Dial connects to the producer at addr (a socket path or "@name"),
// subscribes and returns once the producer welcomed the subscription. The
// caller must Close the client.
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	if opts.Stream == "" {
		opts.Stream = "raw"
	}
	if opts.Name == "" {
		opts.Name = filepath.Base(os.Args[0])
	}
	if opts.Policy == "" {
		opts.Policy = PolicyQueue
	}
	if opts.ReconnectMin == 0 {
		opts.ReconnectMin = 100 * time.Millisecond
	}
	if opts.ReconnectMax == 0 {
		opts.ReconnectMax = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxInFlight < 0 || opts.MaxHold < 0 {
		return nil, fmt.Errorf("sdk: dial %s: MaxInFlight %d and MaxHold %v must not be negative", addr, opts.MaxInFlight, opts.MaxHold)
	}
	if err := AddrError(addr); err != nil && opts.Conn == nil {
		return nil, fmt.Errorf("sdk: dial: %w", err)
	}
	uids, err := producerUIDs(opts.ProducerUIDs)
	if err != nil {
		return nil, err
	}
	c := &Client{
		addr: addr, opts: opts, producerUIDs: uids, codec: ipc.NewCodec(), rbuf: make([]byte, ipc.MaxMessageSize),
		log: opts.Logger.With("stream", opts.Stream), conns: make(map[*conn]struct{}), warnedOld: make(map[*Frame]bool),
		cpu: dmabuf.FromContext(ctx),
	}
	fc := opts.Conn
	c.opts.Conn = nil
	cn, err := c.connect(ctx, fc)
	if err != nil {
		return nil, err
	}
	c.cn = cn
	c.conns[cn] = struct{}{}
	return c, nil
}

// connect dials (unless fc is given) and performs the handshake.
func (c *Client) connect(ctx context.Context, fc *fdpass.Conn) (*conn, error) {
	if fc == nil {
		var err error
		if fc, err = fdpass.Dial(ctx, c.addr); err != nil {
			return nil, fmt.Errorf("sdk: dial %s: %w", c.addr, explainDial(c.addr, err))
		}
		if err := checkProducer(fc, c.addr, c.producerUIDs); err != nil {
			_ = fc.Close()
			return nil, err
		}
	}
	cn, err := c.handshake(ctx, fc)
	if err != nil {
		_ = fc.Close()
		return nil, err
	}
	if c.opts.Blocking {
		if err := fc.SetBlocking(true); err != nil {
			c.closeConn(cn)
			return nil, fmt.Errorf("sdk: %s: %w", c.addr, err)
		}
	}
	return cn, nil
}

func (c *Client) handshake(ctx context.Context, fc *fdpass.Conn) (*conn, error) {
	var flags uint32
	if c.opts.Lossless {
		flags |= ipc.HelloLossless
	}
	if !c.opts.NoReleaseRing && c.opts.Policy == PolicyQueue && c.opts.ReplayFrom == 0 {
		flags |= ipc.HelloReleaseRing
	}
	hello := &ipc.Hello{
		Major: ipc.VersionMajor, Minor: ipc.VersionMinor, Name: c.opts.Name, Stream: c.opts.Stream,
		MaxInFlight: uint32(c.opts.MaxInFlight), MaxHoldMS: uint32(c.opts.MaxHold / time.Millisecond),
		Policy: ipc.Policy(c.opts.Policy), Flags: flags, ReplayFromNS: c.opts.ReplayFrom,
	}
	b, err := c.codec.Encode(hello)
	if err != nil {
		return nil, err
	}
	// A producer that refuses the connection at once (too many consumers,
	// denied) may have sent its Reject and closed before our Hello goes out:
	// the send then fails, and the Reject waiting in the socket says why.
	sendErr := fc.Send(b, nil)
	deadline := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = fc.SetReadDeadline(deadline)
	defer func() { _ = fc.SetReadDeadline(time.Time{}) }()
	for {
		n, fds, err := fc.Recv(c.rbuf)
		if errors.Is(err, syscall.ECONNRESET) {
			n, fds, err = fc.Recv(c.rbuf) // the reset is reported once, before queued packets
		}
		if err != nil {
			if sendErr != nil {
				return nil, fmt.Errorf("sdk: %s: send hello: %w", c.addr, sendErr)
			}
			return nil, fmt.Errorf("sdk: %s: wait for welcome: %w", c.addr, err)
		}
		fdpass.CloseFDs(fds) // nothing before Welcome carries fds
		m, err := c.codec.Decode(c.rbuf[:n])
		if err != nil {
			return nil, fmt.Errorf("sdk: %s: %w", c.addr, err)
		}
		switch m := m.(type) {
		case *ipc.Welcome:
			if m.Major != ipc.VersionMajor {
				return nil, fmt.Errorf("sdk: %s: producer speaks protocol %d.%d, this SDK %d.%d", c.addr, m.Major, m.Minor, ipc.VersionMajor, ipc.VersionMinor)
			}
			c.log.Debug("subscribed", "session", m.Session, "budget", m.MaxInFlight, "max_hold_ms", m.MaxHoldMS)
			return &conn{fc: fc, sub: subscriptionOf(m), caps: capsOf(m.Caps), surfaces: make(map[uint32]*surf), frames: make(map[*Frame]struct{})}, nil
		case *ipc.Reject:
			return nil, &RejectError{Code: Code(m.Code), Reason: m.Reason}
		case *ipc.Bye:
			return nil, &ByeError{Code: Code(m.Code), Reason: m.Reason}
		case *ipc.Unknown:
		default:
			return nil, fmt.Errorf("sdk: %s: expected Welcome, got %v", c.addr, m.Type())
		}
	}
}

// Subscription returns what the producer granted on the current
// connection; the zero value while disconnected (Options.Reconnect).
func (c *Client) Subscription() Subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cn == nil {
		return Subscription{}
	}
	return c.cn.sub
}

// Caps returns the stream's current caps; the zero value while
// disconnected. The caps may change between frames (a camera's new size):
// read them for each frame, or watch for a frame with Discont set. Planes
// must not be modified.
func (c *Client) Caps() Caps {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cn == nil {
		return Caps{}
	}
	return c.cn.caps
}

// Next returns the next frame. The caller must Release it. It returns
// ErrEvicted (once) when the producer evicted this consumer, an error
// wrapping ErrDisconnected when the connection ended and Reconnect is off,
// ctx.Err() when ctx is done, and ErrClosed after Close.
func (c *Client) Next(ctx context.Context) (*Frame, error) {
	resetSeen := false
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		cn := c.cn
		if cn == nil {
			c.mu.Unlock()
			if err := c.reconnect(ctx); err != nil {
				return nil, err
			}
			continue
		}
		if err := c.flushLocked(); err != nil {
			// The producer may have closed the connection after a Bye
			// (eviction) that is still queued for us: the releases are moot
			// (closing released every lease), and the next receive tells
			// why the connection ended.
			c.log.Debug("send release failed", "err", err)
		}
		c.checkHeldLocked(cn)
		c.waiting = true
		c.mu.Unlock()

		n, fds, err := c.recv(ctx, cn)

		c.mu.Lock()
		c.waiting = false
		c.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, syscall.ECONNRESET) && !resetSeen {
				// The producer closed while our releases were unread: the
				// kernel reports the reset once, before the packets still
				// queued for us (a Bye saying why). Read them.
				resetSeen = true
				continue
			}
			if lerr := c.lost(cn, err); lerr != nil {
				return nil, lerr
			}
			continue
		}
		f, err := c.handle(cn, c.rbuf[:n], fds)
		if err != nil {
			if lerr := c.lost(cn, err); lerr != nil {
				return nil, lerr
			}
			continue
		}
		if f != nil && c.atKeyframe(f) {
			return f, nil
		}
	}
}

// recv receives one packet, aborting when ctx is done.
func (c *Client) recv(ctx context.Context, cn *conn) (int, []int, error) {
	if ctx.Done() != nil {
		done := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(done)
			if c.opts.Blocking {
				_ = cn.fc.CloseWrite()
				_ = cn.fc.Close()
				return
			}
			_ = cn.fc.SetReadDeadline(time.Unix(1, 0))
		})
		defer func() {
			if !stop() {
				// The callback ran or is running: wait for it, or it could
				// set the past deadline after we cleared it.
				<-done
				if !c.opts.Blocking {
					_ = cn.fc.SetReadDeadline(time.Time{})
				}
			}
		}()
	}
	return cn.fc.Recv(c.rbuf)
}

// Frames delivers frames on a channel until ctx is done or the client
// fails; the error, if any, is then sent on errc (buffered, at most one).
// The caller must Release every frame it receives.
func (c *Client) Frames(ctx context.Context) (frames <-chan *Frame, errc <-chan error) {
	fc := make(chan *Frame)
	ec := make(chan error, 1)
	go func() {
		defer close(fc)
		for {
			f, err := c.Next(ctx)
			if err != nil {
				ec <- err
				return
			}
			select {
			case fc <- f:
			case <-ctx.Done():
				f.Release()
				ec <- ctx.Err()
				return
			}
		}
	}()
	return fc, ec
}

// handle processes one message; it returns a Frame when the message was one.
func (c *Client) handle(cn *conn, p []byte, fds []int) (*Frame, error) {
	m, err := c.codec.Decode(p)
	if err != nil {
		fdpass.CloseFDs(fds)
		return nil, err
	}
	switch m := m.(type) {
	case *ipc.Announce:
		return nil, c.announce(cn, m, fds)
	case *ipc.Ring:
		return nil, c.mapRing(cn, m, fds)
	}
	if len(fds) > 0 {
		fdpass.CloseFDs(fds)
		return nil, fmt.Errorf("sdk: %v message carried %d fds", m.Type(), len(fds))
	}
	switch m := m.(type) {
	case *ipc.Frame:
		return c.frame(cn, m)
	case *ipc.Forget:
		c.mu.Lock()
		for _, id := range m.IDs {
			if s := cn.surfaces[id]; s != nil {
				delete(cn.surfaces, id)
				s.retire()
			}
		}
		c.mu.Unlock()
	case *ipc.Caps:
		c.mu.Lock()
		cn.caps = capsOf(*m)
		c.discont = true
		c.mu.Unlock()
	case *ipc.EOS:
		c.log.Info("producer reports end of stream", "reason", m.Reason)
		c.mu.Lock()
		c.discont = true
		c.mu.Unlock()
	case *ipc.Ping:
		if b, err := c.codec.Encode(&ipc.Pong{Token: m.Token, MonoNS: m.MonoNS}); err == nil {
			_ = cn.fc.Send(b, nil)
		}
	case *ipc.Bye:
		return nil, &ByeError{Code: Code(m.Code), Reason: m.Reason}
	case *ipc.Pong, *ipc.Unknown:
	default:
		return nil, fmt.Errorf("sdk: unexpected %v message from the producer", m.Type())
	}
	return nil, nil
}

// mapRing maps the release ring the producer sent (PROTOCOL.md §4.15).
func (c *Client) mapRing(cn *conn, m *ipc.Ring, fds []int) error {
	defer fdpass.CloseFDs(fds) // the mapping does not need the fd
	if len(fds) != 1 {
		return fmt.Errorf("sdk: Ring message carried %d fds, want 1", len(fds))
	}
	if !cn.sub.ReleaseRing {
		return errors.New("sdk: the producer sent a release ring it had not granted")
	}
	r, err := ring.Map(fds[0], m.Size)
	if err != nil {
		return fmt.Errorf("sdk: release ring: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cn.ring != nil || cn.dead {
		r.Close()
		if cn.dead {
			return nil
		}
		return errors.New("sdk: the producer sent a second release ring")
	}
	cn.ring = r
	return nil
}

func (c *Client) announce(cn *conn, a *ipc.Announce, fds []int) error {
	if len(fds) != a.NFDs() {
		fdpass.CloseFDs(fds)
		return fmt.Errorf("sdk: announce lists %d fds but carried %d", a.NFDs(), len(fds))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range a.Surfaces {
		n := int(d.NFDs)
		s := &surf{id: d.ID, gen: d.Gen, kind: Kind(d.Kind), size: int(d.Size), info: surfaceOf(&d), fds: fds[:n:n], mem: make([][]byte, n)}
		fds = fds[n:]
		if old := cn.surfaces[d.ID]; old != nil {
			old.retire()
		}
		cn.surfaces[d.ID] = s
	}
	return nil
}

func (c *Client) frame(cn *conn, m *ipc.Frame) (*Frame, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := cn.surfaces[m.Surface]
	if s == nil || s.gen != m.Gen {
		return nil, fmt.Errorf("sdk: frame %d names surface %d gen %d that was not announced", m.Seq, m.Surface, m.Gen)
	}
	f := &Frame{c: c, cn: cn, s: s, msg: *m, planes: cn.caps.Planes, received: clock.Mono()}
	if len(m.Planes) > 0 { // this frame's layout differs from the stream's (an adopted buffer)
		f.planes = planesOf(m.Planes)
	}
	if c.discont {
		f.msg.Flags |= ipc.FlagDiscont
		c.discont = false
	}
	s.refs++
	cn.frames[f] = struct{}{}
	c.received.Add(1)
	c.dropped.Add(uint64(m.Dropped))
	return f, nil
}

// release is Frame.Release's work, under c.mu.
func (c *Client) releaseLocked(f *Frame) {
	cn := f.cn
	delete(cn.frames, f)
	delete(c.warnedOld, f)
	c.released.Add(1)
	f.s.unref()
	if cn.dead {
		return
	}
	if cn.ring != nil && cn.ring.Push(f.msg.Lease) {
		c.ringWrites.Add(1)
		return
	}
	c.pending = append(c.pending, f.msg.Lease)
	if c.waiting || len(c.pending) >= 64 {
		if err := c.flushLocked(); err != nil {
			c.log.Warn("send release failed", "err", err)
		}
	}
}

// Flush sends the releases not yet sent. Releases are sent at the latest
// when Next is called again, at once when Next is blocked in another
// goroutine, and whenever 64 have accumulated.
func (c *Client) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *Client) flushLocked() error {
	if len(c.pending) == 0 || c.cn == nil {
		c.pending = c.pending[:0]
		return nil
	}
	b, err := c.codec.Encode(&ipc.Release{Leases: c.pending})
	c.pending = c.pending[:0]
	if err != nil {
		return err
	}
	if err := c.cn.fc.Send(b, nil); err != nil {
		return fmt.Errorf("sdk: send release: %w", err)
	}
	return nil
}

// checkHeldLocked warns once per frame held for more than 3/4 of MaxHold.
func (c *Client) checkHeldLocked(cn *conn) {
	hold := cn.sub.MaxHold
	if hold == 0 || len(cn.frames) == 0 {
		return
	}
	now := clock.Mono()
	for f := range cn.frames {
		if held := time.Duration(now - f.received); held > hold*3/4 && !c.warnedOld[f] {
			c.warnedOld[f] = true
			c.log.Warn("frame held close to max_hold: release it or the producer evicts this consumer",
				"seq", f.msg.Seq, "held", held, "max_hold", hold)
		}
	}
}

// lost handles the end of connection cn. It returns the error Next reports,
// or nil when Next should go on (reconnect).
func (c *Client) lost(cn *conn, cause error) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.cn == cn {
		c.cn = nil
		c.pending = c.pending[:0]
		c.discont = true
	}
	c.mu.Unlock()
	c.closeConn(cn)
	evicted := errors.Is(cause, ErrEvicted)
	var bye *ByeError
	if errors.As(cause, &bye) && (bye.Code == CodeRateLimit || bye.Code == CodeProtocol || bye.Code == CodeBadRelease) {
		// This consumer broke the rules: coming straight back would only
		// repeat it, at the producer's cost.
		c.mu.Lock()
		c.holdOff = c.opts.ReconnectMax
		c.mu.Unlock()
	}
	if evicted {
		c.evictions.Add(1)
		c.log.Warn("evicted by the producer", "err", cause)
	} else {
		c.log.Warn("connection to the producer lost", "err", cause)
	}
	switch {
	case evicted:
		return cause
	case c.opts.Reconnect:
		return nil
	case errors.Is(cause, io.EOF), errors.Is(cause, net.ErrClosed):
		return fmt.Errorf("%w: %w", ErrDisconnected, cause)
	case errors.Is(cause, ErrDisconnected):
		return cause
	default:
		return fmt.Errorf("%w: %w", ErrDisconnected, cause)
	}
}

// closeConn closes a connection; its surfaces are unmapped once the
// application released their frames.
func (c *Client) closeConn(cn *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cn.dead {
		return
	}
	cn.dead = true
	_ = cn.fc.Close()
	if cn.ring != nil {
		cn.ring.Close()
		cn.ring = nil
	}
	for id, s := range cn.surfaces {
		delete(cn.surfaces, id)
		s.retire()
	}
	if len(cn.frames) == 0 {
		delete(c.conns, cn)
	}
}

func (c *Client) reconnect(ctx context.Context) error {
	if !c.opts.Reconnect {
		return fmt.Errorf("%w: reconnect is off", ErrDisconnected)
	}
	c.mu.Lock()
	holdOff := c.holdOff
	c.holdOff = 0
	c.mu.Unlock()
	if holdOff > 0 {
		c.log.Info("reconnecting after a pause: the producer closed this consumer for breaking its rules", "pause", holdOff)
		t := time.NewTimer(holdOff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	wait := c.opts.ReconnectMin
	for attempt := 1; ; attempt++ {
		cn, err := c.connect(ctx, nil)
		if err == nil {
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				c.closeConn(cn)
				return ErrClosed
			}
			c.cn = cn
			c.conns[cn] = struct{}{}
			c.discont = true
			c.mu.Unlock()
			c.reconnects.Add(1)
			c.log.Info("reconnected to the producer", "attempt", attempt)
			return nil
		}
		var rej *RejectError
		if errors.As(err, &rej) && rej.Code != CodeTooMany && rej.Code != CodeShutdown && rej.Code != CodeNoCapacity {
			return err
		}
		if errors.Is(err, ErrUntrustedProducer) {
			c.log.Warn("reconnect refused", "attempt", attempt, "retry_in", wait, "err", err)
		} else {
			c.log.Debug("reconnect failed", "attempt", attempt, "retry_in", wait, "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, c.opts.ReconnectMax)
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return ErrClosed
		}
	}
}

// RequestKeyframe asks the producer for a keyframe soon (encoded streams).
func (c *Client) RequestKeyframe() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cn == nil {
		return ErrDisconnected
	}
	b, err := c.codec.Encode(&ipc.RequestKeyframe{})
	if err != nil {
		return err
	}
	return c.cn.fc.Send(b, nil)
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	unreleased := 0
	for cn := range c.conns {
		unreleased += len(cn.frames)
	}
	c.mu.Unlock()
	return Stats{
		Received: c.received.Load(), Released: c.released.Load(), RingWrites: c.ringWrites.Load(), Dropped: c.dropped.Load(),
		Reconnects: c.reconnects.Load(), Evictions: c.evictions.Load(), Unreleased: unreleased,
		WaitedForKeyframe: c.key.skipped.Load(),
	}
}

// Close ends the subscription: it tells the producer (which releases every
// lease of this consumer), closes every fd and unmaps every surface. Frames
// and slices obtained from them must not be used afterwards. Close reports
// frames the application never released. It is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	unreleased := 0
	for cn := range c.conns {
		unreleased += len(cn.frames)
	}
	if c.cn != nil {
		if b, err := c.codec.Encode(&ipc.Bye{Code: ipc.CodeOK, Reason: "consumer closing"}); err == nil {
			_ = c.cn.fc.TrySend(b, nil)
		}
	}
	conns := make([]*conn, 0, len(c.conns))
	for cn := range c.conns {
		conns = append(conns, cn)
	}
	c.mu.Unlock()
	if unreleased > 0 {
		c.log.Warn("closing with frames never released", "unreleased", unreleased)
	}
	for _, cn := range conns {
		c.closeConn(cn)
		c.mu.Lock()
		for f := range cn.frames {
			delete(cn.frames, f)
			f.s.unref()
		}
		delete(c.conns, cn)
		c.mu.Unlock()
	}
	return nil
}
