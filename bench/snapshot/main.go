// Command snapshot benchmarks the snapshot consumer and writes
// docs/bench/snapshot.md: request-to-JPEG latency (p50/p99) at 1920×1080 for
// each encoder available (image/jpeg; GStreamer jpegenc through
// gst-launch-1.0), at full size and scaled to 640×360, quality 85, and the
// daemon's CPU cost per frame while idle.
//
// It runs a producer with the static synthetic pattern in this process,
// builds framehub-snapshot (CGO_ENABLED=0) and runs it as a separate
// process, as deployed, and asks it for snapshots over its TCP admin API one
// after another, as framehubctl does.
//
//	go run ./bench/snapshot [-n 100] [-repeats 3] [-out docs/bench/snapshot.md]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/framehub/framehub/consumers/snapshot"
	"github.com/framehub/framehub/internal/admin"
	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/producer"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/producer/synth"
)

// config is one measured configuration.
type config struct {
	Encoder       string
	Width, Height int // 0: full frame
}

func (c config) String() string {
	size := "1920×1080 (full)"
	if c.Width != 0 {
		size = fmt.Sprintf("%d×%d (scaled)", c.Width, c.Height)
	}
	return c.Encoder + ", " + size
}

// sample is one request's measurements, in ms.
type sample struct {
	latency, wait, encode, hold float64
	bytes                       int
}

func main() {
	n := flag.Int("n", 100, "requests per configuration and repeat")
	repeats := flag.Int("repeats", 3, "repeats (figures are medians over them)")
	idle := flag.Duration("idle", 10*time.Second, "window for the daemon's idle CPU")
	out := flag.String("out", "docs/bench/snapshot.md", "report to write")
	flag.Parse()
	log.SetFlags(0)
	cmdline := "go run ./bench/snapshot " + strings.Join(os.Args[1:], " ")

	tmp, err := os.MkdirTemp("", "fh-bench-snapshot-")
	must(err)
	defer os.RemoveAll(tmp)
	log.Print("building framehub-snapshot (CGO_ENABLED=0)")
	build := exec.Command("go", "build", "-o", tmp+"/", "./cmd/framehub-snapshot")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stderr = os.Stderr
	must(build.Run())

	const w, h, fps = 1920, 1080, 30
	prod, stopProducer := startProducer(filepath.Join(tmp, "fh.sock"), w, h, fps)
	defer stopProducer()
	daemon, addr := startDaemon(filepath.Join(tmp, "framehub-snapshot"), filepath.Join(tmp, "fh.sock"), filepath.Join(tmp, "snaps"))
	defer func() {
		_ = daemon.Process.Signal(os.Interrupt)
		_ = daemon.Wait()
	}()
	c := snapshot.NewClient(addr)
	defer c.Close()
	tok, err := admin.ReadToken(filepath.Join(tmp, "admin.token"))
	must(err)
	c.SetToken(tok)
	ctx := context.Background()
	waitHealthy(ctx, c)

	configs := []config{{Encoder: snapshot.EncoderGo}, {Encoder: snapshot.EncoderGo, Width: 640, Height: 360}}
	gstVersion := "not installed"
	if _, err := exec.LookPath("gst-launch-1.0"); err == nil {
		configs = append(configs, config{Encoder: snapshot.EncoderGst}, config{Encoder: snapshot.EncoderGst, Width: 640, Height: 360})
		if v, err := exec.Command("gst-launch-1.0", "--version").Output(); err == nil {
			gstVersion = strings.SplitN(strings.TrimSpace(string(v)), "\n", 2)[0]
		}
	}
	runs := map[config][][]sample{}
	for r := range *repeats {
		for _, cf := range configs {
			log.Printf("repeat %d/%d: %v", r+1, *repeats, cf)
			req := snapshot.Request{Encoder: cf.Encoder, Width: cf.Width, Height: cf.Height, Quality: 85}
			for range 3 { // warm-up: encoder child, connection, caches
				take(ctx, c, req)
			}
			var ss []sample
			for range *n {
				// Back-to-back requests would lock onto the frame clock and
				// always wait the same part of a frame period: start each at
				// a random phase instead.
				time.Sleep(time.Duration(rand.Int64N(int64(time.Second / fps))))
				ss = append(ss, take(ctx, c, req))
			}
			runs[cf] = append(runs[cf], ss)
		}
	}
	log.Printf("idle CPU over %v, after 2 s of rest", *idle)
	time.Sleep(2 * time.Second) // let the last writes and GC settle
	pub0, cpu0 := prod.Stats().Published, procCPU(daemon.Process.Pid)
	time.Sleep(*idle) // the measurement window itself, not a synchronisation
	pub1, cpu1 := prod.Stats().Published, procCPU(daemon.Process.Pid)
	idleUS := float64(cpu1-cpu0) / 1e3 / float64(pub1-pub0)

	report := render(cmdline, configs, runs, *n, *repeats, idleUS, gstVersion, prod.Stats())
	must(os.MkdirAll(filepath.Dir(*out), 0o755))
	must(os.WriteFile(*out, []byte(report), 0o644))
	fmt.Print(report)
	log.Printf("wrote %s", *out)
}

// take asks for one snapshot and measures it.
func take(ctx context.Context, c *snapshot.Client, req snapshot.Request) sample {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t0, m0 := time.Now(), clock.Mono()
	st, data, err := c.Take(ctx, req, true)
	lat := time.Since(t0)
	must(err)
	if len(data) != st.Bytes {
		log.Fatalf("got %d bytes, status says %d", len(data), st.Bytes)
	}
	return sample{latency: ms(lat), wait: ms(time.Duration(st.CaptureMonoNS - m0)), encode: st.EncodeSeconds * 1000, hold: st.HoldSeconds * 1000, bytes: st.Bytes}
}

func startProducer(addr string, w, h int, fps float64) (*producer.Stream, func()) {
	layout, err := surface.NV12(w, h, 64)
	must(err)
	renderer, err := synth.NewRenderer(producer.SynthLayout(layout), synth.PatternStatic)
	must(err)
	pool, err := surface.NewPool(surface.PoolConfig{Allocator: surface.NewMemfd("framehub-bench"), Size: layout.Size, Min: 4, Max: 16})
	must(err)
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := producer.New(producer.Config{Addr: addr, Logger: quiet})
	must(err)
	st, err := srv.AddStream(producer.StreamConfig{Name: "raw", Caps: producer.RawCaps(layout, uint32(fps), 1), Pool: pool})
	must(err)
	must(srv.Start())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&producer.Synthetic{Stream: st, Renderer: renderer, FPS: fps}).Run(ctx) }()
	return st, func() {
		cancel()
		must(<-done)
		must(srv.Close())
		must(pool.Close())
	}
}

var listening = regexp.MustCompile(`msg="admin API listening" addr=(\S+)`)

// startDaemon runs framehub-snapshot and returns it with its admin address.
func startDaemon(bin, producerAddr, dir string) (*exec.Cmd, string) {
	cmd := exec.Command(bin, "-socket", producerAddr, "-admin", "127.0.0.1:0", "-admin-token", filepath.Join(filepath.Dir(dir), "admin.token"),
		"-dir", dir, "-keep-count", "20")
	stderr, err := cmd.StderrPipe()
	must(err)
	must(cmd.Start())
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := listening.FindStringSubmatch(sc.Text()); m != nil {
			go func() { _, _ = io.Copy(io.Discard, stderr) }() // until the daemon exits
			return cmd, m[1]
		}
	}
	log.Fatal("framehub-snapshot exited before listening")
	return nil, ""
}

func waitHealthy(ctx context.Context, c *snapshot.Client) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		h, err := c.Health(ctx)
		if err == nil && h.OK {
			return
		}
		if time.Now().After(deadline) {
			log.Fatalf("framehub-snapshot not healthy: %+v %v", h, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a daemon that is starting, with a deadline
	}
}

// procCPU returns the CPU time (ns) of process pid, from the scheduler's
// per-thread schedstat (ns resolution).
func procCPU(pid int) int64 {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	must(err)
	var total int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // thread exited
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			v, _ := strconv.ParseInt(f[0], 10, 64)
			total += v
		}
	}
	return total
}

func render(cmdline string, configs []config, runs map[config][][]sample, n, repeats int, idleUS float64, gst string, ps producer.StreamStats) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# Snapshot benchmarks\n\n")
	p("Produced by `%s` on %s.\n", strings.TrimSpace(cmdline), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	p("Every figure is the median over %d repeats of %d requests per configuration (configurations interleaved,\n", repeats, n)
	p("so they saw the same machine). This machine is shared and noisy: compare figures within this file.\n\n")
	p("## Machine\n\n")
	p("- CPU: %s, %d logical cores\n", cpuModel(), runtime.NumCPU())
	p("- Kernel: Linux %s\n", readTrim("/proc/sys/kernel/osrelease"))
	p("- Go: %s\n", runtime.Version())
	p("- GStreamer: %s\n\n", gst)
	p("## Setup\n\n")
	p("A producer in the benchmark process publishes the static synthetic pattern (1920×1080 NV12, 30 fps, memfd\n")
	p("surfaces). framehub-snapshot (built with `CGO_ENABLED=0`) runs as its own process with its defaults (policy\n")
	p("latest, budget 1, queue 32) and writes every snapshot to a directory on the same disk. The benchmark asks it\n")
	p("for snapshots over its TCP admin API (`POST /snapshot?format=jpeg`), one after another, quality 85.\n\n")
	p("- **latency**: request sent → last byte of the JPEG received (what `framehubctl snapshot -o` waits for).\n")
	p("- **frame wait**: request sent → capture of the frame used. A snapshot is of a frame captured at or after the\n")
	p("  request, so at 30 fps this is 0–33 ms (mean ~17 ms) of every latency, whatever the encoder.\n")
	p("- **encode**: frame chosen → JPEG done (scaling included). **lease hold**: frame received → its lease released\n")
	p("  (`framehub_snapshot_lease_hold_seconds`).\n\n")
	p("## Request to JPEG at 1920×1080\n\n")
	p("| encoder, output | latency p50 | latency p99 | frame wait p50 | encode p50 | encode p99 | lease hold p50 | lease hold p99 | JPEG size |\n")
	p("|---|---|---|---|---|---|---|---|---|\n")
	for _, cf := range configs {
		med := func(f func(sample) float64, q float64) float64 { return stat(runs[cf], q, f) }
		p("| %v | **%.1f ms** | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %.0f KB |\n", cf,
			med(func(s sample) float64 { return s.latency }, 0.5), med(func(s sample) float64 { return s.latency }, 0.99),
			med(func(s sample) float64 { return s.wait }, 0.5),
			med(func(s sample) float64 { return s.encode }, 0.5), med(func(s sample) float64 { return s.encode }, 0.99),
			med(func(s sample) float64 { return s.hold }, 0.5), med(func(s sample) float64 { return s.hold }, 0.99),
			med(func(s sample) float64 { return float64(s.bytes) }, 0.5)/1000)
	}
	if len(configs) == 4 {
		enc := func(cf config, q float64, f func(sample) float64) float64 { return stat(runs[cf], q, f) }
		encode := func(s sample) float64 { return s.encode }
		hold := func(s sample) float64 { return s.hold }
		goFull, gstFull := configs[0], configs[2]
		p("\n**Default encoder: gst when gst-launch-1.0 is installed, else go.** At full size jpegenc (libjpeg-turbo,\n")
		p("SIMD) encodes in %.1f ms (p50) where image/jpeg takes %.1f ms (%.1f× faster), and the lease ends after\n",
			enc(gstFull, 0.5, encode), enc(goFull, 0.5, encode), enc(goFull, 0.5, encode)/enc(gstFull, 0.5, encode))
		p("%.1f ms (the frame is copied into the child's pipe) instead of %.1f ms (image/jpeg reads the Y plane in\n",
			enc(gstFull, 0.5, hold), enc(goFull, 0.5, hold))
		p("place for the whole encode). Scaled, both encoders read the frame only while box-filtering it, and the\n")
		p("smaller encode narrows the gap. The go encoder stays for machines without GStreamer.\n\n")
		p("nvjpegenc (Jetson) is not measured: it exists only on Jetson and encodes from NVMM memory, which a\n")
		p("consumer of framehub's memfd/DMA-BUF surfaces would first have to convert into (nvvidconv).\n")
	}
	p("\n## Idle cost\n\n")
	p("While no request waits, the daemon receives every frame and releases it at once (so it never holds a\n")
	p("surface): **%.1f µs of CPU per frame** (%.2f%% of one core at 30 fps), from `/proc/PID/task/*/schedstat`.\n\n",
		idleUS, idleUS*30/1e4)
	p("Producer during the whole run: %d frames published, %d skipped for a consumer at its budget (frames that\n", ps.Published, ps.SkippedBudget)
	p("arrived while an encode held the snapshot consumer's one frame), %d dropped at the source.\n", ps.DroppedExhausted)
	return b.String()
}

// stat returns the median over repeats of the q-quantile of f.
func stat(repeats [][]sample, q float64, f func(sample) float64) float64 {
	var per []float64
	for _, ss := range repeats {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		per = append(per, percentile(v, q))
	}
	return percentile(per, 0.5)
}

func percentile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(q*float64(len(s)-1) + 0.5)
	return s[min(i, len(s)-1)]
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func must(err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}
