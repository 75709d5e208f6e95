package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/framehub/framehub/internal/chart"
	"github.com/framehub/framehub/internal/sysinfo"
)

// writeReport writes the soak report (Markdown) to out and its charts to
// out's directory/soak/. It runs at the end of the test, passed or failed.
func (c *chaos) writeReport(out string) error {
	dir := filepath.Join(filepath.Dir(out), "soak")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	samples := c.mon.snapshot()
	if len(samples) == 0 {
		return fmt.Errorf("no samples: the group never ran")
	}
	origin := samples[0].at
	if !c.start.IsZero() {
		origin = c.start
	}
	minutes := func(t time.Time) float64 { return t.Sub(origin).Minutes() }
	var bands []chart.Band
	for _, e := range c.events {
		switch e.name {
		case "kill9-producer", "disk-full", "storage-stall":
			bands = append(bands, chart.Band{From: minutes(e.from), To: minutes(e.to), Label: e.name + ": " + e.note})
		}
	}
	fps := chart.Series{Name: "producer raw fps"}
	leases := chart.Series{Name: "live leases"}
	held := chart.Series{Name: "GStreamer buffers held"}
	rss := map[string]*chart.Series{}
	procs := []string{"supervisor", "producer", "recorder", "streamer", "snapshot"}
	for _, p := range procs {
		rss[p] = &chart.Series{Name: p}
	}
	for i, s := range samples {
		x := minutes(s.at)
		if i > 0 {
			a := samples[i-1]
			if a.ok && s.ok && a.pid == s.pid && s.frames >= a.frames {
				fps.X, fps.Y = append(fps.X, x), append(fps.Y, (s.frames-a.frames)/s.at.Sub(a.at).Seconds())
			}
		}
		if s.ok {
			leases.X, leases.Y = append(leases.X, x), append(leases.Y, s.leases)
			held.X, held.Y = append(held.X, x), append(held.Y, s.held)
		}
		for _, p := range procs {
			if v, ok := s.rss[p]; ok && v > 0 {
				rss[p].X, rss[p].Y = append(rss[p].X, x), append(rss[p].Y, mib(v))
			}
		}
	}
	xl := "minutes since the first fault"
	charts := []struct {
		file string
		svg  string
	}{
		{"soak-fps.svg", chart.Line(chart.Options{Title: "Producer frame rate (1 s samples)", XLabel: xl, YLabel: "frames/s",
			YMin: 0, YMax: 35, HLine: minFPSRatio * nominalFPS, HLineLabel: "95% of nominal", Bands: bands}, []chart.Series{fps})},
		{"soak-leases.svg", chart.Line(chart.Options{Title: "Producer leases and held buffers", XLabel: xl, YLabel: "count", Bands: bands},
			[]chart.Series{leases, held})},
		{"soak-rss.svg", chart.Line(chart.Options{Title: "Resident memory (VmRSS)", XLabel: xl, YLabel: "MiB", Bands: bands},
			[]chart.Series{*rss["supervisor"], *rss["producer"], *rss["recorder"], *rss["streamer"], *rss["snapshot"]})},
	}
	for _, ch := range charts {
		if err := os.WriteFile(filepath.Join(dir, ch.file), []byte(ch.svg), 0o644); err != nil {
			return err
		}
	}

	var w strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&w, format, a...) }
	result := "PASS"
	if c.t.Failed() {
		result = "FAIL"
	}
	p("# Soak: the supervised group under random faults\n\n")
	p("Written by `make soak DURATION=%v` (test/chaos, `FRAMEHUB_CHAOS=1 FRAMEHUB_CHAOS_DURATION=%v FRAMEHUB_CHAOS_SEED=%d go test -run TestChaos ./test/chaos` with FRAMEHUB_SOAK_REPORT) on %s.\n\n",
		c.duration, c.duration, c.seed, origin.Format("2006-01-02 15:04 MST"))
	p("**Result: %s.** Seed %d (FRAMEHUB_CHAOS_SEED reproduces the order and timing of the faults); ", result, c.seed)
	if c.faultsEnd.IsZero() { // a failed check stopped the faults
		p("%v of faults planned, stopped by the failure after %v.\n\n", c.duration, time.Since(c.start).Round(time.Second))
	} else {
		p("%v of faults (%v measured), then the end-of-run checks.\n\n", c.duration, c.faultsEnd.Sub(c.start).Round(time.Second))
	}
	p("Machine: %s. The group: framehub-supervisor running the producer (GStreamer test source 640×360 at %d fps, x264enc,\n", sysinfo.Summary(), nominalFPS)
	p("GOP 1 s, H.264 replay buffer %v), the recorder (5 s segments, keep %s, on a %d MiB ext4 loop filesystem), the RTSP\n", replayWindow, keepBytes, diskSize>>20)
	p("streamer and the snapshot service, restart back-off 200 ms to 2 s. Samples every second: the producer's metrics, VmRSS and\n")
	p("open fds of every process. The frame-rate check skips a 2 s window in which the hypervisor took more than %.0f%%\n", maxSteal*100)
	p("of the machine's CPU time (`/proc/stat` steal): this run, %d window(s) skipped (worst %.0f%%), %d judged.",
		c.rates.stolen, c.rates.worstSteal*100, len(c.rates.windowed))
	if c.diskSkipped != "" {
		p(" **No disk faults in this run:** %s.", c.diskSkipped)
	}
	p("\n\n")

	p("## Checks\n\n| check | measured | limit | |\n|---|---|---|---|\n")
	for _, ck := range c.checks {
		mark := "ok"
		if !ck.ok {
			mark = "**FAILED**"
		}
		p("| %s | %s | %s | %s |\n", ck.name, ck.measured, ck.limit, mark)
	}
	p("\n")

	p("## Faults\n\n| fault | count | what happened (median, last) |\n|---|---|---|\n")
	names := make([]string, 0, len(c.counts))
	for n := range c.counts {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		var ds []time.Duration
		last := ""
		for _, e := range c.events {
			if e.name == n {
				ds = append(ds, e.to.Sub(e.from))
				last = e.note
			}
		}
		p("| %s | %d | took %v; last: %s |\n", n, c.counts[n], median(ds).Round(time.Millisecond), last)
	}
	p("\n")

	p("## Timings\n\n| what | n | median | max |\n|---|---|---|---|\n")
	tnames := make([]string, 0, len(c.timings))
	for n := range c.timings {
		tnames = append(tnames, n)
	}
	slices.Sort(tnames)
	for _, n := range tnames {
		ds := c.timings[n]
		p("| %s | %d | %v | %v |\n", n, len(ds), median(ds).Round(time.Millisecond), slices.Max(ds).Round(time.Millisecond))
	}
	p("\n")

	p("## Processes\n\nFor each process, its longest-lived pid: fds and VmRSS 5 s into that life and at its end (consumers are\n")
	p("restarted by the faults; the supervisor and, after its last restart, the producer live through).\n\n")
	p("| process | lived | fds | VmRSS (MiB) | max VmRSS (MiB) |\n|---|---|---|---|---|\n")
	for _, name := range procs {
		first, last, ok := longestLife(samples, name)
		if !ok {
			continue
		}
		peak := 0
		for _, s := range samples {
			if s.pids[name] == last.pids[name] {
				peak = max(peak, s.rss[name])
			}
		}
		p("| %s | %v | %d → %d | %.1f → %.1f | %.1f |\n", name, last.at.Sub(first.at).Round(time.Second),
			first.fds[name], last.fds[name], mib(first.rss[name]), mib(last.rss[name]), mib(peak))
	}
	p("\n")

	if c.rec.spans > 0 {
		p("## Recording\n\n%d closed segments (%d play), %d fragments; %v of capture time recorded over %v (%.2f%%).\n\n",
			c.rec.segments, c.rec.played, c.rec.spans, c.rec.covered.Round(time.Second), c.rec.wall.Round(time.Second),
			100*c.rec.covered.Seconds()/max(c.rec.wall.Seconds(), 1e-9))
		if len(c.rec.holes) == 0 {
			p("No hole.\n\n")
		} else {
			p("| hole at | length | fault window | logged by the recorder |\n|---|---|---|---|\n")
			for _, h := range c.rec.holes {
				cause := h.cause
				if h.overlap {
					cause = "**recorded twice**"
				} else if cause == "" {
					cause = "**none**"
				}
				p("| %s | %v | %s | %v |\n", h.from.Format("15:04:05.000"), h.to.Sub(h.from).Round(time.Millisecond), cause, h.logged)
			}
			p("\n")
		}
	}

	p("## Charts\n\nShaded: producer kills, full disk and storage stalls.\n\n")
	for _, ch := range charts {
		p("![%s](soak/%s)\n\n", strings.TrimSuffix(ch.file, ".svg"), ch.file)
	}
	return os.WriteFile(out, []byte(w.String()), 0o644)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
