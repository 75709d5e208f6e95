package main

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
	p("## framehubsrc: framehub's GStreamer consumer\n\n")
	p("`framehubsrc socket=P ! fpsdisplaysink video-sink=fakesink` (the plugin of `make gst`, GST_PLUGIN_PATH=build/gst)\n")
	p("on the same producer as framehub's Go consumers, against `shmsrc ! fpsdisplaysink video-sink=fakesink` on\n")
	p("shmsink's. Neither GStreamer consumer reads a pixel, nor does framehub-notouch (bench/consumer -touch=false);\n")
	p("framehub's consumer reads one byte per row. Consumer CPU is each consumer process's own (median over the\n")
	p("consumers of every run at that N); the slope is total CPU (producer included) per added consumer, all runs.\n\n")
	p("| system | consumer process CPU per frame, N = %s | CPU per added consumer (slope, producer included) | fps per consumer, N = %d | drops per consumer, N = %d |\n|---|---|---|---|---|\n",
		nList(ns, " / "), top, top)
	for _, name := range []string{"framehubsrc", "shmsink", "framehub-notouch", "framehub"} {
		if !hasSystem(res, name) {
			continue
		}
		cons := make([]int, len(ns))
		for i, n := range ns {
			cons[i] = int(usPerFrame(summarize(res, name, n).cons) + 0.5)
		}
		b, se := perConsumer(res, name)
		st := summarize(res, name, top)
		p("| %s | %s µs | %.0f ± %.0f µs/frame | %.2f | %.0f |\n", name, nList(cons, " / "),
			usPerFrame(b), usPerFrame(se), st.fps, st.drops)
	}
	p("\n")
}
