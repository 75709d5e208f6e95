package web_test

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/sysinfo"
	"github.com/framehub/framehub/internal/testutil"
)

// TestLatencyReport measures what a viewer sees, for docs/bench/web.md:
// glass-to-glass latency (the time a frame is shown in Chromium minus its
// capture time: the RTP timestamp framehub-web stamps with the capture
// time for WebRTC, hls.js's program date time for LL-HLS) and the time to
// the first frame, each player in a fresh tab, several runs; beside them,
// on the same group, an RTSP viewer of framehub-streamer (gortsplib's
// client over TCP, see playRTSP): capture to the arrival of each access
// unit, nothing decoded or shown. It asserts nothing about the figures; it
// runs only with FRAMEHUB_WEB_BENCH=1:
//
//	FRAMEHUB_WEB_BENCH=1 FRAMEHUB_WEB_BENCH_RUNS=5 FRAMEHUB_WEB_BENCH_SIZE=1920x1080 \
//		go test -count=1 -v -timeout 20m -run TestLatencyReport ./test/web
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
	rtspURL := startStreamer(t, g)
	b := startBrowser(t)
	webPID, streamerPID := g.web.Cmd.Process.Pid, g.streamer.Cmd.Process.Pid
	// cpuShare runs during and returns the CPU time each of pids used
	// meanwhile, as a share of one core (percent).
	cpuShare := func(during func(), pids ...int) []float64 {
		before := make([]int64, len(pids))
		for i, pid := range pids {
			var err error
			before[i], err = sysinfo.ProcCPU(pid)
			require.NoError(t, err)
		}
		start := time.Now()
		during()
		elapsed := time.Since(start)
		shares := make([]float64, len(pids))
		for i, pid := range pids {
			after, err := sysinfo.ProcCPU(pid)
			require.NoError(t, err)
			shares[i] = float64(after-before[i]) / float64(elapsed) * 100
		}
		return shares
	}
	// Both daemons with no viewer: their subscriptions only.
	idle := cpuShare(func() { time.Sleep(watch) }, webPID, streamerPID)
	t.Logf("no viewer: framehub-web %.1f%% of a core, framehub-streamer %.1f%%", idle[0], idle[1])
	type result struct {
		ttff, p50, p90, cpu []float64
		frames              []int
	}
	results := map[string]*result{}
	modes := []string{"webrtc", "hls", "rtsp"}
	for _, mode := range modes {
		r := &result{}
		results[mode] = r
		for run := range runs {
			var ttff float64
			var lat []float64
			var cpu float64
			if mode == "rtsp" {
				// The daemon that serves this viewer is the streamer.
				ttff, lat = playRTSP(t, rtspURL, func(window func()) {
					cpu = cpuShare(window, streamerPID)[0]
				}, watch)
			} else {
				p := b.open(t, g.base+"/?mode="+mode)
				p.waitFor(player+` && `+player+`.firstFrameMs !== null && `+player+`.latencies.length > 0`, diag, waitTimeout)
				cpu = cpuShare(func() { time.Sleep(watch) }, webPID)[0] // the measurement window: frames are shown meanwhile
				var m struct {
					TTFF      float64   `json:"ttff"`
					Latencies []float64 `json:"latencies"`
				}
				p.eval(`({ttff: `+player+`.firstFrameMs, latencies: `+player+`.latencies})`, &m)
				p.close()
				ttff, lat = m.TTFF, m.Latencies
			}
			require.NotEmpty(t, lat, "%s run %d: no latency measured", mode, run+1)
			lat = slices.Clone(lat)
			slices.Sort(lat)
			p50, p90 := lat[len(lat)/2], lat[len(lat)*9/10]
			r.ttff, r.p50, r.p90, r.cpu = append(r.ttff, ttff), append(r.p50, p50), append(r.p90, p90), append(r.cpu, cpu)
			r.frames = append(r.frames, len(lat))
			t.Logf("%s run %d: first frame after %.0f ms; latency p50 %.0f ms, p90 %.0f ms over %d frames; %s %.1f%% of a core",
				mode, run+1, ttff, p50, p90, len(lat), daemonOf(mode), cpu)
		}
	}
	var report strings.Builder
	fmt.Fprintf(&report, "%dx%d, %d runs of %v per player:\n\n", width, height, runs, watch)
	fmt.Fprintf(&report, "| player | time to first frame (median of %d) | latency p50 (median of runs) | p90 (median of runs) | serving daemon's CPU (median of runs) |\n", runs)
	fmt.Fprintf(&report, "|---|---|---|---|---|\n")
	fmt.Fprintf(&report, "| none | | | | framehub-web %.1f%%, framehub-streamer %.1f%% of a core |\n", idle[0], idle[1])
	for _, mode := range modes {
		r := results[mode]
		fmt.Fprintf(&report, "| %s | %.0f ms | %.0f ms | %.0f ms | %s %.1f%% of a core |\n", mode, median(r.ttff), median(r.p50), median(r.p90), daemonOf(mode), median(r.cpu))
	}
	fmt.Fprintf(&report, "\n| run |")
	for _, mode := range modes {
		fmt.Fprintf(&report, " %s first frame | %s p50 / p90 | frames |", mode, mode)
	}
	fmt.Fprintf(&report, "\n|---|%s\n", strings.Repeat("---|---|---|", len(modes)))
	for run := range runs {
		fmt.Fprintf(&report, "| %d |", run+1)
		for _, mode := range modes {
			r := results[mode]
			fmt.Fprintf(&report, " %.0f ms | %.0f / %.0f ms | %d |", r.ttff[run], r.p50[run], r.p90[run], r.frames[run])
		}
		fmt.Fprintf(&report, "\n")
	}
	t.Logf("\n%s", report.String())
}

// daemonOf names the daemon that serves mode's viewer.
func daemonOf(mode string) string {
	if mode == "rtsp" {
		return "framehub-streamer"
	}
	return "framehub-web"
}

// startStreamer starts framehub-streamer on g's producer (RTSP over TCP
// only, on a free port of 127.0.0.1, no admin server) and returns the URL
// it serves the camera at.
func startStreamer(t *testing.T, g *group) string {
	t.Helper()
	var url string
	g.streamer = testutil.StartDaemon(t, "framehub-streamer", exec.Command(filepath.Join(binDir, "framehub-streamer"),
		"-socket", g.sock, "-rtsp-addr", "127.0.0.1:0", "-udp-rtp-addr", "", "-admin", "", "-path", "cam"), waitTimeout,
		func(line string) bool {
			if m := streamerServing.FindStringSubmatch(line); m != nil {
				url = m[1]
				return true
			}
			return false
		})
	return url
}

var streamerServing = regexp.MustCompile(`msg="streamer serving" url=(rtsp://\S+)`)

// playRTSP plays rawURL with gortsplib's client over TCP, as an RTSP
// viewer does, and returns the time from the client's start (connect,
// OPTIONS, DESCRIBE, SETUP, PLAY) to the first complete access unit with
// an IDR slice, in ms, and the latency of every access unit that arrived
// during measure's window, in ms: the arrival of its last RTP packet
// (time.Now()) minus its capture time, which is the NTP time its RTP
// timestamp maps to through the streamer's RTCP sender reports (the
// streamer sends the frame's capture time on CLOCK_REALTIME; same
// machine, same clock). That mapping exists only from the first sender
// report on (gortsplib's server sends one every 10 s), so the window
// starts there: measure gets a window func that lasts watch; it is called
// once and must call window once. Nothing is decoded or displayed.
func playRTSP(t *testing.T, rawURL string, measure func(window func()), watch time.Duration) (ttffMs float64, latMs []float64) {
	t.Helper()
	u, err := base.ParseURL(rawURL)
	require.NoError(t, err, "streamer URL %q", rawURL)
	tcp := gortsplib.TransportTCP
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp}
	start := time.Now()
	require.NoError(t, c.Start2())
	defer c.Close()
	desc, _, err := c.Describe(u)
	require.NoError(t, err, "DESCRIBE %s", rawURL)
	var forma *format.H264
	medi := desc.FindFormat(&forma)
	require.NotNil(t, medi, "no H.264 media in %s", rawURL)
	dec, err := forma.CreateDecoder()
	require.NoError(t, err)
	_, err = c.Setup(desc.BaseURL, medi, 0, 0)
	require.NoError(t, err, "SETUP %s", rawURL)

	var (
		mu        sync.Mutex
		firstKey  time.Time
		decodeErr error
		counting  bool
	)
	mapped := make(chan struct{}) // closed at the first access unit with a capture time
	var mappedOnce sync.Once
	c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		now := time.Now()
		au, err := dec.Decode(pkt)
		switch {
		case errors.Is(err, rtph264.ErrMorePacketsNeeded), errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious):
			return
		case err != nil:
			mu.Lock()
			decodeErr = cmp.Or(decodeErr, err)
			mu.Unlock()
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if firstKey.IsZero() && hasIDR(au) {
			firstKey = now
		}
		ntp, ok := c.PacketNTP(medi, pkt)
		if !ok || firstKey.IsZero() {
			return
		}
		mappedOnce.Do(func() { close(mapped) })
		if counting {
			latMs = append(latMs, float64(now.Sub(ntp))/float64(time.Millisecond))
		}
	})
	_, err = c.Play(nil)
	require.NoError(t, err, "PLAY %s", rawURL)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-mapped:
	case err := <-done:
		t.Fatalf("RTSP client of %s ended before the first sender report: %v", rawURL, err)
	case <-time.After(waitTimeout):
		t.Fatalf("RTSP client of %s: no keyframe and sender report within %v", rawURL, waitTimeout)
	}
	measure(func() {
		mu.Lock()
		counting = true
		mu.Unlock()
		select {
		case err := <-done:
			t.Fatalf("RTSP client of %s ended during the measurement: %v", rawURL, err)
		case <-time.After(watch):
		}
		mu.Lock()
		counting = false
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	require.NoError(t, decodeErr, "depacketizing the access units of %s", rawURL)
	return float64(firstKey.Sub(start)) / float64(time.Millisecond), latMs
}

// hasIDR tells whether an access unit holds an IDR slice.
func hasIDR(au [][]byte) bool {
	for _, nalu := range au {
		if len(nalu) > 0 && nalu[0]&0x1f == 5 {
			return true
		}
	}
	return false
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
