package surface

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/framehub/framehub/ipc"
)

// ErrNoFutureWriteSeal means the kernel has no F_SEAL_FUTURE_WRITE (it
// came with Linux 5.1). Without it the read-only fd given to consumers does
// not make a surface read-only: a consumer can reopen /proc/self/fd/N with
// O_RDWR (a memfd's inode has mode 0666) and change frames that other
// consumers read.
var ErrNoFutureWriteSeal = errors.New("surface: the kernel has no F_SEAL_FUTURE_WRITE (Linux < 5.1): " +
	"a consumer could reopen a surface read-write and change frames other consumers read")

// MemfdConfig configures NewMemfdWith.
type MemfdConfig struct {
	// Name is the memfd name shown in /proc/PID/fd and /proc/PID/maps as
	// "/memfd:NAME". It defaults to "framehub".
	Name string
	// AllowWritable lets Alloc return memfds without F_SEAL_FUTURE_WRITE on
	// a kernel that lacks it (see ErrNoFutureWriteSeal): consumers can then
	// write surfaces. By default such an Alloc fails with an error wrapping
	// ErrNoFutureWriteSeal.
	AllowWritable bool
	// AddSeals adds seals to a memfd. It defaults to AddSeals; tests set it
	// to simulate a kernel without a seal.
	AddSeals func(fd, seals int) error
}

// memfdAllocator allocates sealed memfds.
type memfdAllocator struct {
	cfg MemfdConfig
}

// NewMemfd returns an allocator of memfd memory named name (default
// "framehub"); it is NewMemfdWith(MemfdConfig{Name: name}).
func NewMemfd(name string) Allocator {
	return NewMemfdWith(MemfdConfig{Name: name})
}

// NewMemfdWith returns an allocator of memfd memory.
//
// Each Alloc:
//  1. memfd_create(name, MFD_CLOEXEC|MFD_ALLOW_SEALING), plus
//     MFD_NOEXEC_SEAL where supported (Linux ≥ 6.3), ftruncate to size;
//  2. maps it PROT_READ|PROT_WRITE, MAP_SHARED for the producer (Bytes);
//  3. seals it with F_SEAL_SHRINK|F_SEAL_GROW (its size never changes, so a
//     consumer's mapping can never SIGBUS), then F_SEAL_FUTURE_WRITE (no new
//     writable mapping and no write(2) by anyone, even through a reopen of
//     /proc/PID/fd/N with O_RDWR, while the producer's mapping from step 2
//     keeps working; a kernel older than 5.1 answers EINVAL, and then Alloc
//     fails unless cfg.AllowWritable, see Memory.FutureWriteSealed), then
//     F_SEAL_SEAL (no more seal changes);
//  4. reopens /proc/self/fd/N with O_RDONLY|O_CLOEXEC: that is ShareFD, which
//     consumers can only map PROT_READ.
//
// /proc must be mounted for step 4.
func NewMemfdWith(cfg MemfdConfig) Allocator {
	if cfg.Name == "" {
		cfg.Name = "framehub"
	}
	if cfg.AddSeals == nil {
		cfg.AddSeals = AddSeals
	}
	return &memfdAllocator{cfg: cfg}
}

// Kind implements Allocator.
func (a *memfdAllocator) Kind() ipc.Kind { return ipc.KindMemfd }

// Name implements Allocator.
func (a *memfdAllocator) Name() string { return "memfd" }

// Alloc implements Allocator.
func (a *memfdAllocator) Alloc(size int) (*Memory, error) {
	size, err := roundSize("memfd alloc", size)
	if err != nil {
		return nil, err
	}
	return allocMemfd(a.cfg, size)
}

func allocMemfd(cfg MemfdConfig, size int) (m *Memory, err error) {
	name := cfg.Name
	fd, err := createMemfd(name, size)
	if err != nil {
		return nil, err
	}
	var data []byte
	shareFD := -1
	defer func() {
		if err != nil {
			if data != nil {
				unix.Munmap(data)
			}
			closeFD(shareFD)
			closeFD(fd)
		}
	}()

	if data, err = mapShared(fmt.Sprintf("memfd %q", name), fd, size); err != nil {
		return nil, err
	}
	if err = cfg.AddSeals(fd, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW); err != nil {
		return nil, fmt.Errorf("surface: memfd %q: seal shrink|grow: %w", name, err)
	}
	// After the producer's writable mapping exists: it keeps working, any
	// new writable mapping or write(2) fails with EPERM.
	futureWrite := true
	if err = cfg.AddSeals(fd, unix.F_SEAL_FUTURE_WRITE); errors.Is(err, unix.EINVAL) {
		futureWrite = false // Linux < 5.1
		if !cfg.AllowWritable {
			return nil, fmt.Errorf("surface: memfd %q: %w", name, ErrNoFutureWriteSeal)
		}
	} else if err != nil {
		return nil, fmt.Errorf("surface: memfd %q: seal future_write: %w", name, err)
	}
	if err = cfg.AddSeals(fd, unix.F_SEAL_SEAL); err != nil {
		return nil, fmt.Errorf("surface: memfd %q: seal seal: %w", name, err)
	}
	if shareFD, err = reopenReadOnly(fd); err != nil {
		return nil, fmt.Errorf("surface: memfd %q: %w", name, err)
	}
	return &Memory{
		kind:        ipc.KindMemfd,
		size:        size,
		fd:          fd,
		shareFD:     shareFD,
		futureWrite: futureWrite,
		data:        data,
	}, nil
}

// CheckFutureWriteSeal reports whether the kernel seals memfds with
// F_SEAL_FUTURE_WRITE, by sealing a one-page memfd with addSeals (AddSeals
// when nil): nil if it does, an error wrapping ErrNoFutureWriteSeal if it
// does not, another error if the probe failed. A producer calls it before
// it makes any memfd pool, its own or GStreamer's (internal/gst).
func CheckFutureWriteSeal(addSeals func(fd, seals int) error) error {
	if addSeals == nil {
		addSeals = AddSeals
	}
	fd, err := createMemfd("framehub-seal-probe", os.Getpagesize())
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := addSeals(fd, unix.F_SEAL_FUTURE_WRITE); errors.Is(err, unix.EINVAL) {
		return ErrNoFutureWriteSeal
	} else if err != nil {
		return fmt.Errorf("surface: probe F_SEAL_FUTURE_WRITE: %w", err)
	}
	return nil
}

// createMemfd creates a sealable, close-on-exec memfd of size bytes. It
// asks for MFD_NOEXEC_SEAL too (Linux ≥ 6.3: the memfd can never be made
// executable, and the kernel does not warn about a memfd created without an
// exec flag), falling back to plain MFD_ALLOW_SEALING on older kernels.
func createMemfd(name string, size int) (int, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_NOEXEC_SEAL)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return -1, fmt.Errorf("surface: memfd_create %q: %w", name, os.NewSyscallError("memfd_create", err))
	}
	if err := ignoringEINTR(func() error { return unix.Ftruncate(fd, int64(size)) }); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("surface: memfd %q: ftruncate %d: %w", name, size, os.NewSyscallError("ftruncate", err))
	}
	return fd, nil
}

// AddSeals adds seals to a memfd with fcntl(F_ADD_SEALS): the default of
// MemfdConfig.AddSeals, for a test's replacement to call.
func AddSeals(fd, seals int) error {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return os.NewSyscallError("fcntl F_ADD_SEALS", err)
	}
	return nil
}

// reopenReadOnly opens /proc/self/fd/N with O_RDONLY|O_CLOEXEC, a new open
// file description of the same inode without write access, and checks that
// it is the same inode.
func reopenReadOnly(fd int) (int, error) {
	path := "/proc/self/fd/" + strconv.Itoa(fd)
	var rfd int
	err := ignoringEINTR(func() (err error) {
		rfd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return -1, fmt.Errorf("reopen %s read-only (is /proc mounted?): %w", path, os.NewSyscallError("open", err))
	}
	var a, b unix.Stat_t
	if err := unix.Fstat(fd, &a); err != nil {
		unix.Close(rfd)
		return -1, fmt.Errorf("fstat fd %d: %w", fd, os.NewSyscallError("fstat", err))
	}
	if err := unix.Fstat(rfd, &b); err != nil {
		unix.Close(rfd)
		return -1, fmt.Errorf("fstat fd %d: %w", rfd, os.NewSyscallError("fstat", err))
	}
	if a.Dev != b.Dev || a.Ino != b.Ino {
		unix.Close(rfd)
		return -1, fmt.Errorf("reopen %s: got a different inode (%d:%d, want %d:%d)", path, b.Dev, b.Ino, a.Dev, a.Ino)
	}
	return rfd, nil
}

// ignoringEINTR calls fn until it returns something other than EINTR.
func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}
