// Command plugin-motion is a framehub plugin (run by framehub-pluginhost)
// that detects motion in the raw stream.
//
// This example shows how to:
//  1. write a go-plugin consumer: main is one plugin.Serve call, and the
//     consumer implements Configure and Run (package sdk/plugin);
//  2. read the Y plane of raw NV12 frames in place, through the SDK, and
//     release every frame before doing anything slow;
//  3. compute a motion score (mean absolute difference of a downsampled Y
//     plane between consecutive frames, 0..255) and log an event when it
//     crosses a threshold;
//  4. expose metrics (score, peak score, events) to the host through the
//     plugin's health RPC.
//
// Settings (the host's params for the plugin): threshold (default 10),
// step (downsampling, default 4), skip_rows (rows excluded at the top,
// default 8: the synthetic source's stamp rows change with every frame).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"github.com/framehub/framehub/sdk"
	"github.com/framehub/framehub/sdk/plugin"
)

func main() {
	plugin.Serve(&motionConsumer{})
}

// motionConsumer is the plugin's consumer. Run owns scorer and det;
// the metrics are shared with Metrics (called from the RPC goroutine).
type motionConsumer struct {
	log    *slog.Logger
	scorer Scorer
	det    Detector

	mu                     sync.Mutex
	score, peak            float64
	frames, scored, events uint64
	active                 bool
}

// Configure reads the plugin's params.
func (m *motionConsumer) Configure(cfg plugin.Config) error {
	m.log = cfg.Logger
	m.det.Threshold, m.scorer.Step, m.scorer.SkipRows = 10, 4, 8
	for k, v := range cfg.Params {
		var err error
		switch k {
		case "threshold":
			m.det.Threshold, err = strconv.ParseFloat(v, 64)
			if err == nil && (m.det.Threshold <= 0 || m.det.Threshold > 255) {
				err = errors.New("must be in (0, 255]")
			}
		case "step":
			m.scorer.Step, err = strconv.Atoi(v)
			if err == nil && m.scorer.Step < 1 {
				err = errors.New("must be at least 1")
			}
		case "skip_rows":
			m.scorer.SkipRows, err = strconv.Atoi(v)
			if err == nil && m.scorer.SkipRows < 0 {
				err = errors.New("must not be negative")
			}
		default:
			err = errors.New("unknown setting (known: threshold, step, skip_rows)")
		}
		if err != nil {
			return fmt.Errorf("param %s=%q: %w", k, v, err)
		}
	}
	return nil
}

// Run scores every frame it receives until ctx is cancelled. The SDK's
// receive loop (Consume) reconnects after an eviction (we were too slow).
func (m *motionConsumer) Run(ctx context.Context, c *sdk.Client) error {
	return c.Consume(ctx, func(f *sdk.Frame) error {
		score, ok, err := m.scoreFrame(c, f)
		f.Release() // before logging: hold frames only while reading pixels
		if err != nil {
			return err
		}
		m.record(score, ok, f.Seq())
		return nil
	})
}

func (m *motionConsumer) scoreFrame(c *sdk.Client, f *sdk.Frame) (float64, bool, error) {
	caps := c.Caps()
	if caps.Format != "NV12" {
		return 0, false, fmt.Errorf("stream format is %q: plugin-motion needs NV12", caps.Format)
	}
	y, err := f.Plane(0)
	if err != nil {
		return 0, false, fmt.Errorf("frame %d: %w", f.Seq(), err)
	}
	return m.scorer.Score(y, f.Planes()[0].Stride, caps.Width, caps.Height)
}

func (m *motionConsumer) record(score float64, ok bool, seq uint64) {
	ev := NoEvent
	if ok {
		ev = m.det.Update(score)
	}
	m.mu.Lock()
	m.frames++
	if ok {
		m.scored++
		m.score, m.peak = score, max(m.peak, score)
	}
	if ev == MotionStart {
		m.events++
	}
	m.active = m.det.Active()
	m.mu.Unlock()
	switch ev {
	case MotionStart:
		m.log.Info("motion started", "score", score, "threshold", m.det.Threshold, "seq", seq)
	case MotionEnd:
		m.log.Info("motion ended", "score", score, "seq", seq)
	}
}

// Metrics are served by the host: the last and the peak score, frames
// received and scored, motion events and whether motion is going on.
func (m *motionConsumer) Metrics() map[string]float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	active := 0.0
	if m.active {
		active = 1
	}
	return map[string]float64{
		"score": m.score, "score_peak": m.peak, "frames": float64(m.frames),
		"scored": float64(m.scored), "events": float64(m.events), "active": active,
	}
}
