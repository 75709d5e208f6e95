package main

import (
	"fmt"
	"math"
)

// Scorer computes a motion score for consecutive frames: the mean absolute
// difference, in 0..255, between the downsampled luma (Y plane) of a frame
// and that of the frame before. It keeps a copy of only the downsampled
// previous frame (a few KB), never of a frame's surface.
type Scorer struct {
	// Step is the downsampling factor: every Step-th pixel of every
	// Step-th row is sampled. 1 samples every pixel.
	Step int
	// SkipRows excludes the top rows from the score. framehub's synthetic
	// source writes a stamp (frame number and checksum) into rows 0..7 that
	// changes with every frame, so a plugin watching it skips 8 rows; a real
	// camera needs 0.
	SkipRows int

	prev, cur []byte
	dims      [3]int // width, height, stride of prev
	have      bool
}

// Score samples the Y plane y (rows of stride bytes, width×height pixels)
// and returns its motion score against the previous call's frame. ok is
// false for the first frame and after the frame size changed: there is
// nothing to compare with yet.
func (s *Scorer) Score(y []byte, stride, width, height int) (score float64, ok bool, err error) {
	step := max(s.Step, 1)
	if width <= 0 || height <= 0 || stride < width {
		return 0, false, fmt.Errorf("motion: bad plane geometry %dx%d stride %d", width, height, stride)
	}
	if need := (height-1)*stride + width; len(y) < need {
		return 0, false, fmt.Errorf("motion: Y plane of %d bytes is smaller than %dx%d stride %d (%d bytes)", len(y), width, height, stride, need)
	}
	top := min(max(s.SkipRows, 0), height)
	n := ((height - top + step - 1) / step) * ((width + step - 1) / step)
	if cap(s.cur) < n {
		s.cur = make([]byte, n)
	}
	s.cur = s.cur[:n]
	i := 0
	for r := top; r < height; r += step {
		row := y[r*stride : r*stride+width]
		for x := 0; x < width; x += step {
			s.cur[i] = row[x]
			i++
		}
	}
	dims := [3]int{width, height, stride}
	if s.have && s.dims == dims && len(s.prev) == n && n > 0 {
		score, ok = MeanAbsDiff(s.prev, s.cur), true
	}
	s.prev, s.cur = s.cur, s.prev
	s.dims, s.have = dims, true
	return score, ok, nil
}

// MeanAbsDiff is the mean absolute difference of two equally long byte
// slices, 0 for empty ones.
func MeanAbsDiff(a, b []byte) float64 {
	if len(a) == 0 || len(a) != len(b) {
		return 0
	}
	var sum uint64
	for i, v := range a {
		d := int(v) - int(b[i])
		if d < 0 {
			d = -d
		}
		sum += uint64(d)
	}
	return float64(sum) / float64(len(a))
}

// Detector turns scores into motion events with hysteresis, so that a score
// hovering around the threshold does not flood the log: motion starts when
// the score reaches Threshold and ends when it falls below Threshold/2.
type Detector struct {
	Threshold float64
	active    bool
}

// Event is a change of the detector's state.
type Event int

// The detector's events.
const (
	NoEvent     Event = iota
	MotionStart       // the score reached the threshold
	MotionEnd         // the score fell below half the threshold
)

// Update feeds one score and returns the event it caused, if any.
func (d *Detector) Update(score float64) Event {
	switch {
	case !d.active && score >= d.Threshold && !math.IsNaN(score):
		d.active = true
		return MotionStart
	case d.active && score < d.Threshold/2:
		d.active = false
		return MotionEnd
	}
	return NoEvent
}

// Active reports whether motion is going on.
func (d *Detector) Active() bool { return d.active }
