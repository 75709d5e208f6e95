package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer/surface"
	"github.com/framehub/framehub/producer/synth"
)

// RawCaps returns the caps of a raw stream with layout l at fpsN/fpsD.
func RawCaps(l surface.Layout, fpsN, fpsD uint32) ipc.Caps {
	return ipc.Caps{
		Format: l.Format, Width: uint32(l.Width), Height: uint32(l.Height),
		FPSNum: fpsN, FPSDen: fpsD, Planes: append([]ipc.Plane(nil), l.Planes...),
	}
}

// SynthLayout converts a surface layout to the renderer's.
func SynthLayout(l surface.Layout) synth.Layout {
	return synth.Layout{
		Width: l.Width, Height: l.Height,
		YOffset: int(l.Planes[0].Offset), YStride: int(l.Planes[0].Stride),
		UVOffset: int(l.Planes[1].Offset), UVStride: int(l.Planes[1].Stride),
	}
}

// Synthetic renders frames with a pure-Go renderer straight into the pool
// surfaces of a raw stream: the source of `framehub-producer --source synthetic`,
// of the tests and of the transport benchmarks.
type Synthetic struct {
	// Stream receives the frames. Required.
	Stream *Stream
	// Renderer draws each frame and its stamp. Required unless Draw is set.
	Renderer *synth.Renderer
	// Draw, when set, draws each frame instead of Renderer: frame seq,
	// stamped with capture time monoNS, into surf. A GPU source renders with
	// a kernel into memory the CPU cannot map (producer/cudasrc). Draw must
	// return only once the frame is complete in memory: it is published
	// right after, and consumers may read it at once.
	Draw func(surf *surface.Surface, seq uint64, monoNS int64) error
	// FPS paces the frames. 0 means as fast as surfaces are free: the source
	// then waits for a free surface instead of dropping (IPC-bound mode).
	FPS float64
	// Frames stops the source after this many frames; 0 runs until ctx is done.
	Frames uint64
}

// Run produces frames until ctx is done or Frames were produced.
func (s *Synthetic) Run(ctx context.Context) error {
	if s.Stream == nil || (s.Renderer == nil && s.Draw == nil) {
		return errors.New("producer: synthetic source needs a Stream and a Renderer or Draw")
	}
	if s.FPS < 0 {
		return fmt.Errorf("producer: synthetic source: negative FPS %v", s.FPS)
	}
	var period time.Duration
	if s.FPS > 0 {
		period = time.Duration(float64(time.Second) / s.FPS)
	}
	next := time.Now()
	var timer *time.Timer
	for n := uint64(0); s.Frames == 0 || n < s.Frames; n++ {
		if period > 0 {
			next = next.Add(period)
			if d := time.Until(next); d > 0 {
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				select {
				case <-ctx.Done():
					timer.Stop()
					return nil
				case <-timer.C:
				}
			} else if -d > period {
				next = time.Now() // fell behind (machine stalled): do not burst
			}
		} else if ctx.Err() != nil {
			return nil
		}
		surf, err := s.acquire(ctx, period == 0)
		if err != nil {
			if errors.Is(err, surface.ErrExhausted) {
				continue // counted and logged by Acquire
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := s.render(surf, n+1); err != nil {
			s.Stream.Discard(surf)
			return err
		}
		pts := int64(-1)
		dur := int64(-1)
		if period > 0 {
			pts, dur = int64(n)*int64(period), int64(period)
		}
		s.Stream.Publish(surf, FrameInfo{PTS: pts, DTS: -1, Dur: dur})
	}
	return nil
}

// render draws frame seq. The stamp carries the stream's next sequence
// number, which Publish assigns; sources other than this one must not
// publish to the same stream.
func (s *Synthetic) render(surf *surface.Surface, _ uint64) error {
	if s.Draw != nil {
		return s.Draw(surf, s.Stream.nextSeq(), clock.Mono())
	}
	if err := surf.Mem.BeginWrite(); err != nil {
		return err
	}
	err := s.Renderer.Render(surf.Mem.Bytes(), s.Stream.nextSeq(), clock.Mono())
	if eerr := surf.Mem.EndWrite(); err == nil {
		err = eerr
	}
	return err
}

func (s *Synthetic) acquire(ctx context.Context, wait bool) (*surface.Surface, error) {
	if wait {
		return s.Stream.AcquireWait(ctx)
	}
	return s.Stream.Acquire()
}
