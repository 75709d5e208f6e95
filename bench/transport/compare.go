package main

import (
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/framehub/framehub/internal/sysinfo"
)

// compare runs the configurations that say what a change to the frame path
// cost — the transport at 30 fps without touching pixels (N = 0, 1, 3) and
// IPC-bound (N = 1, 3) — with this build (b.bin) and another one (before),
// interleaved run by run so that both see the same machine.
func compare(b *bench, before string, repeats int, ipcWindow time.Duration) results {
	noTouch := modes[1]
	// The producer's share is a difference of two runs' CPU: with the
	// moving pattern each run spends ~500 µs a frame rendering it, whose
	// noise swamps the share. The stamp-only pattern writes 8 rows.
	b = &bench{bin: b.bin, dir: b.dir, warmup: b.warmup, window: b.window, width: b.width, height: b.height, fps: b.fps,
		producerExtraArgs: []string{"-pattern", "stamp-only"}}
	bb := *b
	bb.bin = before
	ipcArgs := []string{"-pattern", "stamp-only", "-pool-max", "12", "-max-in-flight", "4"}
	ib := &bench{bin: b.bin, dir: b.dir, warmup: 2 * time.Second, window: ipcWindow, width: 1920, height: 1080, producerExtraArgs: ipcArgs}
	ibb := *ib
	ibb.bin = before
	var res results
	for r := 0; r < repeats; r++ {
		for _, n := range []int{0, 1, 3} {
			log.Printf("before/after run %d/%d: %d consumers, %s", r+1, repeats, n, noTouch.Name)
			res.PacedBefore = append(res.PacedBefore, bb.runPaced(n, noTouch))
			res.PacedAfterAB = append(res.PacedAfterAB, b.runPaced(n, noTouch))
		}
		for _, n := range []int{1, 3} {
			log.Printf("before/after IPC-bound run %d/%d: %d consumers", r+1, repeats, n)
			res.IPCBefore = append(res.IPCBefore, ibb.runPaced(n, ipcModes[0]))
			res.IPCAfterAB = append(res.IPCAfterAB, ib.runPaced(n, ipcModes[0]))
		}
	}
	res.Repeats, res.Window, res.Warmup = repeats, b.window, b.warmup
	res.Machine, res.When = sysinfo.Machine(), time.Now().UTC()
	return res
}

// renderCompare writes the before/after report.
func renderCompare(res *results) string {
	var w strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&w, format, a...) }
	p("# Transport: before and after\n\n")
	p("Produced by `go run ./bench/transport -bin bin -before <dir> -before-name %q` on %s: the same\n", res.Before, res.When.Format("2006-01-02 15:04 MST"))
	p("configurations run with both builds, alternately, %d repeats; medians (over repeats and consumers). 1920×1080\n", res.Repeats)
	p("NV12, synthetic source writing only its stamp (`-pattern stamp-only`: the producer's share per consumer is a\n")
	p("difference between runs, which rendering the moving pattern, ~500 µs a frame, would drown); 30 fps runs: %v\n", res.Window)
	p("window after %v warm-up, consumers release without touching pixels.\n\n", res.Warmup)
	p("## Machine\n\n%s\n", res.Machine)
	prod0 := func(runs []run) float64 {
		return median(collect(runs, 0, "", func(r run) []float64 { return []float64{r.ProdCPU} }))
	}
	row := func(runs []run, n int) (share, cons, total, p99 float64) {
		prodN := median(collect(runs, n, "", func(r run) []float64 { return []float64{r.ProdCPU} }))
		share = (prodN - prod0(runs)) / float64(n)
		cons = median(collect(runs, n, "", perConsumer(func(c consumerResult) float64 { return c.CPUPerFrame })))
		p99 = median(collect(runs, n, "", perConsumer(func(c consumerResult) float64 { return c.P99 })))
		return share, cons, share + cons, p99
	}
	p("## 30 fps, CPU per frame\n\n")
	p("| | producer alone | N | producer share per consumer | consumer | **total per consumer** | delivery p99 |\n|---|---|---|---|---|---|---|\n")
	for _, n := range []int{1, 3} {
		for _, b := range []struct {
			name string
			runs []run
		}{{"before (" + res.Before + ")", res.PacedBefore}, {"after", res.PacedAfterAB}} {
			share, cons, total, p99 := row(b.runs, n)
			p("| %s | %.1f µs | %d | %.1f µs | %.1f µs | **%.1f µs** | %.0f µs |\n", b.name, prod0(b.runs), n, share, cons, total, p99)
		}
	}
	p("\n## IPC-bound, frames/s per consumer\n\n| | N | frames/s per consumer | consumer CPU per frame | producer CPU per frame |\n|---|---|---|---|---|\n")
	for _, n := range []int{1, 3} {
		for _, b := range []struct {
			name string
			runs []run
		}{{"before (" + res.Before + ")", res.IPCBefore}, {"after", res.IPCAfterAB}} {
			p("| %s | %d | %.0f | %.1f µs | %.1f µs |\n", b.name, n,
				median(collect(b.runs, n, "", perConsumer(func(c consumerResult) float64 { return c.FPS }))),
				median(collect(b.runs, n, "", perConsumer(func(c consumerResult) float64 { return c.CPUPerFrame }))),
				median(collect(b.runs, n, "", func(r run) []float64 { return []float64{r.ProdCPU} })))
		}
	}
	return w.String()
}
