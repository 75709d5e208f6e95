// Command consumer is the benchmark consumer: it receives frames for a fixed
// time, optionally touches one byte per row of every plane (what a real
// consumer does, without copying), releases at once, and prints one JSON
// object with its frame count, drops, delivery latency percentiles and its
// own CPU time over the measurement window (getrusage: every thread).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/framehub/framehub/sdk"
)

// Result is the consumer's report.
type Result struct {
	Frames         uint64  `json:"frames"`
	Dropped        uint64  `json:"dropped"`
	Seconds        float64 `json:"seconds"`
	FPS            float64 `json:"fps"`
	CPUNanos       int64   `json:"cpu_ns"`
	CPUPerFrame    float64 `json:"cpu_us_per_frame"`
	RusagePerFrame float64 `json:"rusage_us_per_frame"`
	P50            float64 `json:"latency_p50_us"`
	P99            float64 `json:"latency_p99_us"`
	// CDF[i] is the latency at quantile CDFQ[i], for distribution charts.
	CDFQ     []float64 `json:"latency_cdf_q,omitempty"`
	CDF      []float64 `json:"latency_cdf_us,omitempty"`
	Checksum uint64    `json:"checksum"`
}

// cdfQuantiles are the quantiles Result.CDF reports: dense in the tail,
// where transports differ.
func cdfQuantiles() []float64 {
	return []float64{0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1}
}

// cpuNanos is this process's CPU time: the sum over its threads of
// /proc/self/task/*/schedstat, which the scheduler keeps in ns at every
// context switch. getrusage's figures are sampled at the timer tick, which
// misattributes the short, periodic wake-ups of a consumer at 30 fps.
func cpuNanos() int64 {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return rusageNanos()
	}
	var total int64
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			v, _ := strconv.ParseInt(f[0], 10, 64)
			total += v
		}
	}
	return total
}

func rusageNanos() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func main() {
	addr := flag.String("socket", sdk.DefaultAddr(), "producer socket")
	stream := flag.String("stream", "raw", "stream")
	warmup := flag.Duration("warmup", 2*time.Second, "time before measuring")
	duration := flag.Duration("duration", 10*time.Second, "measurement window")
	touch := flag.Bool("touch", true, "read one byte per row of each plane")
	blocking := flag.Bool("blocking", false, "blocking syscalls instead of the netpoller")
	lock := flag.Bool("lock-thread", false, "run the receive loop on a locked OS thread")
	inFlight := flag.Int("max-in-flight", 4, "budget")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measurement window here")
	flag.Parse()
	if *lock {
		runtime.LockOSThread()
	}
	ctx, cancel := context.WithTimeout(context.Background(), *warmup+*duration+10*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, *addr, sdk.Options{Stream: *stream, Name: "bench", MaxInFlight: *inFlight, Blocking: *blocking})
	if err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
	defer c.Close()
	var (
		res      Result
		lat      = make([]float64, 0, 1<<16)
		start    = time.Now().Add(*warmup)
		end      = start.Add(*duration)
		measured bool
		cpu0     int64
		ru0      int64
		drop0    uint64
	)
	bg := context.Background()
	for {
		f, err := c.Next(bg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "consumer:", err)
			os.Exit(1)
		}
		if *touch {
			for i := range f.Planes() {
				p, err := f.Plane(i)
				if err != nil {
					fmt.Fprintln(os.Stderr, "consumer:", err)
					os.Exit(1)
				}
				stride := f.Planes()[i].Stride
				for off := 0; off < len(p); off += stride {
					res.Checksum += uint64(p[off])
				}
			}
		}
		l := f.Latency()
		f.Release()
		now := time.Now()
		if !measured {
			if now.Before(start) {
				continue
			}
			measured, cpu0, ru0, drop0, start = true, cpuNanos(), rusageNanos(), c.Stats().Dropped, now
			if *cpuprofile != "" {
				pf, err := os.Create(*cpuprofile)
				if err == nil && pprof.StartCPUProfile(pf) == nil {
					defer pf.Close()
					defer pprof.StopCPUProfile()
				}
			}
			continue
		}
		res.Frames++
		lat = append(lat, float64(l.Nanoseconds())/1e3)
		if now.After(end) {
			break
		}
	}
	_ = c.Flush()
	res.CPUNanos = cpuNanos() - cpu0
	res.RusagePerFrame = float64(rusageNanos()-ru0) / 1e3 / float64(max(res.Frames, 1))
	res.Seconds = time.Since(start).Seconds()
	res.FPS = float64(res.Frames) / res.Seconds
	res.Dropped = c.Stats().Dropped - drop0
	res.CPUPerFrame = float64(res.CPUNanos) / 1e3 / float64(max(res.Frames, 1))
	slices.Sort(lat)
	if len(lat) > 0 {
		res.P50, res.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
		res.CDFQ = cdfQuantiles()
		for _, q := range res.CDFQ {
			res.CDF = append(res.CDF, lat[min(len(lat)-1, int(q*float64(len(lat))))])
		}
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
}
