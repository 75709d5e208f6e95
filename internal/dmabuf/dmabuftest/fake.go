// Package dmabuftest stands in for the kernel's DMA-BUF support in tests
// of code that maps DMA-BUF memory and brackets its CPU accesses with
// DMA_BUF_IOCTL_SYNC (dmabuf.CPU): the SDK's reads, the producer's writes.
// No machine the tests run on exports a dma-buf (no /dev/dma_heap, no
// /dev/udmabuf, no camera or GPU), so the tests announce memfds as DMA-BUF
// surfaces and give the code a Fake, which maps them for real and checks
// every sync against the kernel's rules.
package dmabuftest

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/internal/dmabuf"
)

// Call is one call a Fake received.
type Call struct {
	Op    string // "map", "unmap", "begin" or "end"
	FD    int    // -1 for unmap
	Flags uint64 // begin and end: dmabuf.SyncRead, SyncWrite or SyncRW
	Size  int    // map and unmap: bytes
	Prot  int    // map: unix.PROT_*
}

func (c Call) String() string {
	switch c.Op {
	case "map":
		return fmt.Sprintf("map fd %d %d bytes prot %#x", c.FD, c.Size, c.Prot)
	case "unmap":
		return fmt.Sprintf("unmap %d bytes", c.Size)
	}
	return fmt.Sprintf("%s fd %d flags %#x", c.Op, c.FD, c.Flags)
}

// Fake is a dmabuf.CPU over any mappable fd (a memfd posing as a dma-buf).
// Map and Unmap are the real system calls. BeginCPUAccess and
// EndCPUAccess record the access and enforce what the kernel's
// DMA_BUF_IOCTL_SYNC requires of its callers: valid flags (EINVAL), an fd
// of this process (EBADF), and, beyond what the kernel checks (exporters
// count on it), that every end matches an access begun on that fd with the
// same flags and not ended yet. Accesses may nest, as the kernel allows. A
// violation is returned as an error and counted in Violations. FailBegin, when set, makes BeginCPUAccess fail with it
// (after the checks), as a driver can. The zero value is ready to use; it
// is safe for concurrent use.
type Fake struct {
	FailBegin error

	mu         sync.Mutex
	calls      []Call
	open       map[access]int // accesses begun and not ended, by fd and flags
	violations []string
}

var _ dmabuf.CPU = (*Fake)(nil)

// access is an fd and the flags of an access to it.
type access struct {
	fd    int
	flags uint64
}

// Map implements dmabuf.CPU with mmap(2), MAP_SHARED.
func (f *Fake) Map(fd, size, prot int) ([]byte, error) {
	f.record(Call{Op: "map", FD: fd, Size: size, Prot: prot})
	return dmabuf.Kernel{}.Map(fd, size, prot)
}

// Unmap implements dmabuf.CPU with munmap(2).
func (f *Fake) Unmap(b []byte) error {
	f.record(Call{Op: "unmap", FD: -1, Size: len(b)})
	return dmabuf.Kernel{}.Unmap(b)
}

// BeginCPUAccess implements dmabuf.CPU.
func (f *Fake) BeginCPUAccess(fd int, flags uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Op: "begin", FD: fd, Flags: flags})
	if err := f.check(fd, flags); err != nil {
		return err
	}
	if f.FailBegin != nil {
		return f.FailBegin
	}
	if f.open == nil {
		f.open = map[access]int{}
	}
	f.open[access{fd, flags}]++
	return nil
}

// EndCPUAccess implements dmabuf.CPU.
func (f *Fake) EndCPUAccess(fd int, flags uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Op: "end", FD: fd, Flags: flags})
	if err := f.check(fd, flags); err != nil {
		return err
	}
	a := access{fd, flags}
	if f.open[a] == 0 {
		return f.violation("end fd %d flags %#x: no access begun on it with these flags", fd, flags)
	}
	if f.open[a]--; f.open[a] == 0 {
		delete(f.open, a)
	}
	return nil
}

// check applies the kernel's own checks. Callers hold f.mu.
func (f *Fake) check(fd int, flags uint64) error {
	if flags == 0 || flags&^dmabuf.SyncRW != 0 {
		return f.violation("fd %d: invalid flags %#x: %v", fd, flags, unix.EINVAL)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		return f.violation("fd %d: %v", fd, err)
	}
	return nil
}

func (f *Fake) violation(format string, args ...any) error {
	v := fmt.Sprintf(format, args...)
	f.violations = append(f.violations, v)
	return fmt.Errorf("dmabuftest: %s", v)
}

func (f *Fake) record(c Call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

// Calls returns the calls received so far, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// CallsOn returns the begin and end calls on fd, in order.
func (f *Fake) CallsOn(fd int) []Call {
	var out []Call
	for _, c := range f.Calls() {
		if c.FD == fd && (c.Op == "begin" || c.Op == "end") {
			out = append(out, c)
		}
	}
	return out
}

// Open returns the accesses begun and not ended, as fd → flags → how
// many.
func (f *Fake) Open() map[int]map[uint64]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int]map[uint64]int{}
	for a, n := range f.open {
		if out[a.fd] == nil {
			out[a.fd] = map[uint64]int{}
		}
		out[a.fd][a.flags] = n
	}
	return out
}

// Violations returns the breaches of the sync rules seen so far.
func (f *Fake) Violations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.violations...)
}
