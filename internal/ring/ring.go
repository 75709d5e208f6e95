// Package ring is the release ring of a consumer session: a small memfd the
// producer creates and shares read-write with one consumer, in which the
// consumer writes the ids of the leases it releases and the producer reads
// them when it is about to publish a frame. It replaces the Release message
// of a queue-policy consumer that asked for it (ipc.HelloReleaseRing): the
// consumer releases without a system call, and the producer stops reading
// that consumer's socket for releases. Without the Release packets the
// consumer's socket also stops signalling it writable each time the
// producer reads one (Linux frees the sender's buffer and wakes its
// poller), which woke an idle Go consumer twice per frame.
//
// Layout (little-endian, offsets in bytes; docs/PROTOCOL.md §4.15):
//
//	0   u32 magic "FHRR"
//	4   u32 version (1)
//	8   u32 entries (a power of two)
//	12  u32 entries_offset (192)
//	64  u64 head: entries written, by the consumer
//	72  u32 kick: 1 while the producer waits for releases (release on the socket then)
//	128 u64 tail: entries read, by the producer (a cache line of its own)
//	192 u64 entries[entries]: lease ids
//
// head and tail only grow. The consumer writes entries[head % entries] and
// then stores head+1; it writes nothing while head − tail == entries (full:
// it sends a Release instead). The producer loads head, reads the entries
// from tail up to it, and stores tail. Stores and loads of head, tail and
// kick are atomic (x86-64 and arm64 order them: an entry is visible before
// the head that covers it).
//
// The consumer can write anything into the ring: the producer treats every
// id like one in a Release (an id that is not live ends the session with
// Bye 8), and a head that runs more than entries ahead of tail, or goes
// back, is a protocol error. The memfd is sealed against shrinking and
// growing, so a consumer cannot make the producer's mapping fault.
package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Layout constants (docs/PROTOCOL.md §4.15).
const (
	Magic         = 0x52524846 // "FHRR" little-endian
	Version       = 1
	Entries       = 256 // ≥ 2 × any budget (max_in_flight is at most a few dozen)
	EntriesOffset = 192
	Size          = 4096 // one page: 192 + 256 × 8 = 2240 bytes used

	offMagic   = 0
	offVersion = 4
	offEntries = 8
	offEntOff  = 12
	offKick    = 72

	// HeadOffset and TailOffset are where head and tail live, for peers
	// that write the layout themselves (a consumer in another language).
	HeadOffset = 64
	TailOffset = 128
	offHead    = HeadOffset
	offTail    = TailOffset
)

// Errors of a ring the peer broke.
var (
	ErrLayout  = errors.New("ring: not a release ring of a known layout")
	ErrOverrun = errors.New("ring: head more than the ring's entries ahead of tail, or behind it")
)

// Ring is one mapping of a release ring. The producer's (Create) reads it,
// the consumer's (Map) writes it. Close unmaps it; the producer's Ring also
// owns the memfd, which it closes.
type Ring struct {
	mem  []byte
	fd   int    // the producer's; -1 for a consumer's mapping
	tail uint64 // the producer's own count of ids read: the consumer can write the shared one
}

// Create makes a new ring for one consumer session: a sealed memfd of Size
// bytes, mapped read-write by the producer. FD is what the producer sends
// (it stays the ring's: the caller must not close it; Close does).
func Create(name string) (*Ring, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("ring: memfd_create: %w", err)
	}
	r := &Ring{fd: fd}
	if err := unix.Ftruncate(fd, Size); err != nil {
		r.Close()
		return nil, fmt.Errorf("ring: ftruncate to %d bytes: %w", Size, err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		r.Close()
		return nil, fmt.Errorf("ring: seal: %w", err)
	}
	if r.mem, err = unix.Mmap(fd, 0, Size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		r.Close()
		return nil, fmt.Errorf("ring: mmap: %w", err)
	}
	binary.LittleEndian.PutUint32(r.mem[offMagic:], Magic)
	binary.LittleEndian.PutUint32(r.mem[offVersion:], Version)
	binary.LittleEndian.PutUint32(r.mem[offEntries:], Entries)
	binary.LittleEndian.PutUint32(r.mem[offEntOff:], EntriesOffset)
	return r, nil
}

// FD is the producer's memfd of the ring, to send to the consumer.
func (r *Ring) FD() int { return r.fd }

// Map maps a ring a producer sent (size bytes, as the Ring message says)
// for the consumer, and checks its layout. The caller keeps fd and closes
// it (the mapping does not need it).
func Map(fd int, size uint32) (*Ring, error) {
	if size < Size {
		return nil, fmt.Errorf("%w: size %d, want ≥ %d", ErrLayout, size, Size)
	}
	mem, err := unix.Mmap(fd, 0, Size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("ring: mmap: %w", err)
	}
	r := &Ring{mem: mem, fd: -1}
	le := binary.LittleEndian
	if le.Uint32(mem[offMagic:]) != Magic || le.Uint32(mem[offVersion:]) != Version ||
		le.Uint32(mem[offEntries:]) != Entries || le.Uint32(mem[offEntOff:]) != EntriesOffset {
		err := fmt.Errorf("%w: magic %#x version %d entries %d offset %d", ErrLayout, le.Uint32(mem[offMagic:]),
			le.Uint32(mem[offVersion:]), le.Uint32(mem[offEntries:]), le.Uint32(mem[offEntOff:]))
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close unmaps the ring and, for the producer's, closes its memfd. It is
// idempotent.
func (r *Ring) Close() {
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem = nil
	}
	if r.fd >= 0 {
		_ = unix.Close(r.fd)
		r.fd = -1
	}
}

func (r *Ring) u64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&r.mem[off])) }
func (r *Ring) u32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&r.mem[off])) }

// Push writes lease id into the ring (the consumer). It reports false when
// the ring is full, or the producer asked to be kicked: then the release
// goes in a Release message, which wakes a producer waiting for it.
func (r *Ring) Push(id uint64) bool {
	head, tail := atomic.LoadUint64(r.u64(offHead)), atomic.LoadUint64(r.u64(offTail))
	if head-tail >= Entries || atomic.LoadUint32(r.u32(offKick)) != 0 {
		return false
	}
	atomic.StoreUint64(r.u64(EntriesOffset+8*int(head%Entries)), id)
	atomic.StoreUint64(r.u64(offHead), head+1)
	return true
}

// Pop reads up to max entries (the producer) into dst and returns it. A
// head the consumer broke is ErrOverrun; the ring is then useless.
func (r *Ring) Pop(dst []uint64, max int) ([]uint64, error) {
	head, tail := atomic.LoadUint64(r.u64(offHead)), r.tail
	if head-tail > Entries { // also a head behind tail: the difference wraps
		return dst, fmt.Errorf("%w: head %d, tail %d", ErrOverrun, head, tail)
	}
	n := min(int(head-tail), max)
	for i := range n {
		dst = append(dst, atomic.LoadUint64(r.u64(EntriesOffset+8*int((tail+uint64(i))%Entries))))
	}
	r.tail = tail + uint64(n)
	atomic.StoreUint64(r.u64(offTail), r.tail)
	return dst, nil
}

// SetKick asks the consumer (the producer, true) to release in Release
// messages rather than in the ring for now: the producer is waiting for a
// free surface and sleeps on the socket. Read the ring (Pop) after setting
// the kick, before sleeping: the consumer may have written just before it
// saw the kick.
func (r *Ring) SetKick(on bool) {
	v := uint32(0)
	if on {
		v = 1
	}
	atomic.StoreUint32(r.u32(offKick), v)
}
