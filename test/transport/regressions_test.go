package transport_test

// Regression tests for bugs in non-test code found while writing this
// package. Each failed on the code of the time; its comment says what the
// bug was and what fixes it.

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/sdk"
)

// TestEvictedConsumerThatReleasedSeesErrEvicted: a consumer that held a frame
// past max_hold, then released it and called Next (the ordinary consumer
// loop) must get sdk.ErrEvicted, as the Next documentation promises.
//
// Bug (sdk/client.go, Client.Next): Next first flushed the pending releases;
// the producer had closed the connection after its Bye(max_hold), so the
// send failed with EPIPE and Next reported that as the end of the connection
// (ErrDisconnected: "send release: broken pipe") without reading the Bye
// waiting in the socket. Releasing the frames queued behind the eviction did
// the same. Fix: a failed flush does not end the connection; the next
// receive (the queued Bye, or EOF) decides the error, and a recv that fails
// with ECONNRESET (reported once, before the queued packets) is retried.
func TestEvictedConsumerThatReleasedSeesErrEvicted(t *testing.T) {
	p := startProducer(t, producerOpts{FPS: 30, PoolMin: 4, PoolMax: 4,
		Config: producer.Config{EvictInterval: 10 * time.Millisecond}})
	c := dial(t, p, sdk.Options{Name: "slow", MaxInFlight: 1, MaxHold: 200 * time.Millisecond})
	id := c.Subscription().Session
	f := next(t, c)
	// The application works on f for longer than max_hold, and the producer
	// evicts it: Bye(max_hold), close, session gone...
	require.Eventually(t, func() bool {
		_, ok := p.session(id)
		st := p.Stream.Stats()
		return !ok && st.Evictions == 1 && st.Consumers == 0 && st.Leases == 0
	}, waitTimeout, time.Millisecond)
	// ...then releases it and asks for the next frame.
	f.Release()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := c.Next(ctx)
	require.ErrorIs(t, err, sdk.ErrEvicted, "the producer said Bye(max_hold); Next must report the eviction")
	require.Equal(t, uint64(1), c.Stats().Evictions)
}

// TestNextWithShortDeadlinesKeepsConnection: a consumer that polls with
// short per-call deadlines (ctx with timeout) must only ever get
// context.DeadlineExceeded from Next, never lose its connection.
//
// Bug (sdk/client.go, Client.recv): the ctx watcher is a context.AfterFunc
// that sets the socket's read deadline to the past. When the ctx expired just
// as a packet arrived, Recv succeeded, stop() returned false (the callback
// had started) and recv cleared the deadline, possibly before the callback,
// still running in its own goroutine, set it to the past. The next Next,
// with a live ctx, then failed at once with "i/o timeout", and Next took it
// for a lost connection (ErrDisconnected; with Reconnect, a needless
// reconnect invalidating every held frame). It reproduced within a few
// hundred calls. Fix: when stop() returns false, wait for the callback to
// finish before clearing the deadline.
func TestNextWithShortDeadlinesKeepsConnection(t *testing.T) {
	p := startProducer(t, producerOpts{FPS: 1000, PoolMin: 8, PoolMax: 8})
	c := dial(t, p, sdk.Options{Name: "poller", MaxInFlight: 4})
	rng := rand.New(rand.NewPCG(7, 7))
	start := time.Now()
	frames, timeouts := 0, 0
	for time.Since(start) < 3*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.Int64N(int64(1500*time.Microsecond))))
		f, err := c.Next(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			timeouts++
			continue
		}
		require.NoError(t, err, "Next failed after %d frames and %d timeouts", frames, timeouts)
		frames++
		f.Release()
	}
	t.Logf("%d frames, %d timeouts in %v", frames, timeouts, time.Since(start).Round(time.Millisecond))
	require.Positive(t, frames)
	require.Positive(t, timeouts)
}

// TestConsumerCloseWithQueuedFramesIsClean: a consumer that closes normally
// (sdk Close sends Bye) while frames are still queued in its socket must be
// logged by the producer as a normal disconnect, not as a protocol failure.
//
// Bug (producer/session.go, the session's receive path): when a peer closes
// a SOCK_SEQPACKET socket with unread packets in its receive queue, the
// kernel marks the other end with ECONNRESET, and the next recvmsg reports
// the reset before the packets queued there (the consumer's Bye). The
// producer only took io.EOF and net.ErrClosed for a normal end, so this fell
// into closeWith(CodeProtocol, "receive failed"), logged at WARN: every
// consumer that exits, crashes or is killed with frames in flight to it
// showed up as a protocol failure. Fix: after ECONNRESET read on (the queued
// packets, then EOF), and treat the reset as the peer going away.
func TestConsumerCloseWithQueuedFramesIsClean(t *testing.T) {
	rec := &recordingHandler{}
	p := startProducer(t, producerOpts{FPS: 60, PoolMin: 4, PoolMax: 8, Config: producer.Config{Logger: slog.New(rec)}})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := sdk.Dial(ctx, p.Addr, sdk.Options{Name: "leaver", MaxInFlight: 4, Logger: testutil.Logger(t, slog.LevelError)})
	require.NoError(t, err)
	id, budget := c.Subscription().Session, c.Subscription().MaxInFlight
	// Never calling Next: the Announce and the budget's Frames stay queued
	// in the socket.
	require.Eventually(t, func() bool {
		s, ok := p.session(id)
		return ok && s.InFlight == budget
	}, waitTimeout, time.Millisecond)
	require.NoError(t, c.Close())
	require.Eventually(t, func() bool { _, ok := p.session(id); return !ok }, waitTimeout, time.Millisecond)
	require.Zero(t, p.Srv.Stats().ProtocolErrors)

	var found bool
	for _, r := range rec.records() {
		if r.msg != "consumer disconnected" || r.attrs["consumer"] != "leaver" {
			continue
		}
		found = true
		t.Logf("producer logged: level=%v %v", r.level, r.attrs)
		require.Equal(t, "ok", r.attrs["code"], "a consumer that said Bye and closed is a normal disconnect (err %s)", r.attrs["err"])
		require.Equal(t, slog.LevelInfo, r.level)
	}
	require.True(t, found, "no disconnect logged for the consumer")
}

// recordingHandler is a slog.Handler keeping every record (all levels).
type recordingHandler struct {
	mu    sync.Mutex
	recs  []logRecord
	attrs []slog.Attr
}

type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	lr := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		lr.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		lr.attrs[a.Key] = a.Value.String()
		return true
	})
	root := h.root()
	root.mu.Lock()
	root.recs = append(root.recs, lr)
	root.mu.Unlock()
	return nil
}

func (h *recordingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &derivedHandler{parent: h.root(), attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *recordingHandler) WithGroup(string) slog.Handler { return h }

func (h *recordingHandler) root() *recordingHandler { return h }

func (h *recordingHandler) records() []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]logRecord(nil), h.recs...)
}

// derivedHandler is a recordingHandler with attributes (Logger.With).
type derivedHandler struct {
	parent *recordingHandler
	attrs  []slog.Attr
}

func (d *derivedHandler) Enabled(context.Context, slog.Level) bool { return true }

func (d *derivedHandler) Handle(ctx context.Context, r slog.Record) error {
	r2 := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r2.AddAttrs(d.attrs...)
	r.Attrs(func(a slog.Attr) bool { r2.AddAttrs(a); return true })
	return d.parent.Handle(ctx, r2)
}

func (d *derivedHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &derivedHandler{parent: d.parent, attrs: append(append([]slog.Attr(nil), d.attrs...), as...)}
}

func (d *derivedHandler) WithGroup(string) slog.Handler { return d }

// TestConnectionLimitCountsSubscribedConsumers: Server.Stats().Connections
// counts every open connection, "handshaking or subscribed", and
// MaxConnections caps them: one more is refused with Reject(too_many).
//
// Bug (producer/server.go, since sessions were serviced on the stream's
// frame clock): serveConn returned as soon as the consumer was subscribed,
// and acceptLoop's deferred conns.Add(-1) ran then, so Connections only
// counted connections still in their handshake (0 with consumers
// subscribed) and MaxConnections no longer limited subscribed consumers.
// Fix: a connection that became a session gives its slot back when the
// session closes (closeWith), the others when serveConn returns.
func TestConnectionLimitCountsSubscribedConsumers(t *testing.T) {
	p := startProducer(t, producerOpts{FPS: 30, Config: producer.Config{MaxConnections: 2}})
	a := dial(t, p, sdk.Options{Name: "a"})
	dial(t, p, sdk.Options{Name: "b"})
	require.Len(t, p.Srv.Sessions(), 2)
	require.Equal(t, 2, p.Srv.Stats().Connections, "two consumers are connected")

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := sdk.Dial(ctx, p.Addr, sdk.Options{Name: "c", Logger: testutil.Logger(t, slog.LevelError)})
	if err == nil {
		_ = c.Close()
	}
	var rej *sdk.RejectError
	require.ErrorAs(t, err, &rej, "a third consumer exceeds MaxConnections 2")
	require.Equal(t, sdk.CodeTooMany, rej.Code)

	// Closing one frees its slot.
	require.NoError(t, a.Close())
	require.Eventually(t, func() bool { return p.Srv.Stats().Connections == 1 }, waitTimeout, time.Millisecond)
	dial(t, p, sdk.Options{Name: "d"})
	require.Equal(t, 2, p.Srv.Stats().Connections)
}

// TestHelloThatDoesNotDecodeIsProtocolError: a first packet tagged Hello
// whose body is not a msgpack map (only the tag byte, an array) does not
// decode: PROTOCOL.md §3 and §10 answer Reject 5 (protocol); Reject 9
// (invalid_argument) is for "the Hello decodes but a field has an invalid
// value".
//
// Bug (producer/server.go, serveConn): once ipc.Codec.Decode reported a
// non-map body as ErrInvalid ("body is not a msgpack map"), serveConn's
// errors.Is(err, ipc.ErrInvalid) turned these undecodable packets into
// CodeInvalidArgument (the same condition tested len(buf) > 0, always true
// for the 64 KiB buffer, where n was meant). Fix: answer invalid_argument
// only for field validation failures, not for structural decode errors.
func TestHelloThatDoesNotDecodeIsProtocolError(t *testing.T) {
	p := startProducer(t, producerOpts{FPS: 30})
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		{"tag only", []byte{byte(ipc.TypeHello)}},
		{"array body", append([]byte{byte(ipc.TypeHello)}, 0x92, 0x01, 0x00)},
		{"string body", append([]byte{byte(ipc.TypeHello)}, 0xa3, 'r', 'a', 'w')},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRogue(t, p.Addr)
			r.send(tc.pkt, nil)
			reason := r.expectEnd(ipc.TypeReject, ipc.CodeProtocol)
			t.Logf("reason: %s", reason)
		})
	}
}

// TestFloodingConsumerCostsOnlyItself: a consumer that sends valid messages
// the producer must parse and ignore (Pongs padded with thousands of unknown
// keys, which PROTOCOL.md §3 says receivers skip), as fast as its socket
// takes them, costs only itself: the two other consumers keep the full rate.
//
// Bug (producer/stream.go and session.go, since consumer sockets were read
// on the frame clock): Stream.service runs inside Publish on the source's
// goroutine and drained every session until its socket was empty, with no
// bound. A consumer refilling its socket faster than the producer parses
// (here ~45 KiB packets: microseconds to send, much longer to parse) kept
// the drain looping and froze Publish for every consumer: 0-6 fps instead of
// 30 (with per-session read goroutines, 30). Even 1-byte packets of an
// unknown type cost the others ~5 fps under -race. Fix: bound the packets
// and bytes read per session per service call and leave the rest queued, so
// that the kernel throttles the flooder, and only the flooder.
func TestFloodingConsumerCostsOnlyItself(t *testing.T) {
	p := startProducer(t, producerOpts{FPS: 30})
	healthy := []*consumerProc{
		startConsumer(t, p, consumerCfg{Name: "healthyA", MaxInFlight: 4, HoldMax: 5 * time.Millisecond, Seed: 1}),
		startConsumer(t, p, consumerCfg{Name: "healthyB", MaxInFlight: 4, HoldMax: 5 * time.Millisecond, Seed: 2}),
	}
	flood := startConsumer(t, p, consumerCfg{Name: "flood", Mode: "flood", Flood: "fat"})
	require.Eventually(t, func() bool { return flood.Progress().Frames > 10 }, waitTimeout, time.Millisecond,
		"the flooder is not sending")
	f0 := flood.Progress()
	unjudged := measureHealthy(t, p, healthy, 2*time.Second, 28)
	f1 := flood.Progress()
	t.Logf("flooder: %.0f packets/s", rate(f0.Frames, f1.Frames, time.Duration(f1.MonoNS-f0.MonoNS)))
	_, ok := p.session(flood.Session())
	require.True(t, ok, "the flooder sends valid messages: it stays connected")
	d := flood.Stop()
	t.Logf("flooder sent %d packets (%s)", d.Frames, d.Err)
	for _, cp := range healthy {
		d := cp.Stop()
		require.Empty(t, d.Err)
		require.Zero(t, d.Mismatches)
	}
	testutil.SkipUnjudged(t, unjudged, "the source's rate")
}
