// Command ipcam benchmarks IP cameras (issue 20) and writes
// docs/bench/ipcam.md, in two parts.
//
// Part one: the CPU time and memory of a framehub-producer process serving
// one 1920×1080 30 fps H.264 IP camera read over RTSP, in three
// configurations, run interleaved so that they see the same machine:
//
//   - passthrough: -source rtsp://…: the camera's access units go to the
//     h264 stream as they arrive; no raw consumer, so nothing is decoded or
//     encoded.
//   - passthrough + raw consumer: the same with one consumer of the raw
//     stream, so the on-demand decoder (avdec_h264) runs.
//   - decode + x264: -source "launch:rtspsrc … ! rtph264depay ! h264parse !
//     avdec_h264", the only way to read an RTSP camera before issue 20: the
//     camera's H.264 is decoded and encoded again with x264enc.
//
// Each configuration also has one consumer of the h264 stream, as a
// recorder would be; the consumers and the camera run in this process,
// whose CPU is not counted.
//
// Part many: framehub-supervisor running a group config of N cameras
// (N = 1, 2, 4, 8: a producer and a recorder per camera, one streamer for
// all), the CPU and RSS of every process of the group by role.
//
// The cameras (internal/testutil/ipcam) serve a 10 s x264 stream (4
// Mbit/s, an IDR every 2 s, encoded at start with gst-launch-1.0) in a
// loop over RTSP/TCP on 127.0.0.1.
//
//	go run ./bench/ipcam -bin bin [-parts one,many] [-many 1,2,4,8] [-runs 3] [-window 20s]
//
// A part not measured (-parts) is rendered from its raw results
// (bench/results/ipcam.json, ipcam-many.json).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/framehub/framehub/internal/sysinfo"
	"github.com/framehub/framehub/internal/testutil/ipcam"
	"github.com/framehub/framehub/sdk"
)

// system is one configuration of the producer.
type system struct {
	Name string
	Desc string
	// source is the producer's -source for a camera at url.
	source func(url string) string
	args   []string
	raw    bool   // a raw consumer is subscribed
	bin    string // directory of the framehub-producer to run, when not -bin's (-before)
}

var systems = []system{
	{Name: "passthrough", Desc: "`-source rtsp://…` (TCP), no raw consumer: no decode, no encode",
		source: func(u string) string { return u }},
	{Name: "passthrough + raw consumer", Desc: "the same, with one raw consumer: the on-demand decoder (avdec_h264) runs",
		source: func(u string) string { return u }, raw: true},
	{Name: "decode + x264", Desc: "`-source \"launch:rtspsrc location=… protocols=tcp latency=0 ! rtph264depay ! h264parse ! avdec_h264\"` " +
		"(1920×1080, 30 fps, x264enc at the producer's defaults: 4000 kbit/s, ultrafast, zerolatency)",
		source: func(u string) string {
			return "launch:rtspsrc location=" + u + " protocols=tcp latency=0 ! rtph264depay ! h264parse ! avdec_h264"
		}, args: []string{"-width", "1920", "-height", "1080", "-fps", "30"}},
}

// result is one run of one system.
type result struct {
	System  string  `json:"system"`
	Run     int     `json:"run"`
	CPU     float64 `json:"cpu_percent"`     // of one core, over the window
	H264FPS float64 `json:"h264_fps"`        // access units the producer published per second
	RawFPS  float64 `json:"raw_fps"`         // raw frames per second
	RSSMiB  float64 `json:"rss_mib"`         // at the end of the window
	Threads int     `json:"threads"`         // of the producer process
	Switch  float64 `json:"switches_per_au"` // the producer's context switches per h264 access unit
	Busy    float64 `json:"machine_busy"`    // share of the machine's CPU time busy in the window (all processes)
	Steal   float64 `json:"machine_steal"`   // share stolen by the hypervisor
}

func main() {
	bin := flag.String("bin", "bin", "directory holding framehub-producer (make build)")
	runs := flag.Int("runs", 3, "runs of each system (interleaved); figures are medians")
	window := flag.Duration("window", 20*time.Second, "measurement window of a run")
	warmup := flag.Duration("warmup", 40*time.Second, "time between a producer's first access unit and the window: longer than the h264 replay buffer (30 s), "+
		"so that the window sees the steady state, not the slab pool growing")
	out := flag.String("out", "docs/bench/ipcam.md", "report to write")
	jsonOne := flag.String("json", "bench/results/ipcam.json", "raw results of part one")
	jsonMany := flag.String("json-many", "bench/results/ipcam-many.json", "raw results of part many")
	parts := flag.String("parts", "one,many", "parts to measure: one (one camera: passthrough, with a raw consumer, decode + x264), "+
		"many (groups of -many cameras); a part not measured is rendered from its raw results")
	sizes := flag.String("many", "1,2,4,8", "group sizes of part many")
	before := flag.String("before", "", "directory with the framehub-producer of another build: part one adds its passthrough (\"passthrough@before\"), interleaved with this build's")
	flag.Parse()
	addBefore := func(dir string) {
		p := systems[0]
		p.Name, p.Desc, p.bin = "passthrough@before", "passthrough run by the framehub-producer in "+dir+" (another build), interleaved with this build's", dir
		systems = append(systems, p)
	}
	if *before != "" {
		addBefore(*before)
	}
	log.SetFlags(log.Ltime)
	cmdline := "go run ./bench/ipcam " + strings.Join(os.Args[1:], " ")
	measureOne, measureMany := false, false
	for _, p := range strings.Split(*parts, ",") {
		switch p {
		case "one":
			measureOne = true
		case "many":
			measureMany = true
		case "":
		default:
			log.Fatalf("-parts: %q is neither one nor many", p)
		}
	}
	var groups []int
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			log.Fatalf("-many: %q is not a number of cameras", f)
		}
		groups = append(groups, n)
	}

	var one partFile[result]
	var many partFile[manyResult]
	if !measureOne {
		must(load(*jsonOne, &one))
		if one.Before != "" {
			addBefore(one.Before)
		}
	}
	if !measureMany {
		if err := load(*jsonMany, &many); err != nil && !errors.Is(err, fs.ErrNotExist) {
			must(err)
		}
	}
	if measureOne || measureMany {
		log.Print("encoding the camera's stream: 300 frames of 1920×1080 with x264enc")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		stream, err := ipcam.Encode(ctx, ipcam.EncodeConfig{Width: 1920, Height: 1080, FPS: 30, Frames: 300, GOP: 60, BitrateKbps: 4000,
			Pattern: "pattern=smpte horizontal-speed=8"})
		cancel()
		must(err)
		bytes := 0
		for _, au := range stream.AUs {
			bytes += len(au.AnnexB())
		}
		kbps := float64(bytes) * 8 / 10 / 1000
		date := time.Now().UTC().Format("2006-01-02 15:04 UTC")
		if measureOne {
			one = partFile[result]{Command: cmdline, Date: date, Runs: *runs, Window: window.String(), Kbps: kbps, Before: *before, Warmup: warmup.String()}
			cam, err := ipcam.Start(ipcam.Config{Stream: stream, Params: ipcam.ParamsInBand})
			must(err)
			url := cam.URL("", "")
			log.Printf("camera at %s: %d access units, %.0f kbit/s", url, len(stream.AUs), kbps)
			for r := 1; r <= *runs; r++ {
				for _, s := range systems {
					res, err := measure(*bin, s, url, *warmup, *window)
					must(err)
					res.Run = r
					log.Printf("run %d, %s: producer %.2f%% of a core, h264 %.1f/s, raw %.1f/s, RSS %.1f MiB (machine busy %.0f%%, steal %.1f%%)",
						r, s.Name, res.CPU, res.H264FPS, res.RawFPS, res.RSSMiB, 100*res.Busy, 100*res.Steal)
					one.Results = append(one.Results, res)
				}
			}
			cam.Close()
			must(save(*jsonOne, one))
		}
		if measureMany {
			many = partFile[manyResult]{Command: cmdline, Date: date, Runs: *runs, Window: window.String(), Kbps: kbps, Warmup: warmup.String()}
			urls, closeAll, err := startCameras(stream, slices.Max(groups))
			must(err)
			for r := 1; r <= *runs; r++ {
				for _, n := range groups {
					res, err := measureGroup(*bin, urls[:n], *warmup, *window)
					must(err)
					res.Run = r
					log.Printf("run %d, %d cameras: %.1f%% of a core (producers %.1f, recorders %.1f, streamer %.1f, supervisor %.1f), RSS %.0f MiB, "+
						"slowest camera %.1f fps (machine busy %.0f%%, steal %.1f%%)", r, n, res.TotalCPU, res.ProducerCPU, res.RecorderCPU,
						res.StreamerCPU, res.SupervisorCPU, res.TotalRSS, res.MinFPS, 100*res.Busy, 100*res.Steal)
					many.Results = append(many.Results, res)
				}
			}
			closeAll()
			must(save(*jsonMany, many))
		}
	}
	text := report(one)
	if len(many.Results) > 0 {
		text += manyReport(many)
	}
	must(os.WriteFile(*out, []byte(text), 0o644))
	log.Printf("wrote %s", *out)
}

// partFile is the raw results of one part, with what the report says of
// how they were measured.
type partFile[R any] struct {
	Command string  `json:"command"`
	Date    string  `json:"date"`
	Runs    int     `json:"runs"`
	Window  string  `json:"window"`
	Kbps    float64 `json:"camera_kbps"`
	Before  string  `json:"before,omitempty"` // part one's -before
	Warmup  string  `json:"warmup,omitempty"`
	Results []R     `json:"results"`
}

func load[R any](path string, p *partFile[R]) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, p)
}

func save[R any](path string, p partFile[R]) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// measure runs one producer of system s on the camera at url and measures
// it over window, after warmup.
func measure(bin string, s system, url string, warmup, window time.Duration) (result, error) {
	dir, err := os.MkdirTemp("", "fh-bench-ipcam-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	sock, adminSock := filepath.Join(dir, "p.sock"), filepath.Join(dir, "admin.sock")
	args := append([]string{"-source", s.source(url), "-socket", sock, "-admin", "unix:" + adminSock,
		"-admin-token", filepath.Join(dir, "token"), "-log-level", "warn"}, s.args...)
	if s.bin != "" {
		bin = s.bin
	}
	cmd := exec.Command(filepath.Join(bin, "framehub-producer"), args...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	m := unixMetrics(adminSock)
	deadline := time.Now().Add(30 * time.Second)
	for m.get()[`framehub_producer_frames_total{stream="h264"}`] == 0 {
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("%s: no access unit within 30 s", s.Name)
		}
		time.Sleep(100 * time.Millisecond) // polling a process we do not own the events of
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 2)
	consume := func(stream string) {
		c, err := sdk.Dial(ctx, sock, sdk.Options{Stream: stream, Name: "bench-" + stream, MaxInFlight: 8,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		for {
			f, err := c.Next(ctx)
			if err != nil {
				done <- nil
				return
			}
			f.Release()
		}
	}
	go consume("h264")
	if s.raw {
		go consume("raw")
	}
	time.Sleep(warmup)
	pid := cmd.Process.Pid
	cpu0, err := sysinfo.ProcCPU(pid)
	if err != nil {
		return result{}, err
	}
	sw0, err := sysinfo.ProcSwitches(pid)
	if err != nil {
		return result{}, err
	}
	m0, t0 := m.get(), time.Now()
	tk0, err := sysinfo.ReadCPUTicks()
	if err != nil {
		return result{}, err
	}
	time.Sleep(window)
	cpu1, err := sysinfo.ProcCPU(pid)
	if err != nil {
		return result{}, err
	}
	sw1, err := sysinfo.ProcSwitches(pid)
	if err != nil {
		return result{}, err
	}
	m1, t1 := m.get(), time.Now()
	tk1, err := sysinfo.ReadCPUTicks()
	if err != nil {
		return result{}, err
	}
	wall := t1.Sub(t0).Seconds()
	busy, steal := tk1.Share(tk0)
	threads, _ := strconv.Atoi(sysinfo.StatusField(pid, "Threads"))
	res := result{
		System: s.Name, CPU: 100 * float64(cpu1-cpu0) / 1e9 / wall,
		H264FPS: (m1[`framehub_producer_frames_total{stream="h264"}`] - m0[`framehub_producer_frames_total{stream="h264"}`]) / wall,
		RawFPS:  (m1[`framehub_producer_frames_total{stream="raw"}`] - m0[`framehub_producer_frames_total{stream="raw"}`]) / wall,
		RSSMiB:  float64(sysinfo.RSSKiB(pid)) / 1024, Threads: threads, Busy: busy, Steal: steal,
	}
	if aus := res.H264FPS * wall; aus > 0 {
		res.Switch = float64(sw1-sw0) / aus
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			return result{}, fmt.Errorf("%s: consumer: %w", s.Name, err)
		}
	case <-time.After(10 * time.Second):
	}
	return res, nil
}

// metrics reads a producer's /metrics over its admin Unix socket.
type metrics struct{ c *http.Client }

// unixMetrics reads the /metrics of the daemon whose admin API is on the
// Unix socket sock.
func unixMetrics(sock string) *metrics {
	return &metrics{c: &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}}
}

// get returns "name{labels}" → value; empty while the producer does not
// answer.
func (m *metrics) get() map[string]float64 {
	out := map[string]float64{}
	resp, err := m.c.Get("http://producer/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// report renders docs/bench/ipcam.md's part one.
func report(p partFile[result]) string {
	cmdline, runs, window, kbps, results := p.Command, p.Runs, p.Window, p.Kbps, p.Results
	var b strings.Builder
	fmt.Fprintf(&b, "# One IP camera: passthrough against decode + x264\n\n")
	fmt.Fprintf(&b, "Produced by `%s` on %s.\n", cmdline, p.Date)
	fmt.Fprintf(&b, "Every figure is the median over %d runs of a %s window per configuration, the configurations interleaved "+
		"(run 1 of each, then run 2…), so that they saw the same machine. This machine is a shared 2-vCPU VM where other "+
		"work runs: compare the figures within this file, and read the machine's busy share beside them.\n\n", runs, window)
	fmt.Fprintf(&b, "## Machine\n\n%s\n\n", sysinfo.Summary())
	fmt.Fprintf(&b, "## Setup\n\nA stand-in camera (internal/testutil/ipcam: gortsplib's RTSP server in the benchmark process) "+
		"serves a 10 s x264 stream of 1920×1080 at 30 fps (videotestsrc pattern=smpte horizontal-speed=8, x264enc bitrate=4000 "+
		"speed-preset=ultrafast: %.0f kbit/s, an IDR every 60 frames, "+
		"no B-frames, encoded at start by gst-launch-1.0) in a loop over RTSP/TCP on 127.0.0.1. A framehub-producer process "+
		"reads it in each configuration below, with one consumer of its h264 stream in the benchmark process (as a recorder "+
		"would be). **CPU** is the producer process's own (every thread, from /proc/PID/task/*/schedstat) over the window, "+
		"in %% of one core; the camera and the consumers are not in it.%s\n\n", kbps, warmupNote(p.Warmup))
	for _, s := range systems {
		fmt.Fprintf(&b, "- **%s**: %s\n", s.Name, s.Desc)
	}
	fmt.Fprintf(&b, "\n## Results (medians)\n\n| configuration | producer CPU (%% of a core) | context switches per access unit | h264 access units/s | raw frames/s | RSS (MiB) | threads | machine busy |\n|---|---|---|---|---|---|---|---|\n")
	med, medSw := map[string]float64{}, map[string]float64{}
	for _, s := range systems {
		var cpu, sw, h, r, rss, th, busy []float64
		for _, res := range results {
			if res.System == s.Name {
				cpu, h, r, rss = append(cpu, res.CPU), append(h, res.H264FPS), append(r, res.RawFPS), append(rss, res.RSSMiB)
				th, busy, sw = append(th, float64(res.Threads)), append(busy, 100*res.Busy), append(sw, res.Switch)
			}
		}
		if len(cpu) == 0 {
			continue // not in this run (-before)
		}
		med[s.Name], medSw[s.Name] = median(cpu), median(sw)
		fmt.Fprintf(&b, "| %s | **%.2f** | %s | %.1f | %.1f | %.1f | %.0f | %.0f%% |\n", s.Name, median(cpu), switches(median(sw)), median(h), median(r), median(rss), median(th), median(busy))
	}
	pass, raw, old := med[systems[0].Name], med[systems[1].Name], med[systems[2].Name]
	verdict := "met"
	if pass > 1 {
		verdict = fmt.Sprintf("**missed** by %.2f%% of a core", pass-1)
	}
	fmt.Fprintf(&b, "\n## Reading\n\n- Passthrough costs %.2f%% of a core against %.2f%% for decode + x264: %.0f× less. Target ≤ 1%%: %s. "+
		"For scale: no GStreamer pipeline runs in passthrough (the camera is read by gortsplib in Go); each frame is one burst "+
		"of RTP packets read from the RTSP connection (~%.0f kB), reassembled, checked for AUD and parameter sets, copied into "+
		"an h264 slab and announced to one consumer. What costs is waking up for it: %s context switches per access unit "+
		"(the netpoller waking for the camera's data, the consumer's socket, Go's sysmon). The camera's connection is read "+
		"with raw system calls (internal/rawio): through net.Conn's ordinary read, each frame's first system call woke "+
		"sysmon out of its deep sleep, and sysmon then polled every 20 µs while the frame was handled.\n"+
		"- One raw consumer starts the on-demand decoder (avdec_h264 into the producer's pool): +%.2f%% of a core while it stays; "+
		"when it leaves, decoding stops (test/ipcam TestRawOnDemand checks the decoder metric).\n", pass, old, old/max(pass, 0.01), verdict,
		kbpsAU(kbps), switches(medSw[systems[0].Name]), raw-pass)
	if b4, ok := med["passthrough@before"]; ok {
		fmt.Fprintf(&b, "- The build before (passthrough@before, the same camera, interleaved): %.2f%% of a core and %s context switches "+
			"per access unit; this build %.2f%% and %s (%.2f× the CPU).\n", b4, switches(medSw["passthrough@before"]), pass, switches(medSw[systems[0].Name]), pass/max(b4, 0.01))
	}
	fmt.Fprintf(&b, "\n## Every run\n\n| run | configuration | producer CPU | switches per AU | h264/s | raw/s | RSS (MiB) | machine busy | steal |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range results {
		fmt.Fprintf(&b, "| %d | %s | %.2f%% | %s | %.1f | %.1f | %.1f | %.0f%% | %.1f%% |\n", res.Run, res.System, res.CPU, switches(res.Switch), res.H264FPS, res.RawFPS, res.RSSMiB, 100*res.Busy, 100*res.Steal)
	}
	return b.String()
}

// warmupNote says when the window starts, for results that recorded it.
func warmupNote(w string) string {
	if w == "" {
		return ""
	}
	return " The window starts " + w + " after the producer's first access unit: the h264 replay buffer (30 s by default) " +
		"is full by then and the pool of slabs has stopped growing. Before that the producer also first-touches each new " +
		"slab's pages (~130 page faults a second at this bit rate, ~16% of its CPU in a perf profile): a cost of its first " +
		"half minute, not of the days it runs."
}

// switches renders a count of context switches per access unit; results
// saved before it was measured have none.
func switches(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", v)
}

// kbpsAU is the mean access unit of a 30 fps stream of kbps, in kB.
func kbpsAU(kbps float64) float64 { return kbps / 8 / 30 }

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
