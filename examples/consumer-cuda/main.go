// Command consumer-cuda is a framehub consumer whose frames never leave the
// GPU.
//
// This example shows how to:
//  1. subscribe to a raw stream of cuda surfaces (a producer with a GPU
//     source, such as `bench/gpu producer`);
//  2. import each surface once with sdk/cuda and get device pointers for
//     every frame;
//  3. verify every frame on the GPU (its stamp and every pixel) and copy
//     only the 32-byte result to the host;
//  4. release each frame once the GPU work on it is done, and report what
//     it saw.
//
// It needs an NVIDIA GPU and driver (or $FRAMEHUB_LIBCUDA naming the
// tests' stand-in library); it builds with CGO_ENABLED=0.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/framehub/framehub/sdk"
	sdkcuda "github.com/framehub/framehub/sdk/cuda"
)

// Summary is what the consumer saw, printed at the end.
type Summary struct {
	Frames     uint64  `json:"frames"`
	Verified   uint64  `json:"verified"`
	Failed     uint64  `json:"failed"`
	FirstError string  `json:"first_error,omitempty"`
	Dropped    uint64  `json:"dropped"`
	Surfaces   int     `json:"surfaces_imported"`
	ImportUS   []int64 `json:"import_us"`
	Seconds    float64 `json:"seconds"`
	FPS        float64 `json:"fps"`
	Device     string  `json:"device"`
	HostBytes  uint64  `json:"host_bytes"`
}

func main() {
	addr := flag.String("socket", sdk.DefaultAddr(), "producer socket")
	inFlight := flag.Int("max-in-flight", 4, "frames held at once")
	frames := flag.Uint64("frames", 0, "stop after this many frames (0: no limit)")
	duration := flag.Duration("duration", 0, "stop after this long (0: until Ctrl-C)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	s, err := run(ctx, *addr, *inFlight, *frames, log)
	if s != nil {
		b, _ := json.MarshalIndent(s, "", "  ")
		fmt.Println(string(b))
	}
	if err != nil {
		log.Error("consumer-cuda", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr string, inFlight int, frames uint64, log *slog.Logger) (*Summary, error) {
	// Blocking: sleep instead of spinning while the GPU verifies; a video
	// consumer has CPU to spare for other work, not a core to burn per
	// stream.
	im, err := sdkcuda.NewImporter(sdkcuda.Options{Blocking: true})
	if err != nil {
		return nil, err
	}
	// Closed after the client (deferred before it): no frame is held then.
	defer im.Close()
	c, err := sdk.Dial(ctx, addr, sdk.Options{Stream: "raw", MaxInFlight: inFlight, Logger: log})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var v *sdkcuda.StampVerifier
	defer func() {
		if v != nil {
			_ = v.Close() // before the importer, whose GPU context it uses
		}
	}()
	s := &Summary{}
	start := time.Now()
	defer func() {
		st := im.Stats()
		s.Surfaces = st.Imported
		for _, d := range st.ImportTimes {
			s.ImportUS = append(s.ImportUS, d.Microseconds())
		}
		s.Dropped = c.Stats().Dropped
		s.Seconds = time.Since(start).Seconds()
		s.FPS = float64(s.Frames) / s.Seconds
	}()
	for frames == 0 || s.Frames < frames {
		f, err := c.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return s, nil
			}
			return s, err
		}
		s.Frames++
		err = verify(c, im, &v, f)
		if v != nil && s.Device == "" {
			s.Device = v.Device()
		}
		// The verification has finished on the GPU (Verify synchronises):
		// the frame can go back.
		f.Release()
		if err != nil {
			s.Failed++
			if s.FirstError == "" {
				s.FirstError = err.Error()
				log.Warn("frame failed verification", "seq", f.Seq(), "err", err)
			}
			continue
		}
		s.Verified++
		s.HostBytes += 32
	}
	return s, nil
}

// verify checks frame f on the GPU without copying its pixels anywhere;
// the first frame loads the verifier on its GPU.
func verify(c *sdk.Client, im *sdkcuda.Importer, v **sdkcuda.StampVerifier, f *sdk.Frame) error {
	d, err := im.Map(f) // the surface's first frame imports it
	if err != nil {
		return err
	}
	if *v == nil {
		if *v, err = im.NewStampVerifier(d); err != nil {
			return err
		}
	}
	caps := c.Caps()
	return (*v).Verify(d, caps.Width, caps.Height, f.Seq())
}
