package recorder_test

import (
	"context"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/consumers/recorder"
	"github.com/framehub/framehub/internal/testutil"
)

// stallFS is the real file system, except that once armed the next large
// write (a fragment) blocks for stall: an SD card stalling.
type stallFS struct {
	recorder.OSFS
	stall  time.Duration
	writes atomic.Int64 // large writes done

	mu    sync.Mutex
	armed bool
	began chan struct{} // closed when the stalled write starts
	ended chan struct{} // closed when it resumes
	// atEnd runs at the end of the stall, before the write resumes.
	atEnd func()
}

func (s *stallFS) OpenFile(name string, flag int, perm fs.FileMode) (recorder.File, error) {
	f, err := s.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &stallFile{File: f, fs: s}, nil
}

func (s *stallFS) arm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed = true
}

type stallFile struct {
	recorder.File
	fs *stallFS
}

func (f *stallFile) WriteAt(b []byte, off int64) (int, error) {
	if len(b) > 64 {
		f.fs.mu.Lock()
		armed := f.fs.armed
		f.fs.armed = false
		f.fs.mu.Unlock()
		if armed {
			close(f.fs.began)
			time.Sleep(f.fs.stall) // the injected fault: this write takes that long
			f.fs.atEnd()
			close(f.fs.ended)
		}
		defer f.fs.writes.Add(1)
	}
	return f.File.WriteAt(b, off)
}

func waitClosed(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(waitTimeout):
		t.Fatalf("%s: not within %v", what, waitTimeout)
	}
}

// TestStorageStall: a write that blocks for 3 s stalls only the writer: the
// recorder keeps receiving and releasing (the producer never skips it),
// queues what it copied, reports unhealthy meanwhile, then writes it all:
// no frame is lost.
func TestStorageStall(t *testing.T) {
	dir := testutil.ShortDir(t)
	p := startProducer(t, dir)
	ref := watch(t, p)
	fsys := &stallFS{stall: 3 * time.Second, began: make(chan struct{}), ended: make(chan struct{})}
	log := testutil.Logger(t, slog.LevelError)
	rec, err := recorder.New(recorder.Config{Producer: p.sock, Dir: filepath.Join(dir, "rec"), Segment: 10 * time.Second,
		Fragment: 500 * time.Millisecond, FS: fsys, Logger: log})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(waitTimeout):
			t.Error("the recorder did not stop")
		}
	}
	t.Cleanup(stop)

	var (
		inStall      recorder.Health
		skippedStall float64
	)
	fsys.atEnd = func() { // on the writer's goroutine: no require here
		inStall = rec.Health()
		skippedStall = -1
		if _, body, err := p.get("/metrics"); err == nil {
			skippedStall = sum(parseMetrics(body), "framehub_producer_consumer_skipped_total", `consumer="framehub-recorder"`)
		}
	}
	testutil.WaitUntil(t, waitTimeout, func() bool { return fsys.writes.Load() >= 3 }, "the init boxes and 2 fragments written")
	fsys.arm()
	waitClosed(t, fsys.began, "the stall")
	stalledAt := ref.lastSeq()
	waitClosed(t, fsys.ended, "the end of the stall")
	// Meanwhile frames kept coming, were copied, released and queued; the
	// data waited too long to be durable: unhealthy.
	t.Logf("health at the end of the stall: %+v", inStall)
	require.False(t, inStall.OK)
	require.Greater(t, inStall.PendingSeconds, 2.5)
	require.Positive(t, inStall.QueueBytes)
	require.Zero(t, skippedStall, "the producer did not skip the recorder during the stall")
	testutil.WaitUntil(t, waitTimeout, func() bool { h := rec.Health(); return h.OK && h.QueueBytes == 0 }, "queue drained: %+v", rec.Health())
	resumedAt := ref.lastSeq()
	testutil.WaitUntil(t, waitTimeout, func() bool { return ref.lastSeq() >= resumedAt+15 }, "more frames")

	w := httptest.NewRecorder()
	rec.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	rm := parseMetrics(w.Body.Bytes())
	stop()

	pm := p.metrics()
	require.Zero(t, sum(pm, "framehub_producer_consumer_skipped_total", `consumer="framehub-recorder"`), "the producer never skipped the recorder")
	require.Zero(t, sum(pm, "framehub_producer_evictions_total"))
	require.Zero(t, sum(rm, "framehub_recorder_dropped_frames_total", `reason="queue_full"`))
	require.Zero(t, sum(rm, "framehub_recorder_dropped_frames_total", `reason="write_error"`))
	require.Zero(t, sum(rm, "framehub_recorder_gaps_total"))
	require.Zero(t, sum(rm, "framehub_recorder_dropped_gops_total"))
	require.Less(t, sum(rm, "framehub_recorder_write_seconds_bucket", `le="2.5"`), sum(rm, "framehub_recorder_write_seconds_count"), "a write took the stall")

	segs := listSegments(t, filepath.Join(dir, "rec"), true)
	first, last := checkContinuous(t, ref, segs)
	t.Logf("frames %d..%d recorded; the stall began at %d and ended at %d", first, last, stalledAt, resumedAt)
	require.Less(t, first, stalledAt)
	require.Greater(t, last, resumedAt)
}

// TestRetentionKeepsBytes: with -keep-bytes, the oldest segments are
// deleted first and the recordings stay within the limit.
func TestRetentionKeepsBytes(t *testing.T) {
	dir := testutil.ShortDir(t)
	p := startProducer(t, dir)
	ref := watch(t, p)
	const limit = 400_000 // ~3 segments of 1 s at 1 Mbit/s
	r := startRecorder(t, p, dir, "-segment", "1s", "-fragment", "250ms", "-keep-bytes", "400000")
	testutil.WaitUntil(t, waitTimeout, func() bool {
		return sum(r.metrics(), "framehub_recorder_retention_deleted_total", `reason="bytes"`) >= 3
	}, "3 segments deleted")
	r.Stop(t)

	segs := listSegments(t, filepath.Join(dir, "rec"), true)
	var total int64
	for _, s := range segs {
		require.True(t, strings.HasSuffix(s.path, ".mp4"))
		fi, err := os.Stat(s.path)
		require.NoError(t, err)
		total += fi.Size()
	}
	require.LessOrEqual(t, total, int64(limit))
	require.GreaterOrEqual(t, len(segs), 2)
	// What is left is the newest recordings, back to back: the deleted ones
	// were the oldest.
	first, _ := checkContinuous(t, ref, segs)
	require.Greater(t, first, uint64(60), "the first segments are gone")
}
