package snapshot

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/testutil"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 10 * time.Second

// faultyWriter wraps a FileWriter: each call pops the next error of its
// script (nil: pass through), and gate, when set, blocks writes until closed.
type faultyWriter struct {
	*FileWriter
	mu     sync.Mutex
	errs   []error
	gate   chan struct{}
	writes []string
}

func (f *faultyWriter) next() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) == 0 {
		return nil
	}
	err := f.errs[0]
	f.errs = f.errs[1:]
	return err
}

func (f *faultyWriter) Write(name string, data []byte) error {
	if f.gate != nil {
		<-f.gate
	}
	if err := f.next(); err != nil {
		return err
	}
	f.mu.Lock()
	f.writes = append(f.writes, name)
	f.mu.Unlock()
	return f.FileWriter.Write(name, data)
}

func newTestStore(t *testing.T, w Writer, dir string, mod func(*storeConfig)) (*store, *metrics, []Status, func() []Status) {
	t.Helper()
	m := newMetrics(4, func() bool { return true })
	var mu sync.Mutex
	var notes []Status
	cfg := storeConfig{dir: dir, w: w, capacity: 4, retries: 2, backoff: time.Millisecond, log: testutil.Logger(t, slog.LevelError), m: m,
		notify: func(st Status) { mu.Lock(); notes = append(notes, st); mu.Unlock() }}
	if mod != nil {
		mod(&cfg)
	}
	s, err := newStore(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.run(ctx, time.Second) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Error("store did not stop")
		}
	})
	return s, m, nil, func() []Status { mu.Lock(); defer mu.Unlock(); return slices.Clone(notes) }
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var d dto.Metric
	require.NoError(t, c.Write(&d))
	return d.GetCounter().GetValue()
}

func put(t *testing.T, s *store, at time.Time, data string) Status {
	t.Helper()
	sl, err := s.reserve()
	require.NoError(t, err)
	return s.accept(sl, Status{CaptureTime: at}, []byte(data))
}

func waitDone(t *testing.T, s *store, id string) Status {
	t.Helper()
	_, done, ok := s.status(id)
	require.True(t, ok)
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("snapshot %s not finished within %v", id, waitTimeout)
	}
	st, _, _ := s.status(id)
	return st
}

func TestStoreBusyKeepsAccepted(t *testing.T) {
	fw, err := NewFileWriter(t.TempDir())
	require.NoError(t, err)
	w := &faultyWriter{FileWriter: fw, gate: make(chan struct{})}
	s, m, _, _ := newTestStore(t, w, fw.Dir(), nil)
	var ids []string
	t0 := time.Now()
	for i := range 3 {
		ids = append(ids, put(t, s, t0.Add(time.Duration(i)*time.Millisecond), "jpeg").ID)
	}
	sl, err := s.reserve() // the 4th slot: taken, then given back
	require.NoError(t, err)
	_, err = s.reserve()
	require.ErrorIs(t, err, ErrBusy)
	require.ErrorContains(t, err, "queue of 4")
	sl.cancel()
	ids = append(ids, put(t, s, t0.Add(time.Second), "jpeg").ID)
	_, err = s.reserve()
	require.ErrorIs(t, err, ErrBusy)
	close(w.gate)
	for _, id := range ids {
		st := waitDone(t, s, id)
		require.True(t, st.Durable, "%+v", st)
		require.FileExists(t, st.Path)
	}
	require.Equal(t, 4.0, counter(t, m.durable))
	sl, err = s.reserve()
	require.NoError(t, err, "slots are free again")
	sl.cancel()
}

func TestStoreRetriesThenFails(t *testing.T) {
	fw, err := NewFileWriter(t.TempDir())
	require.NoError(t, err)
	enospc := &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
	eio := &os.PathError{Op: "write", Path: "x", Err: syscall.EIO}
	w := &faultyWriter{FileWriter: fw, errs: []error{enospc, eio}}
	s, m, _, notes := newTestStore(t, w, fw.Dir(), nil)
	st := waitDone(t, s, put(t, s, time.Now(), "a").ID)
	require.True(t, st.Durable, "retried past two errors: %+v", st)
	require.Equal(t, 3, st.Attempts)
	require.Equal(t, 1.0, counter(t, m.failures.WithLabelValues("write_enospc")))
	require.Equal(t, 1.0, counter(t, m.failures.WithLabelValues("write_eio")))
	require.True(t, s.healthy())

	w.mu.Lock()
	w.errs = []error{enospc, enospc, enospc}
	w.mu.Unlock()
	st = waitDone(t, s, put(t, s, time.Now(), "b").ID)
	require.Equal(t, StateFailed, st.State)
	require.False(t, st.Durable)
	require.Contains(t, st.Error, "no space left on device")
	require.NoFileExists(t, st.Path)
	require.False(t, s.healthy(), "storage is failing")
	require.Equal(t, 1.0, counter(t, m.failures.WithLabelValues("gave_up")))
	require.Equal(t, 4.0, counter(t, m.failures.WithLabelValues("write_enospc")))

	st = waitDone(t, s, put(t, s, time.Now(), "c").ID)
	require.True(t, st.Durable, "the store goes on after a failure")
	require.True(t, s.healthy())
	n := notes()
	require.Len(t, n, 3)
	require.Equal(t, []bool{true, false, true}, []bool{n[0].Durable, n[1].Durable, n[2].Durable})
}

func TestStoreRetention(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	// Files of an earlier run, a crash's leftover and a stranger's file.
	old := fileName(t0, "0000000000aa")
	require.NoError(t, os.WriteFile(filepath.Join(dir, old), make([]byte, 100), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, tempName(fileName(t0, "0000000000bb"))), []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644))
	fw, err := NewFileWriter(dir)
	require.NoError(t, err)
	s, _, _, _ := newTestStore(t, fw, dir, func(c *storeConfig) { c.keepCount = 3; c.keepBytes = 250 })
	require.Len(t, s.files, 1, "the earlier run's snapshot counts for retention")
	var last Status
	for i := 1; i <= 4; i++ {
		last = waitDone(t, s, put(t, s, t0.Add(time.Duration(i)*time.Second), string(make([]byte, 100))).ID)
		require.True(t, last.Durable)
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	// 250 bytes keep two 100-byte files: the newest two; the stranger stays.
	require.Len(t, names, 3, "%v", names)
	require.Equal(t, "notes.txt", names[2])
	require.Equal(t, filepath.Base(last.Path), names[1])
	require.NotContains(t, names, old)

	// The newest file is kept even when it alone exceeds keep-bytes.
	big := waitDone(t, s, put(t, s, t0.Add(time.Hour), string(make([]byte, 1000))).ID)
	require.FileExists(t, big.Path)
	require.NoFileExists(t, last.Path)
}

func TestStoreDrainsAtShutdown(t *testing.T) {
	fw, err := NewFileWriter(t.TempDir())
	require.NoError(t, err)
	w := &faultyWriter{FileWriter: fw, gate: make(chan struct{})}
	m := newMetrics(4, func() bool { return true })
	s, err := newStore(storeConfig{dir: fw.Dir(), w: w, capacity: 4, backoff: time.Millisecond, log: testutil.Logger(t, slog.LevelError), m: m, notify: func(Status) {}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.run(ctx, waitTimeout) }()
	a := put(t, s, time.Now(), "a")
	b := put(t, s, time.Now(), "b")
	cancel()
	close(w.gate)
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("store did not stop")
	}
	for _, st := range []Status{a, b} {
		got, _, _ := s.status(st.ID)
		require.True(t, got.Durable, "accepted before the stop: written during the drain")
	}
	_, err = s.reserve()
	require.ErrorIs(t, err, ErrStopping)
}

func TestFileWriterSyncs(t *testing.T) {
	fw, err := NewFileWriter(filepath.Join(t.TempDir(), "a", "b"))
	require.NoError(t, err, "creates the directory")
	var files, dirs int
	fw.syncFile = func(f *os.File) error { files++; return f.Sync() }
	fw.syncDir = func(f *os.File) error { dirs++; return f.Sync() }
	require.NoError(t, fw.Write("x.jpg", []byte("hello")))
	require.Equal(t, 1, files)
	require.NoError(t, fw.Sync())
	require.Equal(t, 1, dirs)
	got, err := os.ReadFile(filepath.Join(fw.Dir(), "x.jpg"))
	require.NoError(t, err)
	require.Equal(t, "hello", string(got))
	require.NoFileExists(t, filepath.Join(fw.Dir(), tempName("x.jpg")))

	fw.syncFile = func(*os.File) error { return syscall.EIO }
	err = fw.Write("y.jpg", []byte("data"))
	require.ErrorIs(t, err, syscall.EIO)
	require.Equal(t, "eio", failureReason(err))
	require.NoFileExists(t, filepath.Join(fw.Dir(), "y.jpg"))
	require.NoFileExists(t, filepath.Join(fw.Dir(), tempName("y.jpg")), "a failed write leaves no temp file")
	require.NoError(t, fw.Remove("y.jpg"), "removing a missing file is fine")
}
