package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// plane returns a width×height Y plane with stride bytes per row whose
// pixel (x, y) is f(x, y); padding bytes are 0xEE so reading them shows.
func plane(width, height, stride int, f func(x, y int) byte) []byte {
	b := make([]byte, stride*height)
	for i := range b {
		b[i] = 0xEE
	}
	for y := 0; y < height; y++ {
		for x := 0; x < width; x++ {
			b[y*stride+x] = f(x, y)
		}
	}
	return b
}

func TestMeanAbsDiff(t *testing.T) {
	require.Equal(t, 0.0, MeanAbsDiff(nil, nil))
	require.Equal(t, 0.0, MeanAbsDiff([]byte{1, 2}, []byte{1}))
	require.Equal(t, 0.0, MeanAbsDiff([]byte{7, 7, 7}, []byte{7, 7, 7}))
	require.Equal(t, 255.0, MeanAbsDiff([]byte{0, 255}, []byte{255, 0}))
	require.InDelta(t, 2.25, MeanAbsDiff([]byte{10, 20, 30, 40}, []byte{12, 17, 30, 44}), 1e-9) // (2+3+0+4)/4
}

func TestScorer(t *testing.T) {
	const w, h, stride = 64, 48, 80
	flat := func(v byte) func(x, y int) byte { return func(int, int) byte { return v } }

	t.Run("first frame has nothing to compare with", func(t *testing.T) {
		s := Scorer{Step: 1}
		_, ok, err := s.Score(plane(w, h, stride, flat(16)), stride, w, h)
		require.NoError(t, err)
		require.False(t, ok)
	})
	t.Run("identical frames score 0", func(t *testing.T) {
		s := Scorer{Step: 4}
		p := plane(w, h, stride, func(x, y int) byte { return byte(3*x + 5*y) })
		for i := 0; i < 3; i++ {
			score, ok, err := s.Score(p, stride, w, h)
			require.NoError(t, err)
			require.Equal(t, i > 0, ok)
			require.Zero(t, score)
		}
	})
	t.Run("uniform change scores the difference", func(t *testing.T) {
		s := Scorer{Step: 2}
		_, _, _ = s.Score(plane(w, h, stride, flat(16)), stride, w, h)
		score, ok, err := s.Score(plane(w, h, stride, flat(116)), stride, w, h)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, 100.0, score)
		score, _, _ = s.Score(plane(w, h, stride, flat(16)), stride, w, h)
		require.Equal(t, 100.0, score, "the score is absolute: darker frames score the same")
	})
	t.Run("black to white is 255", func(t *testing.T) {
		s := Scorer{Step: 1}
		_, _, _ = s.Score(plane(w, h, stride, flat(0)), stride, w, h)
		score, _, _ := s.Score(plane(w, h, stride, flat(255)), stride, w, h)
		require.Equal(t, 255.0, score)
	})
	t.Run("changes in the skipped rows do not count", func(t *testing.T) {
		s := Scorer{Step: 1, SkipRows: 8}
		stampRows := func(seq byte) func(x, y int) byte {
			return func(x, y int) byte {
				if y < 8 {
					return seq + byte(x) // like the stamp: different every frame
				}
				return 50
			}
		}
		_, _, _ = s.Score(plane(w, h, stride, stampRows(1)), stride, w, h)
		score, ok, err := s.Score(plane(w, h, stride, stampRows(2)), stride, w, h)
		require.NoError(t, err)
		require.True(t, ok)
		require.Zero(t, score)

		all := Scorer{Step: 1}
		_, _, _ = all.Score(plane(w, h, stride, stampRows(1)), stride, w, h)
		score, _, _ = all.Score(plane(w, h, stride, stampRows(2)), stride, w, h)
		require.InDelta(t, 8.0/48.0, score, 1e-9, "without SkipRows the stamp rows count (1 per pixel in 8 of 48 rows)")
	})
	t.Run("a moving box scores its area", func(t *testing.T) {
		s := Scorer{Step: 1}
		box := func(x0 int) func(x, y int) byte {
			return func(x, y int) byte {
				if x >= x0 && x < x0+8 && y >= 16 && y < 24 {
					return 235
				}
				return 16
			}
		}
		_, _, _ = s.Score(plane(w, h, stride, box(0)), stride, w, h)
		score, _, _ := s.Score(plane(w, h, stride, box(32)), stride, w, h)
		// Two 8×8 areas changed by 219 out of 64×48 pixels.
		require.InDelta(t, 2*64*219.0/(64*48), score, 1e-9)
	})
	t.Run("padding is never read", func(t *testing.T) {
		s := Scorer{Step: 1}
		a := plane(w, h, stride, flat(9))
		b := plane(w, h, stride, flat(9))
		for y := 0; y < h; y++ {
			for x := w; x < stride; x++ {
				b[y*stride+x] = byte(x * y)
			}
		}
		_, _, _ = s.Score(a, stride, w, h)
		score, _, _ := s.Score(b, stride, w, h)
		require.Zero(t, score)
	})
	t.Run("a size change restarts the comparison", func(t *testing.T) {
		s := Scorer{Step: 1}
		_, _, _ = s.Score(plane(w, h, stride, flat(0)), stride, w, h)
		_, ok, err := s.Score(plane(32, 16, 32, flat(200)), 32, 32, 16)
		require.NoError(t, err)
		require.False(t, ok)
	})
	t.Run("bad geometry is an error", func(t *testing.T) {
		s := Scorer{}
		_, _, err := s.Score(make([]byte, 10), 64, 64, 2)
		require.ErrorContains(t, err, "smaller than 64x2")
		_, _, err = s.Score(make([]byte, 100), 8, 16, 2)
		require.ErrorContains(t, err, "stride 8")
	})
}

func TestDetectorHysteresis(t *testing.T) {
	d := Detector{Threshold: 10}
	var got []Event
	for _, s := range []float64{0, 9.9, 10, 30, 6, 5.1, 4.9, 4, 12, 0} {
		got = append(got, d.Update(s))
	}
	require.Equal(t, []Event{NoEvent, NoEvent, MotionStart, NoEvent, NoEvent, NoEvent, MotionEnd, NoEvent, MotionStart, MotionEnd}, got)
}
