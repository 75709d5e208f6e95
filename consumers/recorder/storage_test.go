package recorder

import (
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// faultFS is OSFS whose large writes (init boxes and fragments, not the
// 8-byte duration patches) fail with errs, one each, in turn.
type faultFS struct {
	OSFS
	mu   sync.Mutex
	errs []error
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *faultFS) next() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) == 0 {
		return nil
	}
	err := f.errs[0]
	f.errs = f.errs[1:]
	return err
}

type faultFile struct {
	File
	fs *faultFS
}

func (f *faultFile) WriteAt(b []byte, off int64) (int, error) {
	if len(b) > 64 {
		if err := f.fs.next(); err != nil {
			// A torn write: half of it lands.
			n, _ := f.File.WriteAt(b[:len(b)/2], off)
			return n, &os.PathError{Op: "write", Path: "segment", Err: err}
		}
	}
	return f.File.WriteAt(b, off)
}

// oldFiles creates n closed segments of size bytes, from 2020, for
// retention to delete.
func oldFiles(t *testing.T, dir string, n int, size int) []closedFile {
	t.Helper()
	var out []closedFile
	for i := 0; i < n; i++ {
		name := segmentName(time.Date(2020, 1, 1, 0, i, 0, 0, time.UTC).UnixNano(), "")
		p := filepath.Join(segmentDir(dir, name), name+segExt)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, make([]byte, size), 0o644))
		out = append(out, closedFile{path: p, size: int64(size), mtime: time.Now()})
	}
	return out
}

// TestDiskFull: a write failing with ENOSPC deletes the oldest segments
// (whatever the limits) and is retried: nothing is lost.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	old := oldFiles(t, dir, 3, 1000)
	fsys := &faultFS{}
	q, m, stop := testWriter(t, Config{Dir: dir, Segment: time.Minute, Fragment: 500 * time.Millisecond, FS: fsys}, nil, old)
	rng := rand.New(rand.NewPCG(9, 10))
	for seq := uint64(1); seq <= 30; seq++ {
		q.push(testAU(t, rng, seq, 30))
	}
	require.Eventually(t, func() bool { return value(m.fragments) == 1 }, 10*time.Second, time.Millisecond)
	fsys.mu.Lock()
	fsys.errs = []error{syscall.ENOSPC}
	fsys.mu.Unlock()
	for seq := uint64(31); seq <= 90; seq++ {
		q.push(testAU(t, rng, seq, 30))
	}
	stop()
	require.Equal(t, 1.0, value(m.writeErrors.WithLabelValues("ENOSPC")))
	require.Equal(t, 3.0, value(m.deleted.WithLabelValues("enospc")), "QueueBytes' worth freed: all three")
	require.NoFileExists(t, old[0].path)
	names := files(t, dir)
	require.Len(t, names, 1)
	require.Equal(t, span(1, 90), seqs(readSeg(t, filepath.Join(dir, names[0]))), "the retried fragment is whole, once")
}

// TestWriteErrors: a fragment that cannot be written (EIO) is dropped, with
// the rest of its GOP; recording resumes at the next keyframe in the same
// segment, which stays valid. A segment that cannot be created waits for
// the next keyframe too.
func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	fsys := &faultFS{}
	q, m, stop := testWriter(t, Config{Dir: dir, Segment: time.Minute, Fragment: 500 * time.Millisecond, FS: fsys}, nil, nil)
	rng := rand.New(rand.NewPCG(11, 12))
	for seq := uint64(1); seq <= 30; seq++ {
		q.push(testAU(t, rng, seq, 30))
	}
	require.Eventually(t, func() bool { return value(m.fragments) == 1 }, 10*time.Second, time.Millisecond)
	fsys.mu.Lock()
	fsys.errs = []error{syscall.EIO}
	fsys.mu.Unlock()
	for seq := uint64(31); seq <= 120; seq++ {
		q.push(testAU(t, rng, seq, 30))
	}
	stop()
	require.Equal(t, 1.0, value(m.writeErrors.WithLabelValues("EIO")))
	require.Equal(t, 1.0, value(m.droppedGOPs.WithLabelValues("write_error")))
	names := files(t, dir)
	require.Len(t, names, 1)
	got := seqs(readSeg(t, filepath.Join(dir, names[0])))
	// 16-30 failed to be written: the GOP 1-30 keeps its first fragment;
	// 31 is a keyframe: everything from there is recorded.
	require.Equal(t, append(span(1, 15), span(31, 120)...), got)
	require.Equal(t, 15.0, value(m.droppedFrames.WithLabelValues("write_error")))

	// The creation of a segment fails: its GOP is lost, the next one starts it.
	dir = t.TempDir()
	fsys = &faultFS{errs: []error{syscall.EIO}}
	q, _, stop = testWriter(t, Config{Dir: dir, Segment: time.Minute, Fragment: 500 * time.Millisecond, FS: fsys}, nil, nil)
	for seq := uint64(1); seq <= 90; seq++ {
		q.push(testAU(t, rng, seq, 30))
	}
	stop()
	names = files(t, dir)
	require.Len(t, names, 1)
	require.Equal(t, span(31, 90), seqs(readSeg(t, filepath.Join(dir, names[0]))))
}
