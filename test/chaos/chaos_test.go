// Package chaos runs the supervised framehub group (test camera + x264enc,
// recorder, streamer, snapshot) and injects faults in a seeded random order:
// kill -9 and SIGSTOP/SIGCONT of each consumer, kill -9 of the producer, a
// consumer that stops releasing, garbage and connection floods from a rogue
// client, a full disk and a storage stall under the recorder. It checks that
// consumers being hurt never slow the producer, that the recording plays and
// has holes only where a fault explains them, that RTSP plays again soon
// after each producer restart, and that nothing leaks (fds, RSS, leases,
// surfaces).
//
//	FRAMEHUB_CHAOS=1 FRAMEHUB_CHAOS_SEED=1234 FRAMEHUB_CHAOS_DURATION=5m go test -v -run TestChaos ./test/chaos
//
// With FRAMEHUB_SOAK_REPORT=docs/SOAK.md it also writes a report with
// tables and charts (make soak DURATION=30m).
package chaos

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/sysinfo"
	"github.com/framehub/framehub/test/internal/grouptest"
)

const (
	nominalFPS = 30
	// minFPSRatio: while only consumers are hurt the producer keeps 95% of its rate.
	minFPSRatio = 0.95
	// maxSteal: a window in which the hypervisor took more than this share
	// of the machine's CPU time is not judged.
	maxSteal = sysinfo.HeavySteal
	// minJudged: the rate check needs at least this many windows.
	minJudged = 10
	// fpsWindow: the rate is sampled every second and judged over this window
	// (two samples), so a frame landing just after a scrape does not count as a loss.
	fpsWindow = 2
	// Slack for fd comparisons.
	fdSlackProducer   = 8
	fdSlackSupervisor = 4
	// fdSlackConsumer: a consumer's fds may vary with what it is doing
	// (a segment file open, an RTSP session, a snapshot being written).
	fdSlackConsumer = 8
	// fdsPerSurface: fds the producer may hold per pool surface it gained
	// during the faults (observed: about 2, 4 → 9 surfaces took 35 → 45 fds).
	fdsPerSurface = 2
	// RSS within 10% of its value after warm-up (and 16 MiB: one 640×360
	// frame is 0.35 MB, a GC cycle's garbage is a few MB).
	rssRatio    = 1.10
	rssSlackKiB = 16 * 1024
	// replayWindow is the producer's -h264-replay (default 30 s), shortened so
	// that the producer's memory reaches its steady state within the warm-up.
	replayWindow = 8 * time.Second
	// producerExcl: seconds excluded from the rate check around a producer kill.
	producerExcl = 3 * time.Second
	// rtspReplay: a client connecting after a producer restart plays within this.
	rtspReplay = 3 * time.Second
	// noReleaseHold is the max hold of the consumer that keeps its frames;
	// the producer evicts it within evictWithin.
	noReleaseHold = 500 * time.Millisecond
	evictWithin   = noReleaseHold + 2*time.Second
	// holeTolerance: capture time between fragments beyond this is a hole
	// (3 frames: fragment boundaries are exact, jitter is not).
	holeTolerance = 3 * time.Second / nominalFPS
	// segmentLen is the recorder's -segment.
	segmentLen = 5 * time.Second
	// diskSize is the recorder's filesystem; keepBytes its retention.
	diskSize  = 512 << 20
	keepBytes = "256MiB"
)

func TestChaos(t *testing.T) {
	if os.Getenv("FRAMEHUB_CHAOS") == "" {
		t.Skip("the chaos suite measures frame rates and must run alone: make test runs it after the other tests with FRAMEHUB_CHAOS=1")
	}
	if _, err := exec.LookPath("gst-launch-1.0"); err != nil {
		t.Skip("gst-launch-1.0 not installed (make deps installs gstreamer1.0-tools): the group needs GStreamer")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("FRAMEHUB_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "FRAMEHUB_CHAOS_SEED")
		seed = v
	}
	duration := 60 * time.Second
	if s := os.Getenv("FRAMEHUB_CHAOS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		require.NoError(t, err, "FRAMEHUB_CHAOS_DURATION")
		duration = d
	}
	t.Logf("chaos seed %d (FRAMEHUB_CHAOS_SEED=%d reproduces the order), duration %v", seed, seed, duration)

	c := &chaos{t: t, rng: rand.New(rand.NewPCG(seed, 0xc0ffee)), mon: &monitor{}, seed: seed, duration: duration,
		timings: map[string][]time.Duration{}, counts: map[string]int{}}
	t.Cleanup(func() {
		// Cleanups run last registered first: this comes after the group's
		// log dump, at the end of the output, where CI shows it.
		if !t.Failed() {
			return
		}
		t.Logf("TestChaos failed (seed %d: FRAMEHUB_CHAOS_SEED=%d reproduces the order of faults)", seed, seed)
		for _, ck := range c.checks {
			if !ck.ok {
				t.Logf("failed check: %s: %s (limit %s)", ck.name, ck.measured, ck.limit)
			}
		}
	})
	if out := os.Getenv("FRAMEHUB_SOAK_REPORT"); out != "" {
		t.Cleanup(func() {
			if err := c.writeReport(out); err != nil {
				t.Errorf("soak report: %v", err)
			} else {
				t.Logf("soak report written to %s", out)
			}
		})
	}

	opts := grouptest.Options{FPS: nominalFPS, Replay: replayWindow, Segment: segmentLen.String(), MaxCrashes: 1000,
		RecorderArgs: []string{"-keep-bytes", keepBytes}}
	var why string
	if c.disk, why = mountLoopFS(t, diskSize); c.disk != nil {
		opts.RecordDir = filepath.Join(c.disk.dir, "recordings")
		t.Logf("recordings on a %d MiB ext4 loop filesystem at %s (full-disk and storage-stall faults on)", diskSize>>20, c.disk.dir)
	} else {
		c.diskSkipped = why
		t.Logf("no full-disk or storage-stall faults: %s", why)
	}
	c.g = grouptest.Start(t, opts)
	g := c.g
	require.Eventually(t, g.ConsumersConnected, grouptest.WaitFor, 100*time.Millisecond, "3 consumers connected")

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.mon.run(ctx, g) })
	stopMonitor := sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(stopMonitor)
	c.tracker = newTracker(g.RecordDir)
	tctx, tcancel := context.WithCancel(context.Background())
	var twg sync.WaitGroup
	twg.Go(func() { c.tracker.run(tctx) })
	c.stopTracker = sync.OnceFunc(func() { tcancel(); twg.Wait() })
	t.Cleanup(c.stopTracker)

	c.warmUp()
	c.supPID = g.Sup.Process.Pid
	c.supFD0, c.supRSS0 = sysinfo.FDCount(c.supPID), int(sysinfo.RSSKiB(c.supPID))
	c.baseline()
	require.Positive(t, c.supFD0)
	t.Logf("warm-up: supervisor pid %d fds %d rss %d KiB", c.supPID, c.supFD0, c.supRSS0)

	c.start = time.Now()
	faults := c.faults()
	deadline := c.start.Add(duration)
	for time.Now().Before(deadline) {
		for _, i := range c.rng.Perm(len(faults)) {
			if !time.Now().Before(deadline) {
				break
			}
			f := faults[i]
			// A producer kill late in the run would leave no time to judge its successor.
			if f.name == "kill9-producer" && time.Until(deadline) < duration*2/5 {
				continue
			}
			t0 := time.Now()
			note := f.run()
			c.event(f.name, t0, time.Now(), note)
			t.Logf("%6.1fs %-22s %v %s", time.Since(c.start).Seconds(), f.name, time.Since(t0).Round(time.Millisecond), note)
			time.Sleep(time.Duration(300+c.rng.IntN(1200)) * time.Millisecond)
		}
	}
	c.faultsEnd = time.Now()
	total := 0
	for _, n := range c.counts {
		total += n
	}
	t.Logf("faults injected: %d %v", total, c.counts)

	// Idle: everyone back, no fault.
	require.Eventually(t, g.AllReady, 30*time.Second, 100*time.Millisecond, "all ready after the faults: %+v", g.Status())
	require.Eventually(t, g.ConsumersConnected, 30*time.Second, 100*time.Millisecond, "3 consumers connected after the faults")
	time.Sleep(3 * time.Second)
	stopMonitor()

	c.checkTimings()
	c.checkFrameRate()
	c.checkLeaks()
	c.checkLeasesWithinBudgets()
	c.checkIdlePool()
	c.checkRecording()
}

// warmUp waits until the producer's replay buffer is full (its memory no
// longer grows with it), then a little more.
func (c *chaos) warmUp() {
	c.t.Helper()
	want := 0.9 * replayWindow.Seconds() * nominalFPS
	var n float64
	require.Eventually(c.t, func() bool {
		ms, err := c.g.Scrape(c.g.ProdAdmin)
		if err != nil {
			return false
		}
		n, _ = ms.Sum("framehub_producer_replay_frames", map[string]string{"stream": "h264"})
		return n >= want
	}, replayWindow+30*time.Second, 200*time.Millisecond, "replay buffer fills: %v frames, want %v", n, want)
	time.Sleep(2 * time.Second)
}

// baseline records the current producer's fds, RSS and pool after its warm-up.
func (c *chaos) baseline() {
	c.prodPID = c.g.Proc("producer").PID
	require.NotZero(c.t, c.prodPID)
	c.prodFD0, c.prodRSS0, c.pool0 = sysinfo.FDCount(c.prodPID), int(sysinfo.RSSKiB(c.prodPID)), c.poolSurfaces()
	require.Positive(c.t, c.prodFD0)
	c.t.Logf("producer pid %d: baseline fds %d rss %d KiB, %d pool surfaces", c.prodPID, c.prodFD0, c.prodRSS0, c.pool0)
}

// poolSurfaces is the producer's allocated pool surfaces (free + in use), all streams.
func (c *chaos) poolSurfaces() int {
	ms, err := c.g.Scrape(c.g.ProdAdmin)
	if err != nil {
		return 0
	}
	f, _ := ms.Sum("framehub_producer_pool_surfaces", map[string]string{"state": "free"})
	u, _ := ms.Sum("framehub_producer_pool_surfaces", map[string]string{"state": "in_use"})
	// The source's own GStreamer buffer pool grows too while consumers
	// hold its buffers (a greedy holder keeps 8).
	g, _ := ms.Sum("framehub_producer_raw_buffer_surfaces", nil)
	return int(f + u + g)
}
