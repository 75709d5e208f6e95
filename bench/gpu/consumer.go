package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/internal/cuda"
	"github.com/framehub/framehub/internal/gpuframe"
	"github.com/framehub/framehub/sdk"
	sdkcuda "github.com/framehub/framehub/sdk/cuda"
)

// consumerResult is what a consumer process prints, as its last line of
// JSON, when it ends.
type consumerResult struct {
	Mode     string `json:"mode"`
	PID      int    `json:"pid"`
	Received uint64 `json:"received"`
	Verified uint64 `json:"verified"`
	Failed   uint64 `json:"failed"`
	FirstErr string `json:"first_err,omitempty"`
	Dropped  uint64 `json:"dropped"`
	// Window: between the first and second SIGUSR1 (run's measuring window).
	WindowFrames uint64  `json:"window_frames"`
	WindowCPUUS  float64 `json:"window_cpu_us"`
	WindowWallS  float64 `json:"window_wall_s"`
	// Imports of surfaces: how many, and each one's cost.
	Imports  int       `json:"imports"`
	ImportUS []float64 `json:"import_us"`
	// VerifyUS: host wall time of each verification (launch, GPU work,
	// synchronisation, 32-byte copy); LatencyUS: capture to receipt.
	VerifyUS  []float64 `json:"verify_us"`
	LatencyUS []float64 `json:"latency_us"`
	// HostBytes: bytes copied from the GPU to the host (the 32-byte
	// verification results; pixels never).
	HostBytes uint64 `json:"host_bytes"`
	MaxRSSKB  int64  `json:"max_rss_kb"`
	// survive: the frame held across the producer's death.
	HeldSeq          uint64 `json:"held_seq,omitempty"`
	Disconnect       string `json:"disconnect,omitempty"`
	AfterDeath       string `json:"after_death,omitempty"` // "verified" or the error
	MappedAfterDeath int    `json:"mapped_after_death"`
	MappedAtEnd      int    `json:"mapped_at_end"`
	UnmappedAtEnd    int    `json:"unmapped_at_end"`
	// dmabuf: what a consumer of a DMA-BUF export of GPU memory sees.
	SurfaceKind string `json:"surface_kind,omitempty"`
	NoCPUMap    bool   `json:"no_cpu_map,omitempty"`
	PlaneErr    string `json:"plane_err,omitempty"`
	MmapErr     string `json:"mmap_err,omitempty"`
	ExpName     string `json:"exp_name,omitempty"`
	ImportErr   string `json:"import_err,omitempty"`
}

// cpuSnap is a snapshot of the process's CPU time and frame count.
type cpuSnap struct {
	cpu    time.Duration
	frames uint64
	at     time.Time
}

func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func maxRSS() int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss
}

// consumer is one consumer process's state.
type consumer struct {
	g      gpuFlags
	c      *sdk.Client
	im     *sdkcuda.Importer
	ctx    *cuda.Context
	k      *gpuframe.Kernels
	v      *gpuframe.Verifier
	res    consumerResult
	mu     sync.Mutex // guards snaps and res.Received (read by the signal goroutine)
	snaps  []cpuSnap
	layout gpuframe.Layout // of the last verified frame
}

func consumerMain(args []string) error {
	fs := flag.NewFlagSet("consumer", flag.ExitOnError)
	var k consumer
	k.g.register(fs)
	addr := fs.String("socket", "", "producer socket (required)")
	mode := fs.String("mode", "verify", "verify: verify and release every frame; hold: verify and never release; "+
		"survive: hold one frame across the producer's death; dmabuf: inspect DMA-BUF surfaces")
	budget := fs.Int("max-in-flight", 4, "frames held at once")
	frames := fs.Uint64("frames", 0, "stop after this many frames (0: until SIGTERM)")
	fs.Parse(args)
	if *addr == "" {
		return errors.New("consumer: -socket is required")
	}
	k.res.Mode, k.res.PID = *mode, os.Getpid()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	var err error
	if k.c, err = sdk.Dial(ctx, *addr, sdk.Options{Stream: "raw", Name: "gpu-" + *mode, MaxInFlight: *budget, Logger: log}); err != nil {
		return err
	}
	defer k.c.Close()
	if k.im, err = sdkcuda.NewImporter(sdkcuda.Options{}); err != nil {
		return err
	}
	defer k.im.Close()
	usr1 := make(chan os.Signal, 2)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			k.mu.Lock()
			k.snaps = append(k.snaps, cpuSnap{cpu: cpuTime(), frames: k.res.Received, at: time.Now()})
			k.mu.Unlock()
		}
	}()
	switch *mode {
	case "verify", "hold":
		err = k.verifyLoop(ctx, *mode == "hold", *frames)
	case "survive":
		err = k.survive(ctx)
	case "dmabuf":
		err = k.dmabuf(ctx, *frames)
	default:
		err = fmt.Errorf("consumer: unknown -mode %q", *mode)
	}
	signal.Stop(usr1)
	k.finish()
	if err != nil {
		return err
	}
	b, err := json.Marshal(&k.res)
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", b)
	return nil
}

// setup prepares the verifier on the device of the first frame.
func (k *consumer) setup(f *sdk.Frame) error {
	info := f.Surface()
	if info.Device == nil {
		return fmt.Errorf("consumer: surface %d is %v host memory", info.ID, info.Kind)
	}
	var err error
	if _, k.ctx, err = k.g.open(info.Device.UUID); err != nil {
		return err
	}
	if err := k.im.Warm(info.Device.UUID); err != nil {
		return err
	}
	img, err := k.g.kernelImage()
	if err != nil {
		return err
	}
	if k.k, err = gpuframe.Load(k.ctx, img); err != nil {
		return err
	}
	k.v, err = k.k.NewVerifier()
	return err
}

// verify checks frame f on the GPU.
func (k *consumer) verify(f *sdk.Frame) error {
	if k.v == nil {
		if err := k.setup(f); err != nil {
			return err
		}
	}
	d, err := k.im.Map(f)
	if err != nil {
		return err
	}
	if len(d.Planes) != 2 {
		return fmt.Errorf("consumer: frame %d has %d planes, want NV12's 2", f.Seq(), len(d.Planes))
	}
	caps := k.c.Caps()
	k.layout = gpuframe.Layout{
		Width: caps.Width, Height: caps.Height,
		YOffset: int(d.Planes[0].Ptr - d.Ptr), YStride: d.Planes[0].Pitch,
		UVOffset: int(d.Planes[1].Ptr - d.Ptr), UVStride: d.Planes[1].Pitch,
	}
	t0 := time.Now()
	r, err := k.v.Verify(cuda.DevPtr(d.Ptr), d.Size, k.layout, f.Seq())
	k.res.VerifyUS = append(k.res.VerifyUS, float64(time.Since(t0).Nanoseconds())/1e3)
	if err != nil {
		return err
	}
	k.res.HostBytes += 32
	return r.Err(f.Seq())
}

// record counts a received frame and its verification.
func (k *consumer) record(f *sdk.Frame, err error) {
	k.mu.Lock()
	k.res.Received++
	k.mu.Unlock()
	k.res.LatencyUS = append(k.res.LatencyUS, float64(f.Latency().Nanoseconds())/1e3)
	if err != nil {
		k.res.Failed++
		if k.res.FirstErr == "" {
			k.res.FirstErr = err.Error()
		}
		return
	}
	k.res.Verified++
}

func (k *consumer) verifyLoop(ctx context.Context, hold bool, frames uint64) error {
	for frames == 0 || k.res.Received < frames {
		f, err := k.c.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		k.record(f, k.verify(f))
		if !hold {
			f.Release()
		}
	}
	return nil
}

// survive holds the first verified frame, says so on stdout, and waits for
// the connection to end (run kills the producer); then it verifies the
// held frame again and releases it.
func (k *consumer) survive(ctx context.Context) error {
	var held *sdk.Frame
	var heldDev sdkcuda.Frame
	var heldLayout gpuframe.Layout
	for {
		f, err := k.c.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			k.res.Disconnect = err.Error()
			break
		}
		verr := k.verify(f)
		k.record(f, verr)
		if held != nil || verr != nil {
			f.Release()
			continue
		}
		held, heldLayout = f, k.layout
		if heldDev, err = k.im.Map(f); err != nil {
			return err
		}
		k.res.HeldSeq = f.Seq()
		fmt.Printf("holding %d\n", f.Seq())
	}
	if held == nil {
		return errors.New("consumer: the connection ended before a frame was held")
	}
	k.res.MappedAfterDeath = k.im.Stats().Mapped
	r, err := k.v.Verify(cuda.DevPtr(heldDev.Ptr), heldDev.Size, heldLayout, held.Seq())
	if err == nil {
		err = r.Err(held.Seq())
	}
	k.res.AfterDeath = "verified"
	if err != nil {
		k.res.AfterDeath = err.Error()
	}
	held.Release()
	return nil
}

// dmabuf inspects the first frame of a DMA-BUF export of GPU memory, then
// counts frames.
func (k *consumer) dmabuf(ctx context.Context, frames uint64) error {
	for frames == 0 || k.res.Received < frames {
		f, err := k.c.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		k.mu.Lock()
		k.res.Received++
		k.mu.Unlock()
		if k.res.SurfaceKind == "" {
			info := f.Surface()
			k.res.SurfaceKind = info.Kind.String()
			k.res.NoCPUMap = info.Device != nil && info.Device.NoCPUMap
			if _, err := f.Plane(0); err != nil {
				k.res.PlaneErr = err.Error()
			}
			fd := f.FDs()[0]
			if m, err := unix.Mmap(fd, 0, int(info.Size), unix.PROT_READ, unix.MAP_SHARED); err != nil {
				var errno syscall.Errno
				errors.As(err, &errno)
				k.res.MmapErr = fmt.Sprintf("%v (errno %d)", err, int(errno))
			} else {
				k.res.MmapErr = "mmap succeeded"
				_ = unix.Munmap(m)
			}
			k.res.ExpName = fdinfo(fd, "exp_name")
			if _, err := k.im.Map(f); err != nil {
				k.res.ImportErr = err.Error()
			}
		}
		f.Release()
	}
	return nil
}

// fdinfo returns a field of /proc/self/fdinfo/fd.
func fdinfo(fd int, key string) string {
	fh, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return ""
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// finish fills the window and import figures.
func (k *consumer) finish() {
	k.mu.Lock()
	snaps := slices.Clone(k.snaps)
	k.mu.Unlock()
	if len(snaps) >= 2 {
		a, b := snaps[0], snaps[1]
		k.res.WindowFrames = b.frames - a.frames
		k.res.WindowCPUUS = float64((b.cpu - a.cpu).Nanoseconds()) / 1e3
		k.res.WindowWallS = b.at.Sub(a.at).Seconds()
	}
	k.res.Dropped = k.c.Stats().Dropped
	if k.v != nil {
		_ = k.v.Close()
		_ = k.k.Close()
	}
	st := k.im.Stats()
	k.res.Imports = st.Imported
	for _, d := range st.ImportTimes {
		k.res.ImportUS = append(k.res.ImportUS, float64(d.Nanoseconds())/1e3)
	}
	k.res.MappedAtEnd, k.res.UnmappedAtEnd = st.Mapped, st.Unmapped
	k.res.MaxRSSKB = maxRSS()
	if k.ctx != nil {
		_ = k.ctx.Close()
	}
}
