package recorder

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recordTestSegments writes 150 frames at 30 fps (a keyframe every second)
// into 2 s segments under dir and returns the capture time of the first.
func recordTestSegments(t *testing.T, dir string) time.Time {
	t.Helper()
	q, _, stop := testWriter(t, Config{Dir: dir, Segment: 2 * time.Second, Fragment: 500 * time.Millisecond}, nil, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	for seq := uint64(1); seq <= 150; seq++ {
		queued, _ := q.push(testAU(t, rng, seq, 30))
		require.True(t, queued)
	}
	stop()
	return time.Date(2026, 11, 22, 0, 41, 12, 345e6, time.UTC).Add(time.Duration(testFrame))
}

func TestListRecordings(t *testing.T) {
	dir := t.TempDir()
	t0 := recordTestSegments(t, dir)
	all, err := ListRecordings(dir, t0.Add(-time.Hour), t0.Add(time.Hour))
	require.NoError(t, err)
	require.Len(t, all, 3)
	for i, r := range all {
		requireNear(t, t0.Add(time.Duration(i)*2*time.Second), r.Start, "segment %d", i)
		want := 2 * time.Second
		if i == 2 {
			want = time.Second
		}
		require.InDelta(t, float64(want), float64(r.Duration()), float64(time.Millisecond), "segment %d", i)
		require.False(t, r.Open)
	}
	// A range inside the second segment lists only it; one touching the
	// first's end (half-open) does not list the first.
	got, err := ListRecordings(dir, t0.Add(2500*time.Millisecond), t0.Add(3*time.Second))
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, all[1].Path, got[0].Path)
	got, err = ListRecordings(dir, t0.Add(2*time.Second), t0.Add(3900*time.Millisecond))
	require.NoError(t, err)
	require.Len(t, got, 1)
	got, err = ListRecordings(dir, t0.Add(time.Hour), t0.Add(2*time.Hour))
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestMakeClip(t *testing.T) {
	dir := t.TempDir()
	t0 := recordTestSegments(t, dir)
	// 1.5 s .. 3.5 s: cut on the keyframes at 1 s and 4 s, across the
	// boundary of the first two segments.
	clip, err := MakeClip(dir, t0.Add(1500*time.Millisecond), t0.Add(3500*time.Millisecond), 0)
	require.NoError(t, err)
	requireNear(t, t0.Add(time.Second), clip.Start, "clip start")
	requireNear(t, t0.Add(4*time.Second), clip.End, "clip end")
	require.Equal(t, 2, clip.Segments)

	seg, err := ReadSegment(bytes.NewReader(clip.Data), int64(len(clip.Data)))
	require.NoError(t, err)
	require.Equal(t, int64(len(clip.Data)), seg.ValidEnd)
	samples := seg.Samples()
	require.Len(t, samples, 90)
	require.InDelta(t, 3*timescale, float64(seg.Duration), 2, "the moov says how long the clip is")
	for i, s := range samples {
		require.Equal(t, i%30 == 0, s.Sync, "sample %d", i)
		if i > 0 {
			require.Equal(t, samples[i-1].DTS+uint64(samples[i-1].Duration), s.DTS, "sample %d follows the previous", i)
		}
	}
	require.Equal(t, uint64(0), samples[0].DTS)
	require.Equal(t, testSPS, seg.SPS)

	// The bytes are the recorded ones: the clip's first sample is the
	// first segment's 31st.
	src := readSeg(t, filepath.Join(dir, "2026-11-22/2026-11-22T00-41-12.378Z.mp4"))
	f, err := os.Open(filepath.Join(dir, "2026-11-22/2026-11-22T00-41-12.378Z.mp4"))
	require.NoError(t, err)
	defer f.Close()
	want := make([]byte, src.Samples()[30].Size)
	_, err = f.ReadAt(want, src.Samples()[30].Offset)
	require.NoError(t, err)
	require.Equal(t, want, clip.Data[samples[0].Offset:samples[0].Offset+int64(samples[0].Size)])

	// A range with no keyframe after its start but frames before it
	// starts at the last keyframe before it and runs to the end.
	clip, err = MakeClip(dir, t0.Add(4200*time.Millisecond), t0.Add(time.Hour), 0)
	require.NoError(t, err)
	requireNear(t, t0.Add(4*time.Second), clip.Start, "clip start")
	require.Equal(t, 1, clip.Segments)

	_, err = MakeClip(dir, t0.Add(time.Hour), t0.Add(2*time.Hour), 0)
	require.ErrorIs(t, err, ErrNoRecording)
	_, err = MakeClip(dir, t0.Add(-time.Hour), t0.Add(-time.Minute), 0)
	require.ErrorIs(t, err, ErrNoRecording)

	_, err = MakeClip(dir, t0, t0.Add(5*time.Second), 10_000)
	var tooLarge *ClipTooLargeError
	require.ErrorAs(t, err, &tooLarge)
}

// requireNear checks a time read back from a file, rounded to the track's
// 90 kHz clock.
func requireNear(t *testing.T, want, got time.Time, msg string, args ...any) {
	t.Helper()
	require.InDelta(t, float64(want.UnixNano()), float64(got.UnixNano()), float64(time.Millisecond), append([]any{msg}, args...)...)
}
