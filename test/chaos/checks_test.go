package chaos

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/sysinfo"
	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/test/internal/grouptest"
)

// checkTimings summarises what each fault checked as it happened (a
// failure stopped the test there): RTSP after producer restarts, and the
// eviction of the consumer that keeps its frames.
func (c *chaos) checkTimings() {
	for _, tc := range []struct {
		name, timing string
		limit        time.Duration
	}{
		{"RTSP client plays again after each producer restart", "producer ready → RTSP client's first decoded frame", rtspReplay},
		{"a consumer holding its frames is evicted", "consumer holding its frames → evicted", evictWithin},
	} {
		ds := c.timings[tc.timing]
		if len(ds) == 0 {
			continue
		}
		worst := slices.Max(ds)
		c.check(tc.name, worst <= tc.limit, fmt.Sprintf("%d times: median %v, worst %v", len(ds), median(ds).Round(time.Millisecond), worst.Round(time.Millisecond)),
			"≤ "+tc.limit.String())
	}
}

// checkFrameRate: while only consumers were hurt, the producer kept 95% of
// its nominal rate over every 2 s window.
func (c *chaos) checkFrameRate() {
	r := c.mon.rates()
	c.rates = r
	judged := len(r.windowed) >= minJudged
	minW := 0.0
	if len(r.windowed) > 0 {
		minW = slices.Min(r.windowed)
	}
	c.t.Logf("producer rate: %d windows of %ds judged, min %.2f fps (min 1 s sample %.2f), nominal %d; %d windows not judged: the host took > %.0f%% of the machine (worst %.0f%%)",
		len(r.windowed), fpsWindow, minW, r.min1, nominalFPS, r.stolen, maxSteal*100, r.worstSteal*100)
	measured := fmt.Sprintf("%.2f fps (%d windows; worst second %.2f)", minW, len(r.windowed), r.min1)
	if r.stolen > 0 {
		measured += fmt.Sprintf("; %d windows not judged, CPU steal > %.0f%% (worst %.0f%%)", r.stolen, maxSteal*100, r.worstSteal*100)
	}
	if !judged {
		measured += fmt.Sprintf("; fewer than %d windows judged: the host's CPU steal left nothing to judge", minJudged)
	}
	c.check("producer frame rate while consumers are hurt (worst 2 s window)", judged && minW >= minFPSRatio*nominalFPS,
		measured, fmt.Sprintf("≥ %.1f fps (95%%)", minFPSRatio*nominalFPS))
}

// checkLeaks: no fd growth in the long-lived processes, RSS within 10% of
// its warm-up value.
func (c *chaos) checkLeaks() {
	g := c.g
	require.Equal(c.t, c.prodPID, g.Proc("producer").PID, "the producer was not restarted after its baseline")
	// The pool grows lazily (consumers stopped with frames in hand): each
	// surface it gained is a legitimate fd.
	var supFD, prodFD, pool int
	fdsOK := func() bool {
		supFD, prodFD, pool = sysinfo.FDCount(c.supPID), sysinfo.FDCount(c.prodPID), c.poolSurfaces()
		return supFD <= c.supFD0+fdSlackSupervisor && prodFD <= c.prodFD0+fdsPerSurface*max(0, pool-c.pool0)+fdSlackProducer
	}
	ok := testutil.Poll(15*time.Second, 200*time.Millisecond, fdsOK)
	c.check("supervisor fds", supFD <= c.supFD0+fdSlackSupervisor,
		fmt.Sprintf("%d (after warm-up %d)", supFD, c.supFD0), fmt.Sprintf("≤ %d + %d", c.supFD0, fdSlackSupervisor))
	c.check("producer fds", ok, fmt.Sprintf("%d (after warm-up %d; pool %d → %d surfaces)", prodFD, c.prodFD0, c.pool0, pool),
		fmt.Sprintf("≤ %d + %d per surface gained + %d", c.prodFD0, fdsPerSurface, fdSlackProducer))
	for _, p := range []struct {
		name      string
		pid, rss0 int
	}{{"supervisor", c.supPID, c.supRSS0}, {"producer", c.prodPID, c.prodRSS0}} {
		rss := int(sysinfo.RSSKiB(p.pid))
		limit := int(float64(p.rss0)*rssRatio) + rssSlackKiB
		c.check(p.name+" RSS", rss <= limit, fmt.Sprintf("%.1f MiB (after warm-up %.1f MiB)", mib(rss), mib(p.rss0)),
			fmt.Sprintf("≤ %.1f MiB (+10%% + %d MiB)", mib(limit), rssSlackKiB>>10))
	}

	// The consumers are restarted by the faults: each one's longest-lived
	// pid, fds at its end vs 5 s into its life.
	for _, name := range grouptest.Consumers() {
		first, last, ok := longestLife(c.mon.snapshot(), name)
		if !ok {
			continue
		}
		f0, f1 := first.fds[name], last.fds[name]
		c.check(name+" fds over its longest life", f1 <= f0+fdSlackConsumer,
			fmt.Sprintf("%d → %d over %v (RSS %.1f → %.1f MiB)", f0, f1, last.at.Sub(first.at).Round(time.Second), mib(first.rss[name]), mib(last.rss[name])),
			fmt.Sprintf("≤ %d + %d", f0, fdSlackConsumer))
	}
}

// longestLife returns the samples 5 s after the start and at the end of
// the longest run of samples in which process name kept one pid.
func longestLife(ss []sample, name string) (first, last sample, ok bool) {
	pidOf := func(s sample) int {
		if s.fds[name] <= 0 {
			return 0
		}
		return s.pids[name]
	}
	best, bestLen := -1, 0
	for i := 0; i < len(ss); {
		j := i
		for j < len(ss) && pidOf(ss[j]) != 0 && pidOf(ss[j]) == pidOf(ss[i]) {
			j++
		}
		if j-i > bestLen {
			best, bestLen = i, j-i
		}
		i = max(j, i+1)
	}
	if bestLen < 10 {
		return sample{}, sample{}, false
	}
	return ss[best+5], ss[best+bestLen-1], true
}

func mib(kib int) float64 { return float64(kib) / 1024 }

// checkLeasesWithinBudgets: with every consumer connected and idle, each
// holds at most its budget and the producer's lease count agrees.
func (c *chaos) checkLeasesWithinBudgets() {
	worst := ""
	for i := 0; i < 5; i++ {
		ss, ok := c.g.Sessions()
		require.True(c.t, ok, "/consumers")
		ms, err := c.g.Scrape(c.g.ProdAdmin)
		require.NoError(c.t, err)
		leases, found := ms.Sum("framehub_producer_leases", nil)
		require.True(c.t, found, "framehub_producer_leases")
		budget, inFlight := 0, 0
		for _, s := range ss {
			budget += s.Budget
			inFlight += s.InFlight
			require.LessOrEqual(c.t, s.InFlight, s.Budget, "session %s (pid %d) holds more than its budget", s.Name, s.PID)
		}
		require.LessOrEqual(c.t, leases, float64(budget), "leases %v > sum of budgets %d (sessions %+v)", leases, budget, ss)
		worst = fmt.Sprintf("%.0f leases (%d in flight), %d sessions, sum of budgets %d", leases, inFlight, len(ss), budget)
		time.Sleep(200 * time.Millisecond)
	}
	c.check("leases of the connected consumers (5 reads)", true, worst, "each session ≤ its budget")
}

// checkIdlePool stops every consumer (the supervisor frozen so that it does
// not restart them): the producer's lease tables empty and every surface
// goes back to its pool.
func (c *chaos) checkIdlePool() {
	g := c.g
	var victims []int
	for _, name := range grouptest.Consumers() {
		p := g.Proc(name)
		require.NotZero(c.t, p.PID, name)
		victims = append(victims, p.PID)
	}
	restarts := map[string]int{}
	for _, p := range g.Status() {
		restarts[p.Name] = p.Restarts
	}
	for _, name := range append(grouptest.Consumers(), "producer") {
		c.check(name+" restarts", restarts[name] == c.counts["kill9-"+name], fmt.Sprintf("%d", restarts[name]),
			fmt.Sprintf("= its kill -9 faults (%d): no crash of its own", c.counts["kill9-"+name]))
	}
	require.NoError(c.t, g.Sup.Process.Signal(syscall.SIGSTOP))
	defer func() { _ = g.Sup.Process.Signal(syscall.SIGCONT) }()
	t0 := time.Now()
	for _, pid := range victims {
		require.NoError(c.t, syscall.Kill(pid, syscall.SIGKILL))
	}
	var sessions int
	var leases, held, inUse, slabs float64
	ok := testutil.Poll(15*time.Second, 200*time.Millisecond, func() bool {
		ss, ok := g.Sessions()
		ms, err := g.Scrape(g.ProdAdmin)
		if !ok || err != nil {
			return false
		}
		sessions = len(ss)
		leases, _ = ms.Sum("framehub_producer_leases", nil)
		held, _ = ms.Sum("framehub_producer_held_buffers", nil)
		inUse, _ = ms.Sum("framehub_producer_pool_surfaces", map[string]string{"stream": "raw", "state": "in_use"})
		slabs, _ = ms.Sum("framehub_producer_pool_surfaces", map[string]string{"stream": "h264", "state": "in_use"})
		return sessions == 0 && leases == 0 && held == 0 && inUse == 0
	})
	c.check("idle: sessions and leases after all consumers stopped", ok && sessions == 0 && leases == 0,
		fmt.Sprintf("%d sessions, %.0f leases, %v after the kill", sessions, leases, time.Since(t0).Round(time.Millisecond)), "0 and 0")
	c.check("idle: surfaces back in the pool", ok && held == 0 && inUse == 0,
		fmt.Sprintf("%.0f GStreamer buffers held, %.0f raw surfaces in use (h264 replay slabs in use: %.0f)", held, inUse, slabs), "0 and 0")
	require.NoError(c.t, g.Sup.Process.Signal(syscall.SIGCONT))
	require.Eventually(c.t, g.AllReady, 30*time.Second, 100*time.Millisecond, "group back after the consumers stopped")
	if down := time.Since(t0); down > replayWindow {
		c.allowHoles(t0, time.Now().Add(3*time.Second), "recorder down beyond the replay window")
	}
}

// checkRecording: every closed segment plays; the recording has holes only
// inside a fault window that explains them, each logged by the recorder,
// and no capture time recorded twice.
func (c *chaos) checkRecording() {
	g := c.g
	// The recorder is back (checkIdlePool): let it write a fragment (its
	// write histogram counts one per fragment).
	const written = "framehub_recorder_write_seconds"
	w0 := c.recorderCounter(written, nil)
	require.True(c.t, testutil.Poll(30*time.Second, 200*time.Millisecond, func() bool { return c.recorderCounter(written, nil) > w0 }),
		"the recorder wrote no fragment within 30 s after the faults")
	c.stopTracker()
	c.tracker.scan()
	spans, checked := c.tracker.result()
	require.NotEmpty(c.t, checked, "no closed recording segment")
	var bad []string
	for p, err := range checked {
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", p, err))
			c.t.Logf("segment does not play: %s: %v", p, err)
		}
	}
	c.tracker.mu.Lock()
	c.rec.vanished = c.tracker.vanished
	c.tracker.mu.Unlock()
	c.rec.segments, c.rec.played = len(checked), len(checked)-len(bad)
	measured := fmt.Sprintf("%d of %d (%d more deleted by the recorder while being checked)", len(checked)-len(bad), len(checked), c.rec.vanished)
	if len(bad) > 0 {
		slices.Sort(bad)
		measured += "; " + strings.Join(bad[:min(len(bad), 3)], "; ")
	}
	c.check("every closed segment plays (gst-discoverer + avdec_h264, checked as they close)", len(bad) == 0, measured, "all")
	require.NotEmpty(c.t, spans)
	c.rec.spans = len(spans)
	for _, s := range spans {
		c.rec.covered += s.to.Sub(s.from)
	}
	c.rec.wall = spans[len(spans)-1].to.Sub(spans[0].from)
	logs, err := childLog(g.LogPath(), "recorder")
	require.NoError(c.t, err)
	deleted, err := deletedSegments(g.LogPath())
	require.NoError(c.t, err)
	var unexplained, twice, unlogged []string
	for _, h := range holes(spans, holeTolerance) {
		var causes []string
		for _, w := range c.holeOK {
			if h.from.Before(w.to) && h.to.After(w.from) && !slices.Contains(causes, w.why) {
				causes = append(causes, w.why)
			}
		}
		// The tracker reads a segment being written every few seconds; when
		// the recorder deletes it right after closing it (a full disk frees
		// space by deleting the oldest segments, often all of them), the
		// fragments written since the last read were recorded, then deleted:
		// the deletion, which the recorder logged, explains the hole. When
		// it deleted the following segments too before the tracker read
		// them, the hole spans those as well.
		if reason, ok := deleted[strings.TrimSuffix(h.after, ".part")]; ok &&
			h.to.Sub(h.from) <= time.Duration(1+deletedWithin(deleted, h.from, h.to))*segmentLen+holeTolerance {
			causes = append(causes, "tail of a segment the recorder deleted ("+reason+")")
			h.logged = true
		}
		h.cause = strings.Join(causes, " / ")
		for _, l := range logs {
			if !l.at.Before(h.from.Add(-2*time.Second)) && !l.at.After(h.to.Add(10*time.Second)) {
				h.logged = true
				break
			}
		}
		desc := fmt.Sprintf("%s +%v", h.from.Format("15:04:05.000"), h.to.Sub(h.from).Round(time.Millisecond))
		for _, l := range logs {
			if !l.at.Before(h.from.Add(-2*time.Second)) && !l.at.After(h.to.Add(10*time.Second)) {
				c.t.Logf("hole %s (%s): recorder: %s", desc, h.cause, l.text)
			}
		}
		switch {
		case h.overlap:
			twice = append(twice, desc)
		case h.cause == "":
			unexplained = append(unexplained, desc)
		case !h.logged:
			unlogged = append(unlogged, desc)
		}
		c.rec.holes = append(c.rec.holes, h)
	}
	c.t.Logf("recording: %d closed segments, %d fragments, %v of capture time over %v, %d holes", len(checked), len(spans),
		c.rec.covered.Round(time.Second), c.rec.wall.Round(time.Second), len(c.rec.holes))
	c.check("no capture time recorded twice", len(twice) == 0, orNone(twice), "none")
	c.check("holes only in fault windows (producer restart, disk full, stall, recorder down > replay window)",
		len(unexplained) == 0, orNone(unexplained), "none outside")
	c.check("each hole logged by the recorder", len(unlogged) == 0, orNone(unlogged), "all logged")
}

func orNone(ss []string) string {
	if len(ss) == 0 {
		return "none"
	}
	return strings.Join(ss, "; ")
}
