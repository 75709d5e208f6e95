package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/framehub/framehub/internal/chart"
	"github.com/framehub/framehub/internal/sysinfo"
)

// usPerFrame converts % of one core at 30 fps to µs per frame.
func usPerFrame(pct float64) float64 { return pct / 100 * 1e6 / fps }

type stats struct {
	prod, total, perCons, cons, fps, frames, drops, p50, p99 float64
	latency                                                  bool
}

func summarize(res *results, sys string, n int) stats {
	var prod, total, cons, fpsv, frames, drops, p50, p99 []float64
	var st stats
	for _, r := range res.Runs {
		if r.System != sys || r.N != n {
			continue
		}
		prod, total = append(prod, r.ProdCPU), append(total, r.TotalCPU)
		for _, c := range r.Consumers {
			cons, fpsv, frames, drops = append(cons, c.CPUPct), append(fpsv, c.FPS), append(frames, c.Frames), append(drops, c.Dropped)
			if c.P99 > 0 {
				p50, p99 = append(p50, c.P50), append(p99, c.P99)
				st.latency = true
			}
		}
	}
	st.prod, st.total, st.cons = median(prod), median(total), median(cons)
	st.fps, st.frames, st.drops, st.p50, st.p99 = median(fpsv), median(frames), median(drops), median(p50), median(p99)
	return st
}

// measured is the numbers of consumers the runs had, 0 included.
func (res *results) measured() []int {
	if len(res.Consumers) == 0 { // results from before -consumers
		return []int{0, 1, 3, 6}
	}
	return res.Consumers
}

// counts is measured without 0: the rows and columns of the tables.
func (res *results) counts() []int {
	return slices.DeleteFunc(slices.Clone(res.measured()), func(n int) bool { return n == 0 })
}

// nList writes ns as "1, 3, 6" (sep ", ") or "1 / 3 / 6" (sep " / ").
func nList(ns []int, sep string) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, sep)
}

// overhead is (total CPU with n consumers − producer alone) / n, % of a core.
func overhead(res *results, sys string, n int) float64 {
	return (summarize(res, sys, n).total - summarize(res, sys, 0).total) / float64(n)
}

// slope fits y = a + b·x by least squares and returns b and its standard
// error (0 when there are too few points).
func slope(x, y []float64) (b, se float64) {
	n := float64(len(x))
	if len(x) < 3 {
		return 0, 0
	}
	var mx, my float64
	for i := range x {
		mx, my = mx+x[i]/n, my+y[i]/n
	}
	var sxx, sxy float64
	for i := range x {
		sxx += (x[i] - mx) * (x[i] - mx)
		sxy += (x[i] - mx) * (y[i] - my)
	}
	if sxx == 0 {
		return 0, 0
	}
	b = sxy / sxx
	var rss float64
	for i := range x {
		r := y[i] - (my + b*(x[i]-mx))
		rss += r * r
	}
	return b, math.Sqrt(rss / (n - 2) / sxx)
}

// perConsumer is the slope of total CPU against N over every run of sys
// (every N, all repeats): the cost of one more consumer, % of a
// core, using all the runs at once rather than one difference of medians.
func perConsumer(res *results, sys string) (b, se float64) {
	return cpuSlope(res, sys, func(r run) float64 { return r.TotalCPU })
}

// producerPerConsumer is the slope of the producer's CPU alone against N:
// the producer's share of the cost of one more consumer.
func producerPerConsumer(res *results, sys string) (b, se float64) {
	return cpuSlope(res, sys, func(r run) float64 { return r.ProdCPU })
}

// cpuSlope fits cpu(run) against N over every run of sys.
func cpuSlope(res *results, sys string, cpu func(run) float64) (b, se float64) {
	var x, y []float64
	for _, r := range res.Runs {
		if r.System == sys {
			x, y = append(x, float64(r.N)), append(y, cpu(r))
		}
	}
	return slope(x, y)
}

type hangSummary struct {
	before, minFPS, medFPS, prodBefore, prodAfter float64
	rssGrowth, rssLate                            int64 // stop → end; 2nd second after the stop → end
	cpuBefore                                     float64
	states                                        []string
	// VmRSS slopes (kB/s): before the stop, and from the 3rd second after it
	// (past the one-off step of replacing the hung consumer's surfaces).
	rssSlopeBefore, rssSlopeAfter float64
	rssStep                       int64     // kB, stop → 3rd second after
	pre                           []float64 // like series, the seconds before the stop
	series                        []float64 // median over repeats of the healthy consumers' mean fps, per second
}

func summarizeHang(res *results, sys string) hangSummary {
	var h hangSummary
	var before, all, prodCPU, growth, late, cpuBefore []float64
	var perSec [][]float64
	for _, r := range res.Hangs {
		if r.System != sys {
			continue
		}
		before = append(before, r.BeforeFPS...)
		for i, f := range r.HealthyFPS {
			all = append(all, f...)
			for len(perSec) <= i {
				perSec = append(perSec, nil)
			}
			var m float64
			for _, v := range f {
				m += v / float64(len(f))
			}
			perSec[i] = append(perSec[i], m)
		}
		prodCPU = append(prodCPU, r.ProdCPU...)
		growth = append(growth, float64(r.RSSAfter-r.RSSBefore))
		cpuBefore = append(cpuBefore, r.CPUBefore)
		if len(r.RSS) > 2 {
			late = append(late, float64(r.RSS[len(r.RSS)-1]-r.RSS[1]))
		}
		h.states = append(h.states, r.ProdState)
	}
	h.rssLate, h.cpuBefore = int64(median(late)), median(cpuBefore)
	h.before, h.medFPS, h.prodAfter, h.rssGrowth = median(before), median(all), median(prodCPU), int64(median(growth))
	if len(all) > 0 {
		h.minFPS = all[0]
		for _, v := range all {
			h.minFPS = min(h.minFPS, v)
		}
	}
	// Skip the first second after the stop: it holds frames sent before it.
	if len(all) > 0 {
		var rest []float64
		for _, r := range res.Hangs {
			if r.System == sys && len(r.HealthyFPS) > 1 {
				for _, f := range r.HealthyFPS[1:] {
					rest = append(rest, f...)
				}
			}
		}
		if len(rest) > 0 {
			h.minFPS = rest[0]
			for _, v := range rest {
				h.minFPS = min(h.minFPS, v)
			}
		}
	}
	for _, v := range perSec {
		h.series = append(h.series, median(v))
	}
	var slBefore, slAfter, steps []float64
	var pre [][]float64
	for _, r := range res.Hangs {
		if r.System != sys {
			continue
		}
		for i, f := range r.PreFPS {
			for len(pre) <= i {
				pre = append(pre, nil)
			}
			var m float64
			for _, v := range f {
				m += v / float64(len(f))
			}
			pre[i] = append(pre[i], m)
		}
		if b, _ := slope(seconds(len(r.PreRSS)), floats(r.PreRSS)); len(r.PreRSS) >= 3 {
			slBefore = append(slBefore, b)
		}
		if len(r.RSS) > 5 {
			late := r.RSS[2:]
			b, _ := slope(seconds(len(late)), floats(late))
			slAfter = append(slAfter, b)
			steps = append(steps, float64(r.RSS[2]-r.RSSBefore))
		}
	}
	for _, v := range pre {
		h.pre = append(h.pre, median(v))
	}
	h.rssSlopeBefore, h.rssSlopeAfter, h.rssStep = median(slBefore), median(slAfter), int64(median(steps))
	return h
}

func writeReport(res *results, out string) error {
	dir := filepath.Dir(out)
	base := strings.TrimSuffix(filepath.Base(out), filepath.Ext(out))
	ovName, hangName, latName := base+"-overhead.svg", base+"-hang.svg", base+"-latency.svg"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var names []string
	for _, s := range res.Systems {
		names = append(names, s.Name)
	}
	ns := res.counts()
	var ov []chart.Series
	for _, s := range names {
		sr := chart.Series{Name: s}
		for _, n := range ns {
			sr.X, sr.Y = append(sr.X, float64(n)), append(sr.Y, usPerFrame(overhead(res, s, n)))
		}
		ov = append(ov, sr)
	}
	if err := os.WriteFile(filepath.Join(dir, ovName), []byte(chart.Line(chart.Options{Title: "Sharing overhead per consumer vs consumers",
		XLabel: "consumers", YLabel: "µs of CPU per frame per consumer", Markers: true, XTicksAtData: true}, ov)), 0o644); err != nil {
		return err
	}
	var hs []chart.Series
	for _, sys := range hangSystems(res.Systems) {
		s := sys.Name
		h := summarizeHang(res, s)
		sr := chart.Series{Name: s}
		for i, v := range h.pre {
			sr.X, sr.Y = append(sr.X, float64(i-len(h.pre)+1)), append(sr.Y, v)
		}
		for i, v := range h.series {
			sr.X, sr.Y = append(sr.X, float64(i+1)), append(sr.Y, v)
		}
		hs = append(hs, sr)
	}
	if len(res.Hangs) > 0 { // a -runs-only run has none (render says so)
		if err := os.WriteFile(filepath.Join(dir, hangName), []byte(chart.Line(chart.Options{Title: "Healthy consumers' frames/s around the SIGSTOP of one of 3 (t=0)",
			XLabel: "seconds from the SIGSTOP", YLabel: "frames/s (mean of the 2 healthy consumers)", HLine: 29.5, HLineLabel: "target 29.5",
			YMin: 0, YMax: 35, Bands: []chart.Band{{From: 0, To: 0, Label: "SIGSTOP"}}, BandLegend: "SIGSTOP"}, hs)), 0o644); err != nil {
			return err
		}
	}
	var ls []chart.Series
	if sr, ok := latencyCDF(res.Latency, "delivery, N=3"); ok {
		ls = append(ls, sr)
	}
	for _, n := range res.counts() {
		var rs []run
		for _, r := range res.Runs {
			if r.System == "framehub" && r.N == n {
				rs = append(rs, r)
			}
		}
		if sr, ok := latencyCDF(rs, fmt.Sprintf("capture→recv, N=%d", n)); ok {
			ls = append(ls, sr)
		}
	}
	if len(ls) > 0 {
		if err := os.WriteFile(filepath.Join(dir, latName), []byte(chart.Line(chart.Options{Title: "Delivery latency distribution, 1080p30 (median over consumers and runs)",
			XLabel: "latency (µs, log scale)", YLabel: "percentile", XLog: true, YMin: 0, YMax: 100}, ls)), 0o644); err != nil {
			return err
		}
	} else {
		latName = "" // results from before the consumer reported its distribution
	}
	return os.WriteFile(out, []byte(render(res, ovName, hangName, latName)), 0o644)
}

// latencyCDF is the distribution of the consumers' latency in runs: at each
// quantile the median over consumers and runs, as percentile (Y) against
// latency (X). The maximum is left out: on a shared machine it is whatever
// else ran, once.
func latencyCDF(runs []run, name string) (chart.Series, bool) {
	var q []float64
	var at [][]float64
	for _, r := range runs {
		for _, c := range r.Consumers {
			if len(c.CDF) == 0 || len(c.CDF) != len(c.CDFQ) {
				continue
			}
			if q == nil {
				q, at = c.CDFQ, make([][]float64, len(c.CDFQ))
			}
			for i := range min(len(q), len(c.CDF)) {
				at[i] = append(at[i], c.CDF[i])
			}
		}
	}
	sr := chart.Series{Name: name}
	for i := range q {
		if q[i] < 1 {
			sr.X, sr.Y = append(sr.X, median(at[i])), append(sr.Y, q[i]*100)
		}
	}
	return sr, len(sr.X) > 0
}

func render(res *results, ovName, hangName, latName string) string {
	var w strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&w, format, a...) }
	p("# framehub vs GStreamer shared memory: cost of sharing frames (issue 9)\n\n")
	if res.Window < 30e9 || res.Repeats < 3 {
		p("> **Short validation run** (window %v, %d repeat(s)): not the benchmark's figures.\n\n", res.Window, res.Repeats)
	}
	p("Produced by `%s` on %s. 1920×1080 NV12 at 30 fps; every figure is the median over %d repeat(s) (and over\n",
		res.Command, res.When.Format("2006-01-02 15:04 MST"), res.Repeats)
	p("consumers within a run); all configurations ran interleaved in one invocation. Window %v after %v of warm-up.\n", res.Window, res.Warmup)
	if res.raw == "" || res.raw == defaultResults {
		p("Raw results: `bench/peers/results.json` (`go run ./bench/peers -from` renders this file from it).\n\n")
	} else {
		p("Raw results: `%s` (`go run ./bench/peers -from -results %s -out FILE` renders this file from it).\n\n", res.raw, res.raw)
	}
	p("## Machine\n\n%s\n", res.Machine)
	renderHost(p, res)
	p("## Systems\n\n")
	for _, s := range res.Systems {
		p("- **%s**: producer `%s`; each consumer `%s`.\n", s.Name, s.Producer, s.Consumer)
	}
	p("- **unixfdsink/unixfdsrc**: ")
	if strings.HasPrefix(res.UnixFD, "available") {
		p("measured (above).\n")
	} else {
		p("skipped: %s.\n", res.UnixFD)
	}
	if res.FramehubSrc != "" && res.FramehubSrc != "available" {
		p("- **framehubsrc**: skipped: %s.\n", res.FramehubSrc)
	}
	p("\nP is a fresh socket path per run. `shmsink` copies each frame once into its shared-memory area unless the\n")
	p("upstream buffer already lives there (videotestsrc allocates from shmsink's pool); `shmsink+copy` puts\n")
	p("`identity drop-allocation=true` before it, which forces that copy. ")
	if gstCounted(res) {
		p("GStreamer consumers end in `fakesink` and run under\n")
		p("bench/gstcount, which counts the buffers reaching the sink with a pad probe and prints the count every 500 ms\n")
		p("(the window's frame count is exact to ±15 frames; fpsdisplaysink, which counted frames in runs before 2026-12-06,\n")
		p("costs 18–20 µs per frame more than `fakesink`); ")
	} else {
		p("GStreamer consumers count frames with\n")
		p("fpsdisplaysink's `rendered` counter (printed by `-v` every 500 ms: the window's frame count is exact to ±15 frames;\n")
		p("fpsdisplaysink costs 18–20 µs per frame more than the issue's `fakesink`, measured side by side on 2026-12-06);\n")
	}
	p("framehub consumers (bench/consumer) read one byte per row of each plane and report latency from the frame's\n")
	p("capture time to receipt. With `-source test` the capture time is the GStreamer buffer's running time mapped to\n")
	p("`CLOCK_MONOTONIC`, so this latency includes videotestsrc rendering the frame and the pipeline before framehub\n")
	p("publishes it: it is an upper bound on delivery, not the transport alone (bench/transport measures publish →\n")
	p("receipt with the synthetic source). GStreamer consumers do not touch the pixels and have no latency figure.\n")
	p("CPU is `/proc/PID/task/*/schedstat` (field 1, ns) summed over threads, sampled at window start and end, for\n")
	p("every process (gst-launch included), in %% of one core. **Overhead per consumer** = (total CPU with N −\n")
	p("producer alone) / N, also in µs per frame (at 30 fps, 1%% of a core = 333 µs per frame).\n\n")

	p("## Results\n\n")
	p("| system | N | producer CPU | consumer CPU (each) | total CPU | **overhead per consumer** | fps per consumer | frames per consumer | drops per consumer | latency p50 / p99 |\n")
	p("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range res.Systems {
		a := summarize(res, s.Name, 0)
		p("| %s | alone | %.1f%% | – | %.1f%% | – | – | – | – | – |\n", s.Name, a.prod, a.total)
		for _, n := range res.counts() {
			st := summarize(res, s.Name, n)
			o := overhead(res, s.Name, n)
			lat := "n/a"
			if st.latency {
				lat = fmt.Sprintf("%.0f / %.0f µs", st.p50, st.p99)
			}
			p("| %s | %d | %.1f%% | %.1f%% | %.1f%% | **%.2f%% (%.0f µs/frame)** | %.2f | %.0f | %.0f | %s |\n",
				s.Name, n, st.prod, st.cons, st.total, o, usPerFrame(o), st.fps, st.frames, st.drops, lat)
		}
	}
	p("\n![overhead per consumer vs N](%s)\n\n", ovName)
	if latName != "" {
		p("![latency distribution](%s)\n\n", latName)
		p("The latency chart: each framehub consumer's latency at the 0–99.9th percentiles, median over consumers and runs.\n")
		p("\"delivery\" is publish → receipt (the synthetic source stamps each frame as it publishes it: the transport\n")
		p("alone); \"capture→recv\" is capture → receipt with the videotestsrc source, which adds rendering the 3 MB\n")
		p("frame and the GStreamer pipeline in front of framehub.\n\n")
	}
	p("**Cost of one more consumer, all runs at once.** Each overhead above is a difference of two medians of a\n")
	p("producer's CPU, which videotestsrc's own cost makes noisy at this scale. The slope of total CPU against N fitted\n")
	p("by least squares over every run (N = %s, all repeats) uses all %d runs of a system and gives its error:\n\n",
		nList(res.measured(), ", "), len(res.measured())*res.Repeats)
	p("| system | CPU per added consumer (slope ± standard error) | µs per frame |\n|---|---|---|\n")
	for _, s := range res.Systems {
		b, se := perConsumer(res, s.Name)
		p("| %s | %.2f%% ± %.2f%% of a core | %.0f ± %.0f |\n", s.Name, b, se, usPerFrame(b), usPerFrame(se))
	}
	p("\n")
	renderGstConsumer(p, res)

	p("## Hung consumer\n\n")
	if len(res.Hangs) == 0 {
		p("Not measured in this run (`-runs-only`).\n\n")
		renderBeforeAfter(p, res)
		renderFloor(p, res)
		p("## Targets\n\nNot judged: a `-runs-only` run measures only the cost tables above.\n")
		return w.String()
	}
	p("3 consumers; after %v one is SIGSTOPped (never resumed); the other two are watched for %v, per second.\n", res.HangAfter, res.HangWindow)
	p("framehub's consumers here are `peers -consume` (the same SDK receive loop and pixel reads as bench/consumer,\n")
	p("printing a running count). Producer RSS is `VmRSS` from `/proc/PID/status` just before the stop and at the end.\n\n")
	p("| system | healthy fps before | healthy fps after (median) | worst second after (from 2nd s) | producer CPU before → after | producer RSS: step at the stop; slope before → after | blocked? | producer state at end |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range hangSystems(res.Systems) {
		h := summarizeHang(res, s.Name)
		p("| %s | %.1f | %.1f | %.1f | %.1f%% → %.1f%% | %+d kB; %+.0f → %+.0f kB/s | %s | %s |\n", s.Name, h.before, h.medFPS, h.minFPS,
			h.cpuBefore, h.prodAfter, h.rssStep, h.rssSlopeBefore, h.rssSlopeAfter, yesNo(h.blocked()), strings.Join(h.states, "; "))
	}
	p("\nThe step is VmRSS 2 s after the stop minus just before it; the slopes are least-squares fits of VmRSS per second\n")
	p("over the %d seconds before the stop and from the 3rd second after it to the end (medians over repeats).\n", int(res.HangAfter/1e9)-1)
	p("\n![healthy consumers' frames/s after the hang](%s)\n\n", hangName)

	renderBeforeAfter(p, res)
	renderFloor(p, res)
	if !hasSystem(res, "framehub") || !hasSystem(res, "shmsink") {
		p("## Targets\n\nNot judged: the targets compare framehub with shmsink, and this run (`-systems`) measured not both.\n")
		return w.String()
	}
	p("## Targets\n\n| target | measured (median) | verdict |\n|---|---|---|\n")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	for _, n := range res.counts() {
		fh, sh := overhead(res, "framehub", n), overhead(res, "shmsink", n)
		p("| framehub overhead per consumer ≤ ½ of shmsink/shmsrc's, N=%d | framehub %.2f%% (%.0f µs/frame), shmsink %.2f%% (%.0f µs/frame): ratio %.2f | %s |\n",
			n, fh, usPerFrame(fh), sh, usPerFrame(sh), fh/sh, ratioVerdict(fh, sh))
	}
	fb, fse := perConsumer(res, "framehub")
	sb, sse := perConsumer(res, "shmsink")
	p("| framehub CPU per added consumer ≤ ½ of shmsink's, all runs (slope) | framehub %.2f%% ± %.2f%% (%.0f µs/frame), shmsink %.2f%% ± %.2f%% (%.0f µs/frame) | %s |\n",
		fb, fse, usPerFrame(fb), sb, sse, usPerFrame(sb), slopeVerdict(fb, fse, sb, sse))
	if hasSystem(res, "framehub-notouch") {
		for _, n := range res.counts() {
			fh, sh := overhead(res, "framehub-notouch", n), overhead(res, "shmsink", n)
			p("| like for like (neither reads pixels): framehub-notouch ≤ ½ of shmsink/shmsrc's, N=%d | framehub-notouch %.2f%% (%.0f µs/frame), shmsink %.2f%% (%.0f µs/frame): ratio %.2f | %s |\n",
				n, fh, usPerFrame(fh), sh, usPerFrame(sh), fh/sh, ratioVerdict(fh, sh))
		}
		nb, nse := perConsumer(res, "framehub-notouch")
		p("| like for like, all runs (slope) | framehub-notouch %.2f%% ± %.2f%% (%.0f µs/frame), shmsink %.2f%% ± %.2f%% (%.0f µs/frame) | %s |\n",
			nb, nse, usPerFrame(nb), sb, sse, usPerFrame(sb), slopeVerdict(nb, nse, sb, sse))
	}
	if hasSystem(res, "framehub-c") {
		cb, cse := perConsumer(res, "framehub-c")
		p("| like for like in C (a C consumer that reads no pixel, as shmsrc ! fakesink), all runs (slope) | framehub-c %.2f%% ± %.2f%% (%.0f µs/frame), shmsink %.2f%% ± %.2f%% (%.0f µs/frame) | %s |\n",
			cb, cse, usPerFrame(cb), sb, sse, usPerFrame(sb), slopeVerdict(cb, cse, sb, sse))
	}
	if hasFanout(res, 1) && hasSystem(res, "shmsink") {
		gb, gse := fanoutSlope(res, 1, "total_cpu_us_per_frame")
		cb, cse := fanoutSlope(res, 0, "total_cpu_us_per_frame")
		half := usPerFrame(sb) / 2
		p("| ½ of shmsink against the floor of one more consumer (bench/floor fanout: a C producer that only sends; consumers that only receive and release), all runs (slope) | Go consumers %.0f ± %.0f µs/frame, C consumers %.0f ± %.0f; ½ of shmsink %.0f µs/frame | %s |\n",
			gb, gse, cb, cse, half, fanoutVerdict(gb, gse, cb, cse, half))
	}
	if len(res.FloorPaced) > 0 {
		fl := floorMedian(res.FloorPaced, "consumer_cpu_us_per_msg")
		name, b, se := "framehub", fb, fse
		if hasSystem(res, "framehub-notouch") { // the floor reads no pixels either
			name = "framehub-notouch"
			b, se = perConsumer(res, name)
		}
		p("| framehub CPU per added consumer within 2× of the machine's floor | %s %.0f ± %.0f µs/frame (slope); floor: a C SEQPACKET + fd round trip every 33 ms costs its consumer %.0f µs per message (same run): ratio %.1f | %s |\n",
			name, usPerFrame(b), usPerFrame(se), fl, usPerFrame(b)/fl, floorVerdict(usPerFrame(b), usPerFrame(se), fl))
	} else {
		p("| framehub within 2× of the machine's floor | floor not measured: %s | – |\n", res.FloorErr)
	}
	h := summarizeHang(res, "framehub")
	blocked := h.blocked()
	p("| hung consumer: the others ≥ 29.5 fps | median %.1f fps, worst second %.1f fps | %s |\n", h.medFPS, h.minFPS, verdict(h.medFPS >= 29.5))
	p("| hung consumer: producer neither blocks nor grows | producer CPU %.1f%% → %.1f%% across the stop; RSS step %+d kB at the stop, then %+.0f kB/s (before the stop %+.0f kB/s); state %s | %s |\n",
		h.cpuBefore, h.prodAfter, h.rssStep, h.rssSlopeAfter, h.rssSlopeBefore, strings.Join(h.states, "; "),
		verdict(!blocked && h.rssSlopeAfter <= h.rssSlopeBefore+growSlack && h.rssStep <= stepLimitKB))
	var p50, p99 []float64
	for _, r := range res.Latency {
		for _, c := range r.Consumers {
			p50, p99 = append(p50, c.P50), append(p99, c.P99)
		}
	}
	if len(p99) > 0 {
		p("| delivery p99 ≤ 200 µs at N=3, 30 fps | publish → receipt (framehub-synthetic, %d runs × 3 consumers): p50 %.0f µs, p99 %.0f µs | %s |\n",
			len(res.Latency), median(p50), median(p99), verdict(median(p99) <= 200))
	}
	st := summarize(res, "framehub", 3)
	p("| (for reference) GStreamer capture → receipt at N=3 | p50 %.0f µs, p99 %.0f µs (includes videotestsrc's render) | – |\n", st.p50, st.p99)
	if len(res.IPCBound) > 0 && len(res.FloorRTT) > 0 {
		var rate []float64
		for _, r := range res.IPCBound {
			for _, c := range r.Consumers {
				rate = append(rate, c.FPS)
			}
		}
		fl := floorMedian(res.FloorRTT, "per_second")
		p("| IPC-bound throughput within 3× of the round-trip floor | framehub %.0f frames/s (1 consumer, no rate limit, %d runs); floor %.0f round trips/s back to back: floor / framehub = %.2f | %s |\n",
			median(rate), len(res.IPCBound), fl, fl/median(rate), verdict(fl/median(rate) <= 3))
	}
	p("\n\"Grows\" means VmRSS rising faster after the stop (from its 3rd second) than before it by more than %d kB/s,\n", growSlack)
	p("or a step at the stop larger than the hung consumer's budget of frames (4 × %.1f MB): a one-off step is the\n", frameBytes/1e6)
	p("surfaces allocated to replace those the hung consumer holds until it is evicted. \"Blocked\" means a healthy\n")
	p("consumer got fewer than 15 frames in some second after the first.\n")
	if len(res.FloorRTT) > 0 && len(res.IPCBound) == 0 {
		p("The floor back to back in this run: %.0f round trips/s (p50 %.1f µs). framehub's IPC-bound rate, to compare with it, is\n",
			floorMedian(res.FloorRTT, "per_second"), floorMedian(res.FloorRTT, "rtt_us"))
		p("measured by bench/transport (docs/bench/transport.md): the transport without a camera in front of it.\n")
	}
	if len(res.FloorPaced) > 0 {
		renderBounds(p, res)
	}
	return w.String()
}

// renderBounds says what bounds the per-consumer and latency targets, with
// this run's figures.
func renderBounds(p func(string, ...any), res *results) {
	sb, _ := perConsumer(res, "shmsink")
	fl := floorMedian(res.FloorPaced, "consumer_cpu_us_per_msg")
	p("\n## What bounds the per-consumer cost and the latency tail\n\n")
	p("- **shmsrc is already at the floor.** Per frame, a shmsrc consumer does what framehub's does: it wakes on a\n")
	p("  Unix-socket message, reads it, and sends a release back when its buffer is freed. It does it in C, and here it\n")
	p("  cost %.0f µs per frame per added consumer (slope) against %.0f µs for the C floor's consumer alone (one\n", usPerFrame(sb), fl)
	p("  `recvmsg` and one `send` per message, nothing else). Half of shmsink's cost is therefore half of one wake-up\n")
	p("  per frame: no transport that wakes each consumer for each frame as it is produced and gets a release per\n")
	p("  frame can reach it. The target's ~100 µs for shmsink was measured before this harness; side by side on this\n")
	p("  machine it is lower.\n")
	if hasSystem(res, "framehub-notouch") {
		var touch, none []float64
		for _, n := range res.counts() {
			touch, none = append(touch, summarize(res, "framehub", n).cons), append(none, summarize(res, "framehub-notouch", n).cons)
		}
		nb, _ := perConsumer(res, "framehub-notouch")
		p("- **Reading the pixels is a cost shmsrc's consumers do not pay.** framehub's consumers read one byte per row of\n")
		p("  each plane: 1,620 reads spread over 3 MB, each a cache and TLB miss. A consumer that does cost %.0f µs per\n", usPerFrame(median(touch)))
		p("  frame here, one that maps nothing (framehub-notouch) %.0f µs (medians over N = %s); `shmsrc ! fakesink`\n",
			usPerFrame(median(none)), nList(res.counts(), ", "))
		p("  reads nothing. Like for like, framehub costs %.0f µs per frame per added consumer (slope) against shmsink's %.0f µs.\n", usPerFrame(nb), usPerFrame(sb))
		pb, pse := producerPerConsumer(res, "framehub-notouch")
		p("- **Where framehub's cost per consumer goes** (framehub-notouch): the consumer's own process %.0f µs per frame\n", usPerFrame(median(none)))
		p("  (median), the producer %.0f ± %.0f µs per frame per added consumer (slope of the producer's CPU against N).\n", usPerFrame(pb), usPerFrame(pse))
		p("  The producer's share was 191 ± 23 µs in the run of 2026-12-04 16:40, when each frame was published from\n")
		p("  GStreamer's streaming thread through go-gst's appsink callback. Profiled (`perf record` and `perf stat` of the\n")
		p("  producer, 0 against 3 consumers): a Go callback on a thread Go did not create wakes the runtime's `sysmon`,\n")
		p("  which then polls every 20 µs while the callback runs, and the callback runs longer the more consumers it sends\n")
		p("  to: `nanosleep` went from 7 to 32 per frame and context switches from 13 to 44. The producer now publishes\n")
		p("  from a goroutine per appsink, woken through an eventfd that the streaming thread writes (fhgst.SampleWatch):\n")
		p("  6 `nanosleep` and 14 context switches per frame with 3 consumers, the pattern of the synthetic source. What\n")
		p("  is left per consumer and frame is a `sendmsg` (the Frame, which wakes the consumer) and two `recvmsg` (its\n")
		p("  Release, then EAGAIN), each paying this VM's costly interrupt enable (`pvm_irq_enable` is the top kernel symbol).\n")
		p("- **The consumer can wake twice per frame where once would do** (`perf stat` of a framehub-notouch consumer:\n")
		p("  alone, 2.0 context switches and 3 `epoll_pwait` per frame; one of three, 1.4–1.9). When the producer reads a\n")
		p("  Release it frees a buffer charged to the consumer's socket, and Linux then signals EPOLLOUT on that socket;\n")
		p("  Go's netpoller registers every socket edge-triggered for input and output, so an idle consumer wakes for\n")
		p("  nothing. Tried: reading releases right after the fan-out instead of before it (the signal then finds the\n")
		p("  consumer awake) brought a lone consumer to 1.4 but three consumers not measurably, so it was not kept.\n")
		p("  Sending releases on a second socket that no poller watches would remove the signal; that is a protocol\n")
		p("  change not made yet.\n")
	}
	p("- **The consumer's extra over the floor is Go's wake-up path.** Profiles of\n")
	p("  a consumer (docs/SDK.md, \"Cost per frame\") are mostly the runtime's scheduler on each wake-up (`findRunnable`,\n")
	p("  `netpoll`, `stealWork`) and the kernel's context switches; framehub's own code is a few percent. What was cut:\n")
	p("  non-blocking socket calls through `RawSyscall` (no `sysmon` wake-ups), a hand-written Frame/Release codec,\n")
	p("  and a producer that reads releases on its frame clock instead of waking per release. `GOMAXPROCS=1` in a\n")
	p("  consumer saves a further 5–15%%.\n")
	p("- **What the difference buys**: each frame is an fd (a V4L2 or encoder DMA-BUF is shared as it is, which shmsink\n")
	p("  cannot do without the copy its `+copy` row models), each consumer has its own lease budget, and a hung\n")
	p("  consumer costs the others nothing (the hang table) where shmsink stops everyone.\n")
	p("- **Latency tail**: the C floor's own p99 at 30 messages/s in this run was %.0f µs (p50 %.0f µs). A p99 of\n",
		floorMedian(res.FloorPaced, "latency_p99_us"), floorMedian(res.FloorPaced, "latency_p50_us"))
	p("  200 µs is at this machine's noise: four processes (a producer rendering 1080p and three consumers) share two\n")
	p("  vCPUs with whatever else the host runs, and a wake-up that lands behind another process's time slice waits.\n")
	p("  Each frame wakes three consumers at once, and each then reads its pixels: the last one to run waits for the\n")
	p("  others. Measured standalone (2026-12-04, synthetic source, 20 s): one consumer p99 410 µs; three consumers\n")
	p("  p99 1.0–1.3 ms in one run and 3.0–3.3 ms in the next, a minute apart, with p50 150–200 µs in both: the tail\n")
	p("  moves with the machine's scheduling from run to run, not with framehub's code (the synthetic source's path\n")
	p("  is the same in the full runs of 2026-12-04 16:40, p99 0.9 ms, and 19:30, p99 3.0 ms).\n")
}

func (h hangSummary) blocked() bool { return h.minFPS < 15 }

const (
	// growSlack: RSS slopes within this of each other (kB/s) are the same
	// (GC cycles and page-cache noise over a 17 s fit).
	growSlack = 32
	// stepLimitKB: the hung consumer holds at most its budget (4) of frames.
	stepLimitKB = 4 * frameBytes / 1024
)

func floorMedian(runs []map[string]float64, key string) float64 {
	var v []float64
	for _, r := range runs {
		v = append(v, r[key])
	}
	return median(v)
}

// floorVerdict judges fh ≤ 2 × floor on framehub's fitted slope.
func floorVerdict(fh, fse, fl float64) string {
	switch {
	case fh+2*fse <= 2*fl:
		return "met"
	case fh-2*fse > 2*fl:
		return "**missed**"
	}
	return "inconclusive (within 2 standard errors)"
}

// slopeVerdict judges fh ≤ sh/2 on fitted slopes with their standard
// errors: decided only when the difference is outside 2 standard errors.
func slopeVerdict(fh, fse, sh, sse float64) string {
	switch {
	case sh-2*sse <= 0:
		return "inconclusive (shmsink's slope is within 2 standard errors of 0)"
	case fh+2*fse <= sh/2:
		return "met"
	case fh-2*fse > sh/2:
		return "**missed**"
	}
	return "inconclusive (within 2 standard errors)"
}

func yesNo(b bool) string {
	if b {
		return "**yes**"
	}
	return "no"
}

// ratioVerdict judges fh ≤ sh/2; a non-positive shmsink overhead is within
// the machine's noise and cannot be halved.
func ratioVerdict(fh, sh float64) string {
	switch {
	case sh <= 0:
		return "inconclusive (shmsink's overhead is within noise)"
	case fh <= sh/2:
		return "met"
	}
	return "**missed**"
}

func seconds(n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(i)
	}
	return x
}

func floats(v []int64) []float64 {
	f := make([]float64, len(v))
	for i, x := range v {
		f[i] = float64(x)
	}
	return f
}

// renderHost says how much CPU the hypervisor took during the measured
// windows: on a shared host a run with heavy steal is slower across the
// board (the C floor included), and its figures should be read as such.
func renderHost(p func(string, ...any), res *results) {
	var steal, busy []float64
	for _, rs := range [][]run{res.Runs, res.Latency, res.IPCBound} {
		for _, r := range rs {
			steal, busy = append(steal, r.HostSteal), append(busy, r.MachineBusy)
		}
	}
	if len(busy) == 0 || slices.Max(busy) == 0 { // results from before the counters were recorded
		return
	}
	heavy := 0
	for _, s := range steal {
		if s >= 100*sysinfo.HeavySteal {
			heavy++
		}
	}
	p("Host CPU stolen by the hypervisor over the measured windows (`/proc/stat` steal): median %.1f%%, max %.1f%%;\n",
		median(steal), slices.Max(steal))
	p("%d of %d windows at ≥ %.0f%%. Whole machine busy (all processes, of both cores): median %.0f%%.\n",
		heavy, len(steal), 100*sysinfo.HeavySteal, median(busy))
	if len(res.FloorRTT) > 0 {
		p("During the floor's back-to-back runs: steal median %.1f%%.\n", floorMedian(res.FloorRTT, "host_steal_pct"))
	}
	p("\n")
}

// gstCounted says whether res's GStreamer consumers ran under bench/gstcount
// (from 2026-12-06), not gst-launch-1.0 -v with fpsdisplaysink.
func gstCounted(res *results) bool {
	for _, s := range res.Systems {
		if strings.HasPrefix(s.Consumer, "gstcount ") {
			return true
		}
	}
	return false
}

func hasSystem(res *results, name string) bool {
	return slices.ContainsFunc(res.Systems, func(s system) bool { return s.Name == name })
}

// renderBeforeAfter compares the systems run by another build (-before)
// with the same systems of this build, when the run had them.
func renderBeforeAfter(p func(string, ...any), res *results) {
	var pairs []string
	for _, name := range []string{"framehub", "framehub-notouch"} {
		if hasSystem(res, name) && hasSystem(res, name+"@before") {
			pairs = append(pairs, name)
		}
	}
	if len(pairs) == 0 {
		return
	}
	p("## Before and after\n\n")
	p("The same systems run by the binaries of another build (`-before`), interleaved with this build's in the same\n")
	p("run. CPU per added consumer is the least-squares slope over every run (± its standard error), producer and\n")
	p("consumer together; the producer's share is the slope of the producer's CPU alone.\n\n")
	p("| system | build | producer alone | CPU per added consumer | producer's share of it |\n|---|---|---|---|---|\n")
	for _, name := range pairs {
		for _, sys := range []string{name + "@before", name} {
			b, se := perConsumer(res, sys)
			pb, pse := producerPerConsumer(res, sys)
			build := "this"
			if strings.HasSuffix(sys, "@before") {
				build = "before"
			}
			p("| %s | %s | %.2f%% (%.0f µs/frame) | %.0f ± %.0f µs/frame | %.0f ± %.0f µs/frame |\n", name, build,
				summarize(res, sys, 0).prod, usPerFrame(summarize(res, sys, 0).prod), usPerFrame(b), usPerFrame(se), usPerFrame(pb), usPerFrame(pse))
		}
	}
	p("\n")
}

// fdPerFrame says whether res's fan-out floor passed an fd with every
// message (its runs before 2026-12-06 15:10, which lack fd_per_frame), not
// only with the first to each consumer.
func fdPerFrame(res *results) bool {
	for _, m := range res.FloorFanout {
		if v, ok := m["fd_per_frame"]; ok {
			return v != 0
		}
	}
	return true
}

// hasFanout says whether res has fan-out floor runs with consumers in Go
// (goFlag 1) or in C (0).
func hasFanout(res *results, goFlag float64) bool {
	for _, m := range res.FloorFanout {
		if m["go"] == goFlag && m["consumers"] > 0 {
			return true
		}
	}
	return false
}

// fanoutSlope fits key (µs per frame) against the number of consumers over
// the fan-out floor's runs with consumers in Go (goFlag 1) or in C (0), and
// the runs of the producer alone, which both series share.
func fanoutSlope(res *results, goFlag float64, key string) (b, se float64) {
	var x, y []float64
	for _, m := range res.FloorFanout {
		if m["go"] == goFlag || m["consumers"] == 0 {
			x, y = append(x, m["consumers"]), append(y, m[key])
		}
	}
	return slope(x, y)
}

// fanoutVerdict says where ½ of shmsink's slope (half) lies against the
// floor of one more Go consumer (gfl ± gse) and of one more C consumer
// (cfl ± cse).
func fanoutVerdict(gfl, gse, cfl, cse, half float64) string {
	switch {
	case cfl-2*cse > half:
		return "below the floor of a C consumer: out of reach for any transport that wakes each consumer once per frame, in any language"
	case gfl-2*gse > half:
		return "below the floor of a Go consumer: out of reach for any Go consumer on this machine"
	case gfl+2*gse <= half:
		return fmt.Sprintf("%.0f µs above the floor of a Go consumer: room for everything a real transport does beyond waking and receiving", half-gfl)
	}
	return "within 2 standard errors of the floor of a Go consumer: reachable only by a transport that does nothing but wake, receive and release"
}

// renderFloor renders the fan-out floor's runs (bench/floor fanout): per
// number of consumers, medians of the producer's and each consumer's CPU per
// frame with consumers in C and in Go, the slopes, and the systems' slopes
// against them.
func renderFloor(p func(string, ...any), res *results) {
	if !hasFanout(res, 0) {
		return
	}
	p("## The floor of one more consumer\n\n")
	p("`bench/floor/floor.c fanout`: a C producer that wakes every 33 ms on its own clock and sends each consumer a\n")
	if fdPerFrame(res) {
		p("64-byte message carrying one memfd; consumers that receive it, close the fd and release it by incrementing a\n")
	} else {
		p("64-byte message (the first to each consumer carries a memfd, the others none, as framehub announces a surface\n")
		p("once and then names it in each Frame); consumers that receive it, close its fd if any and release it by incrementing a\n")
	}
	p("counter in shared memory, which the producer reads on its next tick (framehub's release ring at its cheapest:\n")
	p("no system call and no wake-up for a release). Consumers in C are the program's own children; in Go,\n")
	p("bench/floor/goconsumer (Go's netpoller, `recvmsg` through `RawSyscall`, as framehub's SDK). 450 frames per run\n")
	p("after a second of warm-up; CPU from `/proc/PID/task/*/schedstat` (consumers) and `getrusage` (producer);\n")
	p("medians over %d repeats, host steal %.1f%% (median).\n\n", len(res.FloorPaced), floorMedian(res.FloorFanout, "host_steal_pct"))
	p("| consumers | producer µs/frame | each C consumer µs/frame | total (C) | producer µs/frame (Go consumers) | each Go consumer µs/frame | total (Go) |\n|---|---|---|---|---|---|---|\n")
	pick := func(k, goFlag float64, key string) float64 {
		var v []float64
		for _, m := range res.FloorFanout {
			if m["consumers"] == k && (m["go"] == goFlag || k == 0) {
				v = append(v, m[key])
			}
		}
		return median(v)
	}
	for _, k := range []float64{0, 1, 3} {
		p("| %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", k,
			pick(k, 0, "producer_cpu_us_per_frame"), pick(k, 0, "consumer_cpu_us_per_frame"), pick(k, 0, "total_cpu_us_per_frame"),
			pick(k, 1, "producer_cpu_us_per_frame"), pick(k, 1, "consumer_cpu_us_per_frame"), pick(k, 1, "total_cpu_us_per_frame"))
	}
	cb, cse := fanoutSlope(res, 0, "total_cpu_us_per_frame")
	p("\nOne more consumer, slope over every run (as the systems' slopes above): **%.0f ± %.0f µs per frame with consumers\n", cb, cse)
	if hasFanout(res, 1) {
		gb, gse := fanoutSlope(res, 1, "total_cpu_us_per_frame")
		p("in C, %.0f ± %.0f µs with consumers in Go**.\n", gb, gse)
		if hasSystem(res, "shmsink") {
			sb, _ := perConsumer(res, "shmsink")
			half := usPerFrame(sb) / 2
			p("Half of shmsink's slope in this run is %.0f µs per frame: %s.\n", half, fanoutVerdict(gb, gse, cb, cse, half))
			for _, name := range []string{"framehub-notouch", "framehub"} {
				if hasSystem(res, name) {
					fb, _ := perConsumer(res, name)
					p("%s's slope is %.1f× the floor of a Go consumer, shmsink's %.1f× the floor of a C consumer.\n",
						name, usPerFrame(fb)/gb, usPerFrame(sb)/cb)
					break
				}
			}
			if hasSystem(res, "framehub-c") {
				fb, _ := perConsumer(res, "framehub-c")
				p("framehub-c's slope (framehub's producer, a consumer in C) is %.1f× the floor of a C consumer, and %.2f× shmsink's.\n",
					usPerFrame(fb)/cb, fb/sb)
			}
		}
	} else {
		p("in C**.\n")
	}
	p("\n")
}
