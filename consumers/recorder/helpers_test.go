package recorder

import (
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/clock"
	"github.com/framehub/framehub/internal/testutil"
)

// value reads a counter or gauge.
func value(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var d dto.Metric
	if err := (<-ch).Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// An SPS and PPS of x264enc at 320×240 (constrained baseline).
var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x15, 0xda, 0x5, 0x7, 0xec, 0x5, 0xa8, 0x30, 0x30, 0x35, 0x28, 0x0, 0x0, 0x3, 0x0, 0x8, 0x0, 0x0, 0x3, 0x1, 0xe4, 0x78, 0xb1, 0x75}
	testPPS = []byte{0x68, 0xce, 0x3c, 0x80}
)

const (
	testFrame = int64(time.Second) / 30
	testBase  = int64(1000 * time.Hour) // x264enc's timestamps start at 1000 h
)

// annexB builds the byte-stream access unit number seq: AUD, SPS and PPS
// before a keyframe, then one slice of random bytes (no zero bytes, so no
// start code inside).
func annexB(rng *rand.Rand, key bool, size int) []byte {
	b := []byte{0, 0, 0, 1, 0x09, 0xf0}
	if key {
		b = append(b, 0, 0, 0, 1)
		b = append(b, testSPS...)
		b = append(b, 0, 0, 1)
		b = append(b, testPPS...)
	}
	b = append(b, 0, 0, 0, 1)
	if key {
		b = append(b, 0x65)
	} else {
		b = append(b, 0x41)
	}
	for i := 0; i < size; i++ {
		b = append(b, byte(1+rng.IntN(255)))
	}
	return b
}

// testAU is access unit seq (1-based) of a 30 fps stream with a keyframe
// every gop frames, as the receiver hands it to the writer.
func testAU(t testing.TB, rng *rand.Rand, seq uint64, gop int) *au {
	t.Helper()
	key := (seq-1)%uint64(gop) == 0
	// Received an hour from now: the writer's idle flush (a fragment's time
	// without input) never fires, so fragments are cut by media time only,
	// whatever the machine's pauses.
	a := &au{seq: seq, key: key, dur: testFrame, arrived: clock.Mono() + int64(time.Hour)}
	a.pts = testBase + int64(seq-1)*testFrame
	a.dts = a.pts
	a.mono = int64(time.Hour) + int64(seq)*testFrame
	a.real = time.Date(2026, 11, 22, 0, 41, 12, 345e6, time.UTC).UnixNano() + int64(seq)*testFrame
	var err error
	a.sample, a.sps, a.pps, err = toAVCC(annexB(rng, key, 200+rng.IntN(800)))
	require.NoError(t, err)
	return a
}

// testWriter runs a writer over cfg (Dir, Segment, Fragment, FS...) and
// returns the queue to feed it and a function that closes the queue and
// waits for the writer to finish.
func testWriter(t *testing.T, cfg Config, resume *recoveredPart, closed []closedFile) (*queue, *metrics, func()) {
	t.Helper()
	cfg.Logger = testutil.Logger(t, slog.LevelError)
	cfg.fill()
	require.NoError(t, cfg.validate())
	q := newQueue(cfg.QueueBytes)
	m := newMetrics(q)
	w := &writer{cfg: &cfg, log: cfg.Logger, q: q, m: m, st: &status{}, bootID: bootID(), keyframe: func() {}, resume: resume,
		ret: &retention{fs: cfg.FS, root: cfg.Dir, keepBytes: cfg.KeepBytes, keepAge: cfg.KeepAge, log: cfg.Logger, m: m}}
	for _, f := range closed {
		w.ret.idx.add(f)
	}
	var wg sync.WaitGroup
	wg.Go(w.run)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			q.close()
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return q, m, stop
}

// files lists the segment files under dir, by name, as paths relative to
// dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.Contains(d.Name(), ".mp4") {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	require.NoError(t, err)
	sort.Strings(out)
	return out
}

// readSeg reads a segment and checks its basic invariants: it starts with a
// keyframe, its decode times increase, it has no torn tail and its
// duration is its content's.
func readSeg(t *testing.T, path string) *Segment {
	t.Helper()
	s, err := ReadSegmentFile(path)
	require.NoError(t, err)
	require.True(t, s.HasInfo, path)
	require.NotEmpty(t, s.Fragments, path)
	require.True(t, s.Fragments[0].Samples[0].Sync, "%s starts with a keyframe", path)
	require.Equal(t, s.Info.FirstSeq, s.Fragments[0].Info.FirstSeq)
	var t0 uint64
	for _, f := range s.Fragments {
		require.True(t, f.HasInfo)
		require.Equal(t, int(f.Info.Count), len(f.Samples))
		require.GreaterOrEqual(t, f.BaseTime, t0, "%s: decode times increase", path)
		t0 = f.BaseTime
	}
	require.Equal(t, s.ValidEnd, s.Size, "%s has no torn tail", path)
	require.Equal(t, s.End(), s.Duration, "%s: the duration is the content's", path)
	return s
}

// seqs returns the producer sequence numbers of a segment's samples.
func seqs(s *Segment) []uint64 {
	var out []uint64
	for _, f := range s.Fragments {
		for i := range f.Samples {
			out = append(out, f.Info.FirstSeq+uint64(i))
		}
	}
	return out
}

// span returns the producer sequence numbers from first to last.
func span(first, last uint64) []uint64 {
	var out []uint64
	for s := first; s <= last; s++ {
		out = append(out, s)
	}
	return out
}
