package transport_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/fdpass"
	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/internal/testutil/producertest"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/sdk"
)

// waitTimeout bounds every wait for something that should happen "soon"
// (a ready line, a handshake answer, a stat settling). Generous because the
// machine is small and shared and the race detector slows everything down;
// no test sleeps it away: it is only the deadline of a wait.
const waitTimeout = 10 * time.Second

// TestMain runs the helper consumer when the test binary is re-executed as
// one (see spawnConsumer), the tests otherwise.
func TestMain(m *testing.M) {
	testutil.RunHelper(map[string]func() int{"consumer": func() int { runHelper(); return 0 }})
	os.Exit(m.Run())
}

// ---------------------------------------------------------------------------
// Logging

// ---------------------------------------------------------------------------
// Producer (in the test process)

// producerOpts are the producer's settings (default 320x240 at 30 fps, a
// pool of 4 to 16 surfaces).
type producerOpts = producertest.Options

type testProducer struct{ *producertest.Producer }

// startProducer runs a producer with one raw stream fed by the synthetic
// source, all stopped at cleanup (source, then server, then pool).
func startProducer(t *testing.T, o producerOpts) *testProducer {
	t.Helper()
	o.WaitTimeout = waitTimeout
	return &testProducer{producertest.StartProducer(t, o)}
}

// session returns the producer's view of session id, if it is connected.
func (p *testProducer) session(id uint64) (producer.SessionInfo, bool) {
	return p.Session(func(s producer.SessionInfo) bool { return s.ID == id })
}

// ---------------------------------------------------------------------------
// Consumer subprocesses
//
// The test binary re-executes itself as the helper "consumer" (runHelper),
// which TestMain runs instead of the tests. Parameters travel in FH_*
// environment variables; the child reports JSON lines on stdout.

// consumerCfg parameterises a helper consumer.
type consumerCfg struct {
	Name        string
	Stream      string        // default "raw"
	MaxInFlight int           // budget asked for
	MaxHold     time.Duration // lease deadline asked for (0: producer default)
	HoldMin     time.Duration // each frame is held a random time in [HoldMin, HoldMax]
	HoldMax     time.Duration
	Frames      int    // stop after this many frames (0: until stopped)
	Seed        uint64 // for the hold times
	NoVerify    bool   // skip stamp verification
	Policy      string // "", "queue", "latest"
	Mode        string // "consume" (default), "probe" or "flood"
	Flood       string // flood mode: "" (1-byte packets of an unknown type) or "fat" (see fatPong)
}

func (c consumerCfg) env(addr string) []string {
	b2s := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	return []string{
		"FH_SOCKET=" + addr,
		"FH_STREAM=" + c.Stream,
		"FH_NAME=" + c.Name,
		"FH_MAX_IN_FLIGHT=" + strconv.Itoa(c.MaxInFlight),
		"FH_MAX_HOLD=" + c.MaxHold.String(),
		"FH_HOLD_MIN=" + c.HoldMin.String(),
		"FH_HOLD_MAX=" + c.HoldMax.String(),
		"FH_FRAMES=" + strconv.Itoa(c.Frames),
		"FH_SEED=" + strconv.FormatUint(c.Seed, 10),
		"FH_VERIFY=" + b2s(!c.NoVerify),
		"FH_POLICY=" + c.Policy,
		"FH_MODE=" + c.Mode,
		"FH_FLOOD=" + c.Flood,
	}
}

// helperMsg is one JSON line from a helper consumer.
type helperMsg struct {
	Event string `json:"event"` // ready, progress, mismatch, probe, done

	PID     int    `json:"pid,omitempty"`
	Session uint64 `json:"session,omitempty"`
	Budget  uint32 `json:"budget,omitempty"`
	MonoNS  int64  `json:"mono_ns,omitempty"` // CLOCK_MONOTONIC when the line was written

	Frames     uint64 `json:"frames"`     // frames received
	Checks     uint64 `json:"checks"`     // stamp verifications that passed
	Verified   uint64 `json:"verified"`   // frames verified both on receipt and before release
	Mismatches uint64 `json:"mismatches"` // stamp verifications that failed
	Stale      uint64 `json:"stale"`      // pre-release checks refused with sdk.ErrStale
	Dropped    uint64 `json:"dropped"`    // frames the producer skipped for this consumer
	Held       int64  `json:"held"`       // frames held now

	Seq   uint64 `json:"seq,omitempty"`   // mismatch: the frame's seq
	Phase string `json:"phase,omitempty"` // mismatch: "receipt" or "release"
	Err   string `json:"err,omitempty"`   // mismatch: the error; done: why the loop ended

	Evicted      bool `json:"evicted,omitempty"`      // done: Next failed with sdk.ErrEvicted
	Disconnected bool `json:"disconnected,omitempty"` // done: Next failed with sdk.ErrDisconnected

	Probe *probeResult `json:"probe,omitempty"`
}

// probeResult is what a probe-mode helper found when it tried to write a
// received surface. Errnos are 0 when the call succeeded.
type probeResult struct {
	FD            int    `json:"fd"`
	Size          int    `json:"size"`
	AccMode       int    `json:"acc_mode"`       // fcntl(F_GETFL) & O_ACCMODE of the received fd
	Seals         int    `json:"seals"`          // fcntl(F_GET_SEALS)
	MmapRW        uint64 `json:"mmap_rw"`        // mmap(PROT_READ|PROT_WRITE, MAP_SHARED) of the fd
	Mprotect      uint64 `json:"mprotect"`       // mprotect(PROT_WRITE) of the SDK's read-only mapping
	Ftruncate     uint64 `json:"ftruncate"`      // ftruncate(fd) (grow)
	Pwrite        uint64 `json:"pwrite"`         // pwrite(fd)
	Reopen        uint64 `json:"reopen"`         // open(/proc/self/fd/N, O_RDWR)
	ReopenTrunc   uint64 `json:"reopen_trunc"`   // ftruncate of the reopened fd (grow)
	ReopenShrink  uint64 `json:"reopen_shrink"`  // ftruncate of the reopened fd (shrink)
	ReopenMmapRW  uint64 `json:"reopen_mmap_rw"` // mmap(PROT_WRITE, MAP_SHARED) of the reopened fd
	ReopenPwrite  uint64 `json:"reopen_pwrite"`  // pwrite of the reopened fd
	StampAfter    string `json:"stamp_after"`    // stamp.Verify after all attempts ("" = ok)
	ReleasedClean bool   `json:"released_clean"`
}

// consumerProc is a running helper consumer.
type consumerProc struct {
	t      *testing.T
	cfg    consumerCfg
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr testutil.LockedBuffer

	ready  chan helperMsg // the ready line (buffered)
	doneCh chan struct{}  // closed at the done line or at EOF of stdout
	exited chan struct{}  // closed once the process was waited for

	mu         sync.Mutex
	readyMsg   helperMsg
	progress   helperMsg // latest progress line
	final      *helperMsg
	mismatches []helperMsg
	probe      *probeResult
	noise      []string // stdout lines that were not JSON
	waitErr    error
}

// startConsumer starts a helper consumer and waits for its ready line (its
// Dial succeeded, the producer welcomed it).
func startConsumer(t *testing.T, p *testProducer, cfg consumerCfg) *consumerProc {
	t.Helper()
	cp := spawnConsumer(t, p.Addr, cfg)
	select {
	case m := <-cp.ready:
		t.Logf("consumer %s: pid %d, session %d, budget %d", cfg.Name, m.PID, m.Session, m.Budget)
	case <-cp.doneCh:
		f := cp.Final()
		t.Fatalf("consumer %s ended before ready: %+v\nstderr:\n%s", cfg.Name, f, cp.stderr.String())
	case <-time.After(waitTimeout):
		t.Fatalf("consumer %s: no ready line within %v\nstderr:\n%s", cfg.Name, waitTimeout, cp.stderr.String())
	}
	return cp
}

func spawnConsumer(t *testing.T, addr string, cfg consumerCfg) *consumerProc {
	t.Helper()
	if cfg.Stream == "" {
		cfg.Stream = "raw"
	}
	if cfg.Name == "" {
		cfg.Name = "helper"
	}
	cmd := testutil.HelperCommand("consumer", cfg.env(addr)...)
	cp := &consumerProc{
		t: t, cfg: cfg, cmd: cmd,
		ready: make(chan helperMsg, 1), doneCh: make(chan struct{}), exited: make(chan struct{}),
	}
	cmd.Stderr = &cp.stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cp.stdin = stdin
	require.NoError(t, cmd.Start())
	go cp.readLoop(stdout)
	t.Cleanup(cp.cleanup)
	return cp
}

func (cp *consumerProc) readLoop(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	doneClosed := false
	for sc.Scan() {
		line := sc.Bytes()
		var m helperMsg
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &m) != nil {
			cp.mu.Lock()
			cp.noise = append(cp.noise, string(line))
			cp.mu.Unlock()
			continue
		}
		cp.mu.Lock()
		switch m.Event {
		case "ready":
			cp.readyMsg = m
			cp.progress = m
			select {
			case cp.ready <- m:
			default:
			}
		case "progress":
			cp.progress = m
		case "mismatch":
			cp.mismatches = append(cp.mismatches, m)
		case "probe":
			cp.probe = m.Probe
		case "done":
			mm := m
			cp.final = &mm
			cp.progress = m
		}
		cp.mu.Unlock()
		if m.Event == "done" && !doneClosed {
			close(cp.doneCh)
			doneClosed = true
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	if !doneClosed {
		close(cp.doneCh)
	}
	err := cp.cmd.Wait()
	cp.mu.Lock()
	cp.waitErr = err
	cp.mu.Unlock()
	close(cp.exited)
}

func (cp *consumerProc) cleanup() {
	select {
	case <-cp.exited:
	default:
		_ = cp.cmd.Process.Kill() // also ends a SIGSTOPped child
		select {
		case <-cp.exited:
		case <-time.After(waitTimeout):
			cp.t.Errorf("consumer %s (pid %d) did not exit after SIGKILL", cp.cfg.Name, cp.cmd.Process.Pid)
		}
	}
	if cp.t.Failed() {
		cp.mu.Lock()
		noise := strings.Join(cp.noise, "\n")
		cp.mu.Unlock()
		cp.t.Logf("consumer %s stdout (non-JSON):\n%s\nstderr:\n%s", cp.cfg.Name, noise, testutil.Tail(cp.stderr.String(), 4000))
	}
}

// PID returns the child's process id.
func (cp *consumerProc) PID() int { return cp.cmd.Process.Pid }

// Session returns the producer session id the child reported.
func (cp *consumerProc) Session() uint64 {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.readyMsg.Session
}

// Progress returns the latest progress (or final) line.
func (cp *consumerProc) Progress() helperMsg {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.progress
}

// Final returns the done line, or nil if there was none (yet).
func (cp *consumerProc) Final() *helperMsg {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.final
}

// Mismatches returns the mismatch lines seen so far.
func (cp *consumerProc) Mismatches() []helperMsg {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return append([]helperMsg(nil), cp.mismatches...)
}

// Probe returns the probe line's result, if any.
func (cp *consumerProc) Probe() *probeResult {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.probe
}

// Signal sends sig to the child.
func (cp *consumerProc) Signal(sig syscall.Signal) {
	cp.t.Helper()
	require.NoError(cp.t, syscall.Kill(cp.cmd.Process.Pid, sig))
}

// Stop asks the child to finish (it sees EOF on stdin), and returns its
// done line.
func (cp *consumerProc) Stop() helperMsg {
	cp.t.Helper()
	_ = cp.stdin.Close()
	return cp.WaitDone(waitTimeout)
}

// WaitDone waits for the child's done line.
func (cp *consumerProc) WaitDone(timeout time.Duration) helperMsg {
	cp.t.Helper()
	select {
	case <-cp.doneCh:
	case <-time.After(timeout):
		cp.t.Fatalf("consumer %s: no done line within %v\nstderr:\n%s", cp.cfg.Name, timeout, testutil.Tail(cp.stderr.String(), 4000))
	}
	f := cp.Final()
	if f == nil {
		cp.t.Fatalf("consumer %s: stdout ended without a done line\nstderr:\n%s", cp.cfg.Name, testutil.Tail(cp.stderr.String(), 4000))
	}
	return *f
}

// ---------------------------------------------------------------------------
// Raw ("rogue") client for malformed input

type rogue struct {
	t     *testing.T
	c     *fdpass.Conn
	buf   []byte
	codec *ipc.Codec
}

func dialRogue(t *testing.T, addr string) *rogue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := fdpass.Dial(ctx, addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &rogue{t: t, c: c, buf: make([]byte, 2*ipc.MaxMessageSize), codec: ipc.NewCodec()}
}

func (r *rogue) send(b []byte, fds []int) {
	r.t.Helper()
	require.NoError(r.t, r.c.Send(b, fds))
}

func (r *rogue) sendMsg(m ipc.Message) {
	r.t.Helper()
	b, err := r.codec.Encode(m)
	require.NoError(r.t, err)
	r.send(b, nil)
}

// recv returns the next message from the producer, closing any fds it
// carried (their number is returned). It fails the test on timeout.
func (r *rogue) recv() (ipc.Message, int, error) {
	r.t.Helper()
	require.NoError(r.t, r.c.SetReadDeadline(time.Now().Add(waitTimeout)))
	n, fds, err := r.c.Recv(r.buf)
	if err != nil {
		require.NotErrorIs(r.t, err, os.ErrDeadlineExceeded, "no answer from the producer within %v", waitTimeout)
		return nil, 0, err
	}
	fdpass.CloseFDs(fds)
	m, err := r.codec.Decode(r.buf[:n])
	require.NoError(r.t, err, "the producer sent an undecodable packet")
	return m, len(fds), nil
}

// hello performs a valid handshake and returns the Welcome.
func (r *rogue) hello(budget uint32) *ipc.Welcome {
	r.t.Helper()
	r.sendMsg(&ipc.Hello{Major: ipc.VersionMajor, Minor: ipc.VersionMinor, Name: "rogue", Stream: "raw", MaxInFlight: budget})
	m, _, err := r.recv()
	require.NoError(r.t, err)
	w, ok := m.(*ipc.Welcome)
	require.True(r.t, ok, "want Welcome, got %T %+v", m, m)
	return w
}

// nextFrame skips announces until a Frame arrives.
func (r *rogue) nextFrame() *ipc.Frame {
	r.t.Helper()
	for {
		m, _, err := r.recv()
		require.NoError(r.t, err)
		switch m := m.(type) {
		case *ipc.Frame:
			return m
		case *ipc.Announce, *ipc.Ping, *ipc.Caps:
		default:
			r.t.Fatalf("waiting for a Frame, got %T %+v", m, m)
		}
	}
}

// expectEnd reads until a Reject or Bye (skipping frames and announces),
// checks its type and code and that it explains itself, then requires the
// producer to close the connection (EOF). It returns the reason.
func (r *rogue) expectEnd(typ ipc.Type, code ipc.Code) string {
	r.t.Helper()
	var reason string
	for {
		m, _, err := r.recv()
		require.NoError(r.t, err, "connection ended before the producer said why (want %v %v)", typ, code)
		switch m := m.(type) {
		case *ipc.Welcome, *ipc.Announce, *ipc.Frame, *ipc.Ping, *ipc.Caps:
			continue
		case *ipc.Reject:
			require.Equal(r.t, typ, ipc.TypeReject, "got Reject %v %q", m.Code, m.Reason)
			require.Equal(r.t, code, m.Code, "Reject code (reason %q)", m.Reason)
			reason = m.Reason
		case *ipc.Bye:
			require.Equal(r.t, typ, ipc.TypeBye, "got Bye %v %q", m.Code, m.Reason)
			require.Equal(r.t, code, m.Code, "Bye code (reason %q)", m.Reason)
			reason = m.Reason
		default:
			r.t.Fatalf("want %v %v, got %T %+v", typ, code, m, m)
		}
		break
	}
	require.NotEmpty(r.t, reason, "%v %v without a reason", typ, code)
	_, _, err := r.recv()
	require.ErrorIs(r.t, err, io.EOF, "the producer must close the connection after %v", typ)
	return reason
}

// ---------------------------------------------------------------------------
// Misc helpers

// dial subscribes an in-process sdk consumer, closed at cleanup.
func dial(t *testing.T, p *testProducer, opts sdk.Options) *sdk.Client {
	t.Helper()
	return producertest.Dial(t, p.Addr, opts, waitTimeout)
}

// next is Next with the standard deadline.
func next(t *testing.T, c *sdk.Client) *sdk.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	f, err := c.Next(ctx)
	require.NoError(t, err)
	return f
}

// rate is events per second between two counter readings.
func rate(n0, n1 uint64, d time.Duration) float64 {
	return float64(n1-n0) / d.Seconds()
}

// goodConsumer is an in-process sdk consumer that releases every frame at
// once, counting and verifying them, until cleanup.
type goodConsumer struct{ *producertest.GoodConsumer }

func startGoodConsumer(t *testing.T, p *testProducer) *goodConsumer {
	t.Helper()
	c := dial(t, p, sdk.Options{Name: "good", MaxInFlight: 2}) // closed at cleanup, after the consumer stops
	return &goodConsumer{producertest.RunGoodConsumer(t, c, p.Layout.Width)}
}

// requireReceiving requires the good consumer to get more frames soon and
// to have had no error or mismatch.
func (g *goodConsumer) requireReceiving(t *testing.T) {
	t.Helper()
	n0 := g.Frames.Load()
	require.Eventually(t, func() bool { return g.Frames.Load() >= n0+2 }, waitTimeout, time.Millisecond,
		"the well-behaved consumer stopped receiving frames")
	g.Check(t)
}

func describe(m helperMsg) string {
	return fmt.Sprintf("frames=%d verified=%d checks=%d mismatches=%d stale=%d dropped=%d held=%d err=%q evicted=%v",
		m.Frames, m.Verified, m.Checks, m.Mismatches, m.Stale, m.Dropped, m.Held, m.Err, m.Evicted)
}
