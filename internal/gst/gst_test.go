package gst_test

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	fhgst "github.com/framehub/framehub/internal/gst"
	"github.com/framehub/framehub/producer/surface"
)

type freedLog struct {
	mu    sync.Mutex
	freed []string
}

func (l *freedLog) MemoryFreed(dev, ino uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.freed = append(l.freed, fmt.Sprintf("%d:%d", dev, ino))
}

func (l *freedLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.freed...)
}

const nv12Caps = "video/x-raw,format=NV12,width=328,height=240,framerate=30/1"

// TestMemfdPool checks what consumers rely on: the pool's buffers are
// sealed memfds, shared through a read-only fd, laid out as
// producer/surface.NV12, and the observer hears when they are freed.
func TestMemfdPool(t *testing.T) {
	fhgst.Init()
	log := &freedLog{}
	obs := fhgst.NewObserver(log)
	defer obs.Delete()

	pool, err := fhgst.NewTestPool(nv12Caps, 1, 3)
	require.NoError(t, err)
	var bufs []*fhgst.Buffer
	for i := 0; i < 3; i++ {
		b := pool.Acquire()
		require.NotNil(t, b, "buffer %d of 3", i)
		bufs = append(bufs, b)
	}
	require.Nil(t, pool.Acquire(), "the pool's max (3) bounds it")

	want, err := surface.NV12(328, 240, 0)
	require.NoError(t, err)
	s := fhgst.NewTestSample(bufs[0], nv12Caps)
	vi := s.VideoInfo()
	defer vi.Free()
	require.Equal(t, "NV12", vi.Format())
	d := s.Describe(vi, obs)
	require.Equal(t, fhgst.KindMemfd, d.Kind)
	require.True(t, d.Ours)
	require.Equal(t, 3, d.PoolOutstanding)
	require.Equal(t, 3, d.PoolMax)
	require.Equal(t, 1, d.NMems)
	m := d.Mems[0]
	require.True(t, m.Fresh)
	require.Equal(t, uint64(want.Size), m.FDSize)
	require.Equal(t, uint64(want.Size), m.Size)
	require.Equal(t, 2, d.NPlanes)
	for i, p := range want.Planes {
		got := d.Planes[i]
		require.Equal(t, 0, got.Mem)
		require.Equal(t, uint64(p.Offset), got.Offset, "plane %d offset", i)
		require.Equal(t, int(p.Stride), got.Stride, "plane %d stride", i)
		require.Equal(t, uint64(p.Size), got.Size, "plane %d size", i)
	}
	// Registered once only.
	require.False(t, s.Describe(vi, obs).Mems[0].Fresh)
	s.Unref()

	// The shared fd is read-only, and the memfd sealed so that no writable
	// mapping can ever be made, even through a read-write reopen.
	fl, err := unix.FcntlInt(uintptr(m.FD), unix.F_GETFL, 0)
	require.NoError(t, err)
	require.Equal(t, unix.O_RDONLY, fl&unix.O_ACCMODE)
	seals, err := unix.FcntlInt(uintptr(m.FD), unix.F_GET_SEALS, 0)
	require.NoError(t, err)
	for _, seal := range []int{unix.F_SEAL_SHRINK, unix.F_SEAL_GROW, unix.F_SEAL_FUTURE_WRITE, unix.F_SEAL_SEAL} {
		require.NotZero(t, seals&seal, "seal %#x missing in %#x", seal, seals)
	}
	_, err = unix.Mmap(m.FD, 0, int(m.FDSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	require.Error(t, err)
	rw, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", m.FD), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err == nil {
		_, err = unix.Mmap(rw, 0, int(m.FDSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		unix.Close(rw)
		require.ErrorIs(t, err, unix.EPERM, "F_SEAL_FUTURE_WRITE forbids new writable mappings")
	}
	ro, err := unix.Mmap(m.FD, 0, int(m.FDSize), unix.PROT_READ, unix.MAP_SHARED)
	require.NoError(t, err)
	require.NoError(t, unix.Munmap(ro))
	var st unix.Stat_t
	require.NoError(t, unix.Fstat(m.FD, &st))
	require.Equal(t, uint64(st.Ino), m.Ino)

	// Freed when the pool is gone and the last buffer released: only the
	// registered memory is reported.
	pool.Free()
	for _, b := range bufs {
		b.Unref()
	}
	require.Equal(t, []string{fmt.Sprintf("%d:%d", m.Dev, m.Ino)}, log.list())
}

// TestDescribeDMABuf: a buffer whose memory is a DMA-BUF (as v4l2src
// io-mode=dmabuf makes) is shared as it is, identified by its inode, with
// the layout of the caps when it has no video meta, and its reference count
// is what the holder makes it.
func TestDescribeDMABuf(t *testing.T) {
	fhgst.Init()
	log := &freedLog{}
	obs := fhgst.NewObserver(log)
	defer obs.Delete()

	fd, err := unix.MemfdCreate("fake-dmabuf", unix.MFD_CLOEXEC)
	require.NoError(t, err)
	defer unix.Close(fd)
	const size = 4096 + 328*240*3/2
	require.NoError(t, unix.Ftruncate(fd, size+4096))
	var st unix.Stat_t
	require.NoError(t, unix.Fstat(fd, &st))

	b, err := fhgst.NewTestDMABufBuffer(fd, size, 4096)
	require.NoError(t, err)
	require.Equal(t, 1, b.RefCount())
	s := fhgst.NewTestSample(b, "video/x-raw,format=NV12,width=328,height=240")
	require.Equal(t, 2, b.RefCount(), "the sample holds its own reference")
	vi := s.VideoInfo()
	defer vi.Free()
	d := s.Describe(vi, obs)
	require.Equal(t, fhgst.KindDMABuf, d.Kind)
	require.False(t, d.Ours)
	require.Equal(t, 1, d.NMems)
	require.Equal(t, uint64(st.Ino), d.Mems[0].Ino)
	require.Equal(t, uint64(4096), d.Mems[0].Offset)
	require.Equal(t, uint64(4096), d.Planes[0].Offset)
	require.Equal(t, 328, d.Planes[0].Stride)
	require.Equal(t, uint64(4096+328*240), d.Planes[1].Offset)
	require.Equal(t, uint64(328*120), d.Planes[1].Size)
	ref := s.BufferRef()
	require.Equal(t, 3, b.RefCount())
	s.Unref()
	b.Unref()
	require.Empty(t, log.list(), "memory alive while a reference is held")
	ref.Unref()
	require.Equal(t, []string{fmt.Sprintf("%d:%d", st.Dev, st.Ino)}, log.list())
}

// TestCopyFrame copies a frame between layouts, respecting strides.
func TestCopyFrame(t *testing.T) {
	fhgst.Init()
	pool, err := fhgst.NewTestPool("video/x-raw,format=NV12,width=64,height=8", 1, 1)
	require.NoError(t, err)
	defer pool.Free()
	b := pool.Acquire()
	require.NotNil(t, b)
	defer b.Unref()
	s := fhgst.NewTestSample(b, "video/x-raw,format=NV12,width=64,height=8")
	defer s.Unref()
	vi := s.VideoInfo()
	defer vi.Free()
	dst := make([]byte, 4096)
	require.NoError(t, s.CopyFrame(vi, dst, []uint32{0, 1024}, []uint32{96, 96}))
	require.Error(t, s.CopyFrame(vi, dst[:600], []uint32{0, 1024}, []uint32{96, 96}), "too small")
	require.Error(t, s.CopyFrame(vi, dst, []uint32{0, 1024}, []uint32{32, 32}), "stride below the row")
}

// TestParseLaunchMissing names the missing element.
func TestParseLaunchMissing(t *testing.T) {
	fhgst.Init()
	_, err := fhgst.ParseLaunch("videotestsrc ! nosuchelement ! fakesink")
	var perr *fhgst.ParseError
	require.True(t, errors.As(err, &perr), "%v", err)
	require.Equal(t, []string{"nosuchelement"}, perr.Missing)
	p, err := fhgst.ParseLaunch("videotestsrc num-buffers=1 ! fakesink")
	require.NoError(t, err)
	p.Unref()
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}
