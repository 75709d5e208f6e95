package web_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/sysinfo"
)

// TestLatencyReport measures what a viewer sees, for docs/bench/web.md:
// glass-to-glass latency (the time a frame is shown in Chromium minus its
// capture time: the RTP timestamp framehub-web stamps with the capture
// time for WebRTC, hls.js's program date time for LL-HLS) and the time to
// the first frame, each player in a fresh tab, several runs. It asserts
// nothing about the figures; it runs only with FRAMEHUB_WEB_BENCH=1:
//
//	FRAMEHUB_WEB_BENCH=1 FRAMEHUB_WEB_BENCH_RUNS=5 FRAMEHUB_WEB_BENCH_SIZE=1920x1080 \
//		go test -count=1 -v -run TestLatencyReport ./test/web
//
// The producer is the demo's: GStreamer's test source, x264enc, 30 fps, a
// keyframe every second, 1920×1080 unless FRAMEHUB_WEB_BENCH_SIZE says
// otherwise.
func TestLatencyReport(t *testing.T) {
	if os.Getenv("FRAMEHUB_WEB_BENCH") != "1" {
		t.Skip("a benchmark, not a test: FRAMEHUB_WEB_BENCH=1 runs it")
	}
	needBrowser(t)
	runs := 3
	if n, err := strconv.Atoi(os.Getenv("FRAMEHUB_WEB_BENCH_RUNS")); err == nil && n > 0 {
		runs = n
	}
	width, height := 1920, 1080
	if v := os.Getenv("FRAMEHUB_WEB_BENCH_SIZE"); v != "" {
		w, h, ok := strings.Cut(v, "x")
		var err1, err2 error
		width, err1 = strconv.Atoi(w)
		height, err2 = strconv.Atoi(h)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("FRAMEHUB_WEB_BENCH_SIZE=%q is not WIDTHxHEIGHT", v)
		}
	}
	const watch = 15 * time.Second
	g := startGroupSize(t, time.Minute, width, height)
	b := startBrowser(t)
	pid := g.web.Cmd.Process.Pid
	cpuShare := func(window time.Duration, during func()) float64 {
		before, err := sysinfo.ProcCPU(pid)
		require.NoError(t, err)
		start := time.Now()
		during()
		after, err := sysinfo.ProcCPU(pid)
		require.NoError(t, err)
		return float64(after-before) / float64(time.Since(start)) * 100
	}
	// framehub-web with no viewer: its subscription only.
	idle := cpuShare(watch, func() { time.Sleep(watch) })
	t.Logf("framehub-web with no viewer: %.1f%% of a core", idle)
	type result struct{ ttff, p50, p90, cpu []float64 }
	results := map[string]*result{}
	var report strings.Builder
	for _, mode := range []string{"webrtc", "hls"} {
		r := &result{}
		results[mode] = r
		for run := range runs {
			p := b.open(t, g.base+"/?mode="+mode)
			p.waitFor(player+` && `+player+`.firstFrameMs !== null && `+player+`.latencies.length > 0`, diag, waitTimeout)
			cpu := cpuShare(watch, func() { time.Sleep(watch) }) // the measurement window: frames are shown meanwhile
			var m struct {
				TTFF      float64   `json:"ttff"`
				Latencies []float64 `json:"latencies"`
			}
			p.eval(`({ttff: `+player+`.firstFrameMs, latencies: `+player+`.latencies})`, &m)
			lat := slices.Clone(m.Latencies)
			slices.Sort(lat)
			p50, p90 := lat[len(lat)/2], lat[len(lat)*9/10]
			r.ttff, r.p50, r.p90, r.cpu = append(r.ttff, m.TTFF), append(r.p50, p50), append(r.p90, p90), append(r.cpu, cpu)
			t.Logf("%s run %d: first frame after %.0f ms; latency p50 %.0f ms, p90 %.0f ms over %d frames; framehub-web %.1f%% of a core",
				mode, run+1, m.TTFF, p50, p90, len(lat), cpu)
			p.close()
		}
	}
	fmt.Fprintf(&report, "%dx%d, %d runs of %v per player:\n\n", width, height, runs, watch)
	fmt.Fprintf(&report, "| player | time to first frame (median of %d) | glass-to-glass p50 (median of runs) | p90 (median of runs) | framehub-web CPU (median of runs) |\n", runs)
	fmt.Fprintf(&report, "|---|---|---|---|---|\n")
	fmt.Fprintf(&report, "| none | | | | %.1f%% of a core |\n", idle)
	for _, mode := range []string{"webrtc", "hls"} {
		r := results[mode]
		fmt.Fprintf(&report, "| %s | %.0f ms | %.0f ms | %.0f ms | %.1f%% of a core |\n", mode, median(r.ttff), median(r.p50), median(r.p90), median(r.cpu))
	}
	t.Logf("\n%s", report.String())
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
