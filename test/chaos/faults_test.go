package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/fdpass"
	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/sdk"
	"github.com/framehub/framehub/test/internal/grouptest"
)

// chaos is one run of the suite: the group, the faults injected and what
// was measured, for the checks and the soak report.
type chaos struct {
	t           *testing.T
	g           *grouptest.Group
	rng         *rand.Rand
	mon         *monitor
	disk        *loopFS // nil: no storage faults (diskSkipped says why)
	diskSkipped string
	seed        uint64
	duration    time.Duration

	start, faultsEnd time.Time
	supPID, supFD0   int
	supRSS0          int // KiB
	// The producer's baseline, taken again after each restart.
	prodPID, prodFD0, prodRSS0, pool0 int

	// Written by the test goroutine only (faults run one at a time).
	events  []event
	holeOK  []window // where the recording may have holes, and why
	timings map[string][]time.Duration
	counts  map[string]int
	checks  []check
	rec     recordingResult
	rates   rateStats

	tracker     *tracker
	stopTracker func()
}

type event struct {
	name     string
	from, to time.Time
	note     string
}

type check struct {
	name, measured, limit string
	ok                    bool
}

type recordingResult struct {
	segments, played int
	vanished         int // deleted by the recorder while being checked
	spans            int
	covered, wall    time.Duration
	holes            []hole
}

type fault struct {
	name string
	run  func() string // returns a note for the log and the report
}

// check records a check for the report, then fails the test if !ok.
func (c *chaos) check(name string, ok bool, measured, limit string) {
	c.t.Helper()
	c.checks = append(c.checks, check{name, measured, limit, ok})
	require.True(c.t, ok, "%s: %s (limit %s)", name, measured, limit)
}

func (c *chaos) event(name string, from, to time.Time, note string) {
	c.events = append(c.events, event{name, from, to, note})
	c.counts[name]++
}

func (c *chaos) timing(name string, d time.Duration) { c.timings[name] = append(c.timings[name], d) }

func (c *chaos) allowHoles(from, to time.Time, why string) {
	c.holeOK = append(c.holeOK, window{from, to, why})
}

func (c *chaos) faults() []fault {
	var fs []fault
	for _, name := range grouptest.Consumers() {
		fs = append(fs,
			fault{"kill9-" + name, func() string { return c.killConsumer(name) }},
			fault{"stop-" + name, func() string { return c.stopConsumer(name) }})
	}
	fs = append(fs,
		fault{"kill9-producer", c.killProducer},
		fault{"rogue-200-connections", c.rogueConnections},
		fault{"rogue-garbage", c.rogueGarbage},
		fault{"rogue-no-release", c.noRelease},
		fault{"rogue-greedy-holder", c.greedyHolder},
		fault{"rogue-hold-evict-reconnect", c.holdEvictReconnect})
	if c.disk != nil {
		fs = append(fs, fault{"disk-full", c.diskFull}, fault{"storage-stall", c.storageStall})
	}
	return fs
}

// waitRestarted waits until the supervisor reports name ready under a new pid.
func (c *chaos) waitRestarted(name string, old grouptest.Proc, d time.Duration) {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		p := c.g.Proc(name)
		return p.State == "ready" && p.PID != old.PID && p.PID != 0
	}, d, 20*time.Millisecond, "%s restarted after kill -9 (was pid %d)", name, old.PID)
}

func (c *chaos) killConsumer(name string) string {
	p := c.g.Proc(name)
	require.NotZero(c.t, p.PID, name)
	t0 := time.Now()
	require.NoError(c.t, syscall.Kill(p.PID, syscall.SIGKILL))
	c.waitRestarted(name, p, 20*time.Second)
	down := time.Since(t0)
	c.timing("kill -9 "+name+" → ready again", down)
	if name == "recorder" && down > replayWindow {
		c.allowHoles(t0, time.Now().Add(3*time.Second), "recorder down beyond the replay window")
	}
	return fmt.Sprintf("ready again in %v", down.Round(time.Millisecond))
}

func (c *chaos) stopConsumer(name string) string {
	p := c.g.Proc(name)
	require.NotZero(c.t, p.PID, name)
	d := time.Duration(200+c.rng.IntN(1800)) * time.Millisecond
	require.NoError(c.t, syscall.Kill(p.PID, syscall.SIGSTOP))
	time.Sleep(d)
	require.NoError(c.t, syscall.Kill(p.PID, syscall.SIGCONT))
	return fmt.Sprintf("stopped for %v", d)
}

func (c *chaos) killProducer() string {
	p := c.g.Proc("producer")
	require.NotZero(c.t, p.PID)
	t0 := time.Now()
	require.NoError(c.t, syscall.Kill(p.PID, syscall.SIGKILL))
	c.waitRestarted("producer", p, 30*time.Second)
	ready := time.Now()

	// A viewer connecting now plays again.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	err := c.g.PlayRTSP(ctx, 1)
	cancel()
	played := time.Now()
	require.NoError(c.t, err, "RTSP client after the producer restart")
	c.timing("producer kill -9 → ready", ready.Sub(t0))
	c.timing("producer ready → RTSP client's first decoded frame", played.Sub(ready))
	c.timing("producer kill -9 → RTSP client's first decoded frame", played.Sub(t0))
	require.LessOrEqual(c.t, played.Sub(ready), rtspReplay, "RTSP client's first frame after producer restart %d", c.counts["kill9-producer"]+1)

	require.Eventually(c.t, c.g.ConsumersConnected, 30*time.Second, 100*time.Millisecond, "consumers reconnect to the new producer")
	back := time.Now()
	c.timing("producer kill -9 → 3 consumers reconnected", back.Sub(t0))
	c.mon.exclude(t0.Add(-producerExcl), back.Add(producerExcl), "producer restart")
	// Frames still in the old producer's encoder are lost with it; the
	// recorder resumes at the new producer's first keyframe.
	c.allowHoles(t0.Add(-time.Second), back.Add(3*time.Second), "producer restart")
	c.warmUp()
	c.baseline()
	return fmt.Sprintf("ready in %v, RTSP frame %v later, consumers back %v after the kill",
		ready.Sub(t0).Round(time.Millisecond), played.Sub(ready).Round(time.Millisecond), back.Sub(t0).Round(time.Millisecond))
}

func (c *chaos) rogueConnections() string {
	for i := 0; i < 200; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cn, err := fdpass.Dial(ctx, c.g.Sock)
		cancel()
		require.NoError(c.t, err, "rogue dial %d", i)
		require.NoError(c.t, cn.Close())
	}
	return "200 connections opened and dropped"
}

// rogueHello connects a raw client to the producer and sends h; the caller
// closes the connection.
func (c *chaos) rogueHello(h *ipc.Hello) (*fdpass.Conn, *ipc.Codec) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	cn, err := fdpass.Dial(ctx, c.g.Sock)
	cancel()
	require.NoError(c.t, err)
	codec := ipc.NewCodec()
	b, err := codec.Encode(h)
	require.NoError(c.t, err)
	require.NoError(c.t, cn.Send(b, nil))
	return cn, codec
}

func (c *chaos) rogueGarbage() string {
	cn, codec := c.rogueHello(&ipc.Hello{Major: ipc.VersionMajor, Minor: ipc.VersionMinor, Name: "chaos-rogue", Stream: "raw", MaxInFlight: 1})
	defer cn.Close()
	buf := make([]byte, 2*ipc.MaxMessageSize)
	require.NoError(c.t, cn.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, fds, err := cn.Recv(buf)
	fdpass.CloseFDs(fds)
	require.NoError(c.t, err, "Welcome")
	m, err := codec.Decode(buf[:n])
	require.NoError(c.t, err)
	_, ok := m.(*ipc.Welcome)
	require.True(c.t, ok, "want Welcome, got %T", m)
	// Random packets; the producer answers Bye or ignores unknown types.
	sent := 0
	for i := 0; i < 1+c.rng.IntN(8); i++ {
		junk := make([]byte, 1+c.rng.IntN(512))
		for j := range junk {
			junk[j] = byte(c.rng.Uint32())
		}
		if cn.Send(junk, nil) != nil {
			break
		}
		sent++
	}
	// Drain (closing any frame fds) until the producer hangs up or 1 s passes.
	_ = cn.SetReadDeadline(time.Now().Add(time.Second))
	for {
		_, fds, err := cn.Recv(buf)
		fdpass.CloseFDs(fds)
		if err != nil {
			break
		}
	}
	return fmt.Sprintf("%d random packets after a valid Hello", sent)
}

// noRelease subscribes like a buggy plugin that keeps every frame it gets:
// the producer must evict it after its max hold, without the others
// noticing.
func (c *chaos) noRelease() string {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cl, err := sdk.Dial(ctx, c.g.Sock, sdk.Options{Stream: "raw", Name: "chaos-no-release", MaxInFlight: 2, MaxHold: noReleaseHold,
		Logger: testutil.Logger(c.t, slog.LevelError)})
	require.NoError(c.t, err)
	defer cl.Close()
	t0 := time.Now()
	got := 0
	for {
		f, err := cl.Next(ctx)
		if err != nil {
			require.True(c.t, errors.Is(err, sdk.ErrEvicted), "want eviction after holding frames, got %v", err)
			break
		}
		_ = f // kept, never released
		got++
	}
	d := time.Since(t0)
	c.timing("consumer holding its frames → evicted", d)
	require.LessOrEqual(c.t, d, evictWithin, "consumer holding frames evicted (%d)", c.counts["rogue-no-release"]+1)
	return fmt.Sprintf("held %d frames, evicted after %v", got, d.Round(time.Millisecond))
}

// greedyHolder asks for the largest budget and hold the wire can carry on
// the raw stream and keeps every frame it is given for a few seconds: the
// producer grants it what the pool can back, and nobody else notices (the
// frame-rate check judges the windows it covers).
func (c *chaos) greedyHolder() string {
	cn, codec := c.rogueHello(&ipc.Hello{Major: ipc.VersionMajor, Minor: ipc.VersionMinor, Name: "chaos-greedy", Stream: "raw",
		MaxInFlight: 1<<32 - 1, MaxHoldMS: 1<<32 - 1})
	defer cn.Close()
	hold := time.Duration(2000+c.rng.IntN(3000)) * time.Millisecond
	buf := make([]byte, ipc.MaxMessageSize)
	deadline := time.Now().Add(hold)
	var budget uint32
	frames := 0
	for {
		require.NoError(c.t, cn.SetReadDeadline(deadline))
		n, fds, err := cn.Recv(buf)
		fdpass.CloseFDs(fds)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		require.NoError(c.t, err, "greedy holder's connection")
		m, err := codec.Decode(buf[:n])
		require.NoError(c.t, err)
		switch m := m.(type) {
		case *ipc.Welcome:
			budget = m.MaxInFlight
			require.LessOrEqual(c.t, budget, uint32(8), "the producer's max-in-flight caps a greedy budget")
		case *ipc.Frame:
			frames++ // kept, never released
		case *ipc.Reject:
			require.Equal(c.t, ipc.CodeNoCapacity, m.Code, "greedy holder rejected: %s", m.Reason)
			return "rejected: no capacity left (" + m.Reason + ")"
		case *ipc.Bye:
			c.t.Fatalf("greedy holder closed by the producer within its hold: %v: %s", m.Code, m.Reason)
		}
	}
	return fmt.Sprintf("granted budget %d, held %d frames for %v", budget, frames, hold)
}

// holdEvictReconnect holds its whole budget until the producer evicts it at
// max_hold, subscribes again with the same name, and repeats: each return
// gets a smaller budget, and nobody else notices.
func (c *chaos) holdEvictReconnect() string {
	var budgets []int
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		cl, err := sdk.Dial(ctx, c.g.Sock, sdk.Options{Stream: "raw", Name: "chaos-looper", MaxInFlight: 8, MaxHold: noReleaseHold,
			Logger: testutil.Logger(c.t, slog.LevelError)})
		if err != nil {
			cancel()
			var rej *sdk.RejectError
			require.True(c.t, errors.As(err, &rej) && rej.Code == sdk.CodeNoCapacity, "looper dial: %v", err)
			continue
		}
		budgets = append(budgets, cl.Subscription().MaxInFlight)
		for {
			if _, err = cl.Next(ctx); err != nil { // kept, never released
				break
			}
		}
		cancel()
		_ = cl.Close()
		require.True(c.t, errors.Is(err, sdk.ErrEvicted), "want eviction after holding frames, got %v", err)
	}
	for i := 1; i < len(budgets); i++ {
		require.LessOrEqual(c.t, budgets[i], max(1, budgets[i-1]/2), "an evicted consumer that returns gets half its budget: %v", budgets)
	}
	return fmt.Sprintf("budgets %v over 3 evictions", budgets)
}

// recorderCounter reads one of the recorder's counters (0 when unreadable:
// the recorder may be restarting).
func (c *chaos) recorderCounter(name string, labels map[string]string) float64 {
	ms, err := c.g.Scrape(c.g.RecAdmin)
	if err != nil {
		return 0
	}
	v, _ := ms.Sum(name, labels)
	return v
}

func (c *chaos) diskFull() string {
	d := time.Duration(2000+c.rng.IntN(4000)) * time.Millisecond
	enospc0 := c.recorderCounter("framehub_recorder_write_errors_total", map[string]string{"errno": "ENOSPC"})
	t0 := time.Now()
	require.NoError(c.t, c.disk.fill(256<<10))
	time.Sleep(d)
	require.NoError(c.t, c.disk.unfill())
	c.allowHoles(t0, time.Now().Add(3*time.Second), "disk full")
	enospc := c.recorderCounter("framehub_recorder_write_errors_total", map[string]string{"errno": "ENOSPC"}) - enospc0
	return fmt.Sprintf("full for %v, recorder ENOSPC errors %+.0f", d, enospc)
}

func (c *chaos) storageStall() string {
	d := time.Duration(1000+c.rng.IntN(3000)) * time.Millisecond
	t0 := time.Now()
	require.NoError(c.t, c.disk.freeze())
	maxQueue := 0.0
	for time.Since(t0) < d {
		maxQueue = max(maxQueue, c.recorderCounter("framehub_recorder_queue_bytes", nil))
		time.Sleep(250 * time.Millisecond)
	}
	require.NoError(c.t, c.disk.thaw())
	c.allowHoles(t0, time.Now().Add(3*time.Second), "storage stall")
	return fmt.Sprintf("writes frozen for %v, recorder queue up to %.0f kB", d, maxQueue/1e3)
}
