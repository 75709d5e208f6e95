// Command consumer-go is a complete standalone framehub consumer.
//
// This example shows how to:
//  1. dial a producer and subscribe to its raw stream with a budget;
//  2. receive frames, map their Y plane read-only and verify the stamp the
//     synthetic source writes into every frame (sequence number + checksum),
//     telling a stamped stream from an unstamped one (a camera, the
//     GStreamer test source) by its first frame;
//  3. release every frame, and report rate, drops and delivery latency.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/framehub/framehub/sdk"
	"github.com/framehub/framehub/sdk/stamp"
)

// Summary is what the consumer saw, printed at the end (-json for machines).
type Summary struct {
	Frames     uint64  `json:"frames"`
	Mismatches uint64  `json:"mismatches"`
	Dropped    uint64  `json:"dropped"`
	Seconds    float64 `json:"seconds"`
	FPS        float64 `json:"fps"`
	LatencyP50 float64 `json:"latency_p50_us"`
	LatencyP99 float64 `json:"latency_p99_us"`
	Reconnects uint64  `json:"reconnects"`
	// Stamped: the stream's first frame carried a stamp, so every frame
	// was verified. An unstamped stream is not an error.
	Stamped bool `json:"stamped"`
}

func main() {
	addr := flag.String("socket", sdk.DefaultAddr(), "producer socket")
	stream := flag.String("stream", "raw", "stream to subscribe to")
	inFlight := flag.Int("max-in-flight", 4, "frames held at once")
	hold := flag.Duration("hold", 0, "hold each frame this long before releasing it")
	duration := flag.Duration("duration", 0, "stop after this long (0: until Ctrl-C)")
	frames := flag.Uint64("frames", 0, "stop after this many frames (0: no limit)")
	verify := flag.Bool("verify", true, "check each frame's stamp on receipt and before release, if the stream is stamped (its first frame says)")
	reconnect := flag.Bool("reconnect", true, "redial when the producer restarts")
	asJSON := flag.Bool("json", false, "print the summary as JSON")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	c, err := sdk.Dial(ctx, *addr, sdk.Options{Stream: *stream, MaxInFlight: *inFlight, Reconnect: *reconnect, Logger: log})
	if err != nil {
		log.Error("subscribe", "err", err)
		os.Exit(1)
	}
	defer c.Close()
	caps := c.Caps()
	log.Info("subscribed", "stream", *stream, "format", caps.Format, "width", caps.Width, "height", caps.Height,
		"budget", c.Subscription().MaxInFlight)

	var (
		sum       Summary
		latencies []float64
		start     = time.Now()
		lastPrint = start
		lastCount uint64
	)
	// A stream is stamped when its first frame is: the synthetic source
	// stamps every frame, cameras and the GStreamer test source none.
	// Decided at the first frame; after that a frame without a stamp is a
	// mismatch.
	decided := false
	check := func(f *sdk.Frame) {
		if !*verify || caps.Format != "NV12" || (decided && !sum.Stamped) {
			return
		}
		y, err := f.Plane(0)
		if err == nil {
			_, err = stamp.Verify(y, f.Planes()[0].Stride, caps.Width, f.Seq())
		}
		if !decided {
			decided = true
			sum.Stamped = !errors.Is(err, stamp.ErrNoStamp)
			if !sum.Stamped {
				log.Info("the stream carries no stamp (not the synthetic source): frames are not verified", "seq", f.Seq())
				return
			}
		}
		if err != nil {
			sum.Mismatches++
			log.Error("stamp mismatch", "seq", f.Seq(), "err", err)
		}
	}
	for *frames == 0 || sum.Frames < *frames {
		f, err := c.Next(ctx)
		if err != nil {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				log.Error("receive", "err", err)
			}
			break
		}
		latencies = append(latencies, float64(f.Latency().Microseconds()))
		check(f)
		if *hold > 0 {
			time.Sleep(*hold)
			check(f)
		}
		f.Release()
		sum.Frames++
		if now := time.Now(); now.Sub(lastPrint) >= 5*time.Second && !*asJSON {
			fmt.Printf("%s: %.1f frames/s, %d frames, %d dropped, %d mismatches\n", *stream,
				float64(sum.Frames-lastCount)/now.Sub(lastPrint).Seconds(), sum.Frames, c.Stats().Dropped, sum.Mismatches)
			lastPrint, lastCount = now, sum.Frames
		}
	}
	st := c.Stats()
	sum.Dropped, sum.Reconnects = st.Dropped, st.Reconnects
	sum.Seconds = time.Since(start).Seconds()
	sum.FPS = float64(sum.Frames) / sum.Seconds
	slices.Sort(latencies)
	sum.LatencyP50, sum.LatencyP99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(sum)
	} else {
		verified := fmt.Sprintf("%d stamp mismatches", sum.Mismatches)
		if !sum.Stamped {
			verified = "not stamped: not verified"
		}
		fmt.Printf("%s: %d frames in %.1fs (%.1f/s), %d dropped, %s, latency p50 %.0fµs p99 %.0fµs\n",
			*stream, sum.Frames, sum.Seconds, sum.FPS, sum.Dropped, verified, sum.LatencyP50, sum.LatencyP99)
	}
	if sum.Mismatches > 0 {
		os.Exit(2)
	}
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(p*float64(len(sorted)-1))]
}
