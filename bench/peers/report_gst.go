package main

import (
	"fmt"
	"slices"
	"strings"
)

// renderGstConsumer compares framehub's GStreamer consumer (framehubsrc !
// fpsdisplaysink video-sink=fakesink, on framehub's producer) with
// GStreamer's shmsrc in the same pipeline and with framehub's Go consumer,
// when the run measured it. The consumer process's own CPU is the figure
// that tells consumers apart: the producer's CPU, which the slope adds,
// swings with videotestsrc's rendering.
func renderGstConsumer(p func(string, ...any), res *results) {
	if !hasSystem(res, "framehubsrc") {
		return
	}
	ns := res.counts()
	top := ns[len(ns)-1]
	names := slices.DeleteFunc([]string{"framehubsrc", "shmsink", "framehub-c", "framehub-notouch", "framehub"},
		func(name string) bool { return !hasSystem(res, name) })
	sink, how := "fpsdisplaysink video-sink=fakesink", ""
	if gstCounted(res) {
		sink, how = "fakesink", ", both counted by bench/gstcount"
	}
	p("## framehubsrc: framehub's GStreamer consumer\n\n")
	p("`framehubsrc socket=P ! %s` (the plugin of `make gst`, GST_PLUGIN_PATH=build/gst)\n", sink)
	p("on the same producer as framehub's Go consumers, against `shmsrc ! %s` on\n", sink)
	p("shmsink's%s. ", how)
	also := ""
	if hasSystem(res, "framehub-c") {
		also = " and framehub-c (bench/cconsumer)"
	}
	p("Neither GStreamer consumer reads a pixel, nor do framehub-notouch (bench/consumer -touch=false)%s;\n", also)
	p("framehub's consumer reads one byte per row. Consumer CPU is each consumer process's own: the median over the\n")
	p("consumers of every run at that N, and in brackets the range of the runs' own medians (%d runs each). The\n", res.Repeats)
	p("slope is total CPU (producer included) per added consumer, all runs.\n\n")
	p("| system | consumer process CPU per frame, N = %s (µs; range over runs) | CPU per added consumer (slope, producer included) | fps per consumer, N = %d | drops per consumer, N = %d |\n|---|---|---|---|---|\n",
		nList(ns, " / "), top, top)
	for _, name := range names {
		cells := make([]string, len(ns))
		for i, n := range ns {
			lo, hi := consumerRange(res, name, n)
			cells[i] = fmt.Sprintf("%.0f (%.0f–%.0f)", usPerFrame(summarize(res, name, n).cons), usPerFrame(lo), usPerFrame(hi))
		}
		b, se := perConsumer(res, name)
		st := summarize(res, name, top)
		p("| %s | %s | %.0f ± %.0f µs/frame | %.2f | %.0f |\n", name, strings.Join(cells, " / "),
			usPerFrame(b), usPerFrame(se), st.fps, st.drops)
	}
	p("\n")
	var ratios []string
	for _, other := range names[1:] {
		r := make([]string, len(ns))
		for i, n := range ns {
			r[i] = fmt.Sprintf("%.2f", summarize(res, "framehubsrc", n).cons/summarize(res, other, n).cons)
		}
		ratios = append(ratios, fmt.Sprintf("%s's %s", other, strings.Join(r, " / ")))
	}
	if len(ratios) > 0 {
		p("framehubsrc's consumer process CPU per frame as a multiple of (N = %s): %s.\n\n", nList(ns, " / "), strings.Join(ratios, "; "))
	}
}

// consumerRange is the lowest and highest of the runs' median consumer
// CPU (% of a core) of sys at n consumers.
func consumerRange(res *results, sys string, n int) (lo, hi float64) {
	var meds []float64
	for _, r := range res.Runs {
		if r.System != sys || r.N != n {
			continue
		}
		var c []float64
		for _, cr := range r.Consumers {
			c = append(c, cr.CPUPct)
		}
		meds = append(meds, median(c))
	}
	if len(meds) == 0 {
		return 0, 0
	}
	return slices.Min(meds), slices.Max(meds)
}
