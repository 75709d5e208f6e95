package recorder

import (
	"bytes"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/internal/testutil"
)

// TestSegments: access units become segments of the configured duration,
// each starting on a keyframe, made of fragments of the configured
// duration, named by the capture time of their first frame, with the
// producer's frames in order and their durations patched in.
func TestSegments(t *testing.T) {
	dir := t.TempDir()
	q, m, stop := testWriter(t, Config{Dir: dir, Segment: 2 * time.Second, Fragment: 500 * time.Millisecond}, nil, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	for seq := uint64(1); seq <= 150; seq++ {
		queued, _ := q.push(testAU(t, rng, seq, 30))
		require.True(t, queued)
	}
	stop()
	names := files(t, dir)
	require.Equal(t, []string{
		"2026-11-22/2026-11-22T00-41-12.378Z.mp4", // seq 1 is captured one frame after 12.345
		"2026-11-22/2026-11-22T00-41-14.378Z.mp4",
		"2026-11-22/2026-11-22T00-41-16.378Z.mp4",
	}, names)
	first := uint64(1)
	for i, name := range names {
		s := readSeg(t, filepath.Join(dir, name))
		n := uint64(60)
		if i == 2 {
			n = 30
		}
		require.Equal(t, span(first, first+n-1), seqs(s), name)
		require.Equal(t, testBase+int64(first-1)*testFrame, s.Info.BaseNS)
		require.InDelta(t, float64(n)*3000, float64(s.Duration), 1, "%s: %d frames at 30 fps", name, n)
		require.Len(t, s.Fragments, int(n/15), "%s: fragments of 500 ms", name)
		for _, f := range s.Fragments {
			require.Len(t, f.Samples, 15)
		}
		for j, smp := range s.Samples() {
			require.Equal(t, j%30 == 0, smp.Sync, "%s sample %d", name, j)
			require.InDelta(t, 3000, float64(smp.Duration), 1)
		}
		require.Equal(t, 320, s.Width)
		require.Equal(t, testSPS, s.SPS)
		require.Equal(t, testPPS, s.PPS)
		first += n
	}
	require.Equal(t, 3.0, value(m.segments))
	require.Equal(t, 150.0, value(m.frames))
}

// TestTornTail: wherever a write stops inside the last fragment, reading
// the segment keeps every complete fragment and says where to cut.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	q, _, stop := testWriter(t, Config{Dir: dir, Segment: time.Minute, Fragment: 500 * time.Millisecond}, nil, nil)
	rng := rand.New(rand.NewPCG(3, 4))
	for seq := uint64(1); seq <= 45; seq++ {
		q.push(testAU(t, rng, seq, 30))
	}
	stop()
	data, err := os.ReadFile(filepath.Join(dir, files(t, dir)[0]))
	require.NoError(t, err)
	whole, err := ReadSegment(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	require.Len(t, whole.Fragments, 3)
	last := whole.Fragments[2]
	require.Equal(t, int64(len(data)), last.End)
	for cut := last.Offset; cut < last.End; cut++ {
		s, err := ReadSegment(bytes.NewReader(data[:cut]), cut)
		require.NoError(t, err, "cut at %d", cut)
		require.Len(t, s.Fragments, 2, "cut at %d", cut)
		require.Equal(t, last.Offset, s.ValidEnd, "cut at %d", cut)
	}
	// Cut inside the init boxes: no video at all.
	_, err = ReadSegment(bytes.NewReader(data[:100]), 100)
	require.Error(t, err)
}

// TestRecoverAfterCrash: a segment left by a crash (here: a copy of the
// file while it was written, plus half a fragment) is repaired at start: its
// torn tail is cut; recorded in this boot it is continued when the next
// frame follows its last one, else finalised.
func TestRecoverAfterCrash(t *testing.T) {
	src := t.TempDir()
	q, m, stop := testWriter(t, Config{Dir: src, Segment: time.Minute, Fragment: 500 * time.Millisecond}, nil, nil)
	rng := rand.New(rand.NewPCG(5, 6))
	for seq := uint64(1); seq <= 46; seq++ { // the 46th makes the 3rd fragment (31-45) go out
		q.push(testAU(t, rng, seq, 30))
	}
	require.Eventually(t, func() bool { return value(m.fragments) == 3 }, 10*time.Second, time.Millisecond)
	part := filepath.Join(src, files(t, src)[0])
	require.True(t, strings.HasSuffix(part, ".mp4.part"), part)
	image, err := os.ReadFile(part)
	require.NoError(t, err)
	stop()
	next, err := os.ReadFile(filepath.Join(src, files(t, src)[0]))
	require.NoError(t, err)
	torn := append(image, next[len(image):len(image)+(len(next)-len(image))/2]...)

	crash := func(t *testing.T) (string, string) {
		dir := t.TempDir()
		p := filepath.Join(dir, filepath.Base(filepath.Dir(part)), filepath.Base(part))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, torn, 0o644))
		return dir, p
	}
	t.Run("finalised", func(t *testing.T) {
		dir, p := crash(t)
		rec, err := recoverDir(OSFS{}, dir, [16]byte{1}, true, testutil.Logger(t, slog.LevelError), newMetrics(newQueue(1<<20))) // another boot
		require.NoError(t, err)
		require.Nil(t, rec.part)
		require.False(t, rec.resume.sameBoot)
		final := strings.TrimSuffix(p, partSuffix)
		require.Equal(t, []closedFile{{path: final, size: int64(len(image)), mtime: rec.closed[0].mtime}}, rec.closed)
		s := readSeg(t, final)
		require.Equal(t, span(1, 45), seqs(s), "every complete fragment kept")
	})
	t.Run("continued", func(t *testing.T) {
		dir, p := crash(t)
		rec, err := recoverDir(OSFS{}, dir, bootID(), true, testutil.Logger(t, slog.LevelError), newMetrics(newQueue(1<<20)))
		require.NoError(t, err)
		require.NotNil(t, rec.part)
		require.Equal(t, resumePoint{found: true, sameBoot: true, mono: int64(time.Hour) + 45*testFrame, seq: 45}, rec.resume)
		q, m, stop := testWriter(t, Config{Dir: dir, Segment: time.Minute, Fragment: 500 * time.Millisecond}, rec.part, rec.closed)
		rng := rand.New(rand.NewPCG(5, 6))
		for seq := uint64(46); seq <= 90; seq++ {
			q.push(testAU(t, rng, seq, 30))
		}
		stop()
		require.Equal(t, 1.0, value(m.recovered.WithLabelValues("resumed")))
		s := readSeg(t, strings.TrimSuffix(p, partSuffix))
		require.Equal(t, span(1, 90), seqs(s), "one segment, no frame lost, none twice")
	})
	t.Run("not contiguous", func(t *testing.T) {
		dir, p := crash(t)
		rec, err := recoverDir(OSFS{}, dir, bootID(), true, testutil.Logger(t, slog.LevelError), newMetrics(newQueue(1<<20)))
		require.NoError(t, err)
		q, _, stop := testWriter(t, Config{Dir: dir, Segment: time.Minute, Fragment: 500 * time.Millisecond}, rec.part, rec.closed)
		rng := rand.New(rand.NewPCG(7, 8))
		for seq := uint64(61); seq <= 90; seq++ { // 46-60 are gone: the producer's buffer did not reach back
			q.push(testAU(t, rng, seq, 30))
		}
		stop()
		names := files(t, dir)
		require.Len(t, names, 2)
		require.Equal(t, span(1, 45), seqs(readSeg(t, strings.TrimSuffix(p, partSuffix))))
		require.Equal(t, span(61, 90), seqs(readSeg(t, filepath.Join(dir, names[1]))), "a new segment at the keyframe")
	})
}

// TestIdleFlush: when no frame comes (the producer stalled), what is pending
// is written after a fragment's time all the same: a crash then loses at
// most that.
func TestIdleFlush(t *testing.T) {
	dir := t.TempDir()
	q, m, stop := testWriter(t, Config{Dir: dir, Segment: time.Minute, Fragment: 100 * time.Millisecond}, nil, nil)
	rng := rand.New(rand.NewPCG(15, 16))
	for seq := uint64(1); seq <= 2; seq++ {
		a := testAU(t, rng, seq, 30)
		a.arrived = clock.Mono()
		q.push(a)
	}
	require.Eventually(t, func() bool { return value(m.fragments) == 1 }, 10*time.Second, time.Millisecond)
	s, err := ReadSegmentFile(filepath.Join(dir, files(t, dir)[0]))
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2}, seqs(s))
	require.Equal(t, uint32(3000), s.Fragments[0].Samples[1].Duration, "the last one's duration is its own")
	stop()
}
