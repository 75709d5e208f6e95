package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/framehub/framehub/internal/chart"
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

// overhead is (total CPU with n consumers − producer alone) / n, % of a core.
func overhead(res *results, sys string, n int) float64 {
	return (summarize(res, sys, n).total - summarize(res, sys, 0).total) / float64(n)
}

type hangSummary struct {
	before, minFPS, medFPS, prodBefore, prodAfter float64
	rssGrowth, rssLate                            int64 // stop → end; 2nd second after the stop → end
	cpuBefore                                     float64
	states                                        []string
	series                                        []float64 // median over repeats of the healthy consumers' mean fps, per second
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
	return h
}

func writeReport(res *results, out string) error {
	dir := filepath.Dir(out)
	base := strings.TrimSuffix(filepath.Base(out), filepath.Ext(out))
	ovName, hangName := base+"-overhead.svg", base+"-hang.svg"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var names []string
	for _, s := range res.Systems {
		names = append(names, s.Name)
	}
	ns := []int{1, 3, 6}
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
	for _, s := range names {
		h := summarizeHang(res, s)
		sr := chart.Series{Name: s}
		for i, v := range h.series {
			sr.X, sr.Y = append(sr.X, float64(i+1)), append(sr.Y, v)
		}
		hs = append(hs, sr)
	}
	if err := os.WriteFile(filepath.Join(dir, hangName), []byte(chart.Line(chart.Options{Title: "Healthy consumers' frames/s after one of 3 is SIGSTOPped (t=0)",
		XLabel: "seconds after the SIGSTOP", YLabel: "frames/s (mean of the 2 healthy consumers)", HLine: 29.5, HLineLabel: "target 29.5"}, hs)), 0o644); err != nil {
		return err
	}
	return os.WriteFile(out, []byte(render(res, ovName, hangName)), 0o644)
}

func render(res *results, ovName, hangName string) string {
	var w strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&w, format, a...) }
	p("# framehub vs GStreamer shared memory: cost of sharing frames (issue 9)\n\n")
	if res.Window < 30e9 || res.Repeats < 3 {
		p("> **Short validation run** (window %v, %d repeat(s)): not the benchmark's figures.\n\n", res.Window, res.Repeats)
	}
	p("Produced by `%s` on %s. 1920×1080 NV12 at 30 fps; every figure is the median over %d repeat(s) (and over\n",
		res.Command, res.When.Format("2006-01-02 15:04 MST"), res.Repeats)
	p("consumers within a run); all configurations ran interleaved in one invocation. Window %v after %v of warm-up.\n", res.Window, res.Warmup)
	p("Raw results: `bench/peers/results.json` (`go run ./bench/peers -from` renders this file from it).\n\n")
	p("## Machine\n\n%s\n", res.Machine)
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
	p("\nP is a fresh socket path per run. `shmsink` copies each frame once into its shared-memory area unless the\n")
	p("upstream buffer already lives there (videotestsrc allocates from shmsink's pool); `shmsink+copy` puts\n")
	p("`identity drop-allocation=true` before it, which forces that copy. GStreamer consumers count frames with\n")
	p("fpsdisplaysink's `rendered` counter (printed by `-v` every 500 ms: the window's frame count is exact to ±15 frames);\n")
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
		for _, n := range []int{1, 3, 6} {
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

	p("## Hung consumer\n\n")
	p("3 consumers; after %v one is SIGSTOPped (never resumed); the other two are watched for %v, per second.\n", res.HangAfter, res.HangWindow)
	p("framehub's consumers here are `peers -consume` (the same SDK receive loop and pixel reads as bench/consumer,\n")
	p("printing a running count). Producer RSS is `VmRSS` from `/proc/PID/status` just before the stop and at the end.\n\n")
	p("| system | healthy fps before | healthy fps after (median) | worst second after (from 2nd s) | producer CPU before → after | producer RSS growth (stop → end; 2nd s → end) | blocked? | producer state at end |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range res.Systems {
		h := summarizeHang(res, s.Name)
		p("| %s | %.1f | %.1f | %.1f | %.1f%% → %.1f%% | %+d kB; %+d kB | %s | %s |\n", s.Name, h.before, h.medFPS, h.minFPS,
			h.cpuBefore, h.prodAfter, h.rssGrowth, h.rssLate, yesNo(h.blocked()), strings.Join(h.states, "; "))
	}
	p("\n![healthy consumers' frames/s after the hang](%s)\n\n", hangName)

	p("## Targets\n\n| target | measured (median) | verdict |\n|---|---|---|\n")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	for _, n := range []int{1, 3, 6} {
		fh, sh := overhead(res, "framehub", n), overhead(res, "shmsink", n)
		p("| framehub overhead per consumer ≤ ½ of shmsink/shmsrc's, N=%d | framehub %.2f%% (%.0f µs/frame), shmsink %.2f%% (%.0f µs/frame): ratio %.2f | %s |\n",
			n, fh, usPerFrame(fh), sh, usPerFrame(sh), fh/sh, ratioVerdict(fh, sh))
	}
	h := summarizeHang(res, "framehub")
	blocked := h.blocked()
	p("| hung consumer: the others ≥ 29.5 fps | median %.1f fps, worst second %.1f fps | %s |\n", h.medFPS, h.minFPS, verdict(h.medFPS >= 29.5))
	p("| hung consumer: producer neither blocks nor grows | producer CPU %.1f%% → %.1f%% across the stop, RSS %+d kB stop → end (%+d kB from the 2nd second on), state %s | %s |\n",
		h.cpuBefore, h.prodAfter, h.rssGrowth, h.rssLate, strings.Join(h.states, "; "), verdict(!blocked && h.rssLate <= 1024))
	st := summarize(res, "framehub", 3)
	p("| delivery p99 ≤ 200 µs at N=3 | capture → receipt p50 %.0f µs, p99 %.0f µs (includes videotestsrc's render: see above) | %s |\n",
		st.p50, st.p99, verdict(st.p99 <= 200))
	p("\n\"Grows\" means VmRSS more than 1 MB larger at the end of the hang window than in the 2nd second after the stop\n")
	p("(a one-off step when the stop happens — e.g. surfaces allocated to replace those the hung consumer holds until it\n")
	p("is evicted — is shown separately in the hung-consumer table); \"blocked\" means a healthy consumer got fewer than\n")
	p("15 frames in some second after the first.\n")
	return w.String()
}

func (h hangSummary) blocked() bool { return h.minFPS < 15 }

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
