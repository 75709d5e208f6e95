package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/framehub/framehub/internal/cuda"
	"github.com/framehub/framehub/internal/sysinfo"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer"
)

// runConfig is the benchmark's shape.
type runConfig struct {
	g         gpuFlags
	fps       float64
	consumers int
	budget    int
	window    time.Duration
	kills     int
	out       string
	self      string // the program that runs the children (os.Args[0])
	dir       string // for sockets
}

// report is what run writes (-out) and prints.
type report struct {
	Date    string      `json:"date"`
	Machine string      `json:"machine"`
	Library string      `json:"library"`
	Driver  int         `json:"driver_version"`
	Device  cuda.Device `json:"device"`
	Config  struct {
		Width, Height int
		FPS           float64
		Consumers     int
		Budget        int
		WindowS       float64
		Sched         string
		Kernels       string
	} `json:"config"`
	Fanout  fanoutResult    `json:"fanout"`
	Kill    killResult      `json:"kill9"`
	Survive *consumerResult `json:"survive"`
	DMABuf  *consumerResult `json:"dmabuf"`
}

type fanoutResult struct {
	WindowS          float64          `json:"window_s"`
	Published        int64            `json:"published_window"`
	ProducerCPUUS    float64          `json:"producer_cpu_us_per_frame"`
	RenderMeanUS     float64          `json:"render_mean_us"`
	RenderMaxUS      float64          `json:"render_max_us"`
	PublishedTotal   uint64           `json:"published_total"`
	Delivered        uint64           `json:"delivered_total"`
	SkippedBudget    uint64           `json:"skipped_budget"`
	SkippedSocket    uint64           `json:"skipped_socket"`
	DroppedExhausted uint64           `json:"dropped_exhausted"`
	Consumers        []consumerResult `json:"consumers"`
}

type killResult struct {
	Runs []killRun `json:"runs"`
	// OthersReceivedDuring: frames each verify consumer received while the
	// kills ran, against PublishedDuring.
	PublishedDuring uint64 `json:"published_during"`
}

type killRun struct {
	Leases    int     `json:"leases_held"`
	ReclaimMS float64 `json:"reclaim_ms"`
}

func runMain(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var rc runConfig
	rc.g.register(fs)
	fs.Float64Var(&rc.fps, "fps", 60, "frames per second")
	fs.IntVar(&rc.consumers, "consumers", 3, "verifying consumer processes")
	fs.IntVar(&rc.budget, "max-in-flight", 4, "each consumer's budget")
	fs.DurationVar(&rc.window, "window", 30*time.Second, "measuring window of the fan-out")
	fs.IntVar(&rc.kills, "kills", 5, "consumers killed with SIGKILL while holding leases")
	fs.StringVar(&rc.out, "out", "", "write the JSON report here")
	fs.Parse(args)
	rc.self = os.Args[0]
	dir, err := os.MkdirTemp("", "framehub-gpu-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rc.dir = dir
	rep, err := run(&rc)
	if rep != nil {
		printReport(os.Stdout, rep)
		if rc.out != "" {
			b, jerr := json.MarshalIndent(rep, "", "  ")
			if jerr == nil {
				jerr = os.WriteFile(rc.out, append(b, '\n'), 0o644)
			}
			err = errors.Join(err, jerr)
		}
	}
	return err
}

// child is a process run started.
type child struct {
	cmd   *exec.Cmd
	lines chan string // stdout, line by line; closed at EOF
}

func (rc *runConfig) start(args ...string) (*child, error) {
	g := rc.g
	args = append(args, "-width", strconv.Itoa(g.width), "-height", strconv.Itoa(g.height), "-sched", g.sched)
	if g.kernels != "" {
		args = append(args, "-kernels", g.kernels)
	}
	cmd := exec.Command(rc.self, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, lines: make(chan string, 16)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	return c, nil
}

// line waits for the next stdout line.
func (c *child) line(timeout time.Duration) (string, error) {
	select {
	case l, ok := <-c.lines:
		if !ok {
			return "", fmt.Errorf("pid %d: output ended", c.cmd.Process.Pid)
		}
		return l, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("pid %d: no output within %v", c.cmd.Process.Pid, timeout)
	}
}

// result waits for the child to exit and parses its last line.
func (c *child) result() (*consumerResult, error) {
	var last string
	for l := range c.lines {
		last = l
	}
	werr := c.cmd.Wait()
	var r consumerResult
	if err := json.Unmarshal([]byte(last), &r); err != nil {
		return nil, fmt.Errorf("pid %d (%v): no result (%q): %w", c.cmd.Process.Pid, werr, last, err)
	}
	return &r, nil
}

func run(rc *runConfig) (*report, error) {
	rep := &report{Date: time.Now().UTC().Format(time.RFC3339), Machine: sysinfo.Summary()}
	rep.Config.Width, rep.Config.Height, rep.Config.FPS = rc.g.width, rc.g.height, rc.fps
	rep.Config.Consumers, rep.Config.Budget, rep.Config.WindowS = rc.consumers, rc.budget, rc.window.Seconds()
	rep.Config.Sched, rep.Config.Kernels = rc.g.sched, "embedded kernels.ptx"
	if rc.g.kernels != "" {
		rep.Config.Kernels = rc.g.kernels
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	addr := filepath.Join(rc.dir, "fanout.sock")
	p, err := startProducer(&rc.g, addr, rc.fps, ipc.KindCUDA, rc.consumers*rc.budget+rc.budget+2, log)
	if err != nil {
		return nil, fmt.Errorf("fan-out producer: %w", err)
	}
	rep.Library, rep.Device = p.ctx.Driver().Path(), p.ctx.Device()
	rep.Driver, _ = p.ctx.Driver().Version()
	ctx, cancel := context.WithCancel(context.Background())
	srcDone := make(chan error, 1)
	go func() { srcDone <- p.run(ctx) }()
	stopProducer := func() error {
		cancel()
		return errors.Join(<-srcDone, p.stop())
	}

	var consumers []*child
	for range rc.consumers {
		c, err := rc.start("consumer", "-socket", addr, "-mode", "verify", "-max-in-flight", strconv.Itoa(rc.budget))
		if err != nil {
			return rep, errors.Join(err, stopProducer())
		}
		consumers = append(consumers, c)
	}
	stopConsumers := func() {
		for _, c := range consumers {
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	// Warm up: every consumer subscribed and got two seconds of frames.
	if err := waitFor(60*time.Second, func() bool {
		ss := p.srv.Sessions()
		n := 0
		for _, s := range ss {
			if s.Delivered >= uint64(2*rc.fps) {
				n++
			}
		}
		return n >= rc.consumers
	}); err != nil {
		stopConsumers()
		return rep, errors.Join(fmt.Errorf("warm-up: %w", err), stopProducer())
	}

	// The fan-out window.
	signalAll(consumers, syscall.SIGUSR1)
	cpu0, st0, src0 := cpuTime(), p.st.Stats(), p.src.Stats()
	t0 := time.Now()
	time.Sleep(rc.window)
	signalAll(consumers, syscall.SIGUSR1)
	cpu1, st1, src1 := cpuTime(), p.st.Stats(), p.src.Stats()
	f := &rep.Fanout
	f.WindowS = time.Since(t0).Seconds()
	f.Published = int64(st1.Published - st0.Published)
	if f.Published > 0 {
		f.ProducerCPUUS = float64((cpu1 - cpu0).Nanoseconds()) / 1e3 / float64(f.Published)
	}
	if n := src1.Frames - src0.Frames; n > 0 {
		f.RenderMeanUS = float64((src1.Render - src0.Render).Nanoseconds()) / 1e3 / float64(n)
	}
	f.RenderMaxUS = float64(src1.MaxRender.Nanoseconds()) / 1e3

	// SIGKILL consumers holding leases, while the others go on.
	pubBefore := p.st.Stats().Published
	for range rc.kills {
		r, err := rc.killOne(p, addr)
		if err != nil {
			stopConsumers()
			return rep, errors.Join(fmt.Errorf("kill -9: %w", err), stopProducer())
		}
		rep.Kill.Runs = append(rep.Kill.Runs, r)
	}
	rep.Kill.PublishedDuring = p.st.Stats().Published - pubBefore

	stopConsumers()
	var errs []error
	for _, c := range consumers {
		r, err := c.result()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f.Consumers = append(f.Consumers, *r)
	}
	end := p.st.Stats()
	f.PublishedTotal, f.Delivered = end.Published, end.Delivered
	f.SkippedBudget, f.SkippedSocket, f.DroppedExhausted = end.SkippedBudget, end.SkippedSocket, end.DroppedExhausted
	errs = append(errs, stopProducer())
	if err := errors.Join(errs...); err != nil {
		return rep, err
	}

	if rep.Survive, err = rc.survive(); err != nil {
		return rep, fmt.Errorf("producer death: %w", err)
	}
	if rep.DMABuf, err = rc.dmabuf(); err != nil {
		return rep, fmt.Errorf("dma-buf export: %w", err)
	}
	return rep, nil
}

func signalAll(cs []*child, sig os.Signal) {
	for _, c := range cs {
		_ = c.cmd.Process.Signal(sig)
	}
}

// waitFor polls cond every 100 µs until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", timeout)
		}
		time.Sleep(100 * time.Microsecond)
	}
	return nil
}

// killOne starts a consumer that verifies and holds frames up to its
// budget, SIGKILLs it once it holds them all and measures how long the
// producer takes to end its session, which releases its leases.
func (rc *runConfig) killOne(p *gpuProducer, addr string) (killRun, error) {
	c, err := rc.start("consumer", "-socket", addr, "-mode", "hold", "-max-in-flight", strconv.Itoa(rc.budget))
	if err != nil {
		return killRun{}, err
	}
	pid := c.cmd.Process.Pid
	held := 0
	if err := waitFor(30*time.Second, func() bool {
		for _, s := range p.srv.Sessions() {
			if s.PID == pid {
				held = s.InFlight
				return held >= rc.budget
			}
		}
		return false
	}); err != nil {
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
		return killRun{}, fmt.Errorf("holder pid %d never held %d frames: %w", pid, rc.budget, err)
	}
	t0 := time.Now()
	if err := c.cmd.Process.Kill(); err != nil {
		return killRun{}, err
	}
	err = waitFor(5*time.Second, func() bool {
		return !slices.ContainsFunc(p.srv.Sessions(), func(s producer.SessionInfo) bool { return s.PID == pid })
	})
	d := time.Since(t0)
	_ = c.cmd.Wait()
	for range c.lines {
	}
	if err != nil {
		return killRun{}, fmt.Errorf("session of killed pid %d: %w", pid, err)
	}
	return killRun{Leases: held, ReclaimMS: float64(d.Nanoseconds()) / 1e6}, nil
}

// survive runs a producer process and a consumer that holds a frame, kills
// the producer with SIGKILL and lets the consumer check the held frame.
func (rc *runConfig) survive() (*consumerResult, error) {
	addr := filepath.Join(rc.dir, "survive.sock")
	prod, err := rc.start("producer", "-socket", addr, "-fps", strconv.FormatFloat(rc.fps, 'f', -1, 64))
	if err != nil {
		return nil, err
	}
	defer func() { _ = prod.cmd.Process.Kill(); _ = prod.cmd.Wait() }()
	if l, err := prod.line(60 * time.Second); err != nil || l != "ready" {
		return nil, fmt.Errorf("producer: %q, %v", l, err)
	}
	c, err := rc.start("consumer", "-socket", addr, "-mode", "survive")
	if err != nil {
		return nil, err
	}
	l, err := c.line(60 * time.Second)
	if err != nil || !strings.HasPrefix(l, "holding ") {
		_ = c.cmd.Process.Kill()
		return nil, fmt.Errorf("survivor: %q, %v", l, err)
	}
	if err := prod.cmd.Process.Kill(); err != nil {
		return nil, err
	}
	return c.result()
}

// dmabuf runs a producer exporting DMA-BUFs and a consumer that inspects
// them.
func (rc *runConfig) dmabuf() (*consumerResult, error) {
	addr := filepath.Join(rc.dir, "dmabuf.sock")
	prod, err := rc.start("producer", "-socket", addr, "-export", "dmabuf", "-fps", strconv.FormatFloat(rc.fps, 'f', -1, 64))
	if err != nil {
		return nil, err
	}
	defer func() { _ = prod.cmd.Process.Signal(syscall.SIGTERM); _ = prod.cmd.Wait() }()
	if l, err := prod.line(60 * time.Second); err != nil || l != "ready" {
		return nil, fmt.Errorf("producer: %q, %v", l, err)
	}
	c, err := rc.start("consumer", "-socket", addr, "-mode", "dmabuf", "-frames", strconv.Itoa(int(2*rc.fps)))
	if err != nil {
		return nil, err
	}
	return c.result()
}
