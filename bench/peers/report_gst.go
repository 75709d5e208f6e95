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
	p("## framehubsrc: framehub's GStreamer consumer\n\n")
	p("`framehubsrc socket=P ! fpsdisplaysink video-sink=fakesink` (the plugin of `make gst`, GST_PLUGIN_PATH=build/gst)\n")
	p("on the same producer as framehub's Go consumers, against `shmsrc ! fpsdisplaysink video-sink=fakesink` on\n")
	p("shmsink's. Neither GStreamer consumer reads a pixel, nor does framehub-notouch (bench/consumer -touch=false);\n")
	p("framehub's consumer reads one byte per row. Consumer CPU is each consumer process's own (median over the\n")
	p("consumers of every run at that N); the slope is total CPU (producer included) per added consumer, all runs.\n\n")
	p("| system | consumer process CPU per frame, N = 1 / 3 / 6 | CPU per added consumer (slope, producer included) | fps per consumer, N = 6 | drops per consumer, N = 6 |\n|---|---|---|---|---|\n")
	for _, name := range []string{"framehubsrc", "shmsink", "framehub-notouch", "framehub"} {
		if !hasSystem(res, name) {
			continue
		}
		var cons [3]float64
		for i, n := range []int{1, 3, 6} {
			cons[i] = usPerFrame(summarize(res, name, n).cons)
		}
		b, se := perConsumer(res, name)
		s6 := summarize(res, name, 6)
		p("| %s | %.0f / %.0f / %.0f µs | %.0f ± %.0f µs/frame | %.2f | %.0f |\n", name, cons[0], cons[1], cons[2],
			usPerFrame(b), usPerFrame(se), s6.fps, s6.drops)
	}
	p("\n")
}
