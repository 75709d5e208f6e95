package recorder

import (
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
)

// TestQueueDropsWholeGOPs: when the queue is full, the access unit that
// does not fit and the rest of its GOP are dropped; recording resumes at
// the first keyframe that fits; each GOP that lost frames counts once.
func TestQueueDropsWholeGOPs(t *testing.T) {
	q := newQueue(10 * (1000 + 128))
	mk := func(seq uint64, key bool) *au { return &au{seq: seq, key: key, sample: make([]byte, 1000)} }
	var queued []uint64
	gops := 0
	push := func(seq uint64) {
		ok, lost := q.push(mk(seq, seq%5 == 1)) // GOPs of 5: 1-5, 6-10, ...
		if ok {
			queued = append(queued, seq)
		}
		if lost {
			gops++
		}
	}
	for seq := uint64(1); seq <= 12; seq++ { // room for 10
		push(seq)
	}
	require.Equal(t, span(1, 10), queued)
	require.Equal(t, 1, gops, "11 and 12 lost: the GOP 11-15")
	push(13) // still no room, and dropping until a keyframe anyway
	for i := 0; i < 10; i++ {
		it, ok, _ := q.pop()
		require.True(t, ok)
		require.Equal(t, uint64(i+1), it.au.seq)
	}
	push(14)
	push(15)
	require.Equal(t, span(1, 10), queued, "the rest of the GOP is dropped even when room comes back")
	push(16)
	push(17)
	require.Equal(t, append(span(1, 10), 16, 17), queued, "a keyframe that fits resumes")
	b, n, _ := q.depth()
	require.Equal(t, 2, n)
	require.Equal(t, int64(2*1128), b)

	// A keyframe that does not fit loses its whole GOP too.
	q = newQueue(3 * 1128)
	queued, gops = nil, 0
	for seq := uint64(1); seq <= 10; seq++ {
		push(seq)
	}
	require.Equal(t, span(1, 3), queued)
	require.Equal(t, 2, gops, "4-5, then 6-10")
	q.close()
	_, _, done := q.pop()
	require.False(t, done, "a closed queue is drained first")
}

// TestRetention: the oldest closed segments go first, down to the byte
// limit counting the segment being written (never deleted), and those
// older than the age limit; emptied day directories go too.
func TestRetention(t *testing.T) {
	dir := t.TempDir()
	var idx index
	for i, day := range []int{1, 1, 2, 2, 3} {
		name := segmentName(time.Date(2026, 11, day, 0, i, 0, 0, time.UTC).UnixNano(), "")
		p := filepath.Join(segmentDir(dir, name), name+segExt)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, make([]byte, 100), 0o644))
		idx.add(closedFile{path: p, size: 100, mtime: time.Date(2026, 11, day, 0, i, 0, 0, time.UTC)})
	}
	// The segment being written, and one left by a crash: never deleted.
	for _, p := range []string{"2026-11-03/2026-11-03T01-00-00.000Z.mp4.part", "2026-11-01/2026-11-01T00-00-00.000Z.mp4.part"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), make([]byte, 150), 0o644))
	}
	m := newMetrics(newQueue(1 << 20))
	r := &retention{fs: OSFS{}, root: dir, keepBytes: 450, log: testutil.Logger(t, slog.LevelError), m: m, idx: idx}
	r.run(time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC), 300)
	require.Equal(t, []string{
		"2026-11-01/2026-11-01T00-00-00.000Z.mp4.part",
		"2026-11-03/2026-11-03T00-04-00.000Z.mp4",
		"2026-11-03/2026-11-03T01-00-00.000Z.mp4.part",
	}, files(t, dir), "4 oldest closed deleted: 100 + 300 open ≤ 450")
	require.NoDirExists(t, filepath.Join(dir, "2026-11-02"), "emptied day directory removed")
	require.Equal(t, 4.0, value(m.deleted.WithLabelValues("bytes")))
	require.Equal(t, 400.0, value(m.deletedBytes))

	r.keepBytes, r.keepAge = 0, 2*time.Hour
	r.run(time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC), 300)
	require.Len(t, files(t, dir), 3, "within two hours")
	r.run(time.Date(2026, 11, 3, 2, 5, 0, 0, time.UTC), 300)
	require.Equal(t, []string{"2026-11-01/2026-11-01T00-00-00.000Z.mp4.part", "2026-11-03/2026-11-03T01-00-00.000Z.mp4.part"}, files(t, dir))
	require.Equal(t, 1.0, value(m.deleted.WithLabelValues("age")))
}

// TestWriterRetention: the writer applies the limits as segments close.
func TestWriterRetention(t *testing.T) {
	dir := t.TempDir()
	old := oldFiles(t, dir, 2, 1000)
	q, m, stop := testWriter(t, Config{Dir: dir, Segment: time.Second, Fragment: 500 * time.Millisecond, KeepBytes: 100_000}, nil, old)
	rng := rand.New(rand.NewPCG(13, 14))
	for seq := uint64(1); seq <= 300; seq++ { // 10 segments of ~20 KB
		q.push(testAU(t, rng, seq, 30))
	}
	stop()
	require.GreaterOrEqual(t, value(m.deleted.WithLabelValues("bytes")), 3.0, "the two old files and at least one new segment")
	var total int64
	names := files(t, dir)
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n))
		require.NoError(t, err)
		total += fi.Size()
	}
	require.LessOrEqual(t, total, int64(100_000))
	require.NoFileExists(t, old[0].path)
	require.NoFileExists(t, old[1].path)
	// What is left is the newest segments, back to back.
	next := uint64(0)
	for i := len(names) - 1; i >= 0; i-- {
		got := seqs(readSeg(t, filepath.Join(dir, names[i])))
		if next != 0 {
			require.Equal(t, next, got[len(got)-1]+1, "%s is the one before", names[i])
		} else {
			require.Equal(t, uint64(300), got[len(got)-1])
		}
		next = got[0]
	}
	require.Greater(t, next, uint64(1), "the oldest recorded segments were deleted")
}
