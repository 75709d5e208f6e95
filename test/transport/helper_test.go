package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/fdpass"
	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/internal/testutil/producertest"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/sdk"
)

// runHelper is the consumer process of the multi-process tests (see
// spawnConsumer and TestMain).
//
// It subscribes with the sdk, prints {"event":"ready"} once welcomed, then
// receives frames: each frame's stamp is verified on receipt, the frame is
// held for a random time in [FH_HOLD_MIN, FH_HOLD_MAX] (several frames may be
// held at once, up to the budget the producer enforces), verified again just
// before Release, and released. Every failed verification is reported on a
// "mismatch" line; "progress" lines every 50 ms carry the counters. When its
// stdin reaches EOF, FH_FRAMES frames were received or Next fails, it waits
// for the frames it holds, prints a "done" line and exits.
type helperEnv struct {
	socket, stream, name, policy, mode string
	flood                              string
	maxInFlight, frames                int
	maxHold, holdMin, holdMax          time.Duration
	seed                               uint64
	verify                             bool
}

func readHelperEnv() helperEnv {
	dur := func(k string) time.Duration {
		d, _ := time.ParseDuration(os.Getenv(k))
		return d
	}
	atoi := func(k string) int {
		n, _ := strconv.Atoi(os.Getenv(k))
		return n
	}
	seed, _ := strconv.ParseUint(os.Getenv("FH_SEED"), 10, 64)
	return helperEnv{
		socket: os.Getenv("FH_SOCKET"), stream: os.Getenv("FH_STREAM"), name: os.Getenv("FH_NAME"),
		policy: os.Getenv("FH_POLICY"), mode: os.Getenv("FH_MODE"), flood: os.Getenv("FH_FLOOD"),
		maxInFlight: atoi("FH_MAX_IN_FLIGHT"), frames: atoi("FH_FRAMES"),
		maxHold: dur("FH_MAX_HOLD"), holdMin: dur("FH_HOLD_MIN"), holdMax: dur("FH_HOLD_MAX"),
		seed: seed, verify: os.Getenv("FH_VERIFY") != "0",
	}
}

// emitter writes JSON lines to stdout, one Write per line.
type emitter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (e *emitter) emit(m helperMsg) {
	m.PID = os.Getpid()
	m.MonoNS = clock.Mono()
	e.mu.Lock()
	defer e.mu.Unlock()
	_ = e.enc.Encode(m)
}

func runHelper() {
	env := readHelperEnv()
	out := &emitter{enc: json.NewEncoder(os.Stdout)}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // the parent closes stdin to stop us
		cancel()
	}()

	if env.mode == "flood" {
		runFlood(ctx, env, out)
		return
	}

	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := sdk.Dial(dctx, env.socket, sdk.Options{
		Stream: env.stream, Name: env.name, MaxInFlight: env.maxInFlight, MaxHold: env.maxHold,
		Policy: sdk.Policy(env.policy), Logger: log,
	})
	dcancel()
	if err != nil {
		out.emit(helperMsg{Event: "done", Err: "dial: " + err.Error()})
		return
	}
	defer c.Close()
	sub := c.Subscription()
	caps := c.Caps()
	out.emit(helperMsg{Event: "ready", Session: sub.Session, Budget: uint32(sub.MaxInFlight)})

	if env.mode == "probe" {
		runProbe(ctx, c, caps.Width, out)
		return
	}

	var (
		frames, checks, verified, mismatches, stale atomic.Uint64
		held                                        atomic.Int64
		holds                                       sync.WaitGroup
	)
	rng := rand.New(rand.NewPCG(env.seed, 0x5eed))
	check := func(f *sdk.Frame, phase string) (ok, isStale bool) {
		if !env.verify {
			return true, false
		}
		err := producertest.VerifyFrame(f, caps.Width)
		switch {
		case err == nil:
			checks.Add(1)
			return true, false
		case phase == "release" && errors.Is(err, sdk.ErrStale):
			stale.Add(1) // the SDK knows the lease is gone and refuses access
			return false, true
		}
		mismatches.Add(1)
		out.emit(helperMsg{Event: "mismatch", Seq: f.Seq(), Phase: phase, Err: err.Error()})
		return false, false
	}
	snapshot := func(event string) helperMsg {
		return helperMsg{
			Event: event, Frames: frames.Load(), Checks: checks.Load(), Verified: verified.Load(),
			Mismatches: mismatches.Load(), Stale: stale.Load(), Dropped: c.Stats().Dropped, Held: held.Load(),
		}
	}

	progressDone := make(chan struct{})
	progressStopped := make(chan struct{})
	go func() {
		defer close(progressStopped)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-progressDone:
				return
			case <-tk.C:
				out.emit(snapshot("progress"))
			}
		}
	}()

	var loopErr error
	for env.frames == 0 || int(frames.Load()) < env.frames {
		f, err := c.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				loopErr = err
			}
			break
		}
		frames.Add(1)
		okRecv, _ := check(f, "receipt")
		hold := env.holdMin
		if span := env.holdMax - env.holdMin; span > 0 {
			hold += time.Duration(rng.Int64N(int64(span) + 1))
		}
		held.Add(1)
		holds.Add(1)
		finish := func() {
			okRel, _ := check(f, "release")
			if okRecv && okRel && env.verify {
				verified.Add(1)
			}
			f.Release()
			held.Add(-1)
			holds.Done()
		}
		if hold <= 0 {
			finish()
		} else {
			time.AfterFunc(hold, finish)
		}
	}
	// Let the frames still held run their course (bounded).
	waited := make(chan struct{})
	go func() { holds.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(env.holdMax + 5*time.Second):
	}
	close(progressDone)
	<-progressStopped
	done := snapshot("done")
	if loopErr != nil {
		done.Err = loopErr.Error()
		done.Evicted = errors.Is(loopErr, sdk.ErrEvicted)
		done.Disconnected = errors.Is(loopErr, sdk.ErrDisconnected)
	}
	out.emit(done)
}

// runProbe receives one frame and tries every way to write its surface
// through the fd the producer passed.
func runProbe(ctx context.Context, c *sdk.Client, width int, out *emitter) {
	nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	f, err := c.Next(nctx)
	cancel()
	if err != nil {
		out.emit(helperMsg{Event: "done", Err: "next: " + err.Error()})
		return
	}
	errno := func(err error) uint64 {
		var e unix.Errno
		if errors.As(err, &e) {
			return uint64(e)
		}
		if err != nil {
			return 1 << 32 // not an errno
		}
		return 0
	}
	res := &probeResult{}
	if err := producertest.VerifyFrame(f, width); err != nil {
		out.emit(helperMsg{Event: "done", Frames: 1, Mismatches: 1, Err: "stamp before probing: " + err.Error()})
		f.Release()
		return
	}
	fd := f.FDs()[0]
	res.FD = fd
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err == nil {
		res.Size = int(st.Size)
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
		res.AccMode = fl & unix.O_ACCMODE
	}
	if seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0); err == nil {
		res.Seals = seals
	}
	payload := []byte("scribble")

	m, err := unix.Mmap(fd, 0, res.Size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	res.MmapRW = errno(err)
	if err == nil {
		_ = unix.Munmap(m)
	}
	if data, err := f.Data(); err == nil {
		res.Mprotect = errno(unix.Mprotect(data[:os.Getpagesize()], unix.PROT_READ|unix.PROT_WRITE))
	}
	res.Ftruncate = errno(unix.Ftruncate(fd, int64(res.Size)*2))
	_, err = unix.Pwrite(fd, payload, 0)
	res.Pwrite = errno(err)

	rw, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDWR|unix.O_CLOEXEC, 0)
	res.Reopen = errno(err)
	if err == nil {
		res.ReopenTrunc = errno(unix.Ftruncate(rw, int64(res.Size)*2))
		res.ReopenShrink = errno(unix.Ftruncate(rw, 0))
		m, err := unix.Mmap(rw, 0, res.Size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		res.ReopenMmapRW = errno(err)
		if err == nil {
			_ = unix.Munmap(m)
		}
		_, err = unix.Pwrite(rw, payload, 0)
		res.ReopenPwrite = errno(err)
		_ = unix.Close(rw)
	}
	if err := producertest.VerifyFrame(f, width); err != nil {
		res.StampAfter = err.Error()
	}
	f.Release()
	res.ReleasedClean = c.Flush() == nil
	out.emit(helperMsg{Event: "probe", Probe: res})
	out.emit(helperMsg{Event: "done", Frames: 1, Checks: 2, Verified: 1})
}

// runFlood subscribes with a raw connection (budget 1, max_hold 60 s: it
// never releases its one frame) and then sends packets the producer must
// read and ignore, as fast as the socket takes them, until stdin closes:
// 1-byte packets of an unknown type, or with FH_FLOOD=fat, fatPong packets.
func runFlood(ctx context.Context, env helperEnv, out *emitter) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := fdpass.Dial(dctx, env.socket)
	if err != nil {
		out.emit(helperMsg{Event: "done", Err: "dial: " + err.Error()})
		return
	}
	defer conn.Close()
	codec := ipc.NewCodec()
	b, _ := codec.Encode(&ipc.Hello{Major: ipc.VersionMajor, Minor: ipc.VersionMinor, Name: env.name, Stream: env.stream, MaxInFlight: 1, MaxHoldMS: 60000})
	if err := conn.Send(b, nil); err != nil {
		out.emit(helperMsg{Event: "done", Err: "hello: " + err.Error()})
		return
	}
	buf := make([]byte, ipc.MaxMessageSize)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, fds, err := conn.Recv(buf)
	fdpass.CloseFDs(fds)
	if err != nil {
		out.emit(helperMsg{Event: "done", Err: "welcome: " + err.Error()})
		return
	}
	m, err := codec.Decode(buf[:n])
	w, ok := m.(*ipc.Welcome)
	if err != nil || !ok {
		out.emit(helperMsg{Event: "done", Err: "no welcome"})
		return
	}
	out.emit(helperMsg{Event: "ready", Session: w.Session, Budget: w.MaxInFlight})
	var sent atomic.Uint64
	stop := make(chan struct{})
	go func() {
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				out.emit(helperMsg{Event: "progress", Frames: sent.Load()})
			}
		}
	}()
	_ = conn.SetWriteDeadline(time.Time{})
	pkt := []byte{200} // an unknown type: ignored without parsing
	if env.flood == "fat" {
		pkt = fatPong()
	}
	var sendErr error
	for ctx.Err() == nil {
		if sendErr = conn.Send(pkt, nil); sendErr != nil {
			break
		}
		sent.Add(1)
	}
	close(stop)
	done := helperMsg{Event: "done", Frames: sent.Load()}
	if sendErr != nil {
		done.Err = sendErr.Error()
	}
	out.emit(done)
}

// fatPong is a valid Pong (a message the producer decodes and ignores) whose
// body also holds thousands of unknown keys, which a decoder must skip: a
// few dozen KiB that take the sender microseconds to send and the producer
// far longer to parse.
func fatPong() []byte {
	body := map[string]any{"token": 1, "mono_ns": 1}
	for i := range 5000 {
		body[fmt.Sprintf("x%04d", i)] = i
	}
	b, err := msgpack.Marshal(body)
	if err != nil {
		panic(err)
	}
	return append([]byte{byte(ipc.TypePong)}, b...)
}
