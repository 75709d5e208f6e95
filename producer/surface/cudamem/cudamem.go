// Package cudamem allocates surface memory on a GPU for the producer's
// pools: the cuda surface kind, and DMA-BUF exports of the same memory.
//
// Each Alloc (see NewAllocator):
//  1. rounds the size up to the allocation granularity (2 MiB on current
//     GPUs: a 3840x2160 NV12 frame of 12,441,600 bytes takes 12,582,912),
//     which consumers must be told because an importer cannot query it;
//  2. cuMemCreate with the POSIX-fd handle type requested (it cannot be
//     added later);
//  3. maps it read-write into the producer's address space on the device
//     (cuMemAddressReserve, cuMemMap, cuMemSetAccess): the producer's
//     kernels write frames there (Memory.DevicePtr);
//  4. exports what consumers receive: the allocation's POSIX fd
//     (cuMemExportToShareableHandle; kind ipc.KindCUDA), or a DMA-BUF of
//     the mapped range (cuMemGetHandleForAddressRange; kind ipc.KindDMABuf).
//
// Either way the Announce carries the device's UUID and NoCPUMap, so
// consumers know they cannot mmap the fd. The fd grants read-write access:
// consumers that import it read-only protect themselves from their own
// bugs, but the producer has to trust them, as with DMA-BUF heaps.
//
// Leases work as for every kind: the pool hands a surface out again only
// when every consumer released it. A consumer's import keeps the memory
// alive after the producer freed or lost it (the producer died): the
// memory is freed when the last handle or mapping in any process is gone.
//
// Synchronisation: the producer's work on a surface must be complete when
// its Frame is published (cuStreamSynchronize on the stream that wrote it,
// as producer/cudasrc does); consumers then read it on any stream without
// further synchronisation, and must finish reading before they release the
// frame.
package cudamem

import (
	"errors"
	"fmt"
	"math"

	"github.com/framehub/framehub/internal/cuda"
	"github.com/framehub/framehub/ipc"
	"github.com/framehub/framehub/producer/surface"
)

// Config configures NewAllocator.
type Config struct {
	// Context is the device context the memory is allocated in. Required;
	// the allocator does not own it: close it after every Memory.
	Context *cuda.Context
	// Export is what consumers receive: ipc.KindCUDA (the default), the
	// allocation's POSIX fd, which consumers import with the CUDA driver; or
	// ipc.KindDMABuf, a DMA-BUF of it, for devices other than CUDA GPUs
	// (a CPU mmap of it fails).
	Export ipc.Kind
}

type allocator struct {
	cfg  Config
	gran int
	uuid cuda.UUID
}

// NewAllocator returns an allocator of device memory in cfg.Context. It
// checks that the device supports what the export needs.
func NewAllocator(cfg Config) (surface.Allocator, error) {
	if cfg.Context == nil {
		return nil, errors.New("cudamem: Config.Context is required")
	}
	if cfg.Export == 0 {
		cfg.Export = ipc.KindCUDA
	}
	dev := cfg.Context.Device()
	switch {
	case cfg.Export != ipc.KindCUDA && cfg.Export != ipc.KindDMABuf:
		return nil, fmt.Errorf("cudamem: export %v: want cuda or dmabuf", cfg.Export)
	case !dev.VMM:
		return nil, fmt.Errorf("cudamem: device %d (%s, %v) lacks the virtual memory management API", dev.Ordinal, dev.Name, dev.UUID)
	case !dev.PosixFD:
		return nil, fmt.Errorf("cudamem: device %d (%s, %v) cannot export memory as POSIX fds", dev.Ordinal, dev.Name, dev.UUID)
	case cfg.Export == ipc.KindDMABuf && !dev.DMABuf:
		return nil, fmt.Errorf("cudamem: device %d (%s, %v) cannot export DMA-BUFs (needs the open kernel module)", dev.Ordinal, dev.Name, dev.UUID)
	}
	g, err := cfg.Context.Granularity()
	if err != nil {
		return nil, fmt.Errorf("cudamem: %w", err)
	}
	return &allocator{cfg: cfg, gran: g, uuid: dev.UUID}, nil
}

// Kind implements surface.Allocator.
func (a *allocator) Kind() ipc.Kind { return a.cfg.Export }

// Name implements surface.Allocator: "cuda:GPU-…" or "cuda-dmabuf:GPU-…".
func (a *allocator) Name() string {
	if a.cfg.Export == ipc.KindDMABuf {
		return "cuda-dmabuf:" + a.uuid.String()
	}
	return "cuda:" + a.uuid.String()
}

// Alloc implements surface.Allocator: size is rounded up to the device's
// allocation granularity.
func (a *allocator) Alloc(size int) (m *surface.Memory, err error) {
	if size <= 0 || size > math.MaxInt-a.gran {
		return nil, fmt.Errorf("cudamem: alloc: invalid size %d", size)
	}
	size = (size + a.gran - 1) / a.gran * a.gran
	ctx := a.cfg.Context
	h, err := ctx.Create(size)
	if err != nil {
		return nil, fmt.Errorf("cudamem: alloc %d bytes: %w", size, err)
	}
	var ptr cuda.DevPtr
	defer func() {
		if err != nil {
			if ptr != 0 {
				_ = ctx.Unmap(ptr, size)
			}
			_ = ctx.Release(h)
		}
	}()
	if ptr, err = ctx.Map(h, size, cuda.ReadWrite); err != nil {
		return nil, fmt.Errorf("cudamem: alloc %d bytes: %w", size, err)
	}
	var fd int
	if a.cfg.Export == ipc.KindDMABuf {
		fd, err = ctx.DMABufFD(ptr, size)
	} else {
		fd, err = ctx.Export(h)
	}
	if err != nil {
		return nil, fmt.Errorf("cudamem: alloc %d bytes: %w", size, err)
	}
	release := func() error {
		return errors.Join(ctx.Unmap(ptr, size), ctx.Release(h))
	}
	m, err = surface.NewDeviceMemory(surface.DeviceMemory{
		Kind: a.cfg.Export, Size: size, FD: fd, Ptr: uint64(ptr),
		Device: ipc.Device{UUID: a.uuid[:], NoCPUMap: true}, Release: release,
	})
	if err != nil {
		return nil, fmt.Errorf("cudamem: %w", err)
	}
	return m, nil
}
