package surface

import (
	"errors"
	"fmt"
	"sync"

	"github.com/framehub/framehub/ipc"
)

// Pool errors.
var (
	// ErrExhausted is returned by Get when all Max surfaces are in use.
	ErrExhausted = errors.New("surface: pool exhausted")
	// ErrClosed is returned by Get and Resize after Close.
	ErrClosed = errors.New("surface: pool closed")
)

// PoolConfig configures a Pool.
type PoolConfig struct {
	Allocator Allocator // required
	Size      int       // bytes per surface (> 0); the allocator rounds it up to the page size
	Min       int       // surfaces allocated up front by NewPool; default 0
	Max       int       // hard limit on allocated surfaces; must be >= max(Min, 1)
}

// Surface is one pooled allocation. Its fields are read-only for users of
// the pool.
type Surface struct {
	ID  uint32  // slot id in [1, Max], stable for the pool's life
	Gen uint32  // generation of slot ID's memory: 1 for the first, +1 each time the slot gets new memory (after Resize)
	Mem *Memory // owned by the pool: never Close it
}

// Info returns the surface's entry for an ipc.Announce (one fd, ShareFD).
func (s *Surface) Info() ipc.Surface {
	return ipc.Surface{ID: s.ID, Gen: s.Gen, Size: uint64(s.Mem.Size()), Kind: s.Mem.Kind(), NFDs: 1, Device: s.Mem.Device()}
}

type slotState uint8

const (
	slotEmpty slotState = iota // no memory (never allocated yet, or freed by Resize)
	slotFree                   // memory, in the free stack
	slotInUse                  // memory, handed out by Get
)

type slot struct {
	surf  *Surface // nil when empty
	gen   uint32   // last generation given to this slot
	state slotState
	stale bool // in use, but of an older size (Resize) or pool closed: freed on Put
}

// Pool recycles surfaces of one size. It is safe for concurrent use.
//
// Slots have ids 1..Max. A surface is either free (in a LIFO stack, so Get
// returns the most recently used, cache-warm surface) or in use (between Get
// and Put). Resize changes the surface size: free surfaces are freed at once,
// in-use ones when they are Put back, and their slots later get new memory
// with a higher Gen.
type Pool struct {
	mu        sync.Mutex
	cfg       PoolConfig
	slots     []slot   // slots[id-1]
	free      []uint32 // LIFO stack of free slot ids
	inUse     int
	closed    bool
	exhausted uint64
	allocs    uint64
}

// NewPool validates cfg and allocates cfg.Min surfaces up front. On error
// nothing stays allocated.
func NewPool(cfg PoolConfig) (*Pool, error) {
	switch {
	case cfg.Allocator == nil:
		return nil, errors.New("surface: new pool: nil Allocator")
	case cfg.Size <= 0:
		return nil, fmt.Errorf("surface: new pool: invalid Size %d (must be > 0)", cfg.Size)
	case cfg.Min < 0:
		return nil, fmt.Errorf("surface: new pool: invalid Min %d (must be >= 0)", cfg.Min)
	case cfg.Max < max(cfg.Min, 1):
		return nil, fmt.Errorf("surface: new pool: invalid Max %d (must be >= max(Min=%d, 1))", cfg.Max, cfg.Min)
	case uint64(cfg.Max) > uint64(^uint32(0)):
		return nil, fmt.Errorf("surface: new pool: invalid Max %d (too large)", cfg.Max)
	}
	p := &Pool{cfg: cfg, slots: make([]slot, 0, cfg.Max)}
	for i := 0; i < cfg.Min; i++ {
		s, err := p.allocLocked()
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("surface: new pool: preallocating %d surfaces of %d bytes with %s: %w",
				cfg.Min, cfg.Size, cfg.Allocator.Name(), err)
		}
		p.slots[s.ID-1].state = slotFree
		p.inUse--
	}
	// Push in reverse so that Get hands out id 1 first.
	for i := cfg.Min; i > 0; i-- {
		p.free = append(p.free, uint32(i))
	}
	return p, nil
}

// allocLocked gives new memory to the lowest empty slot, or to a new slot
// when all slots hold memory and there are fewer than Max. The new surface
// is marked in use. p.mu must be held (or p not yet shared).
func (p *Pool) allocLocked() (*Surface, error) {
	idx := -1
	for i := range p.slots {
		if p.slots[i].state == slotEmpty {
			idx = i
			break
		}
	}
	if idx < 0 && len(p.slots) >= p.cfg.Max {
		return nil, ErrExhausted
	}
	mem, err := p.cfg.Allocator.Alloc(p.cfg.Size)
	if err != nil {
		return nil, err
	}
	if idx < 0 {
		p.slots = append(p.slots, slot{})
		idx = len(p.slots) - 1
	}
	sl := &p.slots[idx]
	sl.gen++
	sl.surf = &Surface{ID: uint32(idx + 1), Gen: sl.gen, Mem: mem}
	sl.state = slotInUse
	sl.stale = false
	p.allocs++
	p.inUse++
	return sl.surf, nil
}

// Get returns a free surface, preferring the most recently Put one (LIFO,
// warm in cache); when none is free it allocates memory for a new or emptied
// slot if fewer than Max surfaces are allocated. Otherwise it counts an
// exhaustion and returns an error wrapping ErrExhausted. After Close it
// returns ErrClosed. The caller must Put the surface back. Allocation happens
// under the pool's lock, so concurrent calls wait for it.
func (p *Pool) Get() (*Surface, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if n := len(p.free); n > 0 {
		id := p.free[n-1]
		p.free = p.free[:n-1]
		sl := &p.slots[id-1]
		sl.state = slotInUse
		p.inUse++
		return sl.surf, nil
	}
	s, err := p.allocLocked()
	if errors.Is(err, ErrExhausted) {
		p.exhausted++
		return nil, fmt.Errorf("%w: %d of %d surfaces in use", ErrExhausted, p.inUse, p.cfg.Max)
	}
	if err != nil {
		return nil, fmt.Errorf("surface: pool get (%d bytes, %s): %w", p.cfg.Size, p.cfg.Allocator.Name(), err)
	}
	return s, nil
}

// Put returns a surface obtained from Get to the pool. If the surface is of
// an older size (Resize) or the pool is closed, its memory is freed and its
// slot emptied. Put panics on a nil or foreign surface (not from this pool,
// or from an earlier generation of a slot) and on a double Put: those are
// programming errors.
func (p *Pool) Put(s *Surface) {
	if s == nil {
		panic("surface: Put of nil surface")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.ID == 0 || int(s.ID) > len(p.slots) || p.slots[s.ID-1].surf != s {
		panic(fmt.Sprintf("surface: Put of foreign surface id %d gen %d", s.ID, s.Gen))
	}
	sl := &p.slots[s.ID-1]
	if sl.state != slotInUse {
		panic(fmt.Sprintf("surface: double Put of surface id %d gen %d", s.ID, s.Gen))
	}
	p.inUse--
	if p.closed || sl.stale {
		s.Mem.Close() // only munmap/close errors on valid fds: nothing to do about them
		sl.surf, sl.state, sl.stale = nil, slotEmpty, false
		return
	}
	sl.state = slotFree
	p.free = append(p.free, s.ID)
}

// Resize changes the surface size (caps change). Free surfaces are freed
// now and their ids returned, ascending, so that the producer can Forget
// them on consumers; in-use surfaces are freed when Put back (the producer
// Forgets those then). Later Gets allocate memory of the new size in the
// emptied slots, reusing their ids with Gen+1. Resize to the current size
// does nothing and returns no ids. After Close it returns ErrClosed.
func (p *Pool) Resize(size int) (forgotten []uint32, err error) {
	if size <= 0 {
		return nil, fmt.Errorf("surface: pool resize: invalid size %d (must be > 0)", size)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if size == p.cfg.Size {
		return nil, nil
	}
	p.cfg.Size = size
	var errs []error
	for i := range p.slots {
		sl := &p.slots[i]
		switch sl.state {
		case slotFree:
			if err := sl.surf.Mem.Close(); err != nil {
				errs = append(errs, err)
			}
			forgotten = append(forgotten, sl.surf.ID)
			sl.surf, sl.state = nil, slotEmpty
		case slotInUse:
			sl.stale = true
		}
	}
	p.free = p.free[:0]
	if err := errors.Join(errs...); err != nil {
		return forgotten, fmt.Errorf("surface: pool resize to %d: %w", size, err)
	}
	return forgotten, nil
}

// Surfaces returns every allocated surface (free or in use, including in-use
// surfaces of an older size), ordered by ID: the producer announces these.
func (p *Pool) Surfaces() []*Surface {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Surface, 0, len(p.slots))
	for i := range p.slots {
		if s := p.slots[i].surf; s != nil {
			out = append(out, s)
		}
	}
	return out
}

// Lookup returns the surface currently allocated in slot id, or nil.
func (p *Pool) Lookup(id uint32) *Surface {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id == 0 || int(id) > len(p.slots) {
		return nil
	}
	return p.slots[id-1].surf
}

// PoolStats is a snapshot of a Pool's counters.
type PoolStats struct {
	Free      int    // allocated surfaces not in use
	InUse     int    // surfaces between Get and Put
	Allocated int    // Free + InUse
	Max       int    // PoolConfig.Max
	Exhausted uint64 // Gets that failed with ErrExhausted
	Allocs    uint64 // memory allocations made (NewPool's included)
	Size      int    // current surface size asked of the allocator (PoolConfig.Size, after Resize)
}

// Stats returns a snapshot of the pool's counters.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PoolStats{
		Free:      len(p.free),
		InUse:     p.inUse,
		Allocated: len(p.free) + p.inUse,
		Max:       p.cfg.Max,
		Exhausted: p.exhausted,
		Allocs:    p.allocs,
		Size:      p.cfg.Size,
	}
}

// Close frees the free surfaces now and in-use ones when they are Put back.
// Later Gets and Resizes fail with ErrClosed. It is idempotent.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	for i := range p.slots {
		sl := &p.slots[i]
		switch sl.state {
		case slotFree:
			if err := sl.surf.Mem.Close(); err != nil {
				errs = append(errs, err)
			}
			sl.surf, sl.state = nil, slotEmpty
		case slotInUse:
			sl.stale = true
		}
	}
	p.free = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("surface: pool close: %w", err)
	}
	return nil
}

// Config returns the pool's configuration, with the current Size.
func (p *Pool) Config() PoolConfig {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}
