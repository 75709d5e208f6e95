package surface

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/internal/testutil"
	"github.com/framehub/framehub/ipc"
)

// countingAlloc wraps the memfd allocator, fails after limit allocations
// (if limit > 0) and counts live memory.
type countingAlloc struct {
	Allocator
	limit int
	n     atomic.Int64
}

func (a *countingAlloc) Alloc(size int) (*Memory, error) {
	if a.limit > 0 && a.n.Load() >= int64(a.limit) {
		return nil, errors.New("test: out of memory")
	}
	m, err := a.Allocator.Alloc(size)
	if err == nil {
		a.n.Add(1)
	}
	return m, err
}

func newPool(t *testing.T, min, max int) *Pool {
	t.Helper()
	p, err := NewPool(PoolConfig{Allocator: NewMemfd("pool-test"), Size: 10000, Min: min, Max: max})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

func ids(ss []*Surface) []uint32 {
	out := make([]uint32, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

func TestNewPoolInvalid(t *testing.T) {
	a := NewMemfd("x")
	tests := []struct {
		name string
		cfg  PoolConfig
		want string
	}{
		{"nil allocator", PoolConfig{Size: 1, Max: 1}, "nil Allocator"},
		{"zero size", PoolConfig{Allocator: a, Max: 1}, "Size 0"},
		{"negative min", PoolConfig{Allocator: a, Size: 1, Min: -1, Max: 1}, "Min -1"},
		{"zero max", PoolConfig{Allocator: a, Size: 1}, "Max 0"},
		{"max below min", PoolConfig{Allocator: a, Size: 1, Min: 3, Max: 2}, "Max 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPool(tc.cfg)
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, p)
		})
	}
}

func TestNewPoolPreallocFailure(t *testing.T) {
	a := &countingAlloc{Allocator: NewMemfd("x"), limit: 2}
	before := testutil.CountOwnFDs(t)
	p, err := NewPool(PoolConfig{Allocator: a, Size: 4096, Min: 3, Max: 4})
	require.ErrorContains(t, err, "out of memory")
	require.Nil(t, p)
	require.Equal(t, before, testutil.CountOwnFDs(t), "preallocated surfaces leaked")
}

func TestPoolMinPrealloc(t *testing.T) {
	p := newPool(t, 3, 5)
	st := p.Stats()
	require.Equal(t, PoolStats{Free: 3, InUse: 0, Allocated: 3, Max: 5, Allocs: 3, Size: 10000}, st)
	require.Equal(t, []uint32{1, 2, 3}, ids(p.Surfaces()))
	for _, s := range p.Surfaces() {
		require.Equal(t, uint32(1), s.Gen)
		require.Equal(t, 12288, s.Mem.Size())
		require.Same(t, s, p.Lookup(s.ID))
		require.Equal(t, ipc.Surface{ID: s.ID, Gen: 1, Size: 12288, Kind: ipc.KindMemfd, NFDs: 1}, s.Info())
	}
	require.Nil(t, p.Lookup(0))
	require.Nil(t, p.Lookup(4))
	cfg := p.Config()
	require.Equal(t, 10000, cfg.Size)
	require.Equal(t, 3, cfg.Min)
	require.Equal(t, 5, cfg.Max)
}

func TestPoolGetPutLIFO(t *testing.T) {
	p := newPool(t, 2, 4)
	a, err := p.Get()
	require.NoError(t, err)
	require.Equal(t, uint32(1), a.ID, "preallocated ids are handed out lowest first")
	b, err := p.Get()
	require.NoError(t, err)
	require.Equal(t, uint32(2), b.ID)
	c, err := p.Get() // allocates slot 3
	require.NoError(t, err)
	require.Equal(t, uint32(3), c.ID)
	require.Equal(t, uint64(3), p.Stats().Allocs)

	p.Put(a)
	p.Put(c)
	p.Put(b)
	// LIFO: most recently put first.
	for _, want := range []*Surface{b, c, a} {
		s, err := p.Get()
		require.NoError(t, err)
		require.Same(t, want, s)
	}
	require.Equal(t, uint64(3), p.Stats().Allocs, "no new allocation while free surfaces exist")
	p.Put(a)
	p.Put(b)
	p.Put(c)
}

func TestPoolExhausted(t *testing.T) {
	p := newPool(t, 0, 2)
	a, err := p.Get()
	require.NoError(t, err)
	b, err := p.Get()
	require.NoError(t, err)
	for i := 1; i <= 3; i++ {
		s, err := p.Get()
		require.ErrorIs(t, err, ErrExhausted)
		require.Nil(t, s)
		require.Equal(t, uint64(i), p.Stats().Exhausted)
	}
	require.Equal(t, PoolStats{Free: 0, InUse: 2, Allocated: 2, Max: 2, Exhausted: 3, Allocs: 2, Size: 10000}, p.Stats())
	p.Put(a)
	s, err := p.Get()
	require.NoError(t, err)
	require.Same(t, a, s)
	p.Put(a)
	p.Put(b)
}

func TestPoolAllocFailure(t *testing.T) {
	a := &countingAlloc{Allocator: NewMemfd("x"), limit: 1}
	p, err := NewPool(PoolConfig{Allocator: a, Size: 4096, Max: 3})
	require.NoError(t, err)
	defer p.Close()
	s, err := p.Get()
	require.NoError(t, err)
	_, err = p.Get()
	require.ErrorContains(t, err, "out of memory")
	require.NotErrorIs(t, err, ErrExhausted)
	require.Equal(t, PoolStats{InUse: 1, Allocated: 1, Max: 3, Allocs: 1, Size: 4096}, p.Stats())
	require.Equal(t, []uint32{1}, ids(p.Surfaces()))
	p.Put(s)
}

func TestPoolPutPanics(t *testing.T) {
	p := newPool(t, 1, 2)
	other := newPool(t, 1, 2)
	s, err := p.Get()
	require.NoError(t, err)
	o, err := other.Get()
	require.NoError(t, err)
	defer other.Put(o)

	tests := []struct {
		name string
		s    *Surface
	}{
		{"nil", nil},
		{"other pool same id", o},
		{"copy", &Surface{ID: s.ID, Gen: s.Gen, Mem: s.Mem}},
		{"id 0", &Surface{}},
		{"id out of range", &Surface{ID: 9}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Panics(t, func() { p.Put(tc.s) })
		})
	}
	p.Put(s)
	require.Panics(t, func() { p.Put(s) }, "double Put")
	require.Equal(t, PoolStats{Free: 1, Allocated: 1, Max: 2, Allocs: 1, Size: 10000}, p.Stats())

	// A surface of an older generation is foreign too.
	_, err = p.Resize(20000)
	require.NoError(t, err)
	require.Panics(t, func() { p.Put(s) })
}

func TestPoolResize(t *testing.T) {
	p := newPool(t, 3, 4)
	a, err := p.Get() // id 1, in use
	require.NoError(t, err)
	old := a.Mem

	forgotten, err := p.Resize(20000)
	require.NoError(t, err)
	require.Equal(t, []uint32{2, 3}, forgotten)
	require.Equal(t, PoolStats{InUse: 1, Allocated: 1, Max: 4, Allocs: 3, Size: 20000}, p.Stats())
	require.Equal(t, []uint32{1}, ids(p.Surfaces()), "in-use surface stays announced")
	require.Nil(t, p.Lookup(2))

	// New Gets reuse the emptied slots with Gen+1 and the new size.
	b, err := p.Get()
	require.NoError(t, err)
	require.Equal(t, uint32(2), b.ID)
	require.Equal(t, uint32(2), b.Gen)
	require.Equal(t, 20480, b.Mem.Size())

	// The in-use surface of the old size is freed when Put.
	require.NotNil(t, old.Bytes())
	p.Put(a)
	require.Nil(t, old.Bytes(), "old memory freed on Put")
	require.Nil(t, p.Lookup(1))
	require.Equal(t, PoolStats{InUse: 1, Allocated: 1, Max: 4, Allocs: 4, Size: 20000}, p.Stats())

	c, err := p.Get() // lowest empty slot: 1, gen 2
	require.NoError(t, err)
	require.Equal(t, uint32(1), c.ID)
	require.Equal(t, uint32(2), c.Gen)
	require.Equal(t, 20480, c.Mem.Size())
	require.Equal(t, []uint32{1, 2}, ids(p.Surfaces()))

	// Same size: nothing to do.
	p.Put(c)
	forgotten, err = p.Resize(20000)
	require.NoError(t, err)
	require.Empty(t, forgotten)
	require.Same(t, c, p.Lookup(1))

	// Shrink: the free surface is forgotten, the in-use one freed on Put.
	forgotten, err = p.Resize(5000)
	require.NoError(t, err)
	require.Equal(t, []uint32{1}, forgotten)
	p.Put(b)
	require.Empty(t, p.Surfaces())
	d, err := p.Get()
	require.NoError(t, err)
	require.Equal(t, uint32(1), d.ID)
	require.Equal(t, uint32(3), d.Gen)
	require.Equal(t, 8192, d.Mem.Size())
	p.Put(d)

	_, err = p.Resize(0)
	require.Error(t, err)
}

func TestPoolClose(t *testing.T) {
	p, err := NewPool(PoolConfig{Allocator: NewMemfd("x"), Size: 4096, Min: 2, Max: 3})
	require.NoError(t, err)
	s, err := p.Get()
	require.NoError(t, err)
	free := p.Lookup(2).Mem

	require.NoError(t, p.Close())
	require.Nil(t, free.Bytes(), "free surface freed by Close")
	require.NotNil(t, s.Mem.Bytes(), "in-use surface survives Close")
	require.Equal(t, []uint32{1}, ids(p.Surfaces()))
	require.Equal(t, PoolStats{InUse: 1, Allocated: 1, Max: 3, Allocs: 2, Size: 4096}, p.Stats())

	_, err = p.Get()
	require.ErrorIs(t, err, ErrClosed)
	_, err = p.Resize(8192)
	require.ErrorIs(t, err, ErrClosed)

	p.Put(s)
	require.Nil(t, s.Mem.Bytes(), "Put after Close frees")
	require.Empty(t, p.Surfaces())
	require.Panics(t, func() { p.Put(s) })
	require.NoError(t, p.Close(), "idempotent")
}

func TestPoolNoFDLeak(t *testing.T) {
	before := testutil.CountOwnFDs(t)
	p, err := NewPool(PoolConfig{Allocator: NewMemfd("leak"), Size: 1 << 16, Min: 4, Max: 16})
	require.NoError(t, err)
	var got []*Surface
	for i := 0; i < 16; i++ {
		s, err := p.Get()
		require.NoError(t, err)
		copy(s.Mem.Bytes(), "frame")
		got = append(got, s)
	}
	require.Equal(t, before+32, testutil.CountOwnFDs(t), "two fds per memfd surface")
	for _, s := range got[:8] {
		p.Put(s)
	}
	_, err = p.Resize(1 << 17)
	require.NoError(t, err)
	for i := 0; i < 4; i++ {
		s, err := p.Get()
		require.NoError(t, err)
		p.Put(s)
	}
	require.NoError(t, p.Close())
	for _, s := range got[8:] {
		p.Put(s)
	}
	require.Equal(t, before, testutil.CountOwnFDs(t))
}

func TestPoolConcurrent(t *testing.T) {
	p := newPool(t, 2, 6)
	var wg sync.WaitGroup
	var inUse atomic.Int64
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				s, err := p.Get()
				if errors.Is(err, ErrExhausted) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if n := inUse.Add(1); n > 6 {
					t.Errorf("%d surfaces in use, max 6", n)
				}
				s.Mem.Bytes()[0]++
				_ = p.Stats()
				_ = p.Surfaces()
				if i%100 == 0 {
					if _, err := p.Resize(4096 * (1 + i%3)); err != nil {
						t.Error(err)
					}
				}
				inUse.Add(-1)
				p.Put(s)
			}
		}()
	}
	wg.Wait()
	st := p.Stats()
	require.Zero(t, st.InUse)
	require.LessOrEqual(t, st.Allocated, 6)
}

// Check that a surface's memory is really shared through ShareFD.
func TestPoolSurfaceShare(t *testing.T) {
	p := newPool(t, 1, 1)
	s, err := p.Get()
	require.NoError(t, err)
	defer p.Put(s)
	copy(s.Mem.Bytes(), "pooled")
	ro, err := unix.Mmap(s.Mem.ShareFD(), 0, s.Mem.Size(), unix.PROT_READ, unix.MAP_SHARED)
	require.NoError(t, err)
	defer unix.Munmap(ro)
	require.Equal(t, "pooled", string(ro[:6]))
}
