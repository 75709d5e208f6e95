package transport_test

import (
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
)

// TestBadInputFromPeer feeds malformed and hostile input to the producer,
// each case on a fresh raw connection, while a well-behaved consumer keeps
// receiving. Every bad peer gets an explanation (Reject before the
// handshake, Bye after it) with the right code and a reason, and is then
// disconnected; nothing leaks.
func TestBadInputFromPeer(t *testing.T) {
	const helloTimeout = 300 * time.Millisecond
	p := startProducer(t, producerOpts{FPS: 60, PoolMin: 4, PoolMax: 4, Config: producer.Config{HelloTimeout: helloTimeout}})
	good := startGoodConsumer(t, p)
	good.requireReceiving(t)
	base := testutil.CountOwnFDs(t)

	codec := ipc.NewCodec()
	enc := func(m ipc.Message) []byte {
		b, err := codec.Encode(m)
		require.NoError(t, err)
		return b
	}
	hello := func(mod func(h *ipc.Hello)) []byte {
		h := &ipc.Hello{Major: ipc.VersionMajor, Minor: ipc.VersionMinor, Name: "rogue", Stream: "raw", MaxInFlight: 1}
		if mod != nil {
			mod(h)
		}
		return enc(h)
	}
	// raw encodes v with msgpack behind tag, bypassing the codec's types.
	raw := func(tag ipc.Type, v any) []byte {
		b, err := msgpack.Marshal(v)
		require.NoError(t, err)
		return append([]byte{byte(tag)}, b...)
	}
	// cat concatenates byte strings.
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	oversized := func(tag ipc.Type) []byte {
		b := make([]byte, ipc.MaxMessageSize+1)
		b[0] = byte(tag)
		return b
	}
	randomBytes := func(seed uint64, n int) []byte {
		r := rand.New(rand.NewPCG(seed, 1))
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	// rogueMemfd returns a memfd that only the test and, if it leaks, the
	// producer would hold.
	rogueMemfd := func(t *testing.T) int {
		fd, err := unix.MemfdCreate("framehub-rogue", unix.MFD_CLOEXEC)
		require.NoError(t, err)
		require.NoError(t, unix.Ftruncate(fd, 4096))
		return fd
	}

	type counter int
	const (
		countRejected counter = iota + 1
		countProtocol
		countNothing
	)
	cases := []struct {
		name      string
		handshake bool // a valid Hello (budget 1) first
		run       func(t *testing.T, r *rogue)
		typ       ipc.Type // expected answer; 0: the connection stays up
		code      ipc.Code
		reason    string // substring of the reason, if set
		counts    counter
	}{
		{name: "random bytes 1", run: func(t *testing.T, r *rogue) { r.send(randomBytes(1, 37), nil) },
			typ: ipc.TypeReject, code: ipc.CodeProtocol, counts: countRejected},
		{name: "random bytes 2", run: func(t *testing.T, r *rogue) { r.send(randomBytes(2, 1), nil) },
			typ: ipc.TypeReject, code: ipc.CodeProtocol, counts: countRejected},
		{name: "random bytes 3", run: func(t *testing.T, r *rogue) { r.send(randomBytes(3, 4096), nil) },
			typ: ipc.TypeReject, code: ipc.CodeProtocol, counts: countRejected},
		{name: "random bytes with Hello tag", run: func(t *testing.T, r *rogue) {
			b := randomBytes(4, 200)
			b[0] = byte(ipc.TypeHello)
			b[1] = 0x8f // a map of 15 entries, of random content
			r.send(b, nil)
		}, typ: ipc.TypeReject, code: ipc.CodeProtocol, reason: "malformed Hello", counts: countRejected},
		{name: "truncated Hello", run: func(t *testing.T, r *rogue) {
			b := hello(nil)
			r.send(b[:len(b)/2], nil)
		}, typ: ipc.TypeReject, code: ipc.CodeProtocol, reason: "malformed Hello", counts: countRejected},
		{name: "Hello with wrong field types", run: func(t *testing.T, r *rogue) {
			r.send(raw(ipc.TypeHello, map[string]any{"major": "one", "minor": []int{1}, "stream": 42, "max_in_flight": -3.5}), nil)
		}, typ: ipc.TypeReject, code: ipc.CodeProtocol, reason: "malformed Hello", counts: countRejected},
		{name: "Hello with huge map header", run: func(t *testing.T, r *rogue) {
			r.send([]byte{byte(ipc.TypeHello), 0xdf, 0xff, 0xff, 0xff, 0xff}, nil)
		}, typ: ipc.TypeReject, code: ipc.CodeProtocol, reason: "malformed Hello", counts: countRejected},
		{name: "Hello with huge string length", run: func(t *testing.T, r *rogue) {
			r.send(cat([]byte{byte(ipc.TypeHello), 0x81, 0xa6}, []byte("stream"), []byte{0xdb, 0xff, 0xff, 0xff, 0xf0}, []byte("raw")), nil)
		}, typ: ipc.TypeReject, code: ipc.CodeProtocol, reason: "malformed Hello", counts: countRejected},
		{name: "Hello with trailing bytes", run: func(t *testing.T, r *rogue) { r.send(cat(hello(nil), []byte{0xc0}), nil) },
			typ: ipc.TypeReject, code: ipc.CodeProtocol, reason: "malformed Hello", counts: countRejected},
		{name: "Hello with unknown policy", run: func(t *testing.T, r *rogue) {
			r.send(hello(func(h *ipc.Hello) { h.Policy = "fastest" }), nil)
		}, typ: ipc.TypeReject, code: ipc.CodeInvalidArgument, reason: "policy", counts: countRejected},
		{name: "name too long", run: func(t *testing.T, r *rogue) {
			r.send(hello(func(h *ipc.Hello) { h.Name = strings.Repeat("n", 65) }), nil)
		}, typ: ipc.TypeReject, code: ipc.CodeInvalidArgument, reason: "consumer name of 65 bytes: at most 64", counts: countRejected},
		{name: "name not UTF-8", run: func(t *testing.T, r *rogue) {
			r.send(hello(func(h *ipc.Hello) { h.Name = "cam\xff" }), nil)
		}, typ: ipc.TypeReject, code: ipc.CodeInvalidArgument, reason: "is not valid UTF-8", counts: countRejected},
		{name: "name with a control character", run: func(t *testing.T, r *rogue) {
			r.send(hello(func(h *ipc.Hello) { h.Name = "a\nb" }), nil)
		}, typ: ipc.TypeReject, code: ipc.CodeInvalidArgument, reason: "unprintable character U+000A", counts: countRejected},
		{name: "unknown type before Hello", run: func(t *testing.T, r *rogue) { r.send([]byte{200, 0x80}, nil) },
			typ: ipc.TypeReject, code: ipc.CodeProtocol, reason: "first message must be Hello", counts: countRejected},
		{name: "Release before Hello", run: func(t *testing.T, r *rogue) { r.sendMsg(&ipc.Release{Leases: []uint64{1}}) },
			typ: ipc.TypeReject, code: ipc.CodeProtocol, reason: "first message must be Hello", counts: countRejected},
		{name: "wrong major version", run: func(t *testing.T, r *rogue) {
			r.send(hello(func(h *ipc.Hello) { h.Major = ipc.VersionMajor + 1 }), nil)
		}, typ: ipc.TypeReject, code: ipc.CodeVersion, reason: "version", counts: countRejected},
		{name: "unknown stream", run: func(t *testing.T, r *rogue) {
			r.send(hello(func(h *ipc.Hello) { h.Stream = "no-such-stream" }), nil)
		}, typ: ipc.TypeReject, code: ipc.CodeUnknownStream, reason: "no-such-stream", counts: countRejected},
		{name: "Hello carrying an fd", run: func(t *testing.T, r *rogue) {
			fd := rogueMemfd(t)
			r.send(hello(nil), []int{fd})
			require.NoError(t, unix.Close(fd))
		}, typ: ipc.TypeReject, code: ipc.CodeProtocol, reason: "file descriptors", counts: countRejected},
		{name: "silent peer", run: func(t *testing.T, r *rogue) {},
			typ: ipc.TypeReject, code: ipc.CodeProtocol, reason: "no Hello within", counts: countRejected},
		{name: "packet over 64 KiB before Hello", run: func(t *testing.T, r *rogue) { r.send(oversized(ipc.TypeHello), nil) },
			typ: ipc.TypeReject, code: ipc.CodeProtocol, reason: "larger than", counts: countRejected},

		{name: "unknown type after handshake is ignored", handshake: true, run: func(t *testing.T, r *rogue) {
			f := r.nextFrame()
			r.send([]byte{200, 0x93, 1, 2, 3}, nil)
			r.send([]byte{255}, nil)
			// Budget 1: the next frame can only come once the producer
			// read past the unknown messages and processed this release.
			r.sendMsg(&ipc.Release{Leases: []uint64{f.Lease}})
			g := r.nextFrame()
			require.Greater(t, g.Seq, f.Seq)
			r.sendMsg(&ipc.Release{Leases: []uint64{g.Lease}})
			h := r.nextFrame()
			require.Greater(t, h.Seq, g.Seq)
			r.sendMsg(&ipc.Release{Leases: []uint64{h.Lease}})
			r.sendMsg(&ipc.Bye{Code: ipc.CodeOK, Reason: "done"})
		}, counts: countNothing},
		{name: "release of an unknown lease", handshake: true, run: func(t *testing.T, r *rogue) {
			r.sendMsg(&ipc.Release{Leases: []uint64{987654321}})
		}, typ: ipc.TypeBye, code: ipc.CodeBadRelease, reason: "unknown lease", counts: countProtocol},
		{name: "double release", handshake: true, run: func(t *testing.T, r *rogue) {
			f := r.nextFrame()
			r.sendMsg(&ipc.Release{Leases: []uint64{f.Lease}})
			r.sendMsg(&ipc.Release{Leases: []uint64{f.Lease}})
		}, typ: ipc.TypeBye, code: ipc.CodeBadRelease, reason: "unknown lease", counts: countProtocol},
		{name: "release carrying an fd", handshake: true, run: func(t *testing.T, r *rogue) {
			f := r.nextFrame()
			fd := rogueMemfd(t)
			r.send(enc(&ipc.Release{Leases: []uint64{f.Lease}}), []int{fd})
			require.NoError(t, unix.Close(fd))
		}, typ: ipc.TypeBye, code: ipc.CodeProtocol, reason: "file descriptors", counts: countProtocol},
		{name: "malformed Release", handshake: true, run: func(t *testing.T, r *rogue) {
			r.send(raw(ipc.TypeRelease, map[string]any{"leases": "all of them"}), nil)
		}, typ: ipc.TypeBye, code: ipc.CodeProtocol, reason: "malformed", counts: countProtocol},
		{name: "Release with huge array header", handshake: true, run: func(t *testing.T, r *rogue) {
			r.send(cat([]byte{byte(ipc.TypeRelease), 0x81, 0xa6}, []byte("leases"), []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 1}), nil)
		}, typ: ipc.TypeBye, code: ipc.CodeProtocol, reason: "malformed", counts: countProtocol},
		{name: "producer message from a consumer", handshake: true, run: func(t *testing.T, r *rogue) {
			r.sendMsg(&ipc.Forget{IDs: []uint32{1}})
		}, typ: ipc.TypeBye, code: ipc.CodeProtocol, reason: "unexpected", counts: countProtocol},
		{name: "second Hello", handshake: true, run: func(t *testing.T, r *rogue) { r.send(hello(nil), nil) },
			typ: ipc.TypeBye, code: ipc.CodeProtocol, reason: "unexpected", counts: countProtocol},
		{name: "packet over 64 KiB after handshake", handshake: true, run: func(t *testing.T, r *rogue) {
			r.send(oversized(ipc.TypeRelease), nil)
		}, typ: ipc.TypeBye, code: ipc.CodeProtocol, reason: "larger than", counts: countProtocol},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st0 := p.Srv.Stats()
			r := dialRogue(t, p.Addr)
			if tc.handshake {
				w := r.hello(1)
				require.EqualValues(t, 1, w.MaxInFlight)
			}
			tc.run(t, r)
			if tc.typ != 0 {
				reason := r.expectEnd(tc.typ, tc.code)
				t.Logf("%v %v: %s", tc.typ, tc.code, reason)
				if tc.reason != "" {
					require.Contains(t, reason, tc.reason)
				}
			}
			require.NoError(t, r.c.Close())

			st1 := p.Srv.Stats()
			switch tc.counts {
			case countRejected:
				require.Equal(t, st0.Rejected+1, st1.Rejected, "Rejected")
				require.Equal(t, st0.ProtocolErrors, st1.ProtocolErrors, "ProtocolErrors")
			case countProtocol:
				require.Equal(t, st0.ProtocolErrors+1, st1.ProtocolErrors, "ProtocolErrors")
				require.Equal(t, st0.Rejected, st1.Rejected, "Rejected")
			case countNothing:
				require.Equal(t, st0.ProtocolErrors, st1.ProtocolErrors, "ProtocolErrors")
				require.Equal(t, st0.Rejected, st1.Rejected, "Rejected")
			}
			require.Eventually(t, func() bool { return len(p.Srv.Sessions()) == 1 && p.Stream.Stats().Consumers == 1 },
				waitTimeout, time.Millisecond, "only the good consumer stays subscribed")
			require.Eventually(t, func() bool { return testutil.FDsLinkingTo(os.Getpid(), "memfd:framehub-rogue") == 0 }, waitTimeout, time.Millisecond,
				"the producer must close fds a consumer sent it")
			require.Eventually(t, func() bool { return testutil.FDCount(os.Getpid()) == base }, waitTimeout, time.Millisecond,
				"fds: %d, baseline %d", testutil.FDCount(os.Getpid()), base)
			good.requireReceiving(t)
		})
	}
	require.Len(t, p.Srv.Sessions(), 1)
	require.LessOrEqual(t, p.Stream.Stats().Leases, 2, "only the good consumer's leases are live")
	require.Equal(t, base, testutil.CountOwnFDs(t))
	t.Logf("server stats: %+v", p.Srv.Stats())
}
