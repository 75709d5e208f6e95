// Command peers compares framehub with GStreamer's shared-memory transports
// (shmsink/shmsrc, with and without a copy, and unixfdsink/unixfdsrc when
// installed), and framehub's own GStreamer consumer (framehubsrc, from
// -gst-plugins) beside its Go one, at 1920×1080 NV12 30 fps with 1, 3 and
// 6 consumers: CPU of every
// process, the sharing overhead per consumer, frames and drops per consumer,
// and what happens to the others when one consumer hangs (SIGSTOP). It writes
// a markdown report, SVG charts beside it and the raw results (issue 9).
//
//	go run ./bench/peers -bin bin
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/framehub/framehub/bench/internal/cprog"
	"github.com/framehub/framehub/bench/internal/floor"
	"github.com/framehub/framehub/internal/sysinfo"
	"github.com/framehub/framehub/sdk"
)

const (
	width, height = 1920, 1080
	fps           = 30.0
	frameBytes    = width * height * 3 / 2
)

// system is one way of sharing frames between processes.
type system struct {
	Name string `json:"name"`
	// Producer and Consumer describe the commands, for the report.
	Producer string `json:"producer"`
	Consumer string `json:"consumer"`
	// prod and cons are the commands' argv: "P" stands for the socket path,
	// and a framehub program (no slash in argv[0]) is looked up in -bin.
	// framehub consumers are bench/consumer, given -warmup and -duration.
	prod, cons []string
	framehub   bool
	// Variant is a system measured only for its cost, beside the one it
	// varies (no hung-consumer run).
	Variant bool `json:"variant,omitempty"`
	// env is added to a GStreamer consumer's environment (GST_PLUGIN_PATH).
	env []string
}

// newSystem describes a system from its argv.
func newSystem(name string, framehub bool, prod, cons []string, consNote string) system {
	return system{Name: name, Producer: shellJoin(prod), Consumer: shellJoin(cons) + consNote, prod: prod, cons: cons, framehub: framehub}
}

func variant(s system) system {
	s.Variant = true
	return s
}

// hangSystems returns the systems that get a hung-consumer run: all but
// the variants.
func hangSystems(syss []system) []system {
	var out []system
	for _, s := range syss {
		if !s.Variant {
			out = append(out, s)
		}
	}
	return out
}

// shellJoin quotes argv for a reader to paste into a shell.
func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		switch {
		case a == "":
			q[i] = `""`
		case strings.ContainsAny(a, " '\"$"):
			q[i] = "'" + a + "'"
		default:
			q[i] = a
		}
	}
	return strings.Join(q, " ")
}

// systems are the systems to measure; gstPlugins is the directory of
// framehub's GStreamer plugins ("" when they are not built: no
// framehubsrc); pattern is videotestsrc's.
func systems(unixfd bool, gstPlugins, pattern string) []system {
	caps := fmt.Sprintf("video/x-raw,format=NV12,width=%d,height=%d,framerate=30/1", width, height)
	src := "videotestsrc pattern=" + pattern + " is-live=true ! " + caps
	shm := fmt.Sprintf("shmsink socket-path=P shm-size=%d wait-for-connection=false sync=false", 10*frameBytes)
	// The issue's `shmsrc ! fakesink`: gstcount counts the buffers reaching
	// the sink with a pad probe. fpsdisplaysink, which gst-launch-1.0 -v
	// could print a count from, costs 18–20 µs per frame more (measured side
	// by side, 2026-12-06), which flattered every comparison with a
	// GStreamer consumer.
	sink := "fakesink sync=false"
	gst := func(desc string) []string { return append([]string{"gst-launch-1.0"}, strings.Fields(desc)...) }
	// counted runs a GStreamer consumer under bench/gstcount, which counts its frames.
	counted := func(desc string) []string { return append([]string{"gstcount"}, strings.Fields(desc)...) }
	const touchNote = " (bench/consumer; reads one byte per row of each plane)"
	// The same source as the GStreamer pipelines': the producers alone
	// cost the same, and the difference is the sharing.
	fhProd := []string{"framehub-producer", "-source", "launch:" + src, "-encoder", "none",
		"-width", "1920", "-height", "1080", "-fps", "30", "-admin", "", "-log-level", "warn", "-socket", "P"}
	s := []system{
		newSystem("framehub", true, fhProd, []string{"consumer", "-socket", "P", "-touch=true"}, touchNote),
		// shmsrc ! fakesink never reads the pixels; this is framehub doing
		// the same, so that the transports compare like for like.
		variant(newSystem("framehub-notouch", true, fhProd,
			[]string{"consumer", "-socket", "P", "-touch=false"}, " (bench/consumer; maps nothing, reads no pixel)")),
		// framehub's consumer in C on the same producer: like for like with
		// shmsrc, a C consumer that reads no pixel.
		variant(newSystem("framehub-c", true, fhProd, []string{"cconsumer", "-socket", "P"},
			" (bench/cconsumer: framehub's consumer in C, framehubsrc's protocol code without GStreamer; maps nothing, reads no pixel, releases in the ring)")),
		newSystem("shmsink", false, gst(src+" ! "+shm), counted("shmsrc socket-path=P is-live=true ! "+caps+" ! "+sink), ""),
		newSystem("shmsink+copy", false, gst(src+" ! identity drop-allocation=true ! "+shm),
			counted("shmsrc socket-path=P is-live=true ! "+caps+" ! "+sink), ""),
	}
	if unixfd {
		s = append(s, newSystem("unixfdsink", false, gst(src+" ! unixfdsink socket-path=P sync=false"),
			counted("unixfdsrc socket-path=P ! "+caps+" ! "+sink), ""))
	}
	if gstPlugins != "" {
		// framehub's GStreamer consumer on framehub's producer: counted like
		// shmsrc's, by the same sink; like it (and framehub-notouch) it reads
		// no pixel.
		fs := variant(newSystem("framehubsrc", false, fhProd, counted("framehubsrc socket=P ! "+sink), ""))
		fs.env = []string{"GST_PLUGIN_PATH=" + gstPlugins}
		s = append(s, fs)
	}
	return s
}

// beforeSystems are framehub and framehub-notouch run by the binaries of
// another build (dir), named NAME@before: the same argv with argv[0] made
// absolute, so that before and after are measured interleaved in one run.
func beforeSystems(syss []system, dir string) []system {
	var out []system
	for _, s := range syss {
		if s.Name != "framehub" && s.Name != "framehub-notouch" {
			continue
		}
		b := s
		b.Name += "@before"
		b.prod = append([]string{filepath.Join(dir, s.prod[0])}, s.prod[1:]...)
		b.cons = append([]string{filepath.Join(dir, s.cons[0])}, s.cons[1:]...)
		b.Producer, b.Consumer = shellJoin(b.prod), shellJoin(b.cons)
		b.Variant = true
		out = append(out, b)
	}
	return out
}

// latencySystem is framehub with its synthetic source, whose frames are
// stamped with CLOCK_MONOTONIC as they are published: its consumers'
// latency is delivery alone (publish → receipt), which the GStreamer test
// source's capture time cannot give (it includes rendering the frame).
func latencySystem() system {
	return newSystem("framehub-synthetic", true, []string{"framehub-producer", "-source", "synthetic", "-width", "1920", "-height", "1080",
		"-fps", "30", "-admin", "", "-log-level", "warn", "-socket", "P"},
		[]string{"consumer", "-socket", "P", "-touch=true"}, "")
}

// ipcBoundSystem is framehub as fast as it goes: no frame rate limit, a
// source that writes only its 8-row stamp (so rendering does not bound the
// rate), one consumer releasing each frame at once without touching it.
// Its frames/s compare with the floor's back-to-back round trips.
func ipcBoundSystem() system {
	return newSystem("framehub-ipc-bound", true, []string{"framehub-producer", "-source", "synthetic", "-width", "1920", "-height", "1080",
		"-fps", "0", "-pattern", "stamp-only", "-pool-max", "12", "-max-in-flight", "4", "-admin", "", "-log-level", "warn", "-socket", "P"},
		[]string{"consumer", "-socket", "P", "-touch=false", "-max-in-flight", "4"}, "")
}

// argv makes the command of template for socket sock.
func (b *bench) argv(template []string, sock string) []string {
	a := make([]string, len(template))
	for i, v := range template {
		switch {
		case i == 0 && b.built[v] != "":
			a[i] = b.built[v]
		case i == 0 && !strings.Contains(v, "/") && v != "gst-launch-1.0":
			a[i] = filepath.Join(b.bin, v)
		case v == "P":
			a[i] = sock
		case v == "socket=P": // framehubsrc's property
			a[i] = "socket=" + sock
		default:
			a[i] = strings.ReplaceAll(v, "socket-path=P", "socket-path="+sock)
		}
	}
	return a
}

type consumerResult struct {
	Frames  float64 `json:"frames"` // in the harness's window
	FPS     float64 `json:"fps"`
	Dropped float64 `json:"dropped"`
	CPUPct  float64 `json:"cpu_pct"` // % of one core over the window
	P50     float64 `json:"latency_p50_us,omitempty"`
	P99     float64 `json:"latency_p99_us,omitempty"`
	// CDF[i] is the latency at quantile CDFQ[i] (bench/consumer's).
	CDFQ []float64 `json:"latency_cdf_q,omitempty"`
	CDF  []float64 `json:"latency_cdf_us,omitempty"`
}

type run struct {
	System    string           `json:"system"`
	N         int              `json:"n"`
	Seconds   float64          `json:"seconds"`
	ProdCPU   float64          `json:"producer_cpu_pct"`
	TotalCPU  float64          `json:"total_cpu_pct"`
	Consumers []consumerResult `json:"consumers"`
	// The whole machine over the window (/proc/stat), in %: a run whose
	// CPU the hypervisor took is not comparable with one it did not.
	HostSteal   float64 `json:"host_steal_pct"`
	MachineBusy float64 `json:"machine_busy_pct"`
}

type hangRun struct {
	System string `json:"system"`
	// HealthyFPS[i] is frames/s of each healthy consumer in second i after the stop.
	HealthyFPS [][]float64 `json:"healthy_fps"`
	BeforeFPS  []float64   `json:"healthy_fps_before"` // the seconds before the stop
	ProdCPU    []float64   `json:"producer_cpu_pct"`   // per second after the stop
	RSSBefore  int64       `json:"producer_rss_kb_before"`
	RSSAfter   int64       `json:"producer_rss_kb_after"`
	RSS        []int64     `json:"producer_rss_kb"` // per second after the stop
	CPUBefore  float64     `json:"producer_cpu_pct_before"`
	// Per second before the stop (from the 2nd second of the run): the
	// healthy consumers' frames/s and the producer's VmRSS, the baseline
	// that tells growth caused by the hang from the producer's own.
	PreFPS    [][]float64 `json:"healthy_fps_pre"`
	PreRSS    []int64     `json:"producer_rss_kb_pre"`
	ProdState string      `json:"producer_state_after"`
}

type results struct {
	Command    string        `json:"command"`
	Repeats    int           `json:"repeats"`
	Window     time.Duration `json:"window_ns"`
	Warmup     time.Duration `json:"warmup_ns"`
	HangAfter  time.Duration `json:"hang_after_ns"`
	HangWindow time.Duration `json:"hang_window_ns"`
	Systems    []system      `json:"systems"`
	UnixFD     string        `json:"unixfd"`
	Runs       []run         `json:"runs"`
	Latency    []run         `json:"latency_runs"`   // latencySystem, N = 3
	IPCBound   []run         `json:"ipc_bound_runs"` // ipcBoundSystem, N = 1
	// Consumers are the numbers of consumers measured (-consumers); empty
	// in results from before the flag: 0, 1, 3 and 6.
	Consumers []int `json:"consumers,omitempty"`

	// FramehubSrc says why framehubsrc was not measured, or "available".
	FramehubSrc string `json:"framehubsrc,omitempty"`

	// The machine's floor (bench/floor/floor.c), one of each per repeat:
	// paced at 30 msg/s (consumer CPU per message) and back to back.
	FloorPaced []map[string]float64 `json:"floor_paced"`
	FloorRTT   []map[string]float64 `json:"floor_rtt"`
	// FloorFanout: bench/floor's fanout mode, 0, 1 and 3 consumers in C
	// ("go" 0) and in Go ("go" 1) per repeat: what one more consumer costs
	// at the least on this machine.
	FloorFanout []map[string]float64 `json:"floor_fanout,omitempty"`
	FloorErr    string               `json:"floor_error,omitempty"`
	Hangs       []hangRun            `json:"hangs"`
	Machine     string               `json:"machine"`
	When        time.Time            `json:"when"`

	// raw is the file the results are written to or read from (-results).
	raw string
}

// defaultResults is -results' default.
const defaultResults = "bench/peers/results.json"

// procs owns every child process so that all of them die on any exit path.
type procs struct {
	mu   sync.Mutex
	cmds []*exec.Cmd
}

func (p *procs) start(c *exec.Cmd) error {
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := c.Start(); err != nil {
		return err
	}
	p.mu.Lock()
	p.cmds = append(p.cmds, c)
	p.mu.Unlock()
	return nil
}

// kill kills c's process group and reaps it.
func (p *procs) kill(c *exec.Cmd) {
	if c.Process == nil {
		return
	}
	_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	p.mu.Lock()
	i := slices.Index(p.cmds, c)
	if i >= 0 {
		p.cmds = slices.Delete(p.cmds, i, i+1)
	}
	p.mu.Unlock()
	if i >= 0 {
		_ = c.Wait()
		removeShmAreas(c.Process.Pid)
	}
}

// removeShmAreas deletes the shared-memory areas a killed shmsink leaves
// in /dev/shm (named "shmpipe.%5d.%5d" after its pid and a counter): it
// unlinks them on a clean exit only, and each holds shm-size bytes of RAM.
func removeShmAreas(pid int) {
	names, _ := filepath.Glob("/dev/shm/shmpipe.*")
	for _, n := range names {
		var owner, num int
		if _, err := fmt.Sscanf(strings.ReplaceAll(strings.TrimPrefix(filepath.Base(n), "shmpipe."), " ", ""), "%d.%d", &owner, &num); err == nil && owner == pid {
			_ = os.Remove(n)
		}
	}
}

func (p *procs) killAll() {
	p.mu.Lock()
	cmds := slices.Clone(p.cmds)
	p.mu.Unlock()
	for _, c := range cmds {
		p.kill(c)
	}
}

type bench struct {
	bin, dir, self string
	warmup, window time.Duration
	p              *procs
	seq            int
	built          map[string]string // C programs built for this run (gstcount, cconsumer): name → path
}

func (b *bench) fatalf(format string, a ...any) {
	b.p.killAll()
	log.Fatalf(format, a...)
}

func main() {
	binDir := flag.String("bin", "bin", "directory with framehub-producer and consumer")
	out := flag.String("out", "docs/bench/peers.md", "report to write (SVG charts go beside it)")
	raw := flag.String("results", defaultResults, "raw results: written by a run, read by -from")
	from := flag.Bool("from", false, "render the report from -results instead of measuring")
	repeats := flag.Int("repeats", 3, "repeats per configuration (medians are reported)")
	window := flag.Duration("window", 30*time.Second, "measurement window per run")
	hangAfter := flag.Duration("hang-after", 5*time.Second, "hung-consumer test: SIGSTOP one consumer after this")
	hangWindow := flag.Duration("hang-window", 20*time.Second, "hung-consumer test: observe the others for this long after the stop")
	only := flag.String("systems", "", "comma-separated systems to measure (default: all); a subset's report lacks what it left out")
	runsOnly := flag.Bool("runs-only", false, "measure the N = 0, 1, 3, 6 runs only: no latency, IPC-bound, floor or hung-consumer runs")
	withFloor := flag.Bool("floor", false, "with -runs-only, measure the machine's floor (bench/floor) too")
	nList := flag.String("consumers", "0,1,3,6", "comma-separated numbers of consumers to run each system with; 0 (the producer alone, which overhead is measured against) must be one")
	gstDir := flag.String("gst-plugins", "build/gst", "directory with framehub's GStreamer plugins (make gst): adds the system framehubsrc")
	beforeDir := flag.String("before", "", "directory with the framehub-producer and consumer of another build: adds the systems framehub@before and framehub-notouch@before, run by them, and a before/after table")
	pattern := flag.String("pattern", "black", "videotestsrc's pattern in every system: black copies one cached frame per buffer, "+
		"the way issue 18 measured; smpte renders each frame (~8% of a core), whose noise drowns the cost of sharing")
	consume := flag.String("consume", "", "internal: act as a counting framehub consumer of this socket")
	flag.Parse()
	log.SetFlags(0)
	if *consume != "" {
		os.Exit(countConsumer(*consume))
	}
	if *from {
		data, err := os.ReadFile(*raw)
		if err != nil {
			log.Fatal(err)
		}
		var res results
		if err := json.Unmarshal(data, &res); err != nil {
			log.Fatal(err)
		}
		res.raw = *raw
		if err := writeReport(&res, *out); err != nil {
			log.Fatal(err)
		}
		return
	}
	bin, err := filepath.Abs(*binDir)
	if err != nil {
		log.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "framehub-peers-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	b := &bench{bin: bin, dir: dir, self: self, warmup: 3 * time.Second, window: *window, p: &procs{}}
	defer b.p.killAll()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		b.p.killAll()
		os.RemoveAll(dir)
		log.Fatalf("%v: killed all children", s)
	}()

	unixfdErr := exec.Command("gst-inspect-1.0", "unixfdsink").Run()
	unixfd := "available"
	if unixfdErr != nil {
		unixfd = fmt.Sprintf("`gst-inspect-1.0 unixfdsink` failed (%v): the element is not installed "+
			"(unixfdsink/unixfdsrc appeared in GStreamer 1.24; this machine has %s)", unixfdErr, sysinfo.GStreamerVersion())
	}
	gstPlugins, fhsrc := "", "available"
	if dir, err := filepath.Abs(*gstDir); err != nil {
		fhsrc = err.Error()
	} else if _, err := os.Stat(filepath.Join(dir, "libgstframehubsrc.so")); err != nil {
		fhsrc = fmt.Sprintf("not built (%v): `make gst` builds it", err)
	} else {
		gstPlugins = dir
	}
	syss := systems(unixfdErr == nil, gstPlugins, *pattern)
	if *beforeDir != "" {
		before, err := filepath.Abs(*beforeDir)
		if err != nil {
			log.Fatal(err)
		}
		syss = append(syss, beforeSystems(syss, before)...)
	}
	if *only != "" {
		want := strings.Split(*only, ",")
		syss = slices.DeleteFunc(syss, func(s system) bool { return !slices.Contains(want, s.Name) })
		if len(syss) == 0 {
			log.Fatalf("-systems %q: none of these is a system here", *only)
		}
	}
	// The C programs the chosen systems run: built here, into dir.
	b.built = map[string]string{}
	for name, build := range map[string]func(root, dir string) (string, error){"gstcount": cprog.GstCount, "cconsumer": cprog.CConsumer} {
		if !slices.ContainsFunc(syss, func(s system) bool { return len(s.cons) > 0 && s.cons[0] == name }) {
			continue
		}
		path, err := build(".", dir)
		if err != nil {
			log.Fatalf("build %s, which some of the systems' consumers run: %v", name, err)
		}
		b.built[name] = path
	}
	ns, err := parseConsumers(*nList)
	if err != nil {
		log.Fatalf("-consumers %q: %v", *nList, err)
	}
	res := results{Command: "go run ./bench/peers " + strings.Join(os.Args[1:], " "), Repeats: *repeats, Window: *window,
		Warmup: b.warmup, HangAfter: *hangAfter, HangWindow: *hangWindow, Systems: syss, UnixFD: unixfd, FramehubSrc: fhsrc,
		Consumers: ns, Machine: sysinfo.Machine(), When: time.Now().UTC(), raw: *raw}
	for r := 0; r < *repeats; r++ {
		for _, n := range ns {
			for _, s := range syss {
				log.Printf("run %d/%d: %s, %d consumers", r+1, *repeats, s.Name, n)
				res.Runs = append(res.Runs, b.run(s, n))
			}
		}
	}
	for r := 0; r < *repeats && !*runsOnly; r++ {
		log.Printf("latency run %d/%d: framehub with the synthetic source, 3 consumers", r+1, *repeats)
		res.Latency = append(res.Latency, b.run(latencySystem(), 3))
	}
	for r := 0; r < *repeats && !*runsOnly; r++ {
		log.Printf("IPC-bound run %d/%d: framehub without a rate limit, 1 consumer", r+1, *repeats)
		res.IPCBound = append(res.IPCBound, b.run(ipcBoundSystem(), 1))
	}
	if *runsOnly && !*withFloor {
		res.FloorErr = "not measured (-runs-only)"
	} else if floorBin, err := floor.Build(".", dir); err != nil {
		res.FloorErr = err.Error()
		log.Printf("no floor: %v", err)
	} else {
		consumers := []string{""} // the fan-out floor's: C, then Go when it builds
		if goCons, err := floor.BuildGoConsumer(".", dir); err != nil {
			log.Printf("no Go consumer for the fan-out floor: %v", err)
		} else {
			consumers = append(consumers, goCons)
		}
		for r := 0; r < *repeats; r++ {
			log.Printf("floor run %d/%d", r+1, *repeats)
			m0 := b.machine()
			paced, err := floor.Paced(floorBin)
			if err != nil {
				b.fatalf("%v", err)
			}
			m1 := b.machine()
			rtt, err := floor.RTT(floorBin)
			if err != nil {
				b.fatalf("%v", err)
			}
			_, stealPaced := m1.Share(m0)
			_, stealRTT := b.machine().Share(m1)
			paced["host_steal_pct"], rtt["host_steal_pct"] = 100*stealPaced, 100*stealRTT
			res.FloorPaced, res.FloorRTT = append(res.FloorPaced, paced), append(res.FloorRTT, rtt)
			for _, k := range []int{0, 1, 3} {
				for _, c := range consumers {
					if k == 0 && c != "" {
						continue // a producer alone: the C series' run is the same program
					}
					m0 := b.machine()
					fan, err := floor.Fanout(floorBin, k, c)
					if err != nil {
						b.fatalf("%v", err)
					}
					_, steal := b.machine().Share(m0)
					fan["host_steal_pct"] = 100 * steal
					res.FloorFanout = append(res.FloorFanout, fan)
				}
			}
		}
	}
	for r := 0; r < *repeats && !*runsOnly; r++ {
		for _, s := range hangSystems(syss) {
			log.Printf("hung-consumer run %d/%d: %s", r+1, *repeats, s.Name)
			res.Hangs = append(res.Hangs, b.hang(s, *hangAfter, *hangWindow))
		}
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		b.fatalf("%v", err)
	}
	if err := os.MkdirAll(filepath.Dir(*raw), 0o755); err != nil {
		b.fatalf("%v", err)
	}
	if err := os.WriteFile(*raw, data, 0o644); err != nil {
		b.fatalf("%v", err)
	}
	if err := writeReport(&res, *out); err != nil {
		b.fatalf("%v", err)
	}
	log.Printf("wrote %s and %s", *out, *raw)
}

// parseConsumers reads -consumers: distinct counts in 0..64, 0 among
// them, returned in increasing order.
func parseConsumers(list string) ([]int, error) {
	var ns []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 || n > 64 {
			return nil, fmt.Errorf("%q is not a number of consumers in 0..64", f)
		}
		if slices.Contains(ns, n) {
			return nil, fmt.Errorf("%d given twice", n)
		}
		ns = append(ns, n)
	}
	if !slices.Contains(ns, 0) {
		return nil, errors.New("0 is missing: the overhead per consumer is measured against the producer alone")
	}
	if len(ns) < 2 {
		return nil, errors.New("no run with consumers")
	}
	slices.Sort(ns)
	return ns, nil
}

// counter follows a consumer's stdout for "rendered: N, dropped: D" lines
// (bench/gstcount, or this program's -consume mode).
type counter struct {
	rendered, dropped atomic.Int64
	done              chan struct{}
}

func newCounter(r io.Reader) *counter {
	renderedRE := regexp.MustCompile(`rendered: (\d+), dropped: (\d+)`)
	c := &counter{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		s := bufio.NewScanner(r)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			if m := renderedRE.FindSubmatch(s.Bytes()); m != nil {
				n, _ := strconv.ParseInt(string(m[1]), 10, 64)
				d, _ := strconv.ParseInt(string(m[2]), 10, 64)
				c.rendered.Store(n)
				c.dropped.Store(d)
			}
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	return c
}

type consumer struct {
	cmd *exec.Cmd
	cnt *counter // nil for bench/consumer
	out *strings.Builder
}

// startProducer starts s's producer on a fresh socket and waits for it.
func (b *bench) startProducer(s system) (*exec.Cmd, string) {
	b.seq++
	sock := filepath.Join(b.dir, fmt.Sprintf("s%d.sock", b.seq))
	argv := b.argv(s.prod, sock)
	prod := exec.Command(argv[0], argv[1:]...)
	prod.Stderr = os.Stderr
	if err := b.p.start(prod); err != nil {
		b.fatalf("%s producer: %v", s.Name, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.fatalf("%s producer did not create %s", s.Name, sock)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return prod, sock
}

// startConsumer starts one consumer; counting selects a consumer that reports
// its running frame count (for the per-second series).
func (b *bench) startConsumer(s system, sock string, counting bool, duration time.Duration) consumer {
	var c *exec.Cmd
	switch {
	case s.framehub && counting:
		c = exec.Command(b.self, "-consume", sock)
	case s.framehub:
		argv := append(b.argv(s.cons, sock), "-warmup", b.warmup.String(), "-duration", duration.String())
		c = exec.Command(argv[0], argv[1:]...)
	default:
		argv := b.argv(s.cons, sock)
		c = exec.Command(argv[0], argv[1:]...)
		if len(s.env) > 0 {
			c.Env = append(os.Environ(), s.env...)
		}
	}
	c.Stderr = os.Stderr
	cons := consumer{cmd: c}
	if s.framehub && !counting {
		cons.out = &strings.Builder{}
		c.Stdout = cons.out
	} else {
		pr, err := c.StdoutPipe()
		if err != nil {
			b.fatalf("%v", err)
		}
		cons.cnt = newCounter(pr)
	}
	if err := b.p.start(c); err != nil {
		b.fatalf("%s consumer: %v", s.Name, err)
	}
	return cons
}

// run measures s's producer with n consumers over one window.
func (b *bench) run(s system, n int) run {
	prod, sock := b.startProducer(s)
	defer b.p.kill(prod)
	var cs []consumer
	defer func() {
		for _, c := range cs {
			b.p.kill(c.cmd)
		}
	}()
	for i := 0; i < n; i++ {
		// bench/consumer measures from its first frame after the warm-up; let
		// it outlive the harness's window so its CPU can be sampled at the end.
		cs = append(cs, b.startConsumer(s, sock, false, b.window+2*time.Second))
	}
	time.Sleep(b.warmup)
	sample := func() (cpu []int64, rend, drop []int64) {
		cpu = append(cpu, b.cpu(prod.Process.Pid))
		for _, c := range cs {
			cpu = append(cpu, b.cpu(c.cmd.Process.Pid))
			if c.cnt != nil {
				rend, drop = append(rend, c.cnt.rendered.Load()), append(drop, c.cnt.dropped.Load())
			} else {
				rend, drop = append(rend, 0), append(drop, 0)
			}
		}
		return
	}
	cpu0, r0, d0 := sample()
	m0 := b.machine()
	t0 := time.Now()
	time.Sleep(b.window)
	cpu1, r1, d1 := sample()
	el := time.Since(t0).Seconds()
	busy, steal := b.machine().Share(m0)
	pct := func(i int) float64 { return float64(cpu1[i]-cpu0[i]) / 1e9 / el * 100 }
	r := run{System: s.Name, N: n, Seconds: el, ProdCPU: pct(0), TotalCPU: pct(0), HostSteal: 100 * steal, MachineBusy: 100 * busy}
	for i, c := range cs {
		cr := consumerResult{CPUPct: pct(i + 1)}
		r.TotalCPU += cr.CPUPct
		if c.cnt != nil {
			cr.Frames = float64(r1[i] - r0[i])
			cr.FPS = cr.Frames / el
			cr.Dropped = float64(d1[i] - d0[i])
		} else {
			if err := c.cmd.Wait(); err != nil {
				b.fatalf("%s consumer %d: %v", s.Name, i, err)
			}
			var fr struct {
				Frames  float64   `json:"frames"`
				FPS     float64   `json:"fps"`
				Seconds float64   `json:"seconds"`
				Dropped float64   `json:"dropped"`
				P50     float64   `json:"latency_p50_us"`
				P99     float64   `json:"latency_p99_us"`
				CDFQ    []float64 `json:"latency_cdf_q"`
				CDF     []float64 `json:"latency_cdf_us"`
			}
			if err := json.Unmarshal([]byte(c.out.String()), &fr); err != nil {
				b.fatalf("%s consumer %d output %q: %v", s.Name, i, c.out.String(), err)
			}
			cr.FPS, cr.Frames, cr.P50, cr.P99, cr.CDFQ, cr.CDF = fr.FPS, fr.FPS*el, fr.P50, fr.P99, fr.CDFQ, fr.CDF
			cr.Dropped = fr.Dropped * el / max(fr.Seconds, 1e-9)
		}
		r.Consumers = append(r.Consumers, cr)
	}
	return r
}

// hang runs 3 counting consumers, SIGSTOPs the first after `after` and
// records the others' frames per second and the producer's CPU and RSS.
func (b *bench) hang(s system, after, window time.Duration) hangRun {
	prod, sock := b.startProducer(s)
	defer b.p.kill(prod)
	var cs []consumer
	defer func() {
		for _, c := range cs {
			b.p.kill(c.cmd)
		}
	}()
	for i := 0; i < 3; i++ {
		cs = append(cs, b.startConsumer(s, sock, true, 0))
	}
	time.Sleep(b.warmup)
	h := hangRun{System: s.Name}
	pid := prod.Process.Pid
	prev := []int64{cs[1].cnt.rendered.Load(), cs[2].cnt.rendered.Load()}
	prevCPU, prevT := b.cpu(pid), time.Now()
	secs := int(after/time.Second) + int(window/time.Second)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; i < secs; i++ {
		if i == int(after/time.Second) {
			h.RSSBefore = sysinfo.RSSKiB(pid)
			if err := syscall.Kill(cs[0].cmd.Process.Pid, syscall.SIGSTOP); err != nil {
				b.fatalf("SIGSTOP: %v", err)
			}
		}
		<-tick.C
		now, cpu := time.Now(), b.cpu(pid)
		dt := now.Sub(prevT).Seconds()
		var f []float64
		for j, c := range cs[1:] {
			v := c.cnt.rendered.Load()
			f = append(f, float64(v-prev[j])/dt)
			prev[j] = v
		}
		pct := float64(cpu-prevCPU) / 1e9 / dt * 100
		if i < int(after/time.Second) {
			if i > 0 { // the first second straddles the warm-up
				h.BeforeFPS = append(h.BeforeFPS, f...)
				h.CPUBefore += pct / float64(int(after/time.Second)-1)
				h.PreFPS = append(h.PreFPS, f)
				h.PreRSS = append(h.PreRSS, sysinfo.RSSKiB(pid))
			}
		} else {
			h.HealthyFPS = append(h.HealthyFPS, f)
			h.ProdCPU = append(h.ProdCPU, pct)
			h.RSS = append(h.RSS, sysinfo.RSSKiB(pid))
		}
		prevCPU, prevT = cpu, now
	}
	h.RSSAfter = sysinfo.RSSKiB(pid)
	h.ProdState = sysinfo.StatusField(pid, "State")
	return h
}

// countConsumer is the -consume mode: a framehub consumer touching every
// frame like bench/consumer and printing its running count every 100 ms.
func countConsumer(sock string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	c, err := sdk.Dial(ctx, sock, sdk.Options{Stream: "raw", Name: "peers", MaxInFlight: 4})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "consume:", err)
		return 1
	}
	defer c.Close()
	var frames, sum uint64
	last := time.Now()
	for {
		f, err := c.Next(context.Background())
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0
			}
			fmt.Fprintln(os.Stderr, "consume:", err)
			return 1
		}
		for i := range f.Planes() {
			p, err := f.Plane(i)
			if err != nil {
				fmt.Fprintln(os.Stderr, "consume:", err)
				return 1
			}
			stride := f.Planes()[i].Stride
			for off := 0; off < len(p); off += stride {
				sum += uint64(p[off])
			}
		}
		f.Release()
		frames++
		if now := time.Now(); now.Sub(last) >= 100*time.Millisecond {
			fmt.Printf("rendered: %d, dropped: %d (checksum %d)\n", frames, c.Stats().Dropped, sum)
			last = now
		}
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// cpu is pid's CPU time in ns; a measured process that vanished ends the
// benchmark.
func (b *bench) cpu(pid int) int64 {
	v, err := sysinfo.ProcCPU(pid)
	if err != nil {
		b.fatalf("%v", err)
	}
	return v
}

// machine reads the whole machine's CPU counters; the benchmark cannot
// judge its own figures without them.
func (b *bench) machine() sysinfo.CPUTicks {
	c, err := sysinfo.ReadCPUTicks()
	if err != nil {
		b.fatalf("%v", err)
	}
	return c
}
